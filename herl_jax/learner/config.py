"""The ``train`` section, one frozen dataclass per sub-section (``objective``, ``loss``, ``optim``, ``ppo``), and the
learner's settings derived from them. No JAX: config files load it through herl_jax.config."""

from __future__ import annotations

import dataclasses
import math

from herl_jax.sections import check, section_config

AGG_MODES = ("seq_mean_token_mean", "token_mean", "micro_token_mean")
OBJECTIVES = ("rl", "sft", "dpo")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The ``train.loss`` section (learner/loss.py); hashable so it can be a static argument of jit.
    Defaults follow the paper."""

    clip_eps_low: float = 0.2
    clip_eps_high: float = 0.2
    dual_clip_c: float | None = None  # public code: 3.0
    shaping_gamma: float = 1.0  # γ of f(x) = x / (x + γ); 0.1 for medical data
    shaping_x: str = "ratio"  # ratio: x = π_θ/π_old (paper) | prob: x = π_θ (LUFFY)
    kl_type: str = "low_var_kl"  # low_var_kl (k3, clamped to [-10, 10]) | k1 | k2
    kl_coef: float = 1e-4  # public code: 0 (IF) / 1e-3 (medical)
    entropy_coef: float = 0.0  # entropy bonus; the entropy is always reported when given
    agg_mode: str = "seq_mean_token_mean"  # Eq. 9 | token_mean | micro_token_mean (public code)

    def __post_init__(self):
        check(self, [
            (0 < self.clip_eps_low < 1, "clip_eps_low", "must be in (0, 1)"),
            (0 < self.clip_eps_high < math.inf, "clip_eps_high", "must be > 0 and finite"),
            (self.dual_clip_c is None or 1 < self.dual_clip_c < math.inf, "dual_clip_c",
             "must be None or > 1 and finite"),
            (0 < self.shaping_gamma < math.inf, "shaping_gamma", "must be > 0 and finite"),
            (self.shaping_x in ("ratio", "prob"), "shaping_x", "expected ratio or prob"),
            (self.kl_type in ("low_var_kl", "k1", "k2"), "kl_type", "expected low_var_kl, k1 or k2"),
            (0 <= self.kl_coef < math.inf, "kl_coef", "must be >= 0 and finite"),
            (math.isfinite(self.entropy_coef), "entropy_coef", "must be finite"),
            (self.agg_mode in AGG_MODES, "agg_mode", f"expected one of {', '.join(AGG_MODES)}"),
        ])


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """The ``train.optim`` section: AdamW after global-norm clipping (learner/optim.py); lr as in the paper
    (Table 4b)."""

    lr: float = 1e-6
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # global norm of the mini-batch gradient, before AdamW
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many optimizer steps

    def __post_init__(self):
        def positive(x):
            return math.isfinite(x) and x > 0

        check(self, [
            (positive(self.lr), "lr", "must be finite and > 0"),
            (0 <= self.b1 < 1, "b1", "must be in [0, 1)"),
            (0 <= self.b2 < 1, "b2", "must be in [0, 1)"),
            (positive(self.eps), "eps", "must be finite and > 0"),
            (math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay", "must be finite and >= 0"),
            (positive(self.max_grad_norm), "max_grad_norm", "must be finite and > 0"),
            (self.warmup_steps >= 0, "warmup_steps", "must be >= 0 (0 = no warm-up)"),
        ])


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """The ``train.ppo`` section: how the update walks one RL step's rows (sizes count rows)."""

    mini_batch_size: int = 512  # rows per optimizer step: the paper's 64 prompts x (7 + 1) members
    micro_batch_size: int = 8  # rows per forward/backward; each micro-batch is trimmed to its own length
    epochs: int = 1  # passes over the batch per RL step (PPO epochs; verl's default 1)
    logprob_chunk_size: int = 128  # positions per LM-head chunk
    # Derived, not a key: the run's seed (trainer.seed); each update seeds its shuffling with (seed, step).
    seed: int = 0

    def __post_init__(self):
        check(self, [(getattr(self, k) >= 1, k, "must be >= 1")
                     for k in ("mini_batch_size", "micro_batch_size", "epochs", "logprob_chunk_size")])


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """The ``train.objective`` section: what the learner minimizes. ``rl``: the HeRL / GRPO policy loss on the
    step's sampled groups (loss.py; every ``loss`` and ``ppo`` key applies). ``sft`` / ``dpo``: the paper's
    offline baselines on rows of (prompt, response) / (prompt, chosen, rejected) (offline_loss.py; data.format
    sft / dpo), one optimizer step per batch of ``trainer.prompts_per_step`` rows."""

    kind: str = "rl"  # rl | sft | dpo
    dpo_beta: float = 0.1  # DPO's beta; the paper does not state it: LLaMA-Factory's default (pref_beta)
    # sft / dpo: the most tokens of prompt + response in a row (the paper's cutoff, Table 4a); a longer row is
    # skipped and counted (LLaMA-Factory truncates it instead)
    max_length: int = 4096

    def __post_init__(self):
        check(self, [
            (self.kind in OBJECTIVES, "kind", f"expected one of {', '.join(OBJECTIVES)}"),
            (0 < self.dpo_beta < math.inf, "dpo_beta", "must be > 0 and finite"),
            (self.max_length >= 2, "max_length", "must be >= 2 (a prompt token and a response token)"),
        ])

    @property
    def offline(self) -> bool:
        """Whether the learner trains on given responses (sft, dpo) rather than on sampled groups."""
        return self.kind != "rl"

    @property
    def rows_per_example(self) -> int:
        """Training rows per data row: a DPO pair is two rows (chosen, rejected), kept together."""
        return 2 if self.kind == "dpo" else 1


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """The learner's static settings (learner/learner.py; hashable: its jitted functions' static argument),
    derived from the ``train`` section and the rollouts' temperature by `of`."""

    loss: LossConfig
    micro_batch_size: int  # rows per forward/backward
    temperature: float  # divides the logits: the rollouts' sampling temperature
    logprob_chunk_size: int  # positions per LM-head chunk (token_logprobs)
    objective: ObjectiveConfig = ObjectiveConfig()

    @classmethod
    def of(cls, loss: LossConfig, ppo: PPOConfig, temperature: float,
           objective: ObjectiveConfig = ObjectiveConfig()) -> LearnerConfig:
        """The offline objectives score the model's own distribution (temperature 1), not the rollouts'."""
        return cls(loss, ppo.micro_batch_size, temperature if not objective.offline else 1.0,
                   ppo.logprob_chunk_size, objective)


def default_config():
    """The ``train`` section's ConfigDict: each sub-section's defaults."""
    from ml_collections import ConfigDict

    return ConfigDict(dict(objective=section_config(ObjectiveConfig()), loss=section_config(LossConfig()),
                           optim=section_config(OptimConfig()), ppo=section_config(PPOConfig(), exclude=("seed",))))
