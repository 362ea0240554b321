"""Evaluate checkpoints on the paper's benchmarks: Pass@1, pass@k and test-time guided revision.

  python -m herl_jax.evaluate --config configs/evaluate.py --benchmarks ifeval,ifbench,healthbench,writingbench \
      [--limit N] [--checkpoint [LABEL=]PATH ...] --output DIR [--config.KEY=VALUE ...]

--checkpoint: a HF checkpoint folder, a .gguf file or a built-in model name (repeat it, or separate
with commas, for several rows of the table); default: config.model.source. A rerun into the same
--output resumes: finished examples are skipped. Writes DIR/results.md (a Table 1), DIR/results.json
and DIR/passk.png, DIR/revision.png; per-example records under DIR/LABEL/BENCHMARK/.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from herl_jax.evaluation.data import BENCHMARKS

_DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "evaluate.py"
_CONFIG = config_flags.DEFINE_config_file("config", str(_DEFAULT_CONFIG), "evaluation config file")
_BENCHMARKS = flags.DEFINE_list("benchmarks", list(BENCHMARKS), f"some of {', '.join(BENCHMARKS)}")
_LIMIT = flags.DEFINE_integer("limit", None, "evaluate only the first N examples of each benchmark")
_CHECKPOINTS = flags.DEFINE_multi_string("checkpoint", None, "[LABEL=]PATH of a policy; default config.model.source")
_OUTPUT = flags.DEFINE_string("output", None, "output folder (reruns resume in it)", required=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from herl_jax.evaluation.config import EvalConfigError
    from herl_jax.evaluation.runner import evaluate
    from herl_jax.models import CheckpointError, UnsupportedModelError

    unknown = sorted(set(_BENCHMARKS.value) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"unknown benchmarks {unknown}; expected some of {list(BENCHMARKS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
    config = _CONFIG.value
    checkpoints = [c for spec in (_CHECKPOINTS.value or [config.model.source]) for c in spec.split(",") if c]
    try:
        paths = evaluate(config, checkpoints, _BENCHMARKS.value, _OUTPUT.value, limit=_LIMIT.value)
    except (EvalConfigError, FileNotFoundError, CheckpointError, UnsupportedModelError) as e:
        sys.exit(f"cannot evaluate: {e}")  # finished examples are kept: a rerun resumes
    print(Path(paths["markdown"]).read_text())
    for kind, path in paths.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    from herl_jax.config import parse_flags

    app.run(main, flags_parser=parse_flags)
