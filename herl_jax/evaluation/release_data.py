"""Benchmarks read from the user's local copy of their public release (the data cannot be shipped here):

| name        | release and file                                   | format  | fields read                                  |
|-------------|----------------------------------------------------|---------|----------------------------------------------|
| muldimif    | Junjie-Ye/MulDimIF `Data/test.json` (1,200)        | JSON list | id, conversations [{role, content}], constraints [[category, subcategory, text]], difficulty, constraint_pattern |
| llmeval_med | llmeval/LLMEval-Med `dataset/dataset.json` (667), and its `evaluate/Evaluate.py` (the judge prompts) | JSON object: category -> list | problem, sanswer, checklist (may be absent), groupCode, round, category2 |
| math500     | HuggingFaceH4/MATH-500 `test.jsonl` (500)          | JSONL   | unique_id, problem, answer, subject, level    |
| gpqa        | Idavidrein/gpqa `gpqa_diamond.csv` (198)           | CSV     | Record ID, Question, Correct Answer, Incorrect Answer 1-3 |
| mmlu_pro    | TIGER-Lab/MMLU-Pro `data/test-00000-of-00001.parquet` (12,032) | parquet | question_id, question, options, answer, category |

MulDimIF's samples none of whose constraints our parser reads (muldimif_text.py) are left out and counted in the
log. A file that is missing, not in its format, or a row without a field read above raises `ReleaseDataError`, one
line naming the file and the field (and the row). LLMEval-Med's later rounds of a conversation (round > 1)
are asked after the earlier rounds' questions with the release's reference answers as the assistant's turns
(the release asks them after the model's own answers, which would make each round wait for the previous one).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

from herl_jax.errors import UserError
from herl_jax.evaluation.choice import choice_prompt, shuffled_options
from herl_jax.evaluation.data import BenchmarkItem
from herl_jax.evaluation.llmeval_med import JudgePromptsError, judge_templates
from herl_jax.evaluation.muldimif_text import parse_constraint
from herl_jax.rubrics import Rubric, RubricItem

log = logging.getLogger(__name__)
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}  # LLMEval-Med's Answer.py asks with it
MATH_PROMPT = "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."


class ReleaseDataError(UserError, ValueError):
    """A benchmark file that is missing, not in its release format, or lacks a field; the message names them."""


def _field(row: Any, name: str, path: Path, where: str) -> Any:
    if not isinstance(row, Mapping) or name not in row or row[name] is None:
        raise ReleaseDataError(f"{path}: {where} has no field {name!r}")
    return row[name]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseDataError(f"{path}: no such file") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ReleaseDataError(f"{path}: not a JSON file ({e})") from None


def _jsonl(path: Path) -> list:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise ReleaseDataError(f"{path}: no such file") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise ReleaseDataError(f"{path}: line {number} is not JSON (expected JSONL)") from None
    return rows


def _list(value: Any, path: Path, what: str) -> list:
    if not isinstance(value, list):
        raise ReleaseDataError(f"{path}: expected {what}, found {type(value).__name__}")
    return value


def muldimif(path: Path, options: Mapping) -> list:
    items, unreadable = [], []
    for i, row in enumerate(_list(_json(path), path, "a JSON list of samples (MulDimIF's Data/test.json)")):
        where = f"sample {i}"
        conversation = _list(_field(row, "conversations", path, where), path, f"{where}: a list of turns")
        constraints = _list(_field(row, "constraints", path, where), path, f"{where}: a list of constraints")
        messages = tuple({"role": _field(m, "role", path, f"{where} conversations"),
                          "content": _field(m, "content", path, f"{where} conversations")} for m in conversation)
        checks = [parse_constraint(*c) if isinstance(c, list) and len(c) == 3 else None for c in constraints]
        read = [(c, check) for c, check in zip(constraints, checks) if check is not None]
        if not read:  # nothing our checkers can grade: left out, and counted
            unreadable.append(str(row.get("id")))
            continue
        items.append(BenchmarkItem(
            id=str(_field(row, "id", path, where)), messages=messages, prompt=messages[-1]["content"],
            rubric=Rubric(tuple(RubricItem(text=c[2], check=check) for c, check in read)),
            meta={"unparsed": [c for c, check in zip(constraints, checks) if check is None],
                  "difficulty": row.get("difficulty"), "pattern": row.get("constraint_pattern")}))
    if unreadable:
        log.warning("muldimif: %d samples left out: none of their constraints is a form we read (first: %s)",
                    len(unreadable), unreadable[0])
    return items


def llmeval_med(path: Path, options: Mapping) -> list:
    data = _json(path)
    if not isinstance(data, Mapping):
        raise ReleaseDataError(f"{path}: expected a JSON object of category -> questions (LLMEval-Med's "
                               f"dataset/dataset.json), found {type(data).__name__}")
    prompts = Path(options["judge_prompts"]) if options.get("judge_prompts") else \
        path.parent.parent / "evaluate" / "Evaluate.py"
    templates = judge_templates(prompts)
    missing = sorted(set(data) - set(templates))
    if missing:
        raise JudgePromptsError(f"{prompts}: no grading prompt for the categories {missing} of {path} "
                                f"(expected variables prompt_<category>)")
    items = []
    for category, rows in data.items():
        earlier: dict[Any, list] = {}  # groupCode -> the conversation so far
        for i, row in enumerate(_list(rows, path, f"a list of questions under {category!r}")):
            where = f"{category!r} question {i}"
            problem, answer = _field(row, "problem", path, where), _field(row, "sanswer", path, where)
            group, turn = _field(row, "groupCode", path, where), _field(row, "round", path, where)
            history = earlier.get(group, []) if turn > 1 else []
            messages = (SYSTEM, *history, {"role": "user", "content": problem})
            earlier[group] = [*history, {"role": "user", "content": problem}, {"role": "assistant", "content": answer}]
            items.append(BenchmarkItem(
                id=f"{category}/{group}/{turn}", messages=messages, prompt=problem, rubric=None,
                meta={"category": category, "category2": row.get("category2"), "reference": answer,
                      "checklist": row.get("checklist"), "judge_template": templates[category]}))
    return items


def math500(path: Path, options: Mapping) -> list:
    items = []
    for i, row in enumerate(_jsonl(path)):
        where = f"line {i + 1}"
        problem = _field(row, "problem", path, where)
        prompt = MATH_PROMPT.format(problem=problem)
        items.append(BenchmarkItem(
            id=str(_field(row, "unique_id", path, where)), messages=({"role": "user", "content": prompt},),
            prompt=prompt, rubric=None,
            meta={"reference": str(_field(row, "answer", path, where)), "subject": row.get("subject"),
                  "level": row.get("level")}))
    return items


def _choice_item(item_id: str, question: str, options: list[str], answer: str, meta: dict):
    prompt = choice_prompt(question, options)
    return BenchmarkItem(id=item_id, messages=({"role": "user", "content": prompt},), prompt=prompt, rubric=None,
                         meta={"answer": answer, "options": len(options), **meta})


GPQA_INCORRECT = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def gpqa(path: Path, options: Mapping) -> list:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise ReleaseDataError(f"{path}: no such file") from None
    items = []
    for i, row in enumerate(rows):
        where = f"row {i + 2}"  # the header is row 1
        key = _field(row, "Record ID", path, where)
        correct = _field(row, "Correct Answer", path, where).strip()
        incorrect = [_field(row, name, path, where).strip() for name in GPQA_INCORRECT]
        shuffled, order = shuffled_options(correct, incorrect, options["shuffle_seed"], key)
        items.append(_choice_item(key, _field(row, "Question", path, where).strip(), shuffled,
                                  "ABCD"[order.index(0)], {"order": order, "domain": row.get("High-level domain")}))
    return items


def mmlu_pro(path: Path, options: Mapping) -> list:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except FileNotFoundError:
        raise ReleaseDataError(f"{path}: no such file") from None
    except Exception as e:  # pyarrow's ArrowInvalid and OSError on a file that is not parquet
        raise ReleaseDataError(f"{path}: not a parquet file ({e})") from None
    items = []
    for i, row in enumerate(rows):
        where = f"row {i}"
        choices = [str(o) for o in _list(_field(row, "options", path, where), path, f"{where}: a list of options")]
        answer = _field(row, "answer", path, where)
        if not 2 <= len(choices) <= 10 or answer not in "ABCDEFGHIJ"[:len(choices)]:
            raise ReleaseDataError(f"{path}: {where}: field 'answer' {answer!r} is not one of its {len(choices)} "
                                   "options' letters")
        items.append(_choice_item(str(_field(row, "question_id", path, where)), _field(row, "question", path, where),
                                  choices, answer, {"category": row.get("category")}))
    return items


READERS: dict[str, Callable[[Path, Mapping], list[BenchmarkItem]]] = {
    "muldimif": muldimif, "llmeval_med": llmeval_med, "math500": math500, "gpqa": gpqa, "mmlu_pro": mmlu_pro}


def load_release(name: str, limit: int | None, options: Mapping[str, Any]) -> list[BenchmarkItem]:
    """The first `limit` items (all when None or 0) of benchmark `name`, read from `options["file"]` (its
    config section: {"file", ...})."""
    items = READERS[name](Path(options["file"]).expanduser(), options)
    return items[:limit] if limit else items
