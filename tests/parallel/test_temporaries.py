"""The memory plan's temporaries (herl_jax.plan) against XLA's: each estimated program of a config compiled
for 8 fake CPU devices (fsdp=8) by `python -m herl_jax.compiled`, whose reports carry both the plan's
estimate and `compiled.memory_analysis().temp_size_in_bytes`.

Like with like: the model in float32 with XLA attention. XLA:CPU runs bfloat16 dots in float32 (its
temporaries would hold float32 copies a GPU never makes) and has no fused attention, so a bfloat16 run's
CPU temporaries say little about a GPU's; a float32 XLA-attention program holds on CPU what it holds on a
GPU without cuDNN, and the estimate is the same formula a bfloat16 cuDNN plan uses (benchmarks/RESULTS.md).

Widths: SmolLM2-135M's (hidden 576, MLP 1,536, 9 / 3 heads of 64, vocabulary 49,152, tied head) at 2
layers, so the test compiles in about a minute; the formula has nothing specific to them. Two shapes:
  A: micro-batches of 8 rows x 512 and 768 with remat; prefills of 8 x 256 and 32 x 512 prompts in one
     piece; decode steps of 16 and 32 slots over windows of 512 and 768;
  B: 16 rows x 1,024 and 1,280 without remat; a prefill of 512 x 1,024 prompts in 4 pieces; decode steps
     of 32 and 128 slots over windows of 1,024 and 1,280.

Tolerance: within 1.5x either way, for every program whose temporaries are at least 5 MiB a device. The
estimate counts the arrays a program's largest phase holds, from their shapes; XLA also keeps small
buffers whose size does not follow the rows or the sequence (layout copies of single weight matrices,
about 1-3 MiB here), and packs the rest in its own order, which moves the peak by a fraction of a phase:
at the widths of the paper's models those are fractions of a percent of a program's temporaries, and a
factor of 1.5 is the margin a run is planned with anyway. Below 5 MiB (the greedy validation decode step
of 16 slots, 2 rows a device: 4 MiB) the fixed buffers dominate and the estimate is not asserted. The
per-layer weight copy is bounded instead: the plan counts the layer's gathered weights beside its output
(XLA:CPU holds its MLP's gate and up, about half), so there the estimate is at least the compiled size and
at most twice it. The weight copy and refill run a program per layer: at 2 layers a program holding every
layer's rows would be twice its estimate.
"""

from __future__ import annotations

import pytest

from tests.parallel.test_compiled_programs import compile_paper_config

SMALL = ["--config.model.source=smollm2-135m-instruct", "--config.model.dtype=float32",
         "--config.model.attention_impl=xla"]
SHAPES = {
    "A": ["--config.rollout.max_prompt_len=256", "--config.rollout.max_new_tokens=256",
          "--config.revision.max_prompt_len=512", "--config.revision.max_new_tokens=256",
          "--config.trainer.prompts_per_step=16", "--config.train.ppo.mini_batch_size=128",
          "--config.trainer.validation_prompts=8", "--config.rollout.decode_slots=8",
          "--config.revision.decode_slots=8"],
    "B": ["--config.model.remat=false", "--config.rollout.max_prompt_len=512", "--config.rollout.max_new_tokens=512",
          "--config.revision.max_prompt_len=1024", "--config.revision.max_new_tokens=256",
          "--config.trainer.prompts_per_step=32", "--config.trainer.score_overlap_chunks=1",
          "--config.train.ppo.mini_batch_size=256", "--config.train.ppo.micro_batch_size=16",
          "--config.trainer.validation_prompts=16", "--config.rollout.decode_slots=16",
          "--config.revision.decode_slots=16"],
}
ESTIMATED = {"train micro-batch", "log-probs", "optimizer step", "decode weights copy", "prefill", "refill",
             "decode step"}
FLOOR = 5 * 2**20
# Where the plan counts an upper bound: the per-layer weight copy, at most the layer's gathered weights
# beside its output (XLA:CPU holds its MLP's gate and up, about half).
BOUNDED = {("decode weights copy", "one layer")}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_planned_temporaries_agree_with_the_compiled_programs(shape, tmp_path):
    reports = compile_paper_config(tmp_path / "reports.json", *SMALL, *SHAPES[shape])
    estimated = [p for p in reports["programs"] if p["name"] in ESTIMATED]
    assert {p["name"] for p in estimated} == ESTIMATED
    assert all(p["estimated_temp_bytes"] for p in estimated)
    if shape == "B":  # the cases shape B is there for
        assert any("4 pieces" in p["shape"] for p in estimated if p["name"] == "prefill")
    checked = [p for p in estimated if p["temp_bytes"] >= FLOOR]
    assert len(checked) >= 5, estimated
    for program in checked:
        ratio = program["estimated_temp_bytes"] / program["temp_bytes"]
        if (program["name"], program["shape"].split(" (")[0]) in BOUNDED:
            assert 1 <= ratio <= 2, (program["name"], program["shape"], ratio)
        else:
            assert 1 / 1.5 <= ratio <= 1.5, (program["name"], program["shape"], ratio)
