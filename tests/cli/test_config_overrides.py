"""`--config.KEY=...` overrides of list and tuple keys, parsed as the CLIs parse them (herl_jax.cli_flags on
a fresh absl FlagValues, the real config files), and the one-line errors of a bad override or config file."""

from __future__ import annotations

import pytest
from absl import flags
from ml_collections import config_flags

from herl_jax.cli_errors import UsageError
from herl_jax.cli_flags import parse_flags
from herl_jax.config import validate
from tests.cli.helpers import REPO

DEMO, PAPER, EVALUATE = (str(REPO / "configs" / name) for name in ("demo.py", "paper.py", "evaluate.py"))


def parse(config: str, *overrides: str):
    """The config that `--config=config` and `overrides` give, through the CLIs' flag parsing."""
    argv = ["cli", f"--config={config}", *overrides]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "config", flag_values=flag_values, sys_argv=argv)
    parse_flags(argv, flag_values)
    return flag_values.config


@pytest.mark.parametrize("overrides, files", [
    (["--config.data.train_files=/data/hir16k.jsonl"], ["/data/hir16k.jsonl"]),  # the README's command
    (["--config.data.train_files=a.jsonl,b.jsonl"], ["a.jsonl", "b.jsonl"]),
    (["--config.data.train_files= a.jsonl , b.jsonl "], ["a.jsonl", "b.jsonl"]),
    (["--config.data.train_files=['a,1.jsonl', 'b.jsonl']"], ["a,1.jsonl", "b.jsonl"]),
    (["--config.data.train_files=('a.jsonl',)"], ["a.jsonl"]),
    (["--config.data.train_files=a.jsonl", "--config.data.train_files=b.jsonl,c.jsonl"],
     ["a.jsonl", "b.jsonl", "c.jsonl"]),
    (["--config.data.train_files="], []),
])
def test_list_keys_take_one_path_a_comma_list_or_a_literal(overrides, files):
    config = parse(DEMO, *overrides)
    assert config.data.train_files == files and isinstance(config.data.train_files, list)
    assert config.data.validation_files == []  # untouched


def test_an_empty_list_key_takes_paths():
    assert parse(DEMO, "--config.data.validation_files=v.jsonl").data.validation_files == ["v.jsonl"]


def test_the_paper_config_takes_the_readme_override():
    config = parse(f"{PAPER}:qwen2.5-7b,herl,if", "--config.data.train_files=/data/hir16k.jsonl",
                   "--config.model.source=/ckpt/Qwen2.5-7B-Instruct")
    assert list(config.data.train_files) == ["/data/hir16k.jsonl"]
    assert config.model.source == "/ckpt/Qwen2.5-7B-Instruct"


@pytest.mark.parametrize("value, ks", [("1,2,4", (1, 2, 4)), ("(1, 8)", (1, 8)), ("16", (16,))])
def test_tuple_items_take_the_type_of_the_keys_items(value, ks):
    config = parse(EVALUATE, f"--config.passk.ks={value}")
    assert config.passk.ks == ks and all(type(k) is int for k in config.passk.ks)


@pytest.mark.parametrize("config, override, message", [
    (EVALUATE, "--config.passk.ks=1,x", "--config.passk.ks: item 'x' is not of type int"),
    (EVALUATE, "--config.passk.ks=[1, 2.5]", "--config.passk.ks: item 2.5 is not of type int"),
    (DEMO, "--config.data.train_files=[a.jsonl", "flag --config.data.train_files=[a.jsonl: '[a.jsonl' is not"),
    (DEMO, "--config.data.train_files=a.jsonl,", "flag --config.data.train_files=a.jsonl,: 'a.jsonl,' has an empty"),
    (DEMO, "--config.herl.alpha=abc", "flag --config.herl.alpha=abc: could not convert string to float"),
    (DEMO, "--config.herl.alpah=0.1", "the config has no key 'alpah' (did you mean 'alpha'?)"),
    (DEMO, "--config.train.loss.dual_clip_c=abc", "flag --config.train.loss.dual_clip_c=abc: could not convert"),
    (DEMO, "--nosuchflag", "Unknown command line flag 'nosuchflag'"),
    (DEMO, "--config.rubrics.judge.model=gpt-4o", "--config.rubrics.judge.model: config.rubrics.judge is None"),
])
def test_a_bad_override_is_one_line_naming_it(config, override, message):
    with pytest.raises(UsageError) as error:
        parse(config, override)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("override, value", [([], None), (["--config.train.loss.dual_clip_c=3"], 3.0)])
def test_an_optional_number_off_by_default_can_be_set(override, value):
    """dual_clip_c is None (off) by default and the public code's 3.0 must be settable from a launch script."""
    config = parse(DEMO, *override)
    assert config.train.loss.dual_clip_c == value
    assert validate(config).learner.loss.dual_clip_c == value


def test_a_config_that_defines_the_judge_takes_its_keys():
    config = parse(f"{PAPER}:qwen2.5-7b,herl,medical", "--config.rubrics.judge.model=gpt-4o")
    assert config.rubrics.judge.model == "gpt-4o"


def test_a_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "nope.py"
    for overrides in ([], ["--config.herl.alpha=1"]):  # ml_collections fails at different moments
        with pytest.raises(UsageError, match=f"cannot load the config file: .*No such file.*{missing}"):
            parse(str(missing), *overrides)


def test_an_error_in_a_config_file_is_named_with_its_line(tmp_path):
    typo = tmp_path / "typo.py"
    typo.write_text("def get_config(:\n    pass\n")
    raises = tmp_path / "raises.py"
    raises.write_text("def get_config():\n    return {}['model']\n")
    with pytest.raises(UsageError, match=f"^{typo}, line 1: SyntaxError: "):
        parse(str(typo))
    with pytest.raises(UsageError, match=f"^{raises}, line 2: KeyError: 'model'"):
        parse(str(raises))
    with pytest.raises(UsageError, match=r"paper.py, line \d+: ValueError: .*expected MODEL,VARIANT,DATA"):
        parse(f"{PAPER}:qwen2.5-7b")


def test_a_bug_below_a_config_file_keeps_its_traceback(tmp_path, monkeypatch):
    (tmp_path / "herl_buggy_helper.py").write_text("def base():\n    return 1 / 0\n")
    config = tmp_path / "config.py"
    config.write_text("from herl_buggy_helper import base\n\ndef get_config():\n    return base()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ZeroDivisionError):  # not the user's mistake: not turned into one line
        parse(str(config))
