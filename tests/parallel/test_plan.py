"""`python -m herl_jax.plan`: per-device bytes from shapes alone, checked against counts made by hand."""

import subprocess
import sys

import gguf

from herl_jax.models.loading import resolve_source
from herl_jax.plan import plan_memory
from tests.parallel.common import REPO
from tests.trainer.tiny_config import demo_config

PAPER = "configs/paper.py:qwen2.5-7b,herl,if"

# Qwen2.5-7B-Instruct's config.json: hidden, MLP, layers, query heads, key/value heads, head dim, vocabulary.
D, F, L, N, K, H, V = 3584, 18944, 28, 28, 4, 128, 152064
BIASES = L * H * (N + 2 * K)  # q/k/v biases: the only parameters without a hidden-size dimension
QWEN_7B_PARAMS = 2 * V * D + L * (D * H * (2 * N + 2 * K) + 3 * D * F + 2 * D) + BIASES + D


def paper_config(**parallel):
    import importlib.util

    spec = importlib.util.spec_from_file_location("paper_config", REPO / "configs" / "paper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("qwen2.5-7b,herl,if")
    config.parallel.update(parallel)
    return config


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


def test_kv_cache_and_activations_shrink_with_the_batch_split():
    one, eight = plan_memory(paper_config(), 1), plan_memory(paper_config(data=1, fsdp=8, tensor=1), 8)
    kv_and_activations = [i for i in one.items if i.name.startswith(("KV cache", "activations"))]
    assert [i.phase for i in kv_and_activations] == ["sampling", "training"]
    for item in kv_and_activations:
        assert eight.item(item.name).per_device * 8 == item.per_device, item.name
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
    for name in ("params (float32 master)", "optimizer state", "KV cache", "activations", "-> fits"):
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
