"""Held-out scoring, the one path of the trainer's ``validation/*`` metrics and of the baseline CLI
(herl_jax.reporting.baseline), so that the two measure a policy the same way: one greedy reply
(temperature 0, the rollout's other sampling settings) to each held-out example whose prompt fits the
rollout's ``max_prompt_len``, scored by the run's rubric scorer. A dropped reply (a rubric item left unscored
under ``unscored="drop"``) is counted, not scored; a reply succeeds when its reward reaches the threshold.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from herl_jax import parallel
from herl_jax.data import Example
from herl_jax.herl import Sample
from herl_jax.rubrics import Scorer
from herl_jax.sampling import Sampler, stop_ids_for
from herl_jax.step.config import SampleSection
from herl_jax.step.phases import encode_prompts
from herl_jax.step.sample_and_score import sample_and_score


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Every process's scored replies with their examples, in process order (example order on one process),
    and the number of examples skipped because their prompt was too long."""

    replies: tuple[tuple[Example, Sample], ...]
    skipped_long: int

    @property
    def rewards(self) -> list[float]:
        """The rewards of the scored replies (dropped ones apart)."""
        return [s.reward for _, s in self.replies if not s.dropped]

    @property
    def dropped(self) -> int:
        return sum(s.dropped for _, s in self.replies)

    def successes(self, success_threshold: float) -> list[float]:
        """1.0 for each scored reply whose reward reaches ``success_threshold``, else 0.0."""
        return [float(r >= success_threshold) for r in self.rewards]


def score_held_out(sampler: Sampler, policy, tokenizer, scorer: Scorer, examples: Sequence[Example],
                   rollout: SampleSection, pad_id: int) -> HeldOut:
    """Greedy replies to ``examples``, scored. Every process passes the same examples; each samples (in one
    batch with the others') and scores its share, and the shares are gathered."""
    prompts = encode_prompts(tokenizer, parallel.my_share(examples), rollout.max_prompt_len)
    greedy = rollout.sampling(0, stop_ids_for(tokenizer, policy), n=1).replace(temperature=0.0)
    batch = sample_and_score(sampler, scorer, policy, tokenizer, prompts.ids, prompts.tasks, greedy, pad_id)
    mine = ([(prompts.examples[s.prompt], s) for s in batch.samples], prompts.skipped_long)
    everyone = parallel.allgather_objects(mine)
    return HeldOut(tuple(r for replies, _ in everyone for r in replies), sum(skipped for _, skipped in everyone))
