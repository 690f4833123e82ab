"""Checks of a model directory's files that run before anything is built from them.

A model directory is input like any other: a file may be truncated, hand-edited or made to
hurt. Everything that reads one (``PretrainedModel.from_pretrained``, the tokenizer and
vocabulary loaders, the ONNX tagger) reads its files through these checks, so that a bad file
is a CheckpointError naming the file, the key or tensor and what was expected - never a
traceback, a hang or a large allocation. This module is torch-free (the ONNX runtime uses it);
the checks of the weights against the model are in seqlstm.weights_file_checks.

Files. A file is read only if it is a regular file (a symlink to one is fine; a directory,
FIFO or device such as /dev/zero is not), and only up to a stated size, checked before
reading:

    MAX_CONFIG_BYTES      1 MiB    config.json, tokenizer/tokenizer.json, onnx_tagger.json
    MAX_VOCABULARY_BYTES  64 MiB   vocab/NAME.json, tokenizer/spm.model, crf.json

(a vocabulary of two million words or a SentencePiece model of 250,000 pieces is a few MB).
JSON nested too deeply for the parser is refused like any other invalid JSON.

Configs. `check_config_values` checks each value of a config's JSON against the type hints
of its dataclass, so a new config field needs no checking code of its own:

- ``int``: an integer (not true/false, not 16.0), ``float``: a finite number (an integer is
  taken as a float), ``bool``: true or false, ``str``: a string, ``Literal[...]``: one of
  its values, ``X | None``: null or an X, ``tuple[...]``/``list[...]``: a JSON list of such
  values (a tuple field gets a tuple), ``dict[str, X]``: an object, a dataclass: an object
  checked the same way; ``Any`` and other hints take any JSON value.
- Every number, also inside a list, lies in ``[0, MAX_CONFIG_NUMBER]`` (2**24 = 16,777,216)
  unless its field declares another range with ``dataclasses.field(metadata={"range":
  (low, high)})``. Sizes that shape a tensor are held to the weights file's own shapes
  after this (seqlstm.weights_file_checks); the bound is what keeps the others (context and
  chunk lengths, decoding limits) from asking for unbounded work, and every size small
  enough that planning the model cannot overflow.

Finer rules (sizes >= 1, dropout in [0, 1), two language codes or none) are the config
class's own ``__post_init__``, which runs when the checked values are put together.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import stat
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from seqlstm.errors import CheckpointError

MAX_CONFIG_BYTES = 1 << 20
MAX_VOCABULARY_BYTES = 64 << 20
MAX_CONFIG_NUMBER = 1 << 24
RANGE_METADATA = "range"  # dataclasses.field(metadata={"range": (low, high)}), both included

_SHOWN_CHARS = 80  # of a bad value in a message


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, which must hold at most ``limit`` bytes.

    CheckpointError for a missing file, one that is not a regular file (directory, FIFO,
    device; checked on the opened file, so a swap after the check does not matter) and one
    over the limit, before anything is read. A FIFO is opened without waiting for a writer.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(f"{path}: not a regular file (a {_file_kind(info.st_mode)})")
        if info.st_size > limit:
            raise CheckpointError(
                f"{path}: {info.st_size} bytes, more than the {limit} a file of its kind may hold"
            )
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)  # bounded even if the file grew after fstat
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise CheckpointError(f"{path}: more than the {limit} bytes a file of its kind may hold")
    return data


def check_regular_file(path: Path) -> None:
    """CheckpointError unless ``path`` is a regular file (or a symlink to one), for files that
    a library opens itself (safetensors, onnxruntime): a FIFO would block it forever."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path}: not a regular file (a {_file_kind(mode)})")


def read_json(path: Path, limit: int) -> Any:
    """The JSON value of the UTF-8 file ``path`` (at most ``limit`` bytes, see read_limited);
    CheckpointError naming the file for anything that is not JSON, nesting too deep included.
    """
    data = read_limited(path, limit)
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise CheckpointError(f"{path}: not valid JSON ({reason})") from None


def check_config_values(
    config_class: type, values: Mapping[str, Any], path: Path, prefix: str = "config"
) -> dict[str, Any]:
    """``values`` (a config's JSON object) checked against the fields of the dataclass
    ``config_class`` (see the module docstring), converted where the type asks (a list to a
    tuple, an integer to a float); keys it lacks are left to the caller. A value of the
    wrong type or range is a CheckpointError naming ``path``, the key (``prefix.key``), the
    value and what was expected.
    """
    fields = {field.name: field for field in dataclasses.fields(config_class) if field.init}
    hints = typing.get_type_hints(config_class)
    checked = {}
    for key, value in values.items():
        if key not in fields:
            continue  # the caller names unknown keys (or, reading part of a config, skips them)
        number_range = fields[key].metadata.get(RANGE_METADATA, (0, MAX_CONFIG_NUMBER))
        try:
            checked[key] = _checked(value, hints[key], number_range, path, f"{prefix}.{key}")
        except _Mismatch as mismatch:
            raise CheckpointError(
                f"{path}: {prefix}.{key} must be {mismatch.expected}, got {_shown(value)}"
            ) from None
    return checked


def check_model_inputs(
    model_class: type, has_tokenizer: bool, vocabularies: list[str], path: Path
) -> None:
    """CheckpointError naming ``path`` (config.json) when its ``tokenizer`` flag or its list of
    vocabularies does not give ``model_class``'s constructor what its signature asks for: a
    tokenizer where the ``tokenizer`` parameter's type does not admit None, none where it is
    None, each vocabulary whose parameter has no default; and no vocabulary twice."""
    repeated = sorted({name for name in vocabularies if vocabularies.count(name) > 1})
    if repeated:
        raise CheckpointError(f"{path}: vocabularies lists {repeated} more than once")
    parameters = inspect.signature(model_class.__init__).parameters
    try:
        hints = typing.get_type_hints(model_class.__init__)
    except (NameError, TypeError):  # a hint that does not resolve says nothing here
        hints = {}
    name = model_class.__name__
    if "tokenizer" in hints:
        hint = hints["tokenizer"]
        if not has_tokenizer and not _admits_none(hint):
            raise CheckpointError(
                f'{path}: "tokenizer" is false, but a {name} needs a tokenizer (tokenizer/)'
            )
        if has_tokenizer and hint is type(None):
            raise CheckpointError(f'{path}: "tokenizer" is true, but a {name} takes none')
    for vocabulary in getattr(model_class, "vocabulary_names", ()):
        parameter = parameters.get(vocabulary)
        required = parameter is not None and parameter.default is inspect.Parameter.empty
        if required and vocabulary not in vocabularies:
            raise CheckpointError(
                f"{path}: vocabularies lacks {vocabulary!r}, which a {name} needs "
                f"(vocab/{vocabulary}.json)"
            )


class _Mismatch(Exception):
    """A value that does not fit a type hint; ``expected`` says what would."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _checked(value: Any, hint: Any, number_range: tuple, path: Path, where: str) -> Any:
    """``value`` as the field of type ``hint`` takes it, or _Mismatch."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if hint is None or hint is type(None):
        if value is None:
            return None
        raise _Mismatch("null")
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return _checked(value, arm, number_range, path, where)
            except _Mismatch:
                continue
        raise _Mismatch(" or ".join(_description(arm, number_range) for arm in args))
    if origin is Literal:
        if any(type(value) is type(choice) and value == choice for choice in args):
            return value
        raise _Mismatch(_description(hint, number_range))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch(_description(hint, number_range))
    if hint is int or hint is float:
        kinds = int if hint is int else int | float
        low, high = number_range
        # an int is compared as it is: 10**400 has no float, and is no less out of range
        if (
            isinstance(value, kinds)
            and not isinstance(value, bool)
            and (isinstance(value, int) or math.isfinite(value))
            and low <= value <= high
        ):
            return float(value) if hint is float else value
        raise _Mismatch(_description(hint, number_range))
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch(_description(hint, number_range))
    if origin in (tuple, list) or hint in (tuple, list):
        fixed = origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis)
        if not isinstance(value, list) or (fixed and len(value) != len(args)):
            raise _Mismatch(_description(hint, number_range))
        item_hints = args if fixed else [args[0] if args else Any] * len(value)
        try:
            items = [
                _checked(item, item_hint, number_range, path, where)
                for item, item_hint in zip(value, item_hints, strict=True)
            ]
        except _Mismatch:  # said of the whole list, which the message shows
            raise _Mismatch(_description(hint, number_range)) from None
        return tuple(items) if (origin or hint) is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _Mismatch(_description(hint, number_range))
        value_hint = args[1] if len(args) == 2 else Any
        try:
            return {k: _checked(v, value_hint, number_range, path, where) for k, v in value.items()}
        except _Mismatch:
            raise _Mismatch(_description(hint, number_range)) from None
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise _Mismatch(_description(hint, number_range))
        known = {field.name for field in dataclasses.fields(hint) if field.init}
        unknown = sorted(value.keys() - known)
        if unknown:
            raise _Mismatch(f"an object of the fields of {hint.__name__}, without {unknown}")
        values = check_config_values(hint, value, path, where)
        try:
            return hint(**values)
        except (TypeError, ValueError) as err:
            raise _Mismatch(f"a valid {hint.__name__} ({err})") from None
    return value  # a hint this module does not know: the dataclass itself decides


def _description(hint: Any, number_range: tuple) -> str:
    """What a value of type ``hint`` looks like in JSON, for messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    low, high = number_range
    if hint is None or hint is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_description(arm, number_range) for arm in args)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(choice) for choice in args)
    if hint is bool:
        return "true or false"
    if hint is int:
        return f"an integer in [{low}, {high}]"
    if hint is float:
        return f"a finite number in [{low}, {high}]"
    if hint is str:
        return "a string"
    if origin in (tuple, list) or hint in (tuple, list):
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            parts = ", ".join(_description(arg, number_range) for arg in args)
            return f"a list of {len(args)} values: {parts}"
        item = _description(args[0], number_range) if args else "any value"
        return f"a list, each item {item}"
    if origin is dict or hint is dict:
        each = f", each value {_description(args[1], number_range)}" if len(args) == 2 else ""
        return "an object" + each
    if dataclasses.is_dataclass(hint):
        return f"an object ({hint.__name__})"
    return getattr(hint, "__name__", str(hint))


def _admits_none(hint: Any) -> bool:
    if hint is None or hint is type(None) or hint is Any:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_admits_none(arm) for arm in typing.get_args(hint))
    return False


def _shown(value: Any) -> str:
    """``value`` as JSON for a message (NaN as NaN), cut to a readable length."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"
