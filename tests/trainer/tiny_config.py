"""A tiny training config for the trainer tests, derived from configs/demo.py.

In-process: `get_config("CKPT_DIR,TRAIN_JSONL,VALIDATION_JSONL,FORMAT")`; from the CLI:

  python -m herl_jax.train --config tests/trainer/tiny_config.py:CKPT_DIR,TRAIN,VALIDATION,FORMAT --workdir W

Sized so one RL step takes seconds on a CPU and every step has the same shapes (one compile): short prompts
(one 64-token bucket), at most one revision per prompt, and training rows padded to one 256-token bucket.
FORMAT sft or dpo: that offline objective on TRAIN, validated on VALIDATION as hir rows.
"""

import importlib.util
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def demo_config():
    spec = importlib.util.spec_from_file_location("herl_demo_config", CONFIGS / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config(arg: str):
    checkpoint, train_file, validation_file, data_format = arg.split(",")
    c = demo_config()
    c.model.source = checkpoint
    c.rollout.update(n=3, max_new_tokens=8, max_prompt_len=64, prompt_bucket=64)
    # Revise prompts (template + instruction + feedback + draft) are ~240 tokens: one bucket, and with the
    # 8 new tokens every training row fits in one sequence bucket.
    c.revision.update(max_new_tokens=8, max_prompt_len=248, prompt_bucket=256)
    c.herl.max_candidates = 1
    c.train.ppo.update(mini_batch_size=8, micro_batch_size=4)  # 2 prompts x (3 + 1): one optimizer step
    c.train.loss.kl_coef = 1e-3  # exercise the frozen reference policy
    c.train.optim.lr = 1e-3  # a random tiny model: make every update visible in the parameters
    c.data.train_files = [train_file]
    c.data.validation_files = [validation_file]
    c.data.format = data_format
    c.rubrics.workers = 1
    c.trainer.update(steps=2, prompts_per_step=2, sequence_bucket=256, validate_every=2, validation_prompts=2,
                     checkpoint_every=1, keep_checkpoints=3, log_every=1)
    if data_format in ("sft", "dpo"):
        rows = 2 if data_format == "dpo" else 1
        c.train.objective.update(kind=data_format, max_length=256)
        c.train.ppo.update(mini_batch_size=2 * rows, micro_batch_size=2)  # 2 examples; DPO: a pair a micro-batch
        c.data.validation_format = "hir"
    return c
