"""The paper's runs (docs/algorithm.md §8): --config configs/paper.py:MODEL,VARIANT,DATA

  MODEL    qwen2.5-7b | llama3.2-3b | qwen3-4b
  VARIANT  herl | rlvr | he | naive_he (RL, Table 4b) | sft | dpo (the offline baselines, Table 4a)
  DATA     if (HIR-16K style, programmatic rewards) | medical (RaR-Medicine, LLM judge)

e.g.  python -m herl_jax.train --config configs/paper.py:qwen2.5-7b,herl,if --workdir runs/q7-herl-if \
        --config.model.source=/ckpt/Qwen2.5-7B-Instruct --config.data.train_files=/data/hir16k.jsonl
      python -m herl_jax.train --config configs/paper.py:qwen2.5-7b,sft,if --workdir runs/q7-sft-if \
        --config.model.source=/ckpt/Qwen2.5-7B-Instruct --config.data.train_files=/data/hir16k_sft.jsonl
No hub is reached: model.source and data.train_files must point at local files.

SFT and DPO (the paper trains them with LLaMA-Factory; here the same learner, loader, sharding and checkpoints as
RL) read rows of (prompt, response) / (prompt, chosen, rejected) (data.format sft / dpo; herl_jax/data/formats.py).
The paper's targets: GPT-5 responses (IF, writing) and the dataset's reference answers (medical); DPO pairs: the
rejected response from Qwen2.5-7B-Instruct, the chosen one from GPT-5. Table 4a's settings, on its 8 GPUs:
per-device batch 16 x gradient accumulation 16 x 8 devices = 2,048 rows per optimizer step (DPO: 2,048 pairs),
in micro-batches of 16 per device x 8 = 128 examples; lr 1e-6, constant after 10 warm-up steps; cutoff 4,096
tokens (train.objective.max_length; a longer row is skipped, where LLaMA-Factory truncates); 5 epochs; ZeRO-3
(here FSDP) and bf16. 5 epochs is trainer.steps = 5 x (training rows // 2,048): set for HIR-16K's ~16,000 rows
(35 steps); set trainer.steps for another file. Not stated by the paper, so LLaMA-Factory's (the HF Trainer's)
defaults: DPO beta 0.1 (sigmoid loss), weight decay 0, gradient clipping at norm 1.0, AdamW betas (0.9, 0.999).
No validation (the paper evaluates the final model): trainer.validate_every = 0.
"""

from herl_jax.config import base_config

MODELS = {
    "qwen2.5-7b": "checkpoints/Qwen2.5-7B-Instruct",
    "llama3.2-3b": "checkpoints/Llama-3.2-3B-Instruct",
    "qwen3-4b": "checkpoints/Qwen3-4B-Instruct-2507",
}
DATA = {
    "if": "data/hir16k.jsonl",
    "medical": "data/rar_medicine.jsonl",
}


RL_VARIANTS = ("herl", "rlvr", "he", "naive_he")
OFFLINE_VARIANTS = ("sft", "dpo")
# Table 4a: rows (examples) per optimizer step and per micro-batch, and 5 epochs over HIR-16K's ~16,000 rows.
OFFLINE_BATCH, OFFLINE_MICRO_BATCH, OFFLINE_STEPS = 16 * 16 * 8, 16 * 8, 5 * (16_000 // (16 * 16 * 8))


def get_config(arg: str = "qwen2.5-7b,herl,if"):
    try:
        model, variant, data = arg.split(",")
        source, train_file = MODELS[model], DATA[data]
        if variant not in RL_VARIANTS + OFFLINE_VARIANTS:
            raise ValueError
    except (ValueError, KeyError):
        raise ValueError(f"configs/paper.py:{arg}: expected MODEL,VARIANT,DATA with MODEL in {sorted(MODELS)}, "
                         f"VARIANT in {sorted(RL_VARIANTS + OFFLINE_VARIANTS)}, DATA in {sorted(DATA)}") from None
    c = base_config()
    c.model.source = source
    c.model.dtype = "bfloat16"
    if variant in OFFLINE_VARIANTS:
        return offline_config(c, variant, train_file.replace(".jsonl", f"_{variant}.jsonl"))
    c.herl.variant = variant
    c.herl.alpha = 0.05
    c.rollout.n = 8 if variant == "rlvr" else 7  # HeRL: 7 rollouts + 1 revision
    c.rollout.update(max_new_tokens=4096, max_prompt_len=2048, temperature=1.0, top_p=1.0, top_k=0)
    c.train.optim.lr = 1e-6
    c.train.loss.kl_coef = 1e-4
    c.train.loss.shaping_gamma = 1.0  # the paper; the public code uses 0.1 on medical data
    c.train.ppo.mini_batch_size = 64 * 8  # 64 prompts x 8 group members: one optimizer step per RL step
    c.train.ppo.micro_batch_size = 8
    c.trainer.prompts_per_step = 64
    c.data.train_files = (train_file,)
    if data == "medical":
        c.herl.prompt.template = "rubric"
        c.rubrics.judge = dict(base_url="https://api.openai.com/v1", model="gpt-4o-mini",
                               api_key_env="OPENAI_API_KEY", mode="per_response",
                               cache_path="judge_cache.sqlite")
    return c


def offline_config(c, variant: str, train_file: str):
    """SFT or DPO with Table 4a's settings (the module docstring) on ``c``, which holds the model."""
    rows = 2 if variant == "dpo" else 1  # a DPO pair is two rows, kept in one micro-batch
    c.train.objective.update(kind=variant, dpo_beta=0.1, max_length=4096)
    c.train.optim.update(lr=1e-6, warmup_steps=10, weight_decay=0.0, max_grad_norm=1.0)
    c.train.ppo.update(mini_batch_size=OFFLINE_BATCH * rows, micro_batch_size=OFFLINE_MICRO_BATCH * rows)
    c.data.update(train_files=(train_file,), format=variant, validation_fraction=0.0)
    c.trainer.update(prompts_per_step=OFFLINE_BATCH, steps=OFFLINE_STEPS, validate_every=0)
    return c
