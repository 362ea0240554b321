"""The writers of a run's files against real symbolic links: each refuses a link at its file in one line
(LinkedFileError, a UserError) and leaves the file it points at unchanged; a run name that climbs out of
tensorboard/ is refused; a plain file is replaced whole, with nothing left beside it."""

from __future__ import annotations

import pytest

from herl_jax.errors import UserError
from herl_jax.evaluation.report import write_report
from herl_jax.evaluation.store import ResultStore
from herl_jax.models import export_hf
from herl_jax.own_files import LinkedFileError, write_file
from herl_jax.training.checkpoints import CHECKSUM_FILE, write_checksums
from herl_jax.training.metrics_writer import MetricsWriter
from herl_jax.training.run_record import record_git_revision
from herl_jax.workdir_lock import WorkdirLock, WorkdirLockError
from tests.training.tiny import tiny_model

VICTIM = "the victim's own file\n"


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_text(VICTIM)
    yield path
    assert path.read_text() == VICTIM


def _planted(folder, name, victim):
    folder.mkdir(exist_ok=True)
    (folder / name).symlink_to(victim)
    return folder / name


def _refused(excinfo, link):
    assert isinstance(excinfo.value, UserError) and "\n" not in str(excinfo.value)
    assert str(excinfo.value).startswith(f"{link} is a symbolic link") and link.is_symlink()


@pytest.mark.parametrize("dangling", [False, True])
def test_the_lock_refuses_a_linked_lock_file(tmp_path, victim, dangling):
    link = _planted(tmp_path / "w", "herl.lock", tmp_path / "nowhere" if dangling else victim)
    with pytest.raises(WorkdirLockError, match="is a symbolic link") as excinfo:
        WorkdirLock(link.parent).acquire()
    assert "\n" not in str(excinfo.value) and link.is_symlink() and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("name", ["metrics.jsonl", "samples.jsonl"])
@pytest.mark.parametrize("resume_step", [None, 0, 3])
def test_metrics_and_samples_are_not_written_through_a_link(tmp_path, victim, resume_step, name):
    link = _planted(tmp_path / "w", name, victim)
    with pytest.raises(LinkedFileError) as excinfo:
        MetricsWriter(link.parent, resume_step=resume_step)
    _refused(excinfo, link)


@pytest.mark.parametrize("run_name", ["../x", "..", "", "a/b"])
def test_a_run_name_outside_tensorboard_is_refused(tmp_path, run_name):
    with pytest.raises(LinkedFileError, match="trainer.run_name"):
        MetricsWriter(tmp_path / "w", run_name=run_name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_git_revision_is_not_written_through_a_link(tmp_path, victim):
    link = _planted(tmp_path / "w", "git_revision.txt", victim)
    with pytest.raises(LinkedFileError) as excinfo:
        record_git_revision(link.parent)
    _refused(excinfo, link)


def test_evaluation_records_are_not_appended_through_a_link(tmp_path, victim):
    link = _planted(tmp_path / "out", "pass1.jsonl", victim)
    with pytest.raises(LinkedFileError) as excinfo:
        ResultStore(link).append([{"id": "a", "complete": True}])
    _refused(excinfo, link)


@pytest.mark.parametrize("name", ["results.json", "results.md"])
def test_the_evaluation_report_is_not_written_through_a_link(tmp_path, victim, name):
    link = _planted(tmp_path / "out", name, victim)
    with pytest.raises(LinkedFileError) as excinfo:
        write_report(link.parent)
    _refused(excinfo, link)


def test_an_export_is_not_written_through_a_link(tmp_path, victim):
    link = _planted(tmp_path / "export", "config.json", victim)
    with pytest.raises(LinkedFileError) as excinfo:
        export_hf(tiny_model(), link.parent)
    _refused(excinfo, link)


def test_checkpoint_checksums_are_not_written_through_a_link(tmp_path, victim, caplog):
    link = _planted(tmp_path / "7", CHECKSUM_FILE, victim)
    write_checksums(link.parent)  # a warning, as for any checksum file that cannot be written
    assert "is a symbolic link" in caplog.text and link.is_symlink()


def test_a_plain_file_is_replaced_whole_with_nothing_left_beside_it(tmp_path):
    (tmp_path / "config.json").write_text("old, and longer than the new text")
    write_file(tmp_path / "config.json", "new")
    write_file(tmp_path / "plot.png", b"\x89PNG")
    assert (tmp_path / "config.json").read_text() == "new" and (tmp_path / "plot.png").read_bytes() == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "plot.png"]
