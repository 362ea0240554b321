"""Config validation (issue 6 item 1): unknown keys and invalid values fail before any compute, naming the
key; every configs/paper.py combination validates."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys

import pytest

from herl_jax.config import ConfigError, base_config, validate
from herl_jax.training.run_record import redact
from herl_jax.training.trainer import Trainer
from tests.trainer.conftest import REPO
from tests.trainer.tiny_config import demo_config

MISSING_MODEL = "/nonexistent/herl-test-model"  # loading it would raise FileNotFoundError


def _paper_module():
    spec = importlib.util.spec_from_file_location("herl_paper_config", REPO / "configs" / "paper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _demo_without_model():
    c = demo_config()
    c.model.source = MISSING_MODEL
    return c


@pytest.mark.parametrize("arg", [",".join(p) for p in itertools.product(
    ("qwen2.5-7b", "llama3.2-3b", "qwen3-4b"), ("herl", "rlvr", "he", "naive_he"), ("if", "medical"))])
def test_every_paper_combination_validates(arg):
    c = _paper_module().get_config(arg)
    validate(c)
    assert c.rollout.n == (8 if arg.split(",")[1] == "rlvr" else 7)


@pytest.mark.parametrize("make", [base_config, demo_config], ids=["base", "demo"])
def test_base_and_demo_validate(make):
    validate(make())
    broken = make()  # the control: the same config with one rule broken fails, naming the key
    broken.rollout.n = 1
    with pytest.raises(ConfigError, match=r"rollout\.n"):
        validate(broken)


def test_a_valid_config_gets_past_validation_to_the_model():
    """The control for the tests below: with a valid config, the missing model is what fails."""
    with pytest.raises(FileNotFoundError, match="herl-test-model"):
        Trainer(_demo_without_model(), "/nonexistent/never-created")


@pytest.mark.parametrize("path", ["herl.alpah", "trainer.checkpoint_evry", "rollout.topp", "extra.section"])
def test_unknown_key_fails_before_any_compute(tmp_path, path):
    c = _demo_without_model()
    section, key = path.split(".")
    if section not in c:
        c[section] = {}
    c[section][key] = 1
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError, match=f"unknown config keys: .*'{path}'"):
        Trainer(c, workdir)
    assert not workdir.exists()  # nothing written, nothing loaded


INVALID = [
    ("herl.alpha", -0.1),
    ("train.loss.shaping_gamma", 0.0),
    ("train.loss.shaping_gamma", -1.0),
    ("rollout.top_p", 0.0),
    ("rollout.top_p", 1.5),
    ("revision.top_p", -0.5),
    ("rollout.n", 1),
    ("train.ppo.mini_batch_size", 7),  # the demo's batch is 2 prompts x (4 + 1) = 10 rows
    ("train.ppo.micro_batch_size", 4),  # does not divide the mini-batch of 10
    ("trainer.checkpoint_every", 0),
    ("model.dtype", "float8"),
    # Non-finite values where a finite one is needed (issue 13: alpha=inf trained NaN to "FINISHED").
    ("herl.alpha", float("inf")),
    ("train.loss.shaping_gamma", float("inf")),
    ("train.loss.kl_coef", float("nan")),
    ("rollout.temperature", float("nan")),
    ("train.optim.lr", float("inf")),
    ("train.optim.b2", float("nan")),
    ("train.optim.eps", float("inf")),
    ("train.optim.weight_decay", float("nan")),
    ("trainer.max_nonfinite_steps", 0),
    ("trainer.max_empty_steps", 0),
    ("trainer.log_samples_every", -2),
    ("trainer.log_samples_groups", 0),
]


@pytest.mark.parametrize("key,value", INVALID)
def test_invalid_value_fails_before_any_compute_naming_the_key(tmp_path, key, value):
    c = _demo_without_model()
    *parents, leaf = key.split(".")
    section = c
    for name in parents:
        section = section[name]
    section[leaf] = value
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError) as error:
        Trainer(c, workdir)
    assert str(error.value).startswith(f"config.{key}=")
    assert not workdir.exists()


def test_prompts_per_step_must_split_evenly_over_the_processes(tmp_path, monkeypatch):
    import jax

    monkeypatch.setattr(jax, "process_count", lambda: 3)  # the demo's 2 prompts per step cannot be split
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"^config.trainer.prompts_per_step=2: .* processes \(3\)"):
        Trainer(_demo_without_model(), workdir)
    assert not workdir.exists()


def test_batch_rule_follows_the_group_size():
    """RLVR groups have n members, HeRL's n + 1: the same mini-batch is valid for one and not the other."""
    c = demo_config()  # 2 prompts x (4 + 1) = 10 rows, mini-batch 10
    c.herl.variant = "rlvr"
    with pytest.raises(ConfigError, match="train.ppo.mini_batch_size.*8 rows"):
        validate(c)
    c.train.ppo.update(mini_batch_size=8, micro_batch_size=4)
    validate(c)


def _cli(tmp_path, *overrides):
    workdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "herl_jax.train", "--config", str(REPO / "configs" / "demo.py"),
         "--workdir", str(workdir), f"--config.model.source={MISSING_MODEL}", *overrides],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env=dict(os.environ, JAX_PLATFORMS="cpu", HF_HUB_OFFLINE="1"))
    return result, workdir


def test_cli_unknown_override_fails_naming_the_key(tmp_path):
    result, workdir = _cli(tmp_path, "--config.herl.alpah=0.1")
    assert result.returncode == 2  # a command-line error (herl_jax.cli_errors)
    assert result.stderr.strip() == (  # one line, no traceback
        "error: the config has no key 'alpah' (did you mean 'alpha'?); "
        f"overrides given: --config.model.source={MISSING_MODEL} --config.herl.alpah=0.1")
    assert not workdir.exists()  # rejected while parsing the flags, before the trainer starts


def test_cli_missing_model_is_one_line(tmp_path):
    result, _ = _cli(tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and MISSING_MODEL in last  # says what is missing, in one line
    assert "Traceback" not in result.stderr


def test_cli_invalid_override_fails_naming_the_key(tmp_path):
    result, workdir = _cli(tmp_path, "--config.herl.alpha=-0.1")
    assert result.returncode == 1
    assert "error: config.herl.alpha=-0.1: must be" in result.stderr
    assert "herl-test-model" not in result.stderr  # the model was never looked for
    assert not (workdir / "config.json").exists()


def test_redact_hides_secret_values_and_keeps_key_names():
    tree = {"rubrics": {"judge": {"api_key": "sk-1", "api_key_env": "MY_KEY", "base_url": "http://x"}},
            "hub": {"token": "hf_2", "password": None, "secret": "s3", "tokens": 5}, "other": "sk-visible"}
    assert redact(tree) == {
        "rubrics": {"judge": {"api_key": "<redacted>", "api_key_env": "MY_KEY", "base_url": "http://x"}},
        "hub": {"token": "<redacted>", "password": None, "secret": "<redacted>", "tokens": 5}, "other": "sk-visible"}


def test_samples_are_logged_at_each_validation_step_by_default():
    from herl_jax.training.run_config import TrainerSection

    def steps(**trainer):
        section = TrainerSection(**trainer)
        return [step for step in range(1, 13) if section.logs_samples_at(step)]

    assert steps(validate_every=4) == [4, 8, 12]  # log_samples_every=-1
    assert steps(validate_every=0) == []
    assert steps(validate_every=4, log_samples_every=3) == [3, 6, 9, 12]
    assert steps(validate_every=4, log_samples_every=0) == []


def test_a_wandb_project_without_the_wandb_package_fails_before_the_model(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else find_spec(name, *a))
    c = _demo_without_model()
    c.trainer.wandb_project = "herl"
    with pytest.raises(ConfigError, match=r"^config\.trainer\.wandb_project='herl': .*pip install 'herl-jax\[wandb\]'"):
        Trainer(c, tmp_path / "run")  # the model source is missing too: the package is checked first
