"""Any step's policy out of a real run (issue 25 item 2): `herl_jax.export WORKDIR --step N|latest|best`,
`herl_jax.evaluate --checkpoint NAME=WORKDIR@STEP` and `trainer.export_best`.

References, independent of the code under test: each checkpoint's parameters as orbax itself restores the
saved train state (no target tree), transformers' own Llama on the exported directory, the best step by hand
from the scripted validation rewards, and the evaluation of the step's HF export through the ordinary path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from herl_jax.training.checkpoints import CheckpointError
from herl_jax.training.trainer import Trainer
from tests.cli.helpers import assert_one_line_error, run
from tests.trainer.conftest import config_arg
from tests.trainer.tiny_config import get_config

# The validation reward each step reports (scripted: a random tiny model scores 0 everywhere). The best is
# step 2: step 3 only ties it, and the earliest of equals is the best.
VALIDATION = {1: 0.25, 2: 0.5, 3: 0.5}
BEST = 2


class ScriptedValidation(Trainer):
    def held_out_metrics(self):
        return {"validation/reward_mean": VALIDATION[self.step]}


@pytest.fixture(scope="module")
def workdir(tiny_checkpoint, hir_files, tmp_path_factory) -> Path:
    """A finished 3-step run, validated and checkpointed at every step, keeping the best step's export."""
    c = get_config(config_arg(tiny_checkpoint, hir_files, "hir"))
    c.trainer.update(steps=3, validate_every=1, checkpoint_every=1, keep_checkpoints=3, export_best=True)
    directory = tmp_path_factory.mktemp("export_run")
    assert ScriptedValidation(c, directory).run() == 3
    return directory


def checkpoint_params(workdir: Path, step: int) -> dict[str, np.ndarray]:
    """'embed', 'layers/attn/q_proj', ... -> the parameter saved in checkpoint `step`, as orbax restores it."""
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        saved = checkpointer.restore(workdir / "checkpoints" / str(step) / "state")
    return {"/".join(str(k.key) for k in path[:-1]): np.asarray(x)  # [:-1]: each Variable's "value"
            for path, x in jax.tree_util.tree_flatten_with_path(saved["params"])[0]}


def exported_params(directory: Path) -> dict[str, np.ndarray]:
    """The same names -> the parameters our loader reads back from a HF directory."""
    from flax import nnx

    from herl_jax.models import load_model

    params = nnx.state(load_model(directory), nnx.Param).to_pure_dict()
    return {"/".join(str(k.key) for k in path): np.asarray(x)
            for path, x in jax.tree_util.tree_flatten_with_path(params)[0]}


def assert_same_params(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def export(workdir: Path, step: str, output: Path, env: dict):
    return run(["-m", "herl_jax.export", str(workdir), "--step", step, "--output", str(output)], env)


def test_export_best_holds_the_best_validation_steps_policy(workdir):
    record = json.loads((workdir / "export_best" / "herl_export.json").read_text())
    assert record == {"workdir": str(workdir), "step": BEST, "validation/reward_mean": VALIDATION[BEST]}
    best = checkpoint_params(workdir, BEST)
    assert_same_params(exported_params(workdir / "export_best"), best)
    later = checkpoint_params(workdir, 3)
    assert any(not np.array_equal(best[k], later[k]) for k in best)  # a step later is another policy
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".")] == []  # no partial folder left


def test_exported_step_is_its_checkpoint_and_transformers_agrees(workdir, tiny_checkpoint, subprocess_env, tmp_path):
    import jax.numpy as jnp
    import torch
    from flax import nnx
    from transformers import AutoModelForCausalLM

    from herl_jax.models import Decoder, ModelConfig

    output = tmp_path / "step1"
    result = export(workdir, "1", output, subprocess_env)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = checkpoint_params(workdir, 1)
    assert_same_params(exported_params(output), saved)
    assert json.loads((output / "herl_export.json").read_text()) == {"workdir": str(workdir), "step": 1}
    assert (output / "tokenizer.json").exists()

    # Our decoder on the checkpoint's parameters (built here from orbax's tree) against transformers' Llama.
    cfg = ModelConfig.from_json_file(tiny_checkpoint / "config.json")
    graphdef, state = nnx.split(nnx.eval_shape(lambda: Decoder(cfg)))
    tree = state.to_pure_dict()
    for name, value in saved.items():
        *parents, leaf = name.split("/")
        node = tree
        for key in parents:
            node = node[key]
        node[leaf] = jnp.asarray(value)
    nnx.replace_by_pure_dict(state, tree)
    ours = nnx.merge(graphdef, state)
    ids = np.array([[1, 504, 3120, 28, 9107, 42, 17, 7786, 2, 311]], np.int32)
    expected = np.asarray(ours(jnp.asarray(ids), jnp.ones_like(jnp.asarray(ids))))
    reference = AutoModelForCausalLM.from_pretrained(str(output), dtype=torch.float32).eval()
    with torch.no_grad():
        got = reference(input_ids=torch.as_tensor(ids, dtype=torch.long)).logits.numpy()
    assert got.shape == expected.shape == (1, ids.shape[1], 49152)
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_latest_and_best_name_the_steps_the_run_says(workdir):
    from herl_jax.training.run_policy import find_checkpoint

    assert find_checkpoint(workdir, "latest").step == 3
    assert find_checkpoint(workdir, "best").step == max(VALIDATION, key=lambda s: (VALIDATION[s], -s)) == BEST


def test_best_without_a_validated_checkpoint_is_one_line(tmp_path):
    """The best validation (step 2) has no checkpoint left, and no checkpointed step was validated."""
    from herl_jax.training.run_policy import find_checkpoint

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "checkpoints" / "3").mkdir(parents=True)
    (tmp_path / "metrics.jsonl").write_text('{"step": 2, "validation/reward_mean": 0.5}\n{"step": 3}\n')
    with pytest.raises(CheckpointError, match=r"no checkpointed step of .* has a validation/reward_mean .*"
                                              r"\(checkpoints: 3; validated steps: 2\)"):
        find_checkpoint(tmp_path, "best")


def test_bad_input_is_refused_before_anything_loads(workdir, tmp_path):
    from herl_jax import export as cli
    from herl_jax.cli_errors import UsageError
    from herl_jax.own_files import LinkedFileError

    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    new = str(tmp_path / "new")
    cases = [
        ([str(tmp_path / "nosuch"), "--step", "1", "--output", new], CheckpointError, "is not a run's workdir"),
        ([str(workdir), "--step", "7", "--output", new], CheckpointError,
         r"has no checkpoint of step 7 \(it has steps 1, 2, 3; or use latest, best\)"),
        ([str(workdir), "--step", "first", "--output", new], CheckpointError, "has no checkpoint of step first"),
        ([str(workdir), "--step", "1", "--output", str(full)], UsageError, "exists and is not an empty folder"),
        ([str(workdir), "--step", "1", "--output", str(link)], LinkedFileError, "is a symbolic link"),
    ]
    for argv, error, message in cases:
        with pytest.raises(error, match=message):
            cli.main(argv)
    assert not (tmp_path / "new").exists() and (full / "x").read_text() == "mine"


def test_a_corrupted_checkpoint_is_refused_in_one_line(workdir, subprocess_env, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    data = max((p for p in (copy / "checkpoints" / "2" / "state").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)  # the biggest file: array data
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    result = export(copy, "2", tmp_path / "out", subprocess_env)
    line = assert_one_line_error(result, f"checkpoint {copy / 'checkpoints' / '2'} is corrupt", status=1)
    assert data.relative_to(copy / "checkpoints" / "2").as_posix() in line  # names the file that changed
    assert not (tmp_path / "out").exists()
    assert export(copy, "1", tmp_path / "out", subprocess_env).returncode == 0  # the others are intact


def test_evaluate_reads_a_runs_checkpoint_as_its_export(workdir, hir_files, subprocess_env, tmp_path):
    """WORKDIR@best evaluates step 2 exactly as its HF export (WORKDIR/export_best) evaluates."""
    output = tmp_path / "eval"
    result = run(["-m", "herl_jax.evaluate", "--benchmarks", "heldout", f"--config.heldout.file={hir_files[1]}",
                  "--checkpoint", f"step={workdir}@best", "--checkpoint", f"exported={workdir / 'export_best'}",
                  "--limit", "2", "--output", str(output), "--config.greedy.max_new_tokens=8",
                  "--config.checkers.workers=1"], subprocess_env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((output / "step" / "summary.json").read_text())
    assert summary["source"] == f"{workdir}@{BEST}"  # `best` pinned to the step it was
    # (each record also carries its key, which names its own source's weights: left out of the comparison)
    records = {label: [{k: v for k, v in json.loads(line).items() if k != "key"}
                       for line in (output / label / "heldout" / "pass1.jsonl").open()]
               for label in ("step", "exported")}
    assert len(records["step"]) == 2 and records["step"] == records["exported"]

    missing = run(["-m", "herl_jax.evaluate", "--benchmarks", "heldout", f"--config.heldout.file={hir_files[1]}",
                   "--checkpoint", f"x={workdir}@9", "--output", str(tmp_path / "eval2")], subprocess_env)
    assert_one_line_error(missing, "has no checkpoint of step 9", status=1)
