"""`python -m herl_jax.plan`: per-device bytes from shapes alone, checked against counts made by hand."""

import dataclasses
import math
import subprocess
import sys

import gguf
import jax
import pytest

from herl_jax.models.loading import resolve_source
from herl_jax.memory_plan import GIB, SamplerCall, plan_memory, sampler_arrays, sampler_calls
from herl_jax.sampling import SamplingConfig, generate
from herl_jax.sampling import slots as slot_programs
from herl_jax.training.preflight import Machine, memory_shortfall
from tests.parallel.common import REPO
from tests.trainer.tiny_config import demo_config
from tests.training.tiny import tiny_model

PAPER = "configs/paper.py:qwen2.5-7b,herl,if"

# Qwen2.5-7B-Instruct's config.json: hidden, MLP, layers, query heads, key/value heads, head dim, vocabulary.
D, F, L, N, K, H, V = 3584, 18944, 28, 28, 4, 128, 152064
BIASES = L * H * (N + 2 * K)  # q/k/v biases: the only parameters without a hidden-size dimension
QWEN_7B_PARAMS = 2 * V * D + L * (D * H * (2 * N + 2 * K) + 3 * D * F + 2 * D) + BIASES + D
# A sampler's KV cache, per cached position of a row: keys and values of every layer in bfloat16, and the
# one-byte mask; per row: its int32 length and write index.
KV_POSITION, KV_ROW = 2 * L * K * H * 2 + 1, 2 * 4


def paper_config(run: str = "qwen2.5-7b,herl,if", **parallel):
    import importlib.util

    spec = importlib.util.spec_from_file_location("paper_config", REPO / "configs" / "paper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(run)
    config.parallel.update(parallel)
    return config


def sampling_bytes(plan, call: str) -> int:
    """Bytes per device of the plan's items of one sampler call (named "... (CALL)")."""
    items = [i for i in plan.items if i.name.endswith(f"({call})")]
    assert items and {i.phase for i in items} == {"sampling"}, [i.name for i in plan.items]
    return sum(i.per_device for i in items)


def call_bytes(prompts: int, prompt_len: int, slots: int, max_new: int) -> int:
    """One sampler call's buffers on one device: the prompts' cache and float32 logits, the slots' cache,
    each slot's int32 completion and float32 log-probs, its int32 token, step, request and bool active."""
    prompt_cache = prompts * (prompt_len * KV_POSITION + KV_ROW) + prompts * V * 4
    slot_cache = slots * ((prompt_len + max_new) * KV_POSITION + KV_ROW)
    return prompt_cache + slot_cache + slots * max_new * (4 + 4) + slots * (3 * 4 + 1)


def test_fsdp_divides_the_parameters_by_the_axis_size():
    one = plan_memory(paper_config(), num_devices=1)
    eight = plan_memory(paper_config(data=1, fsdp=8, tensor=1), num_devices=8)
    params = "params (float32 master)"
    assert one.item(params).per_device == 4 * QWEN_7B_PARAMS  # float32 master weights, whole on one device
    # fsdp=8 splits every parameter along its hidden-size dimension (3584 = 8 x 448); the biases replicate.
    assert eight.item(params).per_device == 4 * ((QWEN_7B_PARAMS - BIASES) // 8 + BIASES)
    # AdamW's two moments mirror the parameters (plus its step counter).
    opt = eight.item("optimizer state").per_device
    assert 0 <= opt - 2 * eight.item(params).per_device <= 64


def test_tensor_parallelism_splits_heads_mlp_and_vocabulary():
    tensor = plan_memory(paper_config(data=1, fsdp=1, tensor=4), num_devices=4)
    # kv_heads=4 divides tensor=4: only the norms replicate.
    norms = L * 2 * D + D
    assert tensor.item("params (float32 master)").per_device == 4 * ((QWEN_7B_PARAMS - norms) // 4 + norms)


def test_kv_cache_shrinks_with_the_batch_split():
    one, eight = plan_memory(paper_config(), 1), plan_memory(paper_config(data=1, fsdp=8, tensor=1), 8)
    kv = [i for i in one.items if i.name.startswith("KV cache")]
    assert [i.phase for i in kv] == ["sampling", "sampling"]  # prompts, slots
    for item in kv:
        if "decode slots" in item.name:
            # 64 slots per batch shard: one device decodes 64 of the 128 revision rows, eight decode all 128
            # (16 each).
            assert item.name.startswith("KV cache of 64 decode slots")
            eight_slots = eight.item(item.name.replace("64 decode slots", "128 decode slots"))
            assert eight_slots.per_device * 8 == item.per_device * 2, item.name
        elif "prompts" in item.name:
            # The revision call's 112 prompts: padded to a power of four per batch shard, 256 on one device
            # and 8 x 16 = 128 on eight.
            assert item.name.startswith("KV cache of 256 prompts")
            eight_prompts = eight.item(item.name.replace("256 prompts", "128 prompts"))
            assert eight_prompts.per_device * 8 == item.per_device // 2, item.name
    assert one.peak_per_device > 80 * 1024**3 > eight.peak_per_device  # fits 8 x 80 GB, not one device


def test_plan_reads_a_local_model_config():
    config = demo_config()  # the built-in SmolLM2-135M GGUF
    _, path = resolve_source(config.model.source)
    in_file = sum(int(t.n_elements) for t in gguf.GGUFReader(str(path)).tensors)  # the file's own tensor table
    plan = plan_memory(config, num_devices=1)
    assert plan.model_config.num_params == in_file
    assert plan.item("params (float32 master)").per_device == 4 * in_file


def test_cli_prints_the_plan_for_a_paper_config():
    done = subprocess.run([sys.executable, "-m", "herl_jax.plan", f"--config={PAPER}", "--num_devices=8",
                           "--config.parallel.fsdp=8", "--device_memory_gib=80"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "Qwen2.5-7B-Instruct" in out and "mesh   data=1 fsdp=8 tensor=1 (8 devices)" in out
    for name in ("params (float32 master)", "optimizer state", "KV cache", "temporaries: fwd+bwd 8 x 12288, remat (estimate)",
                 "temporaries: weight copy, head (estimate)", "-> fits"):
        assert name in out, name


def test_cli_names_a_mesh_that_does_not_fit():
    done = subprocess.run([sys.executable, "-m", "herl_jax.plan", f"--config={PAPER}", "--num_devices=8",
                           "--config.parallel.data=3"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode != 0
    assert "error: parallel.fsdp=-1: the other axes (data=3, tensor=1) use 3 devices" in done.stderr


def test_sampling_copies_the_layer_weights_once():
    plan = plan_memory(paper_config(), num_devices=1)
    layer_params = L * (D * H * (2 * N + 2 * K) + 3 * D * F + 2 * D) + BIASES  # all but embeddings / final norm
    assert plan.item("layer weights in bfloat16, copied per layer for sampling").per_device == 2 * layer_params


@pytest.mark.parametrize("slots", [0, 64, 32, 256])
def test_sampling_counts_the_prompt_cache_the_slots_and_the_completions(slots):
    config = paper_config()
    config.rollout.decode_slots = config.revision.decode_slots = slots
    plan = plan_memory(config, num_devices=1)
    # The largest call: revisions. 64 prompts x min(max_candidates 16, n 7) candidates in 4 pieces = 112
    # revise prompts per call, padded to 256 (a power of four) to prefill, each of 8192 positions
    # (max_prompt_len); one row each (the 144 filler prompts have none), and 4096 new tokens. A static
    # batch (rows padded to a power of two), or more slots than rows (in quarters of 256 slots: 64 at a
    # time), decodes 128 rows at once.
    rows = 128
    assert sampling_bytes(plan, "revisions") == call_bytes(256, 8192, min(slots, rows) or rows, 4096)


@pytest.mark.parametrize("slots, largest", [(0, "rollouts"), (64, "validation")])
def test_the_largest_sampler_call_is_planned(slots, largest):
    config = paper_config("qwen2.5-7b,rlvr,if")  # no revisions
    config.rollout.decode_slots = slots
    plan = plan_memory(config, num_devices=1)
    # Rollouts: 64 prompts in 4 pieces = 16 prompts of 2048 positions, 8 rows each = 128 rows, 4096 new
    # tokens. Validation: 64 prompts, greedy, one call, one row each.
    rollouts = call_bytes(16, 2048, slots or 128, 4096)
    validation = call_bytes(64, 2048, 64, 4096)
    assert max(rollouts, validation) == (rollouts if largest == "rollouts" else validation)
    assert sampling_bytes(plan, largest) == max(rollouts, validation)


@pytest.mark.parametrize("slots", [0, 4, 64])
def test_planned_sampler_buffers_are_those_the_sampler_allocates(slots, monkeypatch):
    """The plan's arrays of a call against what the real sampler's prefill and slot programs return."""
    allocated = []
    for name in ("prefill", "empty_slots"):
        def recording(*args, program=getattr(slot_programs, name), **kwargs):
            out = program(*args, **kwargs)
            allocated.append(sum(x.nbytes for x in jax.tree.leaves(out)))
            return out

        monkeypatch.setattr(slot_programs, name, recording)
    model = tiny_model()
    prompts = [[5] * 3, [6] * 20, [7] * 9]  # 3 prompts (padded to 4), the longest 20 tokens (a 32 bucket)
    # max_prompt_len 32: the slots' cache length is the longest prompt bucket's, this call's too.
    generate(model, prompts, SamplingConfig(n=3, max_new_tokens=8, prompt_bucket=16, max_prompt_len=32,
                                            decode_slots=slots))
    arrays = sampler_arrays(model.cfg, SamplerCall("call", prompts=3, n=3, prompt_len=32, max_new=8,
                                                   decode_slots=slots))
    planned = sum(math.prod(shape) * itemsize for group in arrays.values() for shape, _, itemsize in group)
    assert len(allocated) == 2 and planned == sum(allocated)


# A node of eight 80 GB GPUs, as jax reports one (an allocator limit per device).
H100_NODE = Machine("NVIDIA H100 80GB HBM3", 80 * GIB, host=2048 * GIB, local_devices=8, processes=1)
KEYS = {"sampling": "SAMPLING-KEYS", "training": "TRAINING-KEYS"}


def test_a_paper_run_that_fits_eight_gpus_is_not_refused():
    config = paper_config(data=1, fsdp=8, tensor=1)
    plan = plan_memory(config, num_devices=8)
    assert plan.peak_per_device <= 80 * GIB  # what `python -m herl_jax.plan` reports as "fits"
    largest = max(sampler_calls(config, 8), key=lambda c: c.host_bytes)
    assert memory_shortfall(plan, largest, KEYS, H100_NODE) is None


def test_a_paper_run_on_one_gpu_is_refused_naming_the_phase_to_shrink():
    plan = plan_memory(paper_config(), num_devices=1)
    least, phase = plan.least_peak
    assert least >= 12 * QWEN_7B_PARAMS > 80 * GIB  # float32 weights and Adam's two moments alone
    message = memory_shortfall(plan, None, KEYS, dataclasses.replace(H100_NODE, local_devices=1))
    assert message.startswith(f"cannot fit in memory: the plan needs at least {least / GIB:.1f} GiB per device")
    assert "a NVIDIA H100 80GB HBM3 here holds 80.0 GiB" in message and f"lower {KEYS[phase]}" in message
    assert "\n" not in message


def test_only_a_device_short_of_the_plan_at_its_lowest_estimate_is_refused():
    """The temporaries are estimates (within 1.5x of XLA's, tests/parallel/test_temporaries.py): a device
    between the plan's lowest and its planned peak may hold the run; one below the lowest cannot."""
    plan = plan_memory(paper_config(), num_devices=1)
    least, _ = plan.least_peak
    exact = sum(i.per_device for i in plan.items if i.phase == "persistent")
    assert exact < least < plan.peak_per_device
    lowest = math.ceil(least)  # bytes: the estimates at their lowest are fractional
    for limit, refused in ((lowest, False), ((lowest + plan.peak_per_device) // 2, False), (lowest - 1, True)):
        machine = dataclasses.replace(H100_NODE, device_limit=limit)
        assert (memory_shortfall(plan, None, KEYS, machine) is not None) == refused, limit


def test_cpu_devices_and_the_host_arrays_share_the_host_memory():
    """On CPU (no allocator limit) the devices' plan and the largest call's host arrays (its rows' int32
    tokens and float32 log-probs, and the queue of row numbers) must fit the host together."""
    plan = plan_memory(demo_config(), num_devices=2)
    least, _ = plan.least_peak
    call = SamplerCall("rollouts", prompts=4, n=10**7, prompt_len=128, max_new=48, decode_slots=64)
    host_arrays = 4 * 10**7 * (48 * (4 + 4) + 8 + 28)
    assert call.host_bytes == host_arrays
    need = host_arrays + 2 * least
    cpu = Machine("cpu", None, host=int(need), local_devices=2, processes=1)
    assert memory_shortfall(plan, call, KEYS, cpu) is None
    message = memory_shortfall(plan, call, KEYS, dataclasses.replace(cpu, host=int(need) - 1))
    assert message.startswith(f"cannot fit in memory: it needs at least {need / GIB:.1f} GiB of this host's")
    assert "2 CPU devices x" in message and "rollouts call's 40000000 rows x 48 tokens" in message
    assert host_arrays > 2 * least and f"lower {KEYS['sampling']}" in message  # the host arrays weigh most
    # Two processes on the host each hold half the rows.
    assert memory_shortfall(plan, call, KEYS, dataclasses.replace(cpu, host=int(need) - 1, processes=2)) is None
