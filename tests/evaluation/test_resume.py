"""Resumability: per-example records survive a crash; a rerun samples only what is missing."""

import json

import pytest

from herl_jax.evaluation.config import default_config
from herl_jax.evaluation.pipeline import evaluate_policies, parse_checkpoint
from herl_jax.evaluation.store import ResultStore
from tests.evaluation.helpers import ScriptedPolicy

LIMIT = 6


def _reply(text: str, i: int) -> str:
    return f"Answer to: {text[:40]}\nThe end"


class Crash(RuntimeError):
    pass


def _run(tmp_path, policy, **overrides):
    c = default_config()
    c.batch_size = 2  # three sampler calls for six examples
    c.update_from_flattened_dict(overrides)
    return evaluate_policies(c, [("scripted", "unused", policy)], ["ifeval"], tmp_path, limit=LIMIT)


def test_a_rerun_samples_only_unfinished_examples(tmp_path):
    def crash_on_second_call(text, i):
        if crashing.calls == 2:
            raise Crash("killed mid-run")
        return _reply(text, i)

    crashing = ScriptedPolicy(crash_on_second_call)
    with pytest.raises(Crash):
        _run(tmp_path, crashing)
    records_path = tmp_path / "scripted" / "ifeval" / "pass1.jsonl"
    assert len(ResultStore(records_path).load()) == 2  # the first batch was stored before the crash

    resumed = ScriptedPolicy(_reply)
    _run(tmp_path, resumed)
    assert resumed.rows == LIMIT - 2
    fresh = ScriptedPolicy(_reply)
    _run(tmp_path / "fresh", fresh)  # the same evaluation without interruption
    summary = lambda root: json.loads((root / "scripted" / "summary.json").read_text())["benchmarks"]["ifeval"]  # noqa: E731
    assert summary(tmp_path)["pass@1"] == summary(tmp_path / "fresh")["pass@1"]
    assert summary(tmp_path)["pass@1"]["n"] == LIMIT

    again = ScriptedPolicy(_reply)
    _run(tmp_path, again)
    assert again.calls == 0
    assert summary(tmp_path)["pass@1"] == summary(tmp_path / "fresh")["pass@1"]


def test_a_torn_last_record_is_sampled_again_and_later_records_stay_readable(tmp_path):
    _run(tmp_path, ScriptedPolicy(_reply), **{"passk.n": 2})
    passk_path = tmp_path / "scripted" / "ifeval" / "passk.jsonl"
    text = passk_path.read_text()
    passk_path.write_text(text[: len(text) - len(text.split("\n")[-2]) // 2 - 1])  # the process died mid-line

    resumed = ScriptedPolicy(_reply)
    _run(tmp_path, resumed, **{"passk.n": 2})
    assert (resumed.calls, resumed.rows) == (1, 2)  # one example, two samples; Pass@1 untouched
    records = ResultStore(passk_path).load()
    assert len(records) == LIMIT and all(len(r["responses"]) == 2 for r in records.values())


def test_a_run_of_other_benchmarks_keeps_earlier_results(tmp_path):
    _run(tmp_path, ScriptedPolicy(_reply))
    evaluate_policies(default_config(), [("scripted", "unused", ScriptedPolicy(_reply))],
                      ["healthbench"], tmp_path, limit=2)
    benchmarks = json.loads((tmp_path / "scripted" / "summary.json").read_text())["benchmarks"]
    assert benchmarks["ifeval"]["pass@1"]["n"] == LIMIT and benchmarks["healthbench"]["skipped"] == "no judge"
    assert "| Checkpoint | IFEval | HealthBench-500 |" in (tmp_path / "results.md").read_text()


def test_results_of_another_checkpoint_under_the_same_label_are_not_resumed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    c = default_config()
    evaluate_policies(c, [("run", str(tmp_path / "a"), ScriptedPolicy(_reply))], ["ifeval"], tmp_path / "out", limit=2)
    with pytest.raises(ValueError, match="OTHER_LABEL="):
        evaluate_policies(c, [("run", str(tmp_path / "b"), ScriptedPolicy(_reply))], ["ifeval"], tmp_path / "out",
                          limit=2)


def test_a_checkpoint_is_label_equals_source_or_a_source_named_by_its_file_or_folder():
    assert parse_checkpoint("base=smollm2-135m-instruct") == ("base", "smollm2-135m-instruct")
    assert parse_checkpoint("runs/small/herl/seed=0/export") == ("export", "runs/small/herl/seed=0/export")
    assert parse_checkpoint("models/q8.gguf") == ("q8", "models/q8.gguf")


def test_records_of_other_settings_are_sampled_again_and_their_own_stay_usable(tmp_path):
    _run(tmp_path, ScriptedPolicy(_reply))
    changed = ScriptedPolicy(_reply)
    _run(tmp_path, changed, **{"greedy.max_new_tokens": 17})  # other settings: nothing of the first run is reused
    assert changed.rows == LIMIT
    back = ScriptedPolicy(_reply)
    _run(tmp_path, back)  # the first settings again: their records are all there
    assert back.calls == 0
    lines = [json.loads(line) for line in (tmp_path / "scripted" / "ifeval" / "pass1.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * LIMIT and len({line["key"] for line in lines}) == 2
    unchanged_passk = ScriptedPolicy(_reply)
    _run(tmp_path, unchanged_passk, **{"passk.ks": (1,)})  # what only the summary reads is not in the key
    assert unchanged_passk.calls == 0
