"""HealthBench and WritingBench through the whole runner, graded by a scripted judge server on 127.0.0.1.

Expected numbers are computed here from the raw benchmark files, independently of the package.
"""

import dataclasses
import json
from collections import defaultdict

import numpy as np
import pytest

from herl_jax.evaluation.config import default_config
from herl_jax.evaluation.data import load_benchmark, tasks_dir
from herl_jax.evaluation.pipeline import evaluate_policies
from herl_jax.rubrics.config import JudgeConfig
from tests.evaluation.helpers import ScriptedPolicy
from tests.rubrics.openai_stub import OpenAIStub, Reply

KEY_ENV, KEY = "HERL_TEST_JUDGE_KEY", "sk-test-secret-123"
LIMIT = 4


def _config(base_url: str):
    c = default_config()
    c.judge.update(base_url=base_url, model="judge-test", api_key_env=KEY_ENV, max_retries=1,
                   backoff_base_s=0.01, backoff_max_s=0.02, timeout_s=10.0)
    c.healthbench.bootstrap_samples = 200
    return c


def _rows(path):
    return [json.loads(line) for line in (tasks_dir() / path).read_text().split("\n") if line.strip()][:LIMIT]


# --- HealthBench ---------------------------------------------------------------------------------------------

HB_ROWS = _rows("healthbench/data/healthbench_eval.jsonl")


def _met_by_design(i: int, j: int) -> bool:
    """Which items the scripted response of example i meets: every other item, offset by example."""
    return (i + j) % 2 == 0


def _hb_response(last_message: str) -> str:
    i = next(i for i, row in enumerate(HB_ROWS) if row["prompt"][-1]["content"] == last_message)
    return "Answer. " + " ".join(item["criterion"] for j, item in enumerate(HB_ROWS[i]["rubrics"])
                                 if _met_by_design(i, j))


def _grader_request_parts(request: dict) -> tuple[str, str]:
    """(conversation, rubric item) of a HealthBench grader prompt."""
    system, user = request["messages"]
    assert system == {"role": "system", "content": "You are a helpful assistant."}
    text = user["content"]
    conversation = text.split("# Conversation\n", 1)[1].split("\n\n# Rubric item\n", 1)[0]
    item = text.split("# Rubric item\n", 1)[1].split("\n\n# Instructions", 1)[0]
    return conversation, item


def _hb_judge(failing_item: str | None = None):
    def script(request, attempt):
        conversation, item = _grader_request_parts(request)
        criterion = item.split("] ", 1)[1]
        if criterion == failing_item:
            return Reply(status=500)
        met = criterion in conversation.rsplit("\n\nassistant: ", 1)[1]
        return Reply(content=f'```json\n{{"explanation": "scripted", "criteria_met": {json.dumps(met)}}}\n```')
    return script


def _expected_healthbench(indices):
    scores, axes = [], defaultdict(list)
    for i in indices:
        row = HB_ROWS[i]
        items = [(it["points"], _met_by_design(i, j), it["tags"]) for j, it in enumerate(row["rubrics"])]
        scores.append(sum(p for p, m, _ in items if m) / sum(p for p, _, _ in items if p > 0))
        for axis in {t for _, _, tags in items for t in tags if t.startswith("axis:")}:
            own = [(p, m) for p, m, tags in items if axis in tags]
            if any(p > 0 for p, _ in own):
                axes[axis[5:]].append(sum(p for p, m in own if m) / sum(p for p, _ in own if p > 0))
    return float(np.clip(np.mean(scores), 0, 1)), {a: float(np.clip(np.mean(v), 0, 1)) for a, v in axes.items()}


def test_healthbench_one_grader_call_per_item_scores_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    rows = HB_ROWS
    failing = rows[2]["rubrics"][1]["criterion"]  # the judge never answers this item: example 2 incomplete
    policy = ScriptedPolicy(lambda text, i: _hb_response(text))
    with OpenAIStub(_hb_judge(failing)) as stub:
        evaluate_policies(_config(stub.base_url), [("scripted", "unused", policy)],
                          ["healthbench"], tmp_path, limit=LIMIT)
    items = sum(len(r["rubrics"]) for r in rows)
    assert len(stub.requests) == items + 1  # one call per item, plus the one retry of the failing item
    assert all(h == f"Bearer {KEY}" for h in stub.auth_headers)
    asked = sorted(_grader_request_parts(r)[1] for r in stub.requests)
    expected = [f"[{it['points']}] {it['criterion']}" for row in rows for it in row["rubrics"]]
    assert asked == sorted(expected + [f"[{rows[2]['rubrics'][1]['points']}] {failing}"])
    question = rows[0]["prompt"][0]["content"]
    first_example = [r["messages"][1]["content"] for r in stub.requests if question in r["messages"][1]["content"]]
    assert f"user: {question}\n\nassistant: Answer." in first_example[0]

    p1 = json.loads((tmp_path / "scripted" / "summary.json").read_text())["benchmarks"]["healthbench"]["pass@1"]
    assert (p1["n"], p1["incomplete"]) == (3, 1)
    score, _ = _expected_healthbench([0, 1, 3])
    assert p1["score"] == pytest.approx(score)

    # Rerun with a healthy judge: only the incomplete example is graded again, nothing is sampled.
    calls = policy.calls
    with OpenAIStub(_hb_judge()) as stub:
        evaluate_policies(_config(stub.base_url), [("scripted", "unused", policy)],
                          ["healthbench"], tmp_path, limit=LIMIT)
    assert policy.calls == calls
    assert len(stub.requests) == len(rows[2]["rubrics"])
    p1 = json.loads((tmp_path / "scripted" / "summary.json").read_text())["benchmarks"]["healthbench"]["pass@1"]
    score, axes = _expected_healthbench(range(LIMIT))
    assert (p1["n"], p1["incomplete"]) == (LIMIT, 0)
    assert p1["score"] == pytest.approx(score) and 0 < score < 1
    assert p1["stderr"] > 0
    assert {a: v["score"] for a, v in p1["axes"].items()} == pytest.approx(axes)
    assert KEY not in "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png")
    assert "HealthBench-500" in (tmp_path / "results.md").read_text()


def test_a_judge_that_asks_for_an_hour_is_retried_after_the_configured_cap(tmp_path, monkeypatch):
    """A 503 with Retry-After: 3600 on each item's first call: `judge.max_retry_after_s` (a key of the
    evaluation config, as `--config.judge.max_retry_after_s=` sets it) caps the wait, and every item is graded."""
    monkeypatch.setenv(KEY_ENV, KEY)
    graded = _hb_judge()

    def busy_first(request, attempt):
        return Reply(status=503, headers=(("Retry-After", "3600"),)) if attempt == 1 else graded(request, attempt)

    config = _config("")
    assert set(config.judge) == {f.name for f in dataclasses.fields(JudgeConfig)} - {"mode", "cache_path"}
    policy = ScriptedPolicy(lambda text, i: _hb_response(text))
    with OpenAIStub(busy_first) as stub:
        config.judge.update(base_url=stub.base_url, max_retry_after_s=0.05)
        evaluate_policies(config, [("scripted", "unused", policy)], ["healthbench"], tmp_path, limit=2)
    p1 = json.loads((tmp_path / "scripted" / "summary.json").read_text())["benchmarks"]["healthbench"]["pass@1"]
    assert (p1["n"], p1["incomplete"]) == (2, 0)
    assert p1["score"] == pytest.approx(_expected_healthbench([0, 1])[0])
    assert len(stub.requests) == 2 * sum(len(r["rubrics"]) for r in HB_ROWS[:2])  # each item: refused, then graded


# --- WritingBench --------------------------------------------------------------------------------------------

def test_writingbench_criterion_scores_and_domain_means(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    rows = _rows("writingbench/benchmark_query/benchmark_all.jsonl")
    examples = load_benchmark("writingbench", LIMIT)

    def script(request, attempt):
        user = request["messages"][1]["content"]
        i = next(i for i in range(LIMIT) if f"RESPONSE-{i}-END" in user)
        j = next(j for j, c in enumerate(rows[i]["checklist"]) if repr(c["name"])[1:-1] in user)
        return Reply(content=json.dumps({"score": 1 + (3 * i + j) % 10, "reason": "scripted"}))

    index = {e.prompt: i for i, e in enumerate(examples)}
    policy = ScriptedPolicy(lambda text, n: f"RESPONSE-{index[text]}-END")
    with OpenAIStub(script) as stub:
        evaluate_policies(_config(stub.base_url), [("scripted", "unused", policy)],
                          ["writingbench"], tmp_path, limit=LIMIT)
    assert len(stub.requests) == 5 * LIMIT
    assert all(r["messages"][0]["role"] == "system" for r in stub.requests)
    scores = {i: [1 + (3 * i + j) % 10 for j in range(5)] for i in range(LIMIT)}
    p1 = json.loads((tmp_path / "scripted" / "summary.json").read_text())["benchmarks"]["writingbench"]["pass@1"]
    assert p1["score"] == pytest.approx(np.mean([s for v in scores.values() for s in v]))
    by_domain = defaultdict(list)
    for i, row in enumerate(rows):
        by_domain[row["domain1"]].append(np.mean(scores[i]))
    assert p1["domain1"] == pytest.approx({d: np.mean(v) for d, v in by_domain.items()})


def test_without_a_judge_judged_benchmarks_are_skipped_with_a_message(tmp_path):
    policy = ScriptedPolicy(lambda text, i: "never asked")
    evaluate_policies(default_config(), [("scripted", "unused", policy)],
                      ["healthbench", "writingbench"], tmp_path, limit=2)
    assert policy.calls == 0
    summary = json.loads((tmp_path / "scripted" / "summary.json").read_text())
    for name in ("healthbench", "writingbench"):
        assert summary["benchmarks"][name]["skipped"] == "no judge"
        assert "judge.base_url" in summary["benchmarks"][name]["message"]
    report = (tmp_path / "results.md").read_text()
    assert report.count("skipped (no judge)") == 2 and "no judge is configured" in report
