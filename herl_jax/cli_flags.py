"""Command-line parsing shared by the CLIs: `--config.KEY=VALUE` overrides of list and tuple keys, and
one-line errors (herl_jax.cli_errors.UsageError) for every flag, argument or config file that is wrong.

A list or tuple key takes a comma-separated value, `--config.data.train_files=a.jsonl,b.jsonl` (one item:
`--config.data.train_files=a.jsonl`; nothing: `--config.data.validation_files=`), or a Python literal,
`--config.data.train_files="['a.jsonl', 'b.jsonl']"` (for an item with a comma in it). The flag may be
repeated: its items add up. Items take the type of the key's current items (int, float, bool or str), so
`--config.passk.ks=1,2,4` gives ints; the items of a key that is empty stay as written (strings).
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import traceback
from pathlib import Path
from typing import Any

from absl import flags
from ml_collections import ConfigDict, config_flags
from ml_collections.config_flags import tuple_parser
from ml_collections.config_flags.config_flags import is_config_flag

from herl_jax.cli_errors import UsageError, one_line

ITEM_TYPES = (bool, int, float, str)
_UNSET_SECTION = re.compile(r"Override (?P<key>[\w.-]+) can not be applied because field \"(?P<field>[\w-]+)\" is None")


class SequenceParser(tuple_parser.TupleParser):
    """Parses a list/tuple override into a tuple of items; ml_collections then treats the key like a tuple
    (a repeated flag adds items), and `parse_flags` gives it back its kind and item type."""

    def parse(self, argument: Any) -> tuple:
        if isinstance(argument, (list, tuple)):
            return tuple(argument)
        if argument is None:
            return ()
        text = str(argument).strip()
        if text[:1] in ("[", "("):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ValueError(f"{text!r} is not a Python list literal; quote each item, e.g. \"['a', 'b']\"")
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{text!r} is not a list")
            return tuple(value)
        items = tuple(item.strip() for item in text.split(",")) if text else ()
        if "" in items:
            raise ValueError(f"{text!r} has an empty item")
        return items

    def flag_type(self) -> str:
        return "comma-separated list"


def register_sequence_parsers() -> None:
    """Makes ml_collections parse list and tuple overrides with SequenceParser (idempotent)."""
    for kind in (list, tuple):
        config_flags.register_flag_parser_for_type(kind, SequenceParser())


def define_config_file(name: str, default: str | None, help_string: str):
    """ml_collections' DEFINE_config_file with list/tuple keys overridable: a config flag with a default
    loads it, and makes its override flags, as it is defined, so the parsers are registered first."""
    register_sequence_parsers()
    return config_flags.DEFINE_config_file(name, default, help_string)


def parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
    """absl's parsing of `argv` (an absl `flags_parser`): returns the arguments left over; raises UsageError
    in one line for an unknown flag or config key, a bad value, or a config file that cannot be loaded."""
    register_sequence_parsers()
    config_paths = _config_file_paths(argv, flag_values)
    try:
        rest = flag_values(argv)
    except Exception as e:  # noqa: BLE001 - what the user caused becomes a UsageError, the rest is re-raised
        message = _config_file_error(e, config_paths) or _flag_error(e, argv)
        if message is None:
            raise
        raise UsageError(message) from e
    for name in _config_flag_names(flag_values):
        config = flag_values[name].value
        failure = getattr(config, "__dict__", {}).get("_error")  # ml_collections defers a failed load
        if failure is not None:
            raise UsageError(f"--{name}: cannot load the config file: {_last_line(failure)}")
        if isinstance(config, ConfigDict):
            _restore_sequences(flag_values, name, config)
    return rest


def _config_flag_names(flag_values: flags.FlagValues) -> list[str]:
    return [name for name in flag_values if is_config_flag(flag_values[name])]


def _config_file_paths(argv: list[str], flag_values: flags.FlagValues) -> set[Path]:
    """The config files named by `--NAME=FILE[:ARG]` / `--NAME FILE[:ARG]` for each config flag NAME."""
    paths = set()
    for name in _config_flag_names(flag_values):
        for i, arg in enumerate(argv):
            value = arg.split("=", 1)[1] if arg.startswith(f"--{name}=") else None
            if arg == f"--{name}" and i + 1 < len(argv):
                value = argv[i + 1]
            if value:
                paths.add(Path(value.split(":", 1)[0]).resolve())
    return paths


def _config_file_error(error: BaseException, config_paths: set[Path]) -> str | None:
    """"FILE, line N: Type: message" when the error (or one it arose from) was raised by a config file's own
    code, or is a syntax error in one; an error raised deeper (in a module it imports) is not the user's."""
    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    for cause in reversed(chain):  # the original error first
        frames = traceback.extract_tb(cause.__traceback__)
        if isinstance(cause, SyntaxError) and cause.filename:
            place, text = (cause.filename, cause.lineno), cause.msg
        elif frames:
            place, text = (frames[-1].filename, frames[-1].lineno), str(cause)
        else:
            continue
        if Path(place[0]).resolve() in config_paths:
            return f"{place[0]}, line {place[1]}: {type(cause).__name__}: {one_line(text)}"
    return None


def _flag_error(error: BaseException, argv: list[str]) -> str | None:
    """The one-line message of a flag error, an unknown config key or a config file that cannot be read."""
    if isinstance(error, flags.Error):
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return lines[0] if len(lines) < 2 else f"{lines[0]} {lines[-1]}"  # ml_collections embeds a traceback
    if isinstance(error, (AttributeError, KeyError)):  # ml_collections: an override of a key the config lacks
        overrides = " ".join(a for a in argv if a.startswith("--config."))
        message = str(error.args[0] if error.args else error)
        key = re.search(r"[\w.-]+", message)  # ml_collections quotes the missing key, then may suggest one
        hint = re.search(r'Did you mean "([^"]+)"', message)
        suggestion = f" (did you mean {hint.group(1)!r}?)" if hint else ""
        return f"the config has no key {key.group(0) if key else message!r}{suggestion}; overrides given: {overrides}"
    unset = _UNSET_SECTION.search(str(error)) if isinstance(error, ValueError) else None
    if unset:  # ml_collections: an override below a section the config sets to None (e.g. rubrics.judge)
        key, parts = unset.group("key"), unset.group("key").split(".")
        section = ".".join(parts[:parts.index(unset.group("field")) + 1])
        return (f"--config.{key}: config.{section} is None in this config, so its keys cannot be set one by one; "
                f"define the section in the config file (a dict of its keys) to override them")
    if isinstance(error, OSError):  # ml_collections: an override given for a config file it could not load
        return f"cannot load the config file: {_last_line(error)}"
    return None


def _last_line(error: BaseException) -> str:
    """ml_collections' load errors list the paths it tried; the last line is the reason."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _restore_sequences(flag_values: flags.FlagValues, name: str, config: ConfigDict) -> None:
    """Gives the items of each overridden list/tuple key the type of the key's former items (a ConfigDict
    keeps a key's kind, list or tuple, itself)."""
    for flag_name in flag_values:
        flag = flag_values[flag_name]
        former = getattr(flag, "default_unparsed", None)  # the key's value in the config file
        if not (flag_name.startswith(f"{name}.") and flag.present and isinstance(former, (list, tuple))):
            continue
        item_type = _item_type(former)
        try:
            items = [_convert(item, item_type) for item in flag.value]
        except ValueError as e:
            raise UsageError(f"--{flag_name}: {e}") from None
        *parents, last = flag_name[len(name) + 1:].split(".")
        node = config
        for part in parents:
            node = node[part]
        node[last] = items


def _item_type(default: list | tuple) -> type | None:
    """The one type of a sequence's items (bool, int, float or str), None when empty or mixed."""
    types = {type(item) for item in default}
    only = types.pop() if len(types) == 1 else None
    return only if only in ITEM_TYPES else None


def _convert(item: Any, item_type: type | None) -> Any:
    if item_type is None or isinstance(item, item_type) or (item_type is float and type(item) is int):
        return item
    if not isinstance(item, str):
        raise ValueError(f"item {item!r} is not of type {item_type.__name__}")
    if item_type is bool:
        return flags.BooleanParser().parse(item)
    try:
        return item_type(item)
    except ValueError:
        raise ValueError(f"item {item!r} is not of type {item_type.__name__}") from None


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise UsageError (one line, through run_cli) instead of printing the usage."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def number(kind: type, low: float | None = None, high: float | None = None, *, above: bool = False):
    """An argparse `type` for a finite int or float in [low, high] (`above`: low itself excluded)."""
    rules = [f"{'>' if above else '>='} {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
    rule = " and ".join(r for r in rules if r)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an int' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (low is not None and (value <= low if above else value < low)) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} must be {rule}")
        return value

    parse.__name__ = kind.__name__
    return parse
