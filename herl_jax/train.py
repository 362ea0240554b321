"""Train a policy with HeRL:

  python -m herl_jax.train --config configs/demo.py --workdir runs/demo [--config.herl.alpha=0.1 ...]

The run resumes from WORKDIR/checkpoints when it holds one. Logs: WORKDIR/tensorboard (TensorBoard),
WORKDIR/metrics.jsonl, WORKDIR/train.log; the final policy is exported to WORKDIR/export (HF format).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "training config file (see configs/)")
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, logs and the export go")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
    del argv
    from herl_jax.config import ConfigError
    from herl_jax.data import DataError
    from herl_jax.models import CheckpointError as ModelFileError
    from herl_jax.models import UnsupportedModelError
    from herl_jax.training.checkpoints import CheckpointError
    from herl_jax.training.trainer import Trainer

    workdir = Path(_WORKDIR.value)
    workdir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=[logging.StreamHandler(sys.stderr), logging.FileHandler(workdir / "train.log")],
                        force=True)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax narrates every save at INFO through absl
    try:
        trainer = Trainer(_CONFIG.value, workdir)
    except ConfigError as e:
        sys.exit(f"config error: {e}")
    except CheckpointError as e:
        sys.exit(f"checkpoint error: {e}")
    except (FileNotFoundError, ModelFileError, UnsupportedModelError) as e:  # the model or a data file
        sys.exit(f"cannot start: {e}")
    except DataError as e:
        sys.exit(f"data error: {e}")
    steps = trainer.run()
    logging.info("done: %d steps in %s", steps, workdir)


if __name__ == "__main__":
    from herl_jax.config import parse_flags

    app.run(main, flags_parser=parse_flags)
