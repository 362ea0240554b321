"""The evaluation config (every key, with defaults): herl_jax/evaluation/config.py `default_config()`.

  python -m herl_jax.evaluate --config configs/evaluate.py --benchmarks ifeval,ifbench --output runs/eval
  # pass@k with 8 samples and 4 rounds of guided revision on the first 20 prompts:
  python -m herl_jax.evaluate --config configs/evaluate.py --benchmarks ifbench --output runs/eval \
      --config.passk.n=8 --config.passk.limit=20 --config.revision.rounds=4 --config.revision.limit=20
  # HealthBench and WritingBench need an LLM judge (key in $OPENAI_API_KEY):
  python -m herl_jax.evaluate --config configs/evaluate.py --benchmarks healthbench,writingbench \
      --output runs/eval --config.judge.base_url=https://api.openai.com/v1 --config.judge.model=gpt-4.1

  # The benchmarks read from your copy of their public release (README, Evaluation, lists each file):
  python -m herl_jax.evaluate --config configs/evaluate.py --benchmarks math500,gpqa,mmlu_pro --output runs/eval \
      --config.math500.file=MATH-500/test.jsonl --config.gpqa.file=gpqa/gpqa_diamond.csv \
      --config.mmlu_pro.file=MMLU-Pro/data/test-00000-of-00001.parquet
  python -m herl_jax.evaluate --config configs/evaluate.py --benchmarks muldimif,llmeval_med --output runs/eval \
      --config.muldimif.file=MulDimIF/Data/test.json --config.llmeval_med.file=LLMEval-Med/dataset/dataset.json \
      --config.judge.base_url=https://api.openai.com/v1 --config.judge.model=gpt-4o

Sampling is continuous batching: each call's `batch_size` sequences (default 128) queue for 64 decode slots
(`greedy.decode_slots`, `sampling.decode_slots`); set both to 0 to decode each call as one static batch.
"""

from herl_jax.evaluation.config import default_config


def get_config():
    return default_config()
