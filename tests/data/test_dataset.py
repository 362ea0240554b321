"""`load_dataset` from the `data` sub-config: the bundled default, files, validation, errors."""

import json

import pytest

from herl_jax.data import BUNDLED_IF_TRAIN, DataConfig, DataError, default_config, load_dataset, resolve_path


def write_hir(path, ids):
    rows = [{"id": i, "prompt": f"Describe item {i}.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
            for i in ids]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_default_config_loads_the_bundled_set():
    config = default_config()
    assert set(config.keys()) == {
        "train_files", "validation_files", "format", "validation_format", "max_bad_fraction", "validation_fraction",
        "seed", "shuffle",
    }
    assert list(config.train_files) == [BUNDLED_IF_TRAIN]
    dataset = load_dataset(config)
    lines = resolve_path(BUNDLED_IF_TRAIN).read_text().count("\n")
    assert len(dataset.train) + len(dataset.validation) == lines
    assert 0.03 * lines < len(dataset.validation) < 0.07 * lines
    assert dataset.stats[0].kept == lines and dataset.stats[0].bad == 0
    assert all(e.template == "instruction" and not any(i.judged for i in e.rubric.items) for e in dataset.train)
    batch = next(dataset.train_batches(batch_size=4))
    assert len(batch) == 4


def test_files_from_a_plain_mapping_with_held_out_files(tmp_path):
    train = write_hir(tmp_path / "train.jsonl", ["a", "b", "c", "d"])
    held_out = write_hir(tmp_path / "val.jsonl", ["v1", "v2"])
    dataset = load_dataset({"train_files": [train], "validation_files": held_out, "format": "hir"})  # str: one file
    assert [e.id for e in dataset.train] == ["a", "b", "c", "d"]  # no split when held-out files are given
    assert [e.id for e in dataset.validation] == ["v1", "v2"]
    assert [s.path for s in dataset.stats] == [train, held_out]


def test_ids_must_be_unique_across_files(tmp_path):
    first = write_hir(tmp_path / "one.jsonl", ["a", "b", "c"])
    second = write_hir(tmp_path / "two.jsonl", ["c", "d", "e", "f"])
    dataset = load_dataset({"train_files": [first, second], "validation_fraction": 0.0, "max_bad_fraction": 0.3})
    assert [e.id for e in dataset.train] == ["a", "b", "c", "d", "e", "f"]
    assert dict(dataset.stats[1].skipped) == {"duplicate_id": 1}
    with pytest.raises(DataError, match="two.jsonl"):
        load_dataset({"train_files": [first, second], "max_bad_fraction": 0.2})


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="unknown data config keys: \\['batch'\\]"):
        DataConfig.from_config({"batch": 3})
    with pytest.raises(ValueError, match="format=.csv."):
        DataConfig(format="csv")
    with pytest.raises(ValueError, match="max_bad_fraction=1.5"):
        DataConfig(max_bad_fraction=1.5)
    with pytest.raises(ValueError, match="validation_fraction=-0.1"):
        DataConfig(validation_fraction=-0.1)
    with pytest.raises(ValueError, match=r"train_files=\(\)"):
        DataConfig(train_files=[])
