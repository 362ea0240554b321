"""Training: the run's lifecycle. The run config (run_config: every section composed, checked once), the checks
before any model loads (preflight), the trainer loop (trainer) with its checkpoints, compilation cache, metrics
writer and its trackers (metrics_writer, wandb_log; samples_view renders the samples log), run record and health
checks. One RL step is herl_jax.step's; the policy update herl_jax.learner's.
Exported here: what starts a run.

Names load with their module when first used (herl_jax.lazy): the config module needs no JAX.
"""

from herl_jax.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "run_config": ("ConfigError", "RunConfig", "base_config", "resolve"),
    "trainer": ("Trainer",),
})
