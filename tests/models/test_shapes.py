"""The known models' table: each shape against the model's published size, SmolLM2's against its own file."""

import pytest

from herl_jax.models.gguf_reader import GGUFCheckpoint
from herl_jax.models.loading import resolve_source
from herl_jax.models.shapes import KNOWN_MODELS, find_known_model, known_model_config

# "Number of Parameters" on each model card, in billions, to the digits given there (some cards round, some cut).
PUBLISHED_BILLIONS = {"qwen2.5-0.5b": "0.49", "qwen2.5-7b": "7.61", "llama3.2-3b": "3.21", "qwen3-4b": "4.0",
                      "smollm2-135m": "0.135"}


@pytest.mark.parametrize("name", sorted(KNOWN_MODELS))
def test_each_shape_has_its_published_size(name):
    published = PUBLISHED_BILLIONS[name]
    last_digit = 10.0 ** -len(published.split(".")[1])
    assert abs(known_model_config(name).num_params / 1e9 - float(published)) < last_digit


def test_smollm2_shape_is_the_bundled_files():
    from_file = GGUFCheckpoint(resolve_source("smollm2-135m-instruct")[1]).hf_config()
    table = KNOWN_MODELS["smollm2-135m"].config_json
    assert sorted(table) == sorted(from_file)
    assert table["rms_norm_eps"] == pytest.approx(from_file.pop("rms_norm_eps"), rel=1e-6)  # float32 in the file
    assert {k: table[k] for k in from_file} == from_file


def test_a_model_is_found_by_its_short_or_its_checkpoint_name():
    assert find_known_model("qwen2.5-7b") is find_known_model("Qwen2.5-7B-Instruct") is KNOWN_MODELS["qwen2.5-7b"]
    assert find_known_model("qwen2.5-7b-instruct") is KNOWN_MODELS["qwen2.5-7b"]
    assert find_known_model("Qwen2.5-7B") is KNOWN_MODELS["qwen2.5-7b"]
    assert find_known_model("qwen2.5-8b") is None
    with pytest.raises(KeyError, match=r"unknown model 'qwen2.5-8b'; known: \['llama3.2-3b'"):
        known_model_config("qwen2.5-8b")


def test_runtime_settings_pass_through():
    cfg = known_model_config("qwen2.5-0.5b", dtype="bfloat16", param_dtype="float32", remat=True)
    assert (cfg.family, cfg.dtype, cfg.param_dtype, cfg.remat, cfg.qkv_bias) == ("qwen2", "bfloat16", "float32",
                                                                               True, True)
