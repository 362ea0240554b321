"""Broken checkpoints and unsupported configs fail with messages that name the file, key or feature."""

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from herl_jax.models import ModelConfig, ModelFileError, UnsupportedModelError, load_model
from herl_jax.models.gguf_reader import GGUFCheckpoint
from tests.models.hf_reference import make_checkpoint


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("qwen2")
    make_checkpoint("qwen2", directory)
    return directory


@pytest.fixture
def broken(good_checkpoint, tmp_path):
    directory = tmp_path / "ckpt"
    shutil.copytree(good_checkpoint, directory)
    return directory


def _edit_config(directory, **changes):
    cfg = json.loads((directory / "config.json").read_text())
    cfg.update(changes)
    (directory / "config.json").write_text(json.dumps(cfg))


def _edit_tensors(directory, edit):
    tensors = load_file(str(directory / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})


def test_missing_config(broken):
    (broken / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(broken)


def test_missing_weights(broken):
    (broken / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_model(broken)


def test_missing_source():
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        load_model("no-such-model")


def test_unknown_architecture(broken):
    _edit_config(broken, architectures=["MistralForCausalLM"], model_type="mistral")
    with pytest.raises(UnsupportedModelError, match="MistralForCausalLM") as err:
        load_model(broken)
    assert "Qwen3ForCausalLM" in str(err.value)  # lists what is supported


@pytest.mark.parametrize("field,value,needle", [
    ("hidden_act", "gelu", "hidden_act"),
    ("use_sliding_window", True, "use_sliding_window"),
    ("rope_parameters", {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e6}, "yarn"),
])
def test_unsupported_fields(broken, field, value, needle):
    _edit_config(broken, **{field: value})
    with pytest.raises(UnsupportedModelError, match=needle):
        load_model(broken)


def test_missing_required_field(broken):
    cfg = json.loads((broken / "config.json").read_text())
    del cfg["hidden_size"]
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="config.json lacks the required field 'hidden_size'"):
        load_model(broken)


def test_tensor_of_wrong_shape(broken):
    name = "model.layers.1.mlp.up_proj.weight"
    _edit_tensors(broken, lambda t: t.__setitem__(name, np.zeros((5, 7), np.float32)))
    with pytest.raises(ModelFileError, match=name) as err:
        load_model(broken)
    assert "(5, 7)" in str(err.value) and str(broken) in str(err.value)


def test_missing_tensor(broken):
    name = "model.layers.2.self_attn.k_proj.bias"
    _edit_tensors(broken, lambda t: t.pop(name))
    with pytest.raises(ModelFileError, match=name):
        load_model(broken)


def test_shard_listed_in_index_is_missing(broken):
    tensors = load_file(str(broken / "model.safetensors"))
    (broken / "model.safetensors").unlink()
    names = sorted(tensors)
    save_file({n: tensors[n] for n in names[:5]}, str(broken / "a.safetensors"), metadata={"format": "pt"})
    weight_map = {n: ("a.safetensors" if i < 5 else "b.safetensors") for i, n in enumerate(names)}
    (broken / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(FileNotFoundError, match="b.safetensors"):
        load_model(broken)


def test_not_a_gguf_file(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"this is not gguf" * 10)
    with pytest.raises(ValueError, match="model.gguf"):
        GGUFCheckpoint(bogus)


def test_invalid_runtime_options():
    with pytest.raises(ValueError, match="dtype"):
        ModelConfig(family="llama", vocab_size=8, hidden_size=8, intermediate_size=8, num_layers=1,
                    num_heads=2, num_kv_heads=1, head_dim=4, dtype="float8")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_naming_the_tensor(broken, value):
    def poison(tensors):
        name = "model.layers.1.mlp.down_proj.weight"
        tensors[name] = tensors[name].copy()
        tensors[name][3, 5] = value
        tensors[name][0, 0] = value

    _edit_tensors(broken, poison)
    with pytest.raises(ModelFileError, match=r"tensor 'model.layers.1.mlp.down_proj.weight' holds 2 non-finite"):
        load_model(broken)
