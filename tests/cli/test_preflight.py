"""Issue 13 item 6: what can be checked before the weights load is checked before they load. Each case runs the
real `train` (or `chat`) on the tiny model and asserts one `error:` line naming the key, and that nothing heavy
happened: the trainer's "loaded the policy" log line never came, and no checkpoint directory was made (the
step never ran), measured without timing."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.cli.helpers import assert_one_line_error, run
from tests.cli.judged_config import KEY_ENV
from tests.trainer import conftest as trainer_fixtures
from tests.trainer.conftest import config_arg

TRAIN, CHAT = ["-m", "herl_jax.train"], ["-m", "herl_jax.chat"]
TINY = "tests/trainer/tiny_config.py"
LOADED = "loaded the policy from"  # the trainer's log line right after load_policy
JUDGED = "tests/cli/judged_config.py"  # the tiny config with a judge whose key is read from $KEY_ENV

rar_files = trainer_fixtures.rar_files  # training rows with judged rubric items


def _train(tmp_path, env, checkpoint, files, data_format, *flags, config_file: str = TINY):
    workdir = tmp_path / "w"
    result = run([*TRAIN, "--config", f"{config_file}:{config_arg(checkpoint, files, data_format)}", "--workdir",
                  str(workdir), *flags], env)
    return result, workdir


def _assert_refused_before_loading(result, workdir, needle: str) -> None:
    assert_one_line_error(result, needle, status=1)
    assert LOADED not in result.stderr
    assert not (workdir / "checkpoints").exists() and not (workdir / "metrics.jsonl").exists()


def test_the_loaded_marker_is_what_a_good_run_logs(tmp_path, subprocess_env, tiny_checkpoint, hir_files):
    """The markers the other cases rely on do appear when the checks pass (a 1-step run)."""
    result, workdir = _train(tmp_path, subprocess_env, tiny_checkpoint, hir_files, "hir",
                             "--config.trainer.steps=1", "--config.trainer.validate_every=0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert LOADED in result.stderr and (workdir / "checkpoints").exists()


@pytest.mark.parametrize("flags, needle", [
    (["--config.model.dtype=float16"], "config.model.dtype='float16'"),
    (["--config.parallel.fsdp=4"], "parallel.fsdp=4"),
    (["--config.rollout.max_new_tokens=1000"], "config.rollout.max_new_tokens=1000"),
    (["--config.revision.max_prompt_len=1020"], "config.revision.max_new_tokens=8"),
    (["--config.data.format=rar"], "no usable example"),  # HIR rows read as RaR: a data error, before the weights
    # Issue 27: failed after the weights loaded, in the data iterator (the tiny train set has 8 examples).
    (["--config.trainer.prompts_per_step=10"], "config.trainer.prompts_per_step=10: more than the 8 training"),
    # Issue 27: ran until the host ran out of memory (2 prompts x 10^12 rows: the sampler's host arrays alone
    # are petabytes), though the memory plan knows it cannot fit. The mesh is known: after the mesh line.
    (["--config.rollout.n=1000000000000", "--config.train.ppo.mini_batch_size=2000000000002",
      "--config.train.ppo.micro_batch_size=2"], "cannot fit in memory: it needs at least"),
])
def test_train_refuses_before_loading(tmp_path, subprocess_env, tiny_checkpoint, hir_files, flags, needle):
    result, workdir = _train(tmp_path, subprocess_env, tiny_checkpoint, hir_files, "hir", *flags)
    _assert_refused_before_loading(result, workdir, needle)
    if "max_new_tokens" in needle:
        assert "1024" in result.stderr  # the tiny model's max_position_embeddings, read from its config.json


@pytest.mark.parametrize("edit", ["a row added", "a row changed in place"])
def test_a_data_file_changed_since_the_checkpoint_is_refused_before_loading(tmp_path, subprocess_env,
                                                                             tiny_checkpoint, hir_files, edit):
    """A checkpointed run whose training file then changes (a row added: an iterator traceback after the weights
    loaded; a row edited in place, as many rows: resumed silently) is refused in one line naming WORKDIR/data.json
    and the file, before the weights load; the checkpoint is left as it was."""
    train = tmp_path / "train.jsonl"
    train.write_text(hir_files[0].read_text())
    files = (train, hir_files[1])
    first, workdir = _train(tmp_path, subprocess_env, tiny_checkpoint, files, "hir", "--config.trainer.steps=1",
                            "--config.trainer.validate_every=0")
    assert first.returncode == 0, first.stderr[-3000:]
    rows = train.read_text().splitlines()
    if edit == "a row added":
        rows.append(rows[0].replace(json.loads(rows[0])["id"], "added-row"))
    else:
        rows[3] = rows[3].replace("Say something", "Write a line")
        assert rows[3] != hir_files[0].read_text().splitlines()[3]
    train.write_text("\n".join(rows) + "\n")

    result, _ = _train(tmp_path, subprocess_env, tiny_checkpoint, files, "hir", "--config.trainer.steps=2",
                       "--config.trainer.validate_every=0")
    line = assert_one_line_error(result, f"{workdir / 'data.json'}: the train data differ", status=1)
    assert str(train) in line and ("then train: 8 examples" in line) and (
        "now train: 9 examples" if edit == "a row added" else "now train: 8 examples") in line
    assert LOADED not in result.stderr
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == ["1"]


def test_judged_rubric_items_need_a_judge(tmp_path, subprocess_env, tiny_checkpoint, rar_files):
    result, workdir = _train(tmp_path, subprocess_env, tiny_checkpoint, rar_files, "rar")
    _assert_refused_before_loading(result, workdir, "config.rubrics.judge=None")
    assert "judged rubric items" in result.stderr


@pytest.mark.parametrize("value", [None, ""])
def test_the_judge_key_variable_must_be_set(tmp_path, subprocess_env, tiny_checkpoint, rar_files, value):
    env = {k: v for k, v in subprocess_env.items() if k != KEY_ENV}
    if value is not None:
        env[KEY_ENV] = value
    result, workdir = _train(tmp_path, env, tiny_checkpoint, rar_files, "rar", config_file=JUDGED)
    _assert_refused_before_loading(result, workdir, f"config.rubrics.judge.api_key_env='{KEY_ENV}'")


def test_chat_refuses_a_prompt_longer_than_the_context(subprocess_env, tiny_checkpoint):
    long_message = "word " * 1100  # > 1024 tokens, the tiny model's context window
    result = run([*CHAT, long_message, "--model", str(tiny_checkpoint), "--max-new-tokens", "4"], subprocess_env)
    line = assert_one_line_error(result, "1024", status=2)
    assert "message 1" in line and "--max-new-tokens" in line


def test_chat_refuses_replies_that_cannot_fit_in_memory(subprocess_env, tiny_checkpoint):
    result = run([*CHAT, "hello", "--model", str(tiny_checkpoint), "--n", str(10**13), "--max-new-tokens", "4"],
                 subprocess_env)
    line = assert_one_line_error(result, "cannot fit in memory", status=2)
    assert "chat call's 10000000000000 rows x 4 tokens" in line and "--n" in line


def test_chat_answers_a_prompt_over_the_samplers_default_limit_that_the_context_holds(tmp_path, subprocess_env,
                                                                                      tiny_checkpoint):
    """Issue 27: a prompt over SamplingConfig's default max_prompt_len (2,048 tokens) failed after the model
    loaded, with no flag for it; chat now sizes the limit from the prompts it checked against the context. The
    tiny model with a 4,096-token context (its config.json; RoPE weights do not depend on it)."""
    model = tmp_path / "long_context"
    shutil.copytree(tiny_checkpoint, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4096}))
    result = run([*CHAT, "word " * 2100, "--model", str(model), "--max-new-tokens", "2"], subprocess_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^--- reply 1 \((stop|length), [12] tokens\)$", result.stdout, re.MULTILINE), result.stdout
