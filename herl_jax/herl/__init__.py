"""HeRL's host-side algorithm (numpy, no jax): which rollouts to revise, the revise prompts, the
bonus, group assembly, advantages and the training records handed to the train step."""

from herl_jax.herl.config import VARIANTS, HerlConfig, default_config
from herl_jax.herl.group import Group, assemble_group, best_revision, group_advantages, signed_bonus
from herl_jax.herl.prompts import RubricFeedback, render_revise_prompt, revise_prompt_ids
from herl_jax.herl.records import Sample, TrainingRecord, collate
from herl_jax.herl.selection import select_candidates

__all__ = [
    "VARIANTS",
    "Group",
    "HerlConfig",
    "RubricFeedback",
    "Sample",
    "TrainingRecord",
    "assemble_group",
    "best_revision",
    "collate",
    "default_config",
    "group_advantages",
    "render_revise_prompt",
    "revise_prompt_ids",
    "select_candidates",
    "signed_bonus",
]
