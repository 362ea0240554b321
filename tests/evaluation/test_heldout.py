"""The heldout benchmark: a user's own held-out prompts (a training-format data file) graded as IFEval is.
Expected verdicts come from the replies' construction (a comma or none; a P.S. line or none), not from
the checkers under test."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from herl_jax.evaluation.config import EvalConfigError, default_config, resolve
from herl_jax.evaluation.pipeline import evaluate_policies
from tests.evaluation.helpers import ScriptedPolicy

REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS = dict(instruction_id_list=["punctuation:no_comma", "detectable_content:postscript"],
                   kwargs=[{}, {"postscript_marker": "P.S."}])
# prompt id -> (has a comma, has a P.S.): each of the four cases, then one more of each single failure
REPLIES = {"a": (False, True), "b": (True, True), "c": (False, False), "d": (True, False), "e": (True, True),
           "f": (False, False)}


def reply_for(prompt: str, _sample: int) -> str:
    comma, postscript = REPLIES[prompt.split()[1]]
    body = "Rivers run to the sea, always" if comma else "Rivers run to the sea always"
    return body + ("\n\nP.S. Bring a map." if postscript else "")


def write_rows(path: Path, extra: list[str] = ()) -> Path:
    rows = [json.dumps({"id": key, "prompt": f"Prompt {key} about rivers", **CONSTRAINTS}) for key in REPLIES]
    path.write_text("\n".join([*rows, *extra]) + "\n")
    return path


def run(tmp_path, data: Path, limit=None):
    c = default_config()
    c.heldout.file = str(data)
    paths = evaluate_policies(c, [("scripted", "unused", ScriptedPolicy(reply_for))],
                              ["heldout"], tmp_path / "out", limit=limit)
    result = json.loads(Path(paths["json"]).read_text())["scripted"]["benchmarks"]["heldout"]
    assert result["settings"]["heldout"] == {"file": str(data), "format": "hir"}  # what the numbers came from
    return result["pass@1"]


def test_heldout_prompts_are_graded_by_their_checkers(tmp_path):
    pass1 = run(tmp_path, write_rows(tmp_path / "heldout.jsonl"))
    met = [(not comma, postscript) for comma, postscript in REPLIES.values()]
    assert pass1["n"] == len(REPLIES)
    assert pass1["prompt_strict"] == pytest.approx(sum(all(m) for m in met) / len(met))
    assert pass1["instruction_strict"] == pytest.approx(sum(sum(m) for m in met) / (2 * len(met)))
    assert pass1["unscored_items"] == 0


def test_a_limit_takes_the_first_rows(tmp_path):
    pass1 = run(tmp_path, write_rows(tmp_path / "heldout.jsonl"), limit=2)
    assert pass1["n"] == 2 and pass1["prompt_strict"] == pytest.approx(0.5)  # "a" passes, "b" has a comma


def test_a_file_with_too_many_malformed_rows_is_refused_naming_it(tmp_path):
    data = write_rows(tmp_path / "heldout.jsonl", extra=["{not json"])  # 1 of 7 rows: over the 10% allowed
    with pytest.raises(ValueError, match=r"heldout.jsonl: 14.3% of rows are malformed"):
        run(tmp_path, data)


def test_judged_rubric_items_are_refused(tmp_path):
    data = tmp_path / "judged.jsonl"
    data.write_text(json.dumps({"id": "j", "prompt": "Explain tides", "criteria": ["Mentions the moon"]}) + "\n")
    with pytest.raises(ValueError, match="judged rubric items"):
        run(tmp_path, data)


def test_a_format_without_programmatic_rubrics_is_refused():
    c = default_config()
    c.heldout.format = "rar"
    with pytest.raises(EvalConfigError, match="config.heldout.format"):
        resolve(c)


def test_cli_without_a_file_says_how_to_name_one(tmp_path):
    result = subprocess.run([sys.executable, "-m", "herl_jax.evaluate", "--benchmarks", "heldout", "--output",
                             str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO,
                            env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--config.heldout.file=PATH" in result.stderr.strip().splitlines()[-1]
