"""The SFT / DPO configs and their rules (issue 26 item 2): the paper's Table 4a settings in configs/paper.py, the
small CPU variants, the rules that tie an objective to its data and batch (each failing naming the key), the
sft / dpo readers' errors, and resuming a run recorded before a key was added."""

from __future__ import annotations

import importlib.util
import itertools

import pytest

from herl_jax.config import ConfigError, validate
from herl_jax.data import DataError, read_examples
from herl_jax.training.run_config import base_config
from herl_jax.training.run_record import changed_keys
from tests.trainer.conftest import REPO, write_jsonl
from tests.trainer.tiny_config import demo_config


def _config_module(name):
    spec = importlib.util.spec_from_file_location(f"herl_{name}_config", REPO / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("arg", [",".join(p) for p in itertools.product(
    ("qwen2.5-7b", "llama3.2-3b", "qwen3-4b"), ("sft", "dpo"), ("if", "medical"))])
def test_paper_offline_configs_hold_table_4a(arg):
    run = validate(_config_module("paper").get_config(arg))
    kind = arg.split(",")[1]
    pair = 2 if kind == "dpo" else 1
    # Table 4a: per-device batch 16 x gradient accumulation 16 on 8 GPUs; lr 1e-6 constant, 10 warm-up steps;
    # cutoff 4,096; bf16.
    assert run.learner.objective.kind == kind and run.data.format == kind
    assert run.trainer.prompts_per_step == 16 * 16 * 8 and run.ppo.mini_batch_size == 16 * 16 * 8 * pair
    assert run.ppo.micro_batch_size == 16 * 8 * pair
    assert (run.optim.lr, run.optim.warmup_steps, run.learner.objective.max_length) == (1e-6, 10, 4096)
    assert run.model.dtype == "bfloat16" and run.learner.temperature == 1.0
    assert run.trainer.validate_every == 0


@pytest.mark.parametrize("variant", ["sft", "dpo"])
def test_small_offline_variants_validate_on_the_rubric_validation_set(variant):
    run = validate(_config_module("small").get_config(variant))
    assert run.data.validation_files == ("bundled:small_if_validation.jsonl",)
    assert run.data.validation_format == "hir" and run.trainer.validate_every == 3


def _offline(kind="sft"):
    c = demo_config()
    rows = 2 if kind == "dpo" else 1
    c.train.objective.kind = kind
    c.data.update(format=kind, validation_files=["v.jsonl"], validation_format="hir")
    c.train.ppo.update(mini_batch_size=2 * rows, micro_batch_size=2)
    return c


@pytest.mark.parametrize("change, key", [
    (lambda c: c.data.update(format="hir"), "config.data.format='hir': must be 'sft'"),
    (lambda c: c.train.ppo.update(mini_batch_size=1, micro_batch_size=1), "config.train.ppo.mini_batch_size=1"),
    (lambda c: c.data.update(validation_format=""), "config.trainer.validate_every=4"),
    (lambda c: c.train.objective.update(kind="ppo"), "config.train.objective.kind='ppo'"),
])
def test_offline_rules_name_the_key(change, key):
    c = _offline()
    validate(c)
    change(c)
    with pytest.raises(ConfigError, match=key.replace("(", r"\(").replace(".", r"\.")):
        validate(c)


def test_a_dpo_pair_must_fit_one_micro_batch():
    c = _offline("dpo")
    validate(c)
    c.train.ppo.update(micro_batch_size=1)
    with pytest.raises(ConfigError, match=r"config\.train\.ppo\.micro_batch_size=1: must be even"):
        validate(c)


def test_rl_refuses_offline_data():
    c = demo_config()
    c.data.format = "dpo"
    with pytest.raises(ConfigError, match=r"config\.data\.format='dpo': holds given responses"):
        validate(c)


@pytest.mark.parametrize("kind, row, field", [("sft", {"prompt": "Hi"}, "response"),
                                               ("dpo", {"prompt": "Hi", "chosen": "Hello."}, "rejected")])
def test_a_missing_field_names_the_file_and_the_field(kind, row, field, tmp_path):
    path = write_jsonl(tmp_path / f"{kind}.jsonl", [row, row])
    with pytest.raises(DataError) as error:
        read_examples(path, kind)
    assert str(error.value).startswith(f"{path}: no usable example") and f"no '{field}'" in str(error.value)


def test_a_key_added_at_its_default_is_no_change_on_resume():
    defaults = base_config().to_dict()
    new = base_config().to_dict()
    old = base_config().to_dict()
    del old["train"]["objective"]  # a run recorded before the key existed
    assert changed_keys(old, new, defaults) == []
    new["train"]["objective"]["kind"] = "sft"
    assert changed_keys(old, new, defaults) == ["train.objective.kind"]
