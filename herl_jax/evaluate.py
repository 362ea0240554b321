"""Evaluate checkpoints on the paper's benchmarks: Pass@1, pass@k and test-time guided revision.

  python -m herl_jax.evaluate --config configs/evaluate.py --benchmarks ifeval,ifbench,healthbench,writingbench \
      [--limit N] [--checkpoint [LABEL=]PATH ...] --output DIR [--config.KEY=VALUE ...]

--benchmarks also takes `heldout`: your own held-out prompts in a training data format with programmatic
rubrics, named by --config.heldout.file (e.g. bundled:small_if_validation.jsonl) and --config.heldout.format.

--checkpoint: a HF checkpoint folder, a .gguf file, a built-in model name, or a training run's checkpoint
WORKDIR@STEP (STEP: a number, latest or best, the checkpointed step of the highest validation reward; read
as `python -m herl_jax.export` reads it) (repeat it, or separate with commas, for several rows of the table);
default: config.model.source. A rerun into the same
--output resumes: finished examples are skipped. Writes DIR/results.md (a Table 1), DIR/results.json
and DIR/passk.png, DIR/revision.png; per-example records under DIR/LABEL/BENCHMARK/.
"""

from __future__ import annotations

import logging
from pathlib import Path

from absl import app, flags

from herl_jax.cli_flags import define_config_file
from herl_jax.evaluation.data import BENCHMARKS, PAPER_BENCHMARKS

_DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "evaluate.py"
_CONFIG = define_config_file("config", str(_DEFAULT_CONFIG), "evaluation config file")
_BENCHMARKS = flags.DEFINE_list("benchmarks", list(PAPER_BENCHMARKS),
                                f"some of {', '.join(BENCHMARKS)} (heldout: the file of --config.heldout.file)")
_LIMIT = flags.DEFINE_integer("limit", None, "evaluate only the first N examples of each benchmark")
_CHECKPOINTS = flags.DEFINE_multi_string("checkpoint", None, "[LABEL=]PATH of a policy; default config.model.source")
_OUTPUT = flags.DEFINE_string("output", None, "output folder (reruns resume in it)", required=True)


def main(argv: list[str]) -> None:
    """Evaluates; a bad flag raises UsageError, a bad input propagates: both end in one line (cli_errors)."""
    from herl_jax.cli_errors import UsageError

    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {argv[1:]}")
    from herl_jax.evaluation.config import BenchmarkError
    from herl_jax.evaluation.pipeline import evaluate

    if _LIMIT.value is not None and _LIMIT.value < 1:
        raise UsageError(f"--limit={_LIMIT.value}: must be >= 1 (omit it to evaluate every example)")
    checkpoints = [c for spec in _CHECKPOINTS.value or () for c in spec.split(",") if c]
    if _CHECKPOINTS.value and not checkpoints:
        raise UsageError("--checkpoint: no policy named")
    checkpoints = [_pinned(spec) for spec in checkpoints]  # a missing run or step: one line, before any load
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
    # JAX logs each accelerator backend it looks for and does not find ("Unable to initialize backend 'tpu'").
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    try:  # a rerun resumes
        paths = evaluate(_CONFIG.value, checkpoints, _BENCHMARKS.value, _OUTPUT.value, limit=_LIMIT.value,
                         load=_load, fingerprint=_fingerprint)
    except BenchmarkError as e:  # raised before anything is evaluated
        raise UsageError(str(e)) from None
    print(Path(paths["markdown"]).read_text())
    for kind, path in paths.items():
        print(f"{kind}: {path}")


def _pinned(spec: str) -> str:
    """`[LABEL=]WORKDIR@STEP` as LABEL=/abs/WORKDIR@N (latest and best resolved now, so that the results name
    the step they are of); any other spec as it is."""
    from herl_jax.evaluation.pipeline import parse_checkpoint
    from herl_jax.training.run_policy import find_checkpoint, parse_run_spec

    label, source = parse_checkpoint(spec)
    run_spec = parse_run_spec(source)
    return spec if run_spec is None else f"{label}={find_checkpoint(*run_spec)}"


def _load(source: str, model):
    """A run's checkpoint WORKDIR@STEP (its parameters in the evaluation's dtype), or any other source."""
    from herl_jax.evaluation.pipeline import load_source
    from herl_jax.training.run_policy import find_checkpoint, load_checkpoint_policy, parse_run_spec

    run_spec = parse_run_spec(source)
    if run_spec is None:
        return load_source(source, model)
    return load_checkpoint_policy(find_checkpoint(*run_spec), dtype=model.dtype, attention_impl=model.attention_impl)


def _fingerprint(source: str) -> str:
    """The weights' fingerprint of a run's checkpoint WORKDIR@STEP (its files), or of any other source."""
    from herl_jax.evaluation.fingerprint import files_fingerprint, source_fingerprint
    from herl_jax.training.run_policy import find_checkpoint, parse_run_spec

    run_spec = parse_run_spec(source)
    return source_fingerprint(source) if run_spec is None else files_fingerprint(find_checkpoint(*run_spec).directory)


if __name__ == "__main__":
    from herl_jax.cli_errors import run_cli
    from herl_jax.config import parse_flags

    run_cli(lambda: app.run(main, flags_parser=parse_flags))
