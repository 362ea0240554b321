"""Train a policy with HeRL:

  python -m herl_jax.train --config configs/demo.py --workdir runs/demo [--config.herl.alpha=0.1 ...]

List keys take one value or several, comma-separated: --config.data.train_files=a.jsonl,b.jsonl (or a
Python literal, --config.data.train_files="['a.jsonl']"); see herl_jax/cli_flags.py.

The run resumes from WORKDIR/checkpoints when it holds one, with the same config (a change is refused unless
--allow_config_change; trainer.steps and how often it logs, validates and saves may change). SIGTERM or
Ctrl-C saves the current step and exits 0. A run that stops learning (non-finite updates, no trainable group,
steps in a row) exits 1 without FINISHED or export, and stays failed (WORKDIR/FAILED holds the step and
reason): a rerun is refused unless --retry_failed, which resumes it from its newest checkpoint.
Logs: WORKDIR/tensorboard (TensorBoard), WORKDIR/metrics.jsonl, WORKDIR/samples.jsonl (a few groups as text:
python -m herl_jax.samples WORKDIR), WORKDIR/train.log; the final policy is exported to WORKDIR/export (HF
format).
"""

from __future__ import annotations

import signal

# SIGTERM or Ctrl-C before the trainer has a handler of its own (the imports take seconds: absl, and JAX and Flax
# through herl_jax.config's run config, here; orbax and the trainer in `main`) is remembered, and `main` exits 0
# before loading anything, as a stop during training does. Installed first thing when run as a command, so the gap
# is interpreter start-up.
_STOPS_DURING_STARTUP: list[int] = []
if __name__ == "__main__":
    for _signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(_signum, lambda signum, frame: _STOPS_DURING_STARTUP.append(signum))

import logging  # noqa: E402 (after the handlers, on purpose)
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from absl import app, flags  # noqa: E402

from herl_jax.cli_errors import UsageError, run_cli  # noqa: E402
from herl_jax.cli_flags import define_config_file  # noqa: E402
from herl_jax.config import parse_flags  # noqa: E402

_CONFIG = define_config_file("config", None, "training config file (see configs/)")
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, logs and the export go")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "resume a checkpointed run although its config differs from WORKDIR/config.json "
    "(kept as config.previous-N.json); see herl_jax/training/run_record.py")
_RETRY_FAILED = flags.DEFINE_bool(
    "retry_failed", False, "resume a run that stopped as failed (WORKDIR/FAILED) from its newest checkpoint instead "
    "of refusing it; see herl_jax/training/run_outcome.py")
flags.mark_flags_as_required(["config", "workdir"])


class _LogFile(logging.FileHandler):
    """WORKDIR/train.log. When it cannot be written (a full disk), it says so once, through the other
    handlers, and drops out, instead of printing logging's traceback for every record."""

    def handleError(self, record: logging.LogRecord) -> None:
        logging.getLogger().removeHandler(self)
        logging.getLogger(__name__).warning("stopped writing %s: %s", self.baseFilename, sys.exc_info()[1])


def main(argv) -> None:
    """Trains; a user error (config, data, model, checkpoint, path) propagates to `cli`'s one line."""
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {argv[1:]}")
    workdir = Path(_WORKDIR.value)
    workdir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=[logging.StreamHandler(sys.stderr), _LogFile(workdir / "train.log")],
                        force=True)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax narrates every save at INFO through absl
    # JAX logs each accelerator backend it looks for and does not find ("Unable to initialize backend 'tpu'").
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    from herl_jax.training.trainer import Trainer  # orbax and the trainer's modules (JAX came with herl_jax.config)

    if _STOPS_DURING_STARTUP:  # nothing loaded yet, so nothing to save: a rerun starts (or resumes) as this would
        logging.warning("received signal %d during start-up: exiting before loading anything",
                        _STOPS_DURING_STARTUP[0])
        return
    trainer = Trainer(_CONFIG.value, workdir, allow_config_change=_ALLOW_CONFIG_CHANGE.value,
                      retry_failed=_RETRY_FAILED.value)
    steps, target = trainer.run(), trainer.run_config.trainer.steps
    if steps < target:
        logging.warning("stopped at step %d of %d in %s: rerun the same command to continue", steps, target, workdir)
    else:
        logging.info("done: %d steps in %s", steps, workdir)


def cli() -> None:
    """The command line: flags, then `main`; a user error ends in one `error: ...` line (herl_jax.cli_errors)."""
    run_cli(lambda: app.run(main, flags_parser=parse_flags))


if __name__ == "__main__":
    cli()
