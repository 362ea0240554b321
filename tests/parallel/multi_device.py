"""Sharded runs against single-device runs of the same tiny model, on 8 CPU devices.

Run by test_multi_device.py with XLA_FLAGS=--xla_force_host_platform_device_count=8; prints one JSON
object: per mesh, the largest differences to the single-device results and whether arrays were sharded,
plus loaded-sharded and checkpoint round-trip checks on the (2, 2, 2) mesh. The sharded models are loaded
from an HF export of the tiny model onto each mesh, as the trainer loads its policy.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import jax

jax.config.update("jax_default_matmul_precision", "highest")

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from herl_jax import parallel  # noqa: E402
from herl_jax.models import export_hf, load_model  # noqa: E402
from herl_jax.sampling import SamplingConfig, generate  # noqa: E402
from herl_jax.sampling import slots as slot_programs  # noqa: E402
from herl_jax.learner import Learner  # noqa: E402
from herl_jax.training.checkpoints import Checkpointer  # noqa: E402
from tests.parallel.common import (  # noqa: E402
    MODEL, PROMPTS, max_difference, one_train_step, optimizer, step_config, tiny_model, train_batch,
)

MESHES = {"8,1,1": (8, 1, 1), "1,8,1": (1, 8, 1), "2,2,2": (2, 2, 2)}
GREEDY = SamplingConfig(n=2, max_new_tokens=6, temperature=0.0, max_prompt_len=16, prompt_bucket=8)


def left_padded_prompts(count: int) -> tuple[np.ndarray, np.ndarray]:
    """ids, mask [count, 16]: random prompts of 3 to 16 tokens, right-aligned."""
    rng = np.random.default_rng(3)
    ids, mask = np.zeros((count, 16), np.int32), np.zeros((count, 16), np.int32)
    for row, length in enumerate(rng.integers(3, 17, count)):
        ids[row, 16 - length:] = rng.integers(1, MODEL["vocab_size"], length)
        mask[row, 16 - length:] = 1
    return ids, mask


def prefill(graphdef, state, ids, mask, mesh, pieces):
    """The sampler's prefill of left-padded prompts in `pieces` pieces, in its decode layout on `mesh`."""
    rules = parallel.decode_rules()
    weights = slot_programs.decode_weights(state, mesh=mesh, rules=rules)
    return slot_programs.prefill(graphdef, state, weights, ids, mask, pieces=pieces, mesh=mesh, rules=rules)


def forward(graphdef, state, ids, mask):
    return nnx.merge(graphdef, state)(ids, mask)


def is_split(array, full_shape) -> bool:
    """Whether each device holds less than the whole array."""
    return np.prod(array.sharding.shard_shape(full_shape)) < np.prod(full_shape)


def laid_out_by_rules(tree, mesh) -> bool:
    """Every array of `tree` carries exactly the sharding the rules give it."""
    expected = jax.tree.leaves(parallel.tree_shardings(tree, mesh))
    return all(a.sharding == s for a, s in zip(jax.tree.leaves(tree), expected))


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    with tempfile.TemporaryDirectory() as tmp:
        run_checks(Path(tmp))


def run_checks(tmp: Path) -> None:
    forward_jit = jax.jit(forward, static_argnums=0)
    model = tiny_model()
    graphdef, state = nnx.split(model)
    batch = train_batch()
    ids, mask = batch["input_ids"], batch["attention_mask"]

    # Single device: the model's arrays stay on the default device, no mesh anywhere.
    ref_logits = forward_jit(graphdef, state, ids, mask)
    ref_greedy = generate(model, PROMPTS, GREEDY)
    prompt_ids, prompt_mask = left_padded_prompts(16)
    ref_prompts = prefill(graphdef, state, prompt_ids, prompt_mask, None, pieces=1)
    ref_old, ref_state, ref_metrics = one_train_step(Learner(model, optimizer(), step_config()), model, batch)

    results = {"moved": max_difference(ref_state.params, nnx.state(model, nnx.Param))}
    export_hf(model, tmp / "hf")
    for name, sizes in MESHES.items():
        mesh = parallel.make_mesh(parallel.MeshConfig(*sizes))
        sharded = load_model(tmp / "hf", mesh=mesh)
        s_graphdef, s_state = nnx.split(sharded)
        rows = parallel.logical_sharding(("batch", None), ids.shape, mesh)
        logits = forward_jit(s_graphdef, s_state, jax.device_put(ids, rows), jax.device_put(mask, rows))
        greedy = generate(sharded, PROMPTS, GREEDY)
        prompts = prefill(s_graphdef, s_state, prompt_ids, prompt_mask, mesh, pieces=2)  # 2 pieces of 8 prompts
        learner = Learner(sharded, optimizer(), step_config())
        old, new_state, metrics = one_train_step(learner, sharded, batch)
        embed = new_state.params["embed"][...]
        results[name] = dict(
            logits=max_difference(logits, ref_logits),
            tokens_equal=bool(np.array_equal(greedy.tokens, ref_greedy.tokens)
                              and np.array_equal(greedy.lengths, ref_greedy.lengths)),
            sampler_logprobs=max_difference(greedy.logprobs, ref_greedy.logprobs),
            prefill_in_pieces=max_difference(prompts, ref_prompts),
            old_logprobs=max_difference(old, ref_old),
            params=max_difference(new_state.params, ref_state.params),
            opt_state=max_difference(new_state.opt_state, ref_state.opt_state),
            metrics=max_difference(metrics, ref_metrics),
            state_laid_out=laid_out_by_rules(new_state.params, mesh) and laid_out_by_rules(new_state.opt_state, mesh),
            embed_split=bool(is_split(embed, embed.shape)),
        )

    mesh = parallel.make_mesh(parallel.MeshConfig(2, 2, 2))
    loaded = load_model(tmp / "hf", mesh=mesh)
    results["load"] = dict(difference=max_difference(nnx.split(loaded)[1], state),
                           laid_out=laid_out_by_rules(nnx.split(loaded)[1], mesh))

    learner = Learner(loaded, optimizer(), step_config())
    saved = learner.init_state(loaded)
    checkpointer = Checkpointer(tmp / "ckpt", async_save=False)
    checkpointer.save(1, saved, {"step": 1})
    step, restored, metadata = checkpointer.restore_latest(saved)
    checkpointer.close()
    same_layout = all(a.sharding == b.sharding for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(saved)))
    results["checkpoint"] = dict(difference=max_difference(restored, saved), same_layout=same_layout,
                                 step=step, metadata=metadata)
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
