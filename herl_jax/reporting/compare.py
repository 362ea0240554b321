"""Each configuration against a reference configuration, paired by seed.

The ordering of two variants is a statement about their difference, so the report can give it directly:
for every finished configuration and each seed it shares with the reference, the difference of a per-run
number (this run's minus the reference run's of the same `trainer.seed`), then the mean of those
differences and its 95% t interval over the shared seeds (stats.py). Runs of one seed draw their rollouts
from the same sampler seeds and, with one `data.seed`, see the prompts in the same order, so pairing takes
out what the two runs of a seed have in common; an interval that excludes 0 orders the two configurations.

`--reference` names the reference row by config values, `KEY=VALUE[,KEY=VALUE...]`, with the full key
(`herl.variant`) or the table's short label (`variant`); it must match exactly one finished configuration.
"""

from __future__ import annotations

from herl_jax.cli_errors import UsageError
from herl_jax.reporting.stats import Estimate, estimate
from herl_jax.reporting.table import SHORT_LABELS, Row, run_numbers

COMPARED = ("final_reward", "reward_area", "final_success")  # plus every eval:B number both runs have


def parse_reference(text: str) -> dict[str, str]:
    """`variant=rlvr,rollout.n=8` -> {"herl.variant": "rlvr", "rollout.n": "8"} (short labels expanded)."""
    full = {short: key for key, short in SHORT_LABELS.items()}
    pairs = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--reference {text!r}: expected KEY=VALUE[,KEY=VALUE...], e.g. variant=rlvr")
        pairs[full.get(key.strip(), key.strip())] = value.strip()
    if not pairs:
        raise UsageError(f"--reference {text!r}: expected KEY=VALUE[,KEY=VALUE...], e.g. variant=rlvr")
    return pairs


def find_reference(rows: list[Row], text: str) -> Row:
    """The one finished row whose config holds every KEY=VALUE of `text`."""
    wanted = parse_reference(text)
    finished = [row for row in rows if row.status.startswith("finished")]
    matches = [row for row in finished if _matches(row.runs[0].config or row.params, wanted)]
    if len(matches) != 1:
        found = "no finished configuration" if not matches else f"{len(matches)} configurations"
        labels = "; ".join(row.label for row in finished) or "none"
        raise UsageError(f"--reference {text!r} matches {found} (finished configurations: {labels})")
    return matches[0]


def _matches(config: dict, wanted: dict[str, str]) -> bool:
    return all(key in config and _same(config[key], value) for key, value in wanted.items())


def _same(value, text: str) -> bool:
    """A config value equals its command-line spelling: as text, or as numbers (`0` matches 0.0)."""
    if str(value) == text:
        return True
    try:
        return not isinstance(value, bool) and float(value) == float(text)
    except (TypeError, ValueError):
        return False


def paired_differences(row: Row, reference: Row) -> dict:
    """{"seeds": shared seeds, number: Estimate of (row's - reference's) over them, or None}."""
    mine = {run.seed: run_numbers(run) for run in row.runs}
    theirs = {run.seed: run_numbers(run) for run in reference.runs}
    seeds = sorted(s for s in mine.keys() & theirs.keys() if s is not None)
    names = list(COMPARED) + sorted({k for s in seeds for k in mine[s] if k.startswith("eval:")})
    differences: dict[str, Estimate | None] = {}
    for name in names:
        pairs = [(mine[s][name], theirs[s][name]) for s in seeds if name in mine[s] and name in theirs[s]]
        differences[name] = estimate([a - b for a, b in pairs])
    return {"seeds": seeds, **differences}
