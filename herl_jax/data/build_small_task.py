"""Build the small learnable instruction-following task of configs/small.py:

  python -m herl_jax.data.build_small_task --out-dir herl_jax/data/bundled
  python -m herl_jax.data.build_small_task --probe /tmp/probe.jsonl   # every family on the same prompts

Short AlpacaEval instructions (one line, at most `MAX_PROMPT_CHARS`, English, no coding, no request of
their own for a length or a format, no overlap with IFEval, IFBench, HealthBench or WritingBench) each get
`CONSTRAINTS_PER_PROMPT` compatible constraints from `FAMILIES`: rules a 48-token reply can meet. The
families were chosen by the probe: each candidate family on the same 40 prompts, answered greedily by the
base SmolLM2-135M-Instruct (python -m herl_jax.reporting.baseline, see configs/small.py for the numbers);
kept are those with a base pass rate between 10% and 50%, so that the task is neither solved nor hopeless.

The prompts are shuffled by `seed` and cut into a validation set (the first `VALIDATION_PROMPTS`) and a
training set (the next `TRAIN_PROMPTS` that do not overlap a validation prompt by overlap.py's rule).
Deterministic: the same package data and seed give the same bytes.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Callable, Sequence

from herl_jax.data.build_if_dataset import select_pool, write_jsonl
from herl_jax.data.constraints import END_PHRASES, blocked_slots, keyword_candidates
from herl_jax.data.eval_data import PoolPrompt, benchmark_prompts, pool_prompts
from herl_jax.data.overlap import OverlapIndex

DEFAULT_SEED = 0
MAX_PROMPT_CHARS = 160
VALIDATION_PROMPTS = 64
TRAIN_PROMPTS = 320
PROBE_PROMPTS = 40
CONSTRAINTS_PER_PROMPT = 2
TRAIN_FILE, VALIDATION_FILE = "small_if_train.jsonl", "small_if_validation.jsonl"

KwargsMaker = Callable[[random.Random, Sequence[str]], dict]  # (rng, keyword candidates) -> kwargs

# Every family the probe measures: name -> (instruction id, kwargs maker). All fit a reply of ~40 words.
CANDIDATES: dict[str, tuple[str, KwargsMaker]] = {
    "lowercase": ("change_case:english_lowercase", lambda rng, kw: {}),
    "uppercase": ("change_case:english_capital", lambda rng, kw: {}),
    "no_comma": ("punctuation:no_comma", lambda rng, kw: {}),
    "end_phrase": ("startend:end_checker", lambda rng, kw: {"end_phrase": rng.choice(END_PHRASES)}),
    "quotation": ("startend:quotation", lambda rng, kw: {}),
    "title": ("detectable_format:title", lambda rng, kw: {}),
    "keyword": ("keywords:existence", lambda rng, kw: {"keywords": [rng.choice(list(kw))]}),
    "highlight": ("detectable_format:number_highlighted_sections", lambda rng, kw: {"num_highlights": 1}),
    "short": ("length_constraints:number_words", lambda rng, kw: {"num_words": 30, "relation": "less than"}),
    "postscript": ("detectable_content:postscript", lambda rng, kw: {"postscript_marker": "P.S."}),
    "placeholder": ("detectable_content:number_placeholders", lambda rng, kw: {"num_placeholders": 1}),
    "exclamation": ("muldimif:ending_punctuation", lambda rng, kw: {"punctuation": "!"}),
}
# Families that fix the same aspect of a reply never go together.
SLOTS = {"lowercase": "case", "uppercase": "case", "quotation": "whole", "end_phrase": "end",
         "postscript": "end", "exclamation": "end"}
# The families of the shipped task (probe results in configs/small.py).
FAMILIES = ("no_comma", "postscript", "placeholder")


def short_prompts(seed: int) -> list[PoolPrompt]:
    """The usable short AlpacaEval instructions, shuffled by `seed`."""
    benchmarks = OverlapIndex(text for texts in benchmark_prompts().values() for text in texts)
    alpaca = [p for p in pool_prompts() if p.source == "alpaca_eval"]
    kept, _ = select_pool(alpaca, benchmarks, MAX_PROMPT_CHARS)
    kept = [p for p in kept if "\n" not in p.text.strip() and not blocked_slots(p.text)]
    random.Random(seed).shuffle(kept)
    return kept


def constraint_row(prompt: PoolPrompt, families: Sequence[str], rng: random.Random) -> dict:
    """The `hir` row of `prompt` with one constraint of each family, in the checkers' own words."""
    from herl_jax.rubrics.instructions import describe  # lazy: loads the checkers
    from herl_jax.rubrics.types import Check

    keywords = keyword_candidates(prompt.text)
    constraints = [(CANDIDATES[f][0], CANDIDATES[f][1](rng, keywords)) for f in families]
    descriptions = [describe(Check(instruction_id, kwargs)) for instruction_id, kwargs in constraints]
    return {
        "id": f"small:{prompt.id}:{'+'.join(families)}",
        "source": prompt.source,
        "prompt": prompt.text.strip() + "\n\n" + "\n".join(descriptions),
        "instruction_id_list": [instruction_id for instruction_id, _ in constraints],
        "kwargs": [kwargs for _, kwargs in constraints],
    }


def draw_families(rng: random.Random, families: Sequence[str], count: int) -> list[str]:
    """`count` families of `families` with distinct slots, in a random order."""
    chosen: list[str] = []
    for family in rng.sample(list(families), len(families)):
        slot = SLOTS.get(family, family)
        if len(chosen) < count and all(SLOTS.get(other, other) != slot for other in chosen):
            chosen.append(family)
    return chosen


def build(seed: int = DEFAULT_SEED) -> tuple[list[dict], list[dict]]:
    """(train rows, validation rows) of the small task."""
    prompts = short_prompts(seed)
    validation = prompts[:VALIDATION_PROMPTS]
    held_out = OverlapIndex(p.text for p in validation)  # AlpacaEval repeats some templates: keep them apart
    train = [p for p in prompts[VALIDATION_PROMPTS:] if not held_out.overlaps(p.text)][:TRAIN_PROMPTS]
    if len(train) < TRAIN_PROMPTS:
        raise ValueError(f"only {len(train)} usable short training prompts, need {TRAIN_PROMPTS}")

    def row(prompt: PoolPrompt) -> dict:
        rng = random.Random(f"{seed}:{prompt.id}")
        return constraint_row(prompt, draw_families(rng, FAMILIES, CONSTRAINTS_PER_PROMPT), rng)

    return [row(p) for p in train], [row(p) for p in validation]


def probe(seed: int = DEFAULT_SEED) -> list[dict]:
    """Every candidate family alone on the same `PROBE_PROMPTS` prompts (taken from the training side)."""
    prompts = short_prompts(seed)[VALIDATION_PROMPTS : VALIDATION_PROMPTS + PROBE_PROMPTS]
    return [constraint_row(prompt, [family], random.Random(f"{seed}:{prompt.id}:{family}"))
            for family in CANDIDATES for prompt in prompts]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out-dir", type=Path, help=f"write {TRAIN_FILE} and {VALIDATION_FILE} here")
    target.add_argument("--probe", type=Path, help="write the family probe (one JSONL file) here")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    if args.probe:
        rows = probe(args.seed)
        write_jsonl(rows, args.probe)
        print(f"wrote {len(rows)} probe rows ({len(CANDIDATES)} families) to {args.probe}")
        return
    train, validation = build(args.seed)
    write_jsonl(train, args.out_dir / TRAIN_FILE)
    write_jsonl(validation, args.out_dir / VALIDATION_FILE)
    print(f"wrote {len(train)} training and {len(validation)} validation examples to {args.out_dir}")


if __name__ == "__main__":
    main()
