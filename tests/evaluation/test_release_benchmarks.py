"""MulDimIF, LLMEval-Med, MATH-500, GPQA and MMLU-Pro read from hand-written files in their release formats
(tests/evaluation/data), graded and reported. Expected numbers follow from how the scripted replies are built
(a right or wrong answer, a met or broken constraint), not from the graders under test; the CLI runs the real
model on them; bad files are refused in one line naming the file and the field."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from herl_jax.evaluation.config import default_config
from herl_jax.evaluation.release_data import load_release
from herl_jax.evaluation.pipeline import evaluate_policies
from tests.evaluation.helpers import ScriptedPolicy
from tests.rubrics.openai_stub import OpenAIStub, Reply, user_text

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
KEY_ENV, KEY = "HERL_TEST_JUDGE_KEY", "sk-test-secret-456"
BENCHMARKS = ["muldimif", "llmeval_med", "math500", "gpqa", "mmlu_pro"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Each benchmark's file; MMLU-Pro's parquet written from its hand-written rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path_factory.mktemp("mmlu_pro") / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(json.loads((DATA / "mmlu_pro_rows.json").read_text())), parquet)
    return {"muldimif": DATA / "muldimif_test.json", "llmeval_med": DATA / "llmeval_med" / "dataset" / "dataset.json",
            "math500": DATA / "math500_test.jsonl", "gpqa": DATA / "gpqa_diamond.csv", "mmlu_pro": parquet}


def _config(files, base_url=None):
    c = default_config()
    for name, path in files.items():
        c[name].file = str(path)
    if base_url:
        c.judge.update(base_url=base_url, model="judge-test", api_key_env=KEY_ENV, max_retries=1,
                       backoff_base_s=0.01, backoff_max_s=0.02, timeout_s=10.0)
    return c


def _letter_of(prompt: str, option: str) -> str:
    return re.search(rf"^([A-J])\) {re.escape(option)}$", prompt, re.MULTILINE).group(1)


# What each scripted reply does, by a phrase of its prompt.
REPLIES = {
    # MulDimIF m1 (<= 12 words, 'river', ends with a period): all met. m2 (capitalized words; a table of at most
    # two rows if any; a start identifier we cannot read): the first word is lowercase, no table.
    "Describe a river": lambda p: "The river runs quietly to the sea.",
    "Name a stone": lambda p: "granite Is A Stone",
    "Which river is the longest": lambda p: "> The Nile.",
    # MATH-500: right (0.5 for 1/2), right (a tuple for the polar point), unboxed, wrong.
    "frac{1}{4} + ": lambda p: "Adding gives $\\boxed{0.5}$.",
    "polar coordinates": lambda p: "$r=3$, $\\theta=\\pi/2$: $\\boxed{(3, \\frac{\\pi}{2})}$",
    "A square has side": lambda p: "It is 10 cm.",
    "Solve $2x = 6$": lambda p: "$\\boxed{x = 4}$",
    # GPQA: the right option's letter; a wrong one; a refusal.
    "most of Earth's atmosphere": lambda p: f"Answer: {_letter_of(p, 'Nitrogen')}",
    "charge of an electron": lambda p: f"The answer is ({_letter_of(p, '+1')})",
    "Which organelle": lambda p: "I would rather not answer.",
    # MMLU-Pro: J (right, the tenth option), (B) (right), B (wrong: A is).
    "prime number": lambda p: "17 is prime.\n\nAnswer: J",
    "boiling point": lambda p: "The answer is (B).",
    "Which word is a verb": lambda p: "**B**",
    # LLMEval-Med: the judge scores a reply by the grade it names.
    "What lowers fever": lambda p: "grade-5 Paracetamol.",
    "And for a child": lambda p: "grade-4 A weight-based dose.",
    "neck stiffness": lambda p: "grade-2 Probably nothing.",
}


def reply(prompt: str, _sample: int) -> str:
    return next(make(prompt) for phrase, make in REPLIES.items() if phrase in prompt)


def llmeval_judge(request, attempt):
    grade = re.search(r"Response: grade-(\d)", user_text(request)).group(1)
    return Reply(content=f'{{"判断依据": "scripted", "得分": "[{grade}]"}}')


def test_each_benchmark_is_read_graded_and_tabled(tmp_path, files, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    label = "Qwen2.5-7B-Instruct"  # names a base model of the paper: its rows appear beside ours
    with OpenAIStub(llmeval_judge) as stub:
        paths = evaluate_policies(_config(files, stub.base_url), [(label, "unused", ScriptedPolicy(reply))],
                                  BENCHMARKS, tmp_path)
    results = json.loads(Path(paths["json"]).read_text())[label]["benchmarks"]
    p1 = {name: results[name]["pass@1"] for name in BENCHMARKS}

    # MulDimIF: m3's only constraint (block quotes) is not read, so m3 is left out; m2's identifier is not graded.
    assert p1["muldimif"]["n"] == 2
    assert p1["muldimif"]["prompt_strict"] == pytest.approx(1 / 2)
    assert p1["muldimif"]["instruction_strict"] == pytest.approx(4 / 5)
    assert p1["muldimif"]["unparsed_constraints"] == 1

    assert (p1["math500"]["n"], p1["math500"]["no_answer"]) == (4, 1)
    assert p1["math500"]["accuracy"] == pytest.approx(2 / 4)
    assert (p1["gpqa"]["n"], p1["gpqa"]["no_answer"]) == (3, 1)
    assert p1["gpqa"]["accuracy"] == pytest.approx(1 / 3)
    assert p1["mmlu_pro"]["accuracy"] == pytest.approx(2 / 3)

    # LLMEval-Med: one judge call per response, with the release script's prompt of its category.
    assert len(stub.requests) == 3
    asked = sorted(user_text(r) for r in stub.requests)
    assert asked[0].startswith("KNOWLEDGE. Question: And for a child? Response: grade-4 A weight-based dose. "
                               "Reference: A weight-based paracetamol dose. Checklist: Core: weight-based dosing.")
    assert asked[2] == ("REASONING. Question: Fever and neck stiffness: what to rule out? Response: grade-2 Probably "
                        "nothing. Reference: Meningitis. Reply with [N].")
    assert p1["llmeval_med"]["usable"] == pytest.approx(2 / 3)  # scores 5, 4, 2: usable at >= 4
    assert p1["llmeval_med"]["mean_score"] == pytest.approx(11 / 3)
    assert p1["llmeval_med"]["categories"]["医疗推理"] == {"usable": 0, "n": 1}

    # GPQA's shuffle is recorded with each response: the graded answer letter is where the correct option went.
    records = [json.loads(line) for line in (tmp_path / label / "gpqa" / "pass1.jsonl").read_text().splitlines()]
    for record in records:
        grade = record["grades"][0]
        assert grade["answer"] == "ABCD"[grade["order"].index(0)]
    assert results["gpqa"]["settings"]["gpqa"] == {"file": str(files["gpqa"]), "shuffle_seed": 0}

    table = (tmp_path / "results.md").read_text()
    table1 = table.split("## Table 1 (in-domain)", 1)[1].split("##", 1)[0]
    table2 = table.split("## Table 2 (out-of-domain)", 1)[1].split("##", 1)[0]
    assert "| Checkpoint | MulDimIF | LLMEval-Med |" in table1
    assert f"| {label} | 50.0 | 66.7 |" in table1
    assert "| paper: Qwen2.5-7B-Instruct | 51.4 | 56.0 |" in table1  # Table 1 of the paper, base model
    assert "| paper: Qwen2.5-7B-Instruct + HeRL | 83.4 | 65.0 |" in table1
    assert "| Checkpoint | MATH-500 | GPQA | MMLU-Pro |" in table2
    assert f"| {label} | 50.0 | 33.3 | 66.7 |" in table2
    assert "| paper: Qwen2.5-7B-Instruct | 76.0 | 34.1 | 57.3 |" in table2  # Table 2 of the paper
    assert "| paper: Qwen2.5-7B-Instruct + HeRL | 77.6 | 33.9 | 55.5 |" in table2
    assert KEY not in "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png")


def test_llmeval_med_later_rounds_follow_the_earlier_ones(files):
    c = default_config()
    items = {i.id: i for i in load_release("llmeval_med", None, {**c.llmeval_med.to_dict(), "file": str(files["llmeval_med"])})}
    assert [m["content"] for m in items["医疗知识/1/2"].messages] == [
        "You are a helpful assistant.", "What lowers fever?", "Paracetamol lowers fever.", "And for a child?"]
    assert [m["role"] for m in items["医疗知识/1/2"].messages] == ["system", "user", "assistant", "user"]


def _cli(tmp_path, args, env_extra=None):
    env = {"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "herl_jax.evaluate", "--output", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=600, cwd=REPO, env=env)


def test_cli_runs_every_new_benchmark_with_the_bundled_model(tmp_path, files):
    with OpenAIStub(lambda request, attempt: Reply(content='{"得分": "[4]"}')) as stub:
        result = _cli(tmp_path, [
            "--benchmarks", ",".join(BENCHMARKS), "--limit", "2", "--checkpoint", "base=smollm2-135m-instruct",
            *(f"--config.{name}.file={path}" for name, path in files.items()),
            "--config.greedy.max_new_tokens=8", "--config.greedy.max_prompt_len=512", "--config.checkers.workers=1",
            f"--config.judge.base_url={stub.base_url}", "--config.judge.model=judge-test",
            f"--config.judge.api_key_env={KEY_ENV}"], {KEY_ENV: KEY})
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(stub.requests) == 2  # the first two LLMEval-Med questions, one call each
    summary = json.loads((tmp_path / "out" / "base" / "summary.json").read_text())["benchmarks"]
    assert {name: summary[name]["pass@1"]["n"] for name in BENCHMARKS} == dict.fromkeys(BENCHMARKS, 2)
    assert summary["llmeval_med"]["pass@1"]["usable"] == 1.0  # the judge said [4] to both
    assert "## Table 1 (in-domain)" in result.stdout and "## Table 2 (out-of-domain)" in result.stdout
    assert "| Checkpoint | MATH-500 | GPQA | MMLU-Pro |" in result.stdout


@pytest.mark.parametrize("benchmark, content, message", [
    ("math500", None, "{path}: no such file"),
    ("math500", '{"problem": "1+1?", "unique_id": "a"}\n', "{path}: line 1 has no field 'answer'"),
    ("muldimif", '{"id": "x"}', "{path}: expected a JSON list of samples"),
    ("muldimif", '[{"id": "x", "conversations": []}]', "{path}: sample 0 has no field 'constraints'"),
    ("gpqa", "Question,Correct Answer,Record ID\nQ?,A,rec1\n", "{path}: row 2 has no field 'Incorrect Answer 1'"),
    ("llmeval_med", '{"医疗推理": [{"problem": "Q?", "groupCode": 1, "round": 1}]}',
     "{path}: '医疗推理' question 0 has no field 'sanswer'"),
    ("mmlu_pro", "not parquet", "{path}: not a parquet file"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_field(tmp_path, benchmark, content, message):
    path = tmp_path / "data" / "file"
    if content is not None:
        path.parent.mkdir()
        path.write_text(content)
    # a judge that is never reached: the file is read first
    judge = [f"--config.llmeval_med.judge_prompts={DATA / 'llmeval_med' / 'evaluate' / 'Evaluate.py'}",
             "--config.judge.base_url=http://127.0.0.1:9/v1", "--config.judge.model=m",
             f"--config.judge.api_key_env={KEY_ENV}"]
    result = _cli(tmp_path, ["--benchmarks", benchmark, f"--config.{benchmark}.file={path}", *judge], {KEY_ENV: KEY})
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("error: " + message.format(path=path))
    assert "Traceback" not in result.stderr


def test_a_benchmark_without_its_file_says_which_key_names_it(tmp_path):
    result = _cli(tmp_path, ["--benchmarks", "gpqa"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--config.gpqa.file=PATH" in result.stderr.strip().splitlines()[-1]
