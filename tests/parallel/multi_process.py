"""One of two processes joined by jax.distributed on 127.0.0.1, each with 2 CPU devices (gloo collectives).

  multi_process.py PORT PROCESS_ID OUT_DIR      (run by test_multi_process.py, both processes at once)

On a (data=1, fsdp=2, tensor=2) mesh over the 4 devices, so the parameters are split across the processes
(loaded onto it from an HF export of the tiny model, as the trainer loads its policy): one HeRL train step on
a collated batch (the whole batch as numpy on each process), greedy sampling, a checkpoint round trip and an
HF export. Each result is compared with the same work done on this process's first device alone, before
anything is sharded.
Prints one JSON object; writes the gathered parameters to OUT_DIR/params_PROCESS_ID.npz.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from herl_jax import parallel

port, process_id, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
parallel.initialize_distributed(f"127.0.0.1:{port}", 2, process_id)

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from jax.experimental import multihost_utils  # noqa: E402

from herl_jax.models import export_hf, load_model  # noqa: E402
from herl_jax.sampling import SamplingConfig, generate  # noqa: E402
from herl_jax.learner import Learner  # noqa: E402
from herl_jax.training.checkpoints import Checkpointer  # noqa: E402
from tests.parallel.common import (  # noqa: E402
    PROMPTS, max_difference, one_train_step, optimizer, step_config, tiny_model, train_batch,
)

GREEDY = SamplingConfig(n=2, max_new_tokens=6, temperature=0.0, max_prompt_len=16, prompt_bucket=8)


def main() -> None:
    assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2)
    model, batch = tiny_model(), train_batch()

    # Single device (this process's first): the reference.
    ref_old, ref_state, ref_metrics = one_train_step(Learner(model, optimizer(), step_config()), model, batch)
    ref_greedy = generate(model, PROMPTS, GREEDY)

    export_hf(model, out / "source")  # process 0 writes it
    multihost_utils.sync_global_devices("source exported")
    mesh = parallel.make_mesh(parallel.MeshConfig(data=1, fsdp=2, tensor=2))
    sharded = load_model(out / "source", mesh=mesh)
    learner = Learner(sharded, optimizer(), step_config())
    old, state, metrics = one_train_step(learner, sharded, batch)  # numpy batch: process 0's copy is used
    params = parallel.to_host(state.params)

    greedy = generate(sharded, PROMPTS, GREEDY)

    checkpointer = Checkpointer(out / "checkpoints", async_save=False)
    checkpointer.save(1, state, {"step": 1})
    _, restored, _ = checkpointer.restore_latest(state)
    checkpointer.close()
    export_hf(sharded, out / "export")

    values = parallel.allgather_objects({"process": process_id, "text": "é" * 1000 * (process_id + 1)})
    own = [["a0", "a1", "a2", "a3", "a4"], ["b0", "b1"]][process_id]
    pieces = [[p.items, p.start, p.stop, p.first] for p in parallel.joint_pieces(own, 3)]
    np.savez(out / f"params_{process_id}.npz",
             **{jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(params)})
    print(json.dumps(dict(
        params_sharded=not state.params["embed"][...].is_fully_addressable,
        old_logprobs=max_difference(old, ref_old),
        params=max_difference(params, ref_state.params),
        opt_state=max_difference(parallel.to_host(state.opt_state), ref_state.opt_state),
        metrics=max_difference(metrics, ref_metrics),
        tokens_equal=bool(np.array_equal(greedy.tokens, ref_greedy.tokens)),
        checkpoint=max_difference(parallel.to_host(restored), parallel.to_host(state)),
        moved=max_difference(ref_state.params, nnx.state(model, nnx.Param)),
        gathered_objects=values == [{"process": i, "text": "é" * 1000 * (i + 1)} for i in (0, 1)],
        my_share=parallel.my_share(list(range(7))),
        joint_pieces=pieces,
    )))
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
