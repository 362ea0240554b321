"""One RL step: sample, score, revise, assemble, update. The step's sample sections (config), its host phases
(phases: encode the prompts, choose and revise, assemble the groups), sampling and scoring in overlapping pieces
(sample_and_score), the held-out validation (held_out), the step as one object (rl_step: the Collector of
its experience, the RLStep that collates it and updates the policy through herl_jax.learner), a few of its groups
as text for the samples log (group_samples), and in the RL step's place for the SFT and DPO baselines,
offline_step (given responses, one optimizer step a batch), and the names its validation metrics are logged
under (validation_keys). Exported here: what runs a step.

Names load with their module when first used (herl_jax.lazy): the config module needs no JAX.
"""

from herl_jax.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "config": ("SampleSection",),
    "held_out": ("HeldOut", "score_held_out"),
    "rl_step": ("Collector", "RLStep", "StepSettings"),
    "offline_step": ("OfflineStep",),
})
