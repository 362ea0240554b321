"""Export of a Decoder to a Hugging Face checkpoint directory that `transformers` loads directly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from herl_jax import parallel
from herl_jax.models.decoder import Decoder
from herl_jax.models.hf_layout import tensor_specs
from herl_jax.own_files import write_file, writing

DEFAULT_MAX_SHARD_BYTES = 4 * 1024**3


def export_hf(model: Decoder, directory: str | os.PathLike, tokenizer=None,
              max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES) -> Path:
    """Writes config.json, safetensors weights (sharded with an index past `max_shard_bytes`) and the
    tokenizer files. Tensors are converted one at a time and each shard is written as soon as it fills,
    so the host holds at most one shard besides the model.

    Files are written without following links (herl_jax.own_files); the tokenizer's files are its own
    writer's, so the trainer and the export CLI write into a folder they have just made (run_policy.write_export).

    In a multi-process run, call it on every process: each parameter sharded across processes is gathered
    (a collective), one at a time, and process 0 alone writes."""
    from safetensors.numpy import save_file

    cfg = model.cfg
    out = Path(directory)
    params = nnx.state(model, nnx.Param).to_pure_dict()
    writer = jax.process_index() == 0
    if writer:
        out.mkdir(parents=True, exist_ok=True)

    metadata = {"format": "pt"}  # transformers expects this tag on safetensors files
    written: list[tuple[Path, list[str]]] = []  # (temporary file, tensor names); named once all are known
    shard: dict[str, np.ndarray] = {}
    total_bytes = 0

    def flush():
        path = out / f".shard-{len(written) + 1:05d}.safetensors"
        with writing(path):  # a full disk is safetensors' own error, naming no file
            save_file(shard, str(path), metadata=metadata)
        written.append((path, list(shard)))
        shard.clear()

    for spec in tensor_specs(cfg):
        value = params
        for key in spec.path:
            value = value[key]
        stacked = parallel.to_host(value)
        if not writer:
            continue
        for i in range(cfg.num_layers) if spec.per_layer else [None]:
            tensor = np.ascontiguousarray(spec.to_hf(stacked if i is None else stacked[i]))
            if shard and sum(t.nbytes for t in shard.values()) + tensor.nbytes > max_shard_bytes:
                flush()
            shard[spec.hf_name.format(i=i)] = tensor
            total_bytes += tensor.nbytes
    if not writer:
        return out
    flush()
    _name_shards(out, written, total_bytes)
    write_file(out / "config.json", json.dumps(cfg.to_hf_dict(), indent=2))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out


def _name_shards(out: Path, written: list[tuple[Path, list[str]]], total_bytes: int) -> None:
    """Gives the temporary shard files in `written` (path, tensor names) their final names: one
    model.safetensors, or model-0000k-of-0000n.safetensors with the index transformers reads."""
    if len(written) == 1:
        written[0][0].replace(out / "model.safetensors")
        return
    weight_map = {}
    for n, (path, names) in enumerate(written, start=1):
        filename = f"model-{n:05d}-of-{len(written):05d}.safetensors"
        path.replace(out / filename)
        weight_map.update({name: filename for name in names})
    index = {"metadata": {"total_size": total_bytes}, "weight_map": weight_map}
    write_file(out / "model.safetensors.index.json", json.dumps(index, indent=2))
