"""The small learnable setting (docs/results.md): SmolLM2-135M-Instruct on a generated short-reply
instruction-following task, sized for a 2-core CPU.

  python -m herl_jax.train --config configs/small.py:VARIANT --workdir runs/small/VARIANT/seed=0
  VARIANT: rlvr | naive_he | he | herl (default herl) | sft | dpo

The task (herl_jax/data/build_small_task.py, shipped as bundled:small_if_{train,validation}.jsonl): 320
training and 64 held-out validation prompts, short AlpacaEval instructions with two constraints each from
the families whose base greedy pass rate (48 new tokens) is between 10% and 50%. Measured with
`python -m herl_jax.reporting.baseline` on the family probe (40 prompts per family, one constraint each):
no commas 22.5%, a P.S. 27.5%, a [placeholder] 45% -- kept; highlighted section 55%, keyword 60%,
under 30 words 75%, <<title>> 90% -- too easy; lowercase, all capitals, end phrase, quotation 0%,
ending with "!" 2.5% -- out of reach.

The base model on the 64 validation prompts (measured, greedy): reward 0.289, standard error 0.044
(sd of the per-prompt rewards / sqrt(64)); success rate 0.125 ± 0.042. A HeRL run must end above
0.289 + 3 x 0.044 = 0.42 to clear the bar of issue 14.

Why each setting:
- groups of 8 for every variant (RLVR: 8 rollouts; the others 7 + 1 revision), as the paper, so the
  variant is the config's argument: one sweep per variant (launch/sweep.py cannot tie rollout.n to a
  swept herl.variant, and ppo.mini_batch_size must divide prompts x group size);
- 48 new tokens: the base model's replies average 30 words, and the kept constraints fit a short reply
  (the P.S. rewards a reply that ends before the cap);
- sequence_bucket 64: rollout rows are ~150 tokens, revision rows ~350 (128 would pad rollouts to 256);
- time (measured on a 2-core CPU shared with other jobs, this process getting ~68% of one core): steps of
  4 prompts took 399 s and 326 s (compiling), then 267 s and 352 s, about 210 s of CPU each: sampling
  ~35 s, the update (old, reference and policy passes over ~8,700 padded tokens) ~270 s. Extrapolated to
  an unloaded 2-core CPU (~1.6x one core's throughput) with the shorter padding (-20% of update tokens):
  ~90-95 s a step, so 12 steps, 4 validations of 64 greedy replies (~30 s each) and the start-up
  (~3-4 min with compilation) make about 25 minutes. Peak memory was ~14 GB (during compilation);
- lr 1e-5 (AdamW), measured by one 10-step HeRL check run (seed 0, sequence_bucket 128, otherwise this
  config): training reward 0.27 -> 0.59, validation reward at step 10 0.859 (success 0.75), 12.9 base
  standard errors above the base model; replies got shorter (sampling 75 s -> 14 s a step, steps
  399 s -> 109 s on the loaded machine), so later steps cost far less than the first ones. Revisions
  stopped by step 8 (every group had a full-reward rollout), so steps past ~12 would train every variant
  alike: 12 steps, validated every 3, and the comparison rests on the learning curves as much as on the
  final reward;
- KL (1e-4) and every paper switch at their defaults: nothing measured argues otherwise (the reference
  pass costs about a fifth of the update, a cost the paper pays too).

The SFT and DPO baselines (`sft`, `dpo`) train on data built offline from the base model by
herl_jax/build_offline_data.py (rejection sampling on the training prompts; bundled:small_if_sft.jsonl and
bundled:small_if_dpo.jsonl, which that command writes):
  python -m herl_jax.build_offline_data --config configs/small.py:herl --out_dir herl_jax/data/bundled
SFT: per prompt, one sampled reply that meets every constraint; DPO: a reply that meets every constraint
(chosen) and one that does not (rejected). Not tuned: the RL runs' lr (1e-5), steps (12) and validation (every
3 steps, the same 64 prompts, greedy), with 16 examples a step (DPO: 16 pairs) and one optimizer step each, so
the rows show what the same number of optimizer steps does; no KL term (DPO's reference is in its loss).
"""

from herl_jax.config import base_config

RL_VARIANTS = ("rlvr", "naive_he", "he", "herl")
OFFLINE_VARIANTS = ("sft", "dpo")
VARIANTS = RL_VARIANTS + OFFLINE_VARIANTS
GROUP_SIZE = 8  # as the paper: RLVR samples 8 rollouts, the others 7 and add one revision
PROMPTS_PER_STEP = 4
OFFLINE_EXAMPLES_PER_STEP = 16
OFFLINE_FILES = {"sft": "bundled:small_if_sft.jsonl", "dpo": "bundled:small_if_dpo.jsonl"}


def get_config(variant: str = "herl"):
    if variant not in VARIANTS:
        raise ValueError(f"configs/small.py:{variant}: expected one of {', '.join(VARIANTS)}")
    c = rl_config("herl" if variant in OFFLINE_VARIANTS else variant)
    if variant in OFFLINE_VARIANTS:
        rows = 2 if variant == "dpo" else 1
        c.train.objective.update(kind=variant, max_length=192)  # prompts <= 128 tokens, replies <= 48 + eos
        c.train.loss.kl_coef = 0.0
        c.train.ppo.update(mini_batch_size=OFFLINE_EXAMPLES_PER_STEP * rows, micro_batch_size=8)
        c.data.update(train_files=[OFFLINE_FILES[variant]], format=variant, validation_format="hir")
        c.trainer.prompts_per_step = OFFLINE_EXAMPLES_PER_STEP
    return c


def rl_config(variant: str):
    """The RL variants' config, which the offline ones start from (same model, validation, lr and steps)."""
    c = base_config()
    c.model.dtype = "float32"  # CPUs have no fast bf16 matmul
    c.model.remat = False
    c.herl.variant = variant
    c.rollout.update(n=GROUP_SIZE if variant == "rlvr" else GROUP_SIZE - 1, max_new_tokens=48,
                     max_prompt_len=128, prompt_bucket=64)
    c.revision.update(max_new_tokens=48, max_prompt_len=512, prompt_bucket=128)
    # One static batch per sampler call (decode_slots=0), as the comparison of docs/results.md ran; with 28-32
    # rows of at most 48 tokens there is no queue for continuous batching to refill.
    c.rollout.decode_slots = c.revision.decode_slots = 0
    c.herl.max_candidates = 1
    c.data.train_files = ["bundled:small_if_train.jsonl"]
    c.data.validation_files = ["bundled:small_if_validation.jsonl"]
    c.train.optim.lr = 1e-5
    # One optimizer step per RL step: every row of the step in one mini-batch.
    c.train.ppo.update(mini_batch_size=PROMPTS_PER_STEP * GROUP_SIZE, micro_batch_size=8)
    c.rubrics.workers = 1
    # score_overlap_chunks=1: programmatic checks take milliseconds; one sampler call is faster on a CPU.
    c.trainer.update(steps=12, prompts_per_step=PROMPTS_PER_STEP, sequence_bucket=64, validate_every=3,
                     validation_prompts=64, checkpoint_every=3, score_overlap_chunks=1)
    return c
