"""The built-in demo: HeRL on SmolLM2-135M-Instruct with the bundled instruction-following data and
programmatic rewards, sized for a 2-core CPU (the README's main command; a few minutes of training)."""

from herl_jax.config import base_config


def get_config():
    c = base_config()
    c.model.dtype = "float32"  # CPUs have no fast bf16 matmul
    c.model.remat = False
    # Short prompts and replies: on a CPU the update's cost is rows x padded length (longer prompts are
    # skipped and counted in samples/long_prompts_skipped).
    # Decode slots per call: at most 8 rows here (2 prompts x 4). On a CPU a decode step is compute-bound, so
    # an idle slot costs what a busy one does; the default 64 would decode a revision's 2 rows in 16 slots.
    # Prompt counts in powers of two: with replies this short prefill is much of a call, and the default's
    # powers of four would prefill a call's 2 prompts as 4.
    c.rollout.update(n=4, max_new_tokens=32, max_prompt_len=192, prompt_bucket=64, decode_slots=8,
                     prompt_count_base=2)
    c.revision.update(max_new_tokens=32, max_prompt_len=512, prompt_bucket=128, decode_slots=8,
                      prompt_count_base=2)
    c.herl.max_candidates = 1
    c.train.optim.lr = 1e-5  # a few steps must move a 135M model visibly
    c.train.ppo.mini_batch_size = 10  # one optimizer step per RL step: 2 prompts x (4 + 1) members
    c.train.ppo.micro_batch_size = 2  # short micro-batches: the 8 rollouts are not padded to a revision's length
    c.train.loss.kl_coef = 0.0
    c.rubrics.workers = 1
    # score_overlap_chunks=1: programmatic checks take milliseconds, and on a CPU one batch of 8 rows
    # samples faster than two of 4, so overlapping scoring with sampling would only cost here.
    c.trainer.update(steps=4, prompts_per_step=2, sequence_bucket=128, validate_every=4, validation_prompts=4,
                     checkpoint_every=2, score_overlap_chunks=1)
    return c
