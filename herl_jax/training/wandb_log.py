"""Weights & Biases as a tracker of the run (trainer.wandb_project; the optional extra `wandb`, imported only when
it is set): the same finite scalars as TensorBoard at the same steps, each logged step's samples as a Table
(`samples`, one line per rollout and revision: samples_view.TABLE_COLUMNS), and the resolved config with its
secrets redacted (run_record.redacted, as config.json).

One W&B run per workdir, named after trainer.run_name: its id is kept in WORKDIR/wandb_run_id, so a resumed run
continues it. W&B takes only increasing steps, so the steps a resumed run redoes past its checkpoint keep their
first values there (metrics.jsonl and TensorBoard show the redone ones). W&B's files go under WORKDIR/wandb/;
with WANDB_MODE=offline nothing leaves the machine (`wandb sync` uploads the run later). The API key is W&B's
own business (WANDB_API_KEY or `wandb login`); nothing here reads or logs it.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Mapping, Sequence

from herl_jax.errors import UserError
from herl_jax.own_files import refuse_link, write_file
from herl_jax.training.samples_view import TABLE_COLUMNS, to_table

RUN_ID_FILE = "wandb_run_id"


class WandbLog:
    """A W&B run of the workdir `directory` in `project`; see the module docstring."""

    def __init__(self, directory: Path, project: str, run_name: str, config: Mapping[str, Any]):
        import wandb

        self._wandb = wandb
        id_file = directory / RUN_ID_FILE
        refuse_link(id_file)
        run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(6)
        write_file(id_file, run_id + "\n")
        try:
            self._run = wandb.init(project=project, name=run_name, id=run_id, resume="allow", dir=str(directory),
                                   config=dict(config))
        except wandb.Error as e:  # not logged in, a bad project or entity: one line
            raise UserError(f"config.trainer.wandb_project={project!r}: Weights & Biases refused the run: "
                            f"{e}") from None

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        self._run.log(dict(scalars), step=step)

    def write_samples(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        self._run.log({"samples": self._wandb.Table(columns=list(TABLE_COLUMNS), data=to_table(rows))}, step=step)

    def close(self) -> None:
        self._run.finish()
