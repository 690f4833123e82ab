"""A recipe's command line: every field of its config dataclass is an option.

A recipe's settings are one dataclass with defaults. `parse_recipe_args` turns every field
into an option (`--hidden-size 512` or `--hidden_size 512`) next to the common options

    --config NAME|FILE   --preset NAME   --print-config
    --dataset HUB_ID | --data-dir DIR   --out DIR   --seed N   --device auto|cpu|cuda|mps

and resolves each value with the precedence  dataclass default < config < explicit option.

A config is a shipped preset (a name: the recipe's ``configs/TASK/NAME.yaml``, or a mapping in
code) or a YAML file: a mapping from setting names - the dataclass fields and the common
options dataset, data_dir, out, seed, device - to values, read with ``yaml.safe_load`` and
checked against the field types (`read_config_file`); an unknown key or a wrong type is a
DataError naming the file and the key. Paths in it are read from the working directory, as on
the command line. ``--print-config`` writes the effective config of a run (`config_yaml`:
every setting) and exits; passed back with ``--config``, that file gives the same run.
`config_from` hands the fields that are model (or Trainer) settings on to those configs.
What a run does with the result is `seqlstm.experiment.run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import shlex
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml

from seqlstm.errors import DataError

C = TypeVar("C")
T = TypeVar("T")

# the names seqlstm.training.device.resolve_device understands (cuda:N aside)
DEVICES = ("auto", "cpu", "cuda", "mps")
# The common options other than --config/--preset, which configs may also set, and their types
# (a config field of the same name, such as a seed, takes the option's place).
_COMMON_TYPES: dict[str, Any] = {
    "dataset": str | None,
    "data_dir": Path | None,
    "out": Path,
    "seed": int,
    "device": Literal["auto", "cpu", "cuda", "mps"],  # DEVICES
}
_COMMON = tuple(_COMMON_TYPES)
_NONE_WORDS = ("none", "null")
# YAML 1.1 (PyYAML) reads 1e-3 - no dot - as a string; a float setting takes it as the number
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclasses.dataclass(frozen=True)
class RecipeArgs(Generic[C]):
    """The parsed command line: the recipe's config and the common options.

    preset: the shipped config used by name (None for a config file of one's own, or none);
    config_file: the YAML file the settings were read from, if any (a shipped one included).
    command: the command line as typed (``prog`` and the arguments, shell-quoted), which
    results.json records so that a run says how to repeat it.
    """

    config: C
    preset: str | None
    dataset: str | None
    data_dir: Path | None
    out: Path
    seed: int
    device: str
    config_file: Path | None = None
    command: str = ""


Preset = Mapping[str, Any] | os.PathLike


def parse_recipe_args(
    config_cls: type[C],
    presets: Mapping[str, Preset],
    argv: Sequence[str] | None = None,
    default_out: str = "runs/NAME",
    description: str | None = None,
    prog: str | None = None,
) -> RecipeArgs[C]:
    """Parse argv (default sys.argv[1:]) into the recipe's config and the common options.

    presets: name -> its settings, a mapping {field: value} or a YAML file read only when
    chosen (`read_config_file`); the keys may be config fields or the common options other
    than --config/--preset. The "full" preset applies when no --config is given (if there is
    one). ``--config`` takes a preset name or a YAML file; ``--preset NAME`` is the same as
    ``--config NAME``. A config field named like a common option (seed, device, ...) is set by
    that option. prog names the command in usage and error lines (default: the script's name).

    Bad options exit through argparse (status 2) with a message listing the valid ones; a
    config file that is missing or does not fit the config is a DataError naming the file
    and the key. ``--print-config`` writes `config_yaml` to stdout and exits with status 0.
    """
    hints = typing.get_type_hints(config_cls)
    fields = [f for f in dataclasses.fields(config_cls) if f.init]
    field_names = {f.name for f in fields}
    for preset, values in presets.items():
        if isinstance(values, Mapping):
            unknown = set(values) - field_names - set(_COMMON)
            if unknown:
                raise ValueError(f"preset {preset!r} sets unknown options {sorted(unknown)}")

    defaults: dict[str, Any] = {"dataset": None, "data_dir": None, "out": Path(default_out)}
    defaults.update(seed=0, device="auto")
    for field in fields:
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()

    # the description keeps its layout: a recipe's docstring opens with example commands
    parser = argparse.ArgumentParser(
        prog=prog or _module_command(config_cls),
        description=description,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = parser.add_argument_group("common options")
    default_preset = "full" if "full" in presets else None
    named = ", ".join(sorted(presets)) or "none"
    chosen = common.add_mutually_exclusive_group()
    chosen.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="NAME|FILE",
        help=f"a shipped config ({named}) or a YAML file of settings (--print-config writes "
        f"one), overridden by explicit options (default: {default_preset})",
    )
    chosen.add_argument(
        "--preset",
        dest="config",
        choices=sorted(presets),
        default=argparse.SUPPRESS,
        help="the same as --config NAME",
    )
    common.add_argument(
        "--print-config",
        action="store_true",
        default=argparse.SUPPRESS,
        help="write every setting of the run (YAML, for --config FILE) to stdout and exit",
    )
    source = common.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset", default=argparse.SUPPRESS, metavar="HUB_ID", help="Hugging Face dataset id"
    )
    source.add_argument(
        *_option_strings("data_dir"),
        dest="data_dir",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="local data directory instead of --dataset",
    )
    common.add_argument(
        "--out",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=f"(default: {defaults['out']})",
    )
    common.add_argument(
        "--seed", type=int, default=argparse.SUPPRESS, help=f"(default: {defaults['seed']})"
    )
    common.add_argument(
        "--device",
        choices=DEVICES,
        default=argparse.SUPPRESS,
        help=f"(default: {defaults['device']})",
    )
    recipe = parser.add_argument_group(f"{config_cls.__name__} fields")
    for field in fields:
        if field.name not in _COMMON:
            _add_field_option(recipe, field, hints[field.name])

    arguments = list(sys.argv[1:] if argv is None else argv)
    namespace, extras = parser.parse_known_args(arguments)
    if extras:
        parser.error(_unknown_options_message(parser, extras))
    explicit = vars(namespace)
    print_config = explicit.pop("print_config", False)
    choice = explicit.pop("config", default_preset)

    # dataclass default < config < explicit option
    values = dict(defaults)
    config_file = None
    if choice is not None:
        settings, config_file = _config_settings(choice, presets, config_cls)
        values.update(settings)
    if explicit.keys() & {"dataset", "data_dir"}:  # one choice: the option replaces the config's
        values.update(dataset=None, data_dir=None)
    values.update(explicit)
    for field in fields:
        if field.name not in values:
            parser.error(f"{_option_strings(field.name)[0]} is required (it has no default)")
        if _sequence_type(hints[field.name]) is tuple and isinstance(values[field.name], list):
            values[field.name] = tuple(values[field.name])
    try:
        config = config_cls(**{f.name: values[f.name] for f in fields})
    except ValueError as err:  # the config's own validation (__post_init__)
        parser.error(str(err) if config_file is None else f"{err} (settings of {config_file})")
    args = RecipeArgs(
        config=config,
        preset=choice if choice in presets else None,
        dataset=values["dataset"],
        data_dir=None if values["data_dir"] is None else Path(values["data_dir"]),
        out=Path(values["out"]),
        seed=int(values["seed"]),
        device=values["device"],
        config_file=config_file,
        command=shlex.join([*parser.prog.split(), *arguments]),
    )
    if print_config:
        sys.stdout.write(config_yaml(args))
        parser.exit(0)
    return args


def _config_settings(
    choice: str, presets: Mapping[str, Preset], config_cls: type
) -> tuple[dict[str, Any], Path | None]:
    """(settings, the YAML file they come from or None) of --config CHOICE: a preset's name,
    else a file."""
    preset = presets.get(choice)
    if isinstance(preset, Mapping):
        return dict(preset), None
    if preset is None:
        path = Path(choice)
        if not path.is_file():
            named = ", ".join(sorted(presets)) or "none"
            raise DataError(
                f"--config {choice}: no such file, and no shipped config of that name "
                f"(shipped: {named})"
            )
    else:
        path = Path(preset)
    return read_config_file(path, config_cls), path


# --------------------------------------------------------------------------- config files


def read_config_file(path: str | os.PathLike, config_cls: type) -> dict[str, Any]:
    """The settings of a YAML config file for the recipe config ``config_cls``.

    The file is a mapping (or empty) from setting names - the fields of ``config_cls`` and
    the common options dataset, data_dir, out, seed, device - to values of the field's type:
    an int for an int, any number for a float (``1e-3`` too, which YAML 1.1 reads as text),
    a list for a tuple or list, a string for a path, null where None is allowed. Returns
    {name: value} with tuples and paths as the fields declare them.

    Raises DataError naming the file: missing or unreadable, not YAML, not a mapping, an
    unknown key (with the closest known one), a value of the wrong type (with the expected
    type), or both dataset and data_dir set.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the config file ({err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise DataError(f"{path}{where}: not valid YAML ({problem})") from None
    if data is None:  # empty, or comments only
        return {}
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: expected a mapping of settings (name: value), got a {type(data).__name__}"
        )
    types_ = setting_types(config_cls)
    settings: dict[str, Any] = {}
    for key, value in data.items():
        if key not in types_:
            close = difflib.get_close_matches(str(key), list(types_), n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"{path}: unknown key {key!r}{suggestion} (--print-config lists every key)"
            )
        try:
            settings[key] = _from_yaml(types_[key], value)
        except _WrongTypeError:
            raise DataError(
                f"{path}: {key}: expected {_describe(types_[key])}, got {value!r}"
            ) from None
    if settings.get("dataset") is not None and settings.get("data_dir") is not None:
        raise DataError(f"{path}: sets both dataset and data_dir; keep one, the other null")
    return settings


def setting_types(config_cls: type) -> dict[str, Any]:
    """name -> type annotation of every setting a config file may hold: the common options,
    then the init fields of ``config_cls`` (a field may take a common option's place)."""
    hints = typing.get_type_hints(config_cls)
    fields = {f.name: hints[f.name] for f in dataclasses.fields(config_cls) if f.init}
    return {**_COMMON_TYPES, **fields}


def effective_settings(args: RecipeArgs) -> dict[str, Any]:
    """Every setting of a parsed command line as plain YAML/JSON values (paths as strings,
    tuples as lists): the common options, then the config's fields in their order."""
    settings = {
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "out": args.out,
        "seed": args.seed,
        "device": args.device,
    }
    for field in dataclasses.fields(args.config):
        if field.init:
            settings[field.name] = getattr(args.config, field.name)
    return {name: _plain(value) for name, value in settings.items()}


def config_yaml(args: RecipeArgs) -> str:
    """The effective config of a run as the YAML text of a config file (`effective_settings`,
    the common options first): ``--config`` with this file and no other option gives the same
    run."""
    settings = effective_settings(args)
    common = {name: settings.pop(name) for name in _COMMON if name in settings}
    name = type(args.config).__name__

    def block(values: dict[str, Any]) -> str:
        return yaml.safe_dump(values, sort_keys=False, allow_unicode=True, width=100)

    return (
        f"# every setting of a {name} run (defaults < config < options); train it again\n"
        "# with --config THIS_FILE, and explicit options on top\n"
        f"{block(common)}# {name}\n{block(settings)}"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


class _WrongTypeError(Exception):
    """A config file's value does not fit the setting's type."""


def _from_yaml(hint: Any, value: Any) -> Any:
    """A value read by yaml.safe_load as the annotation ``hint`` wants it, or _WrongTypeError."""
    optional, inner = _strip_optional(hint)
    if value is None:
        if optional:
            return None
        raise _WrongTypeError
    if typing.get_origin(inner) is Literal:
        # 1 == True in Python: the type must match too
        if any(value == c and type(value) is type(c) for c in typing.get_args(inner)):
            return value
        raise _WrongTypeError
    sequence = _sequence_type(inner)
    if sequence is not None:
        element, count = _sequence_element(inner, "")
        if not isinstance(value, list) or (count != "*" and len(value) != count):
            raise _WrongTypeError
        items = [_from_yaml(element, item) for item in value]
        return tuple(items) if sequence is tuple else items
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if inner is bool:
        fits = isinstance(value, bool)
    elif inner is int:
        fits = number and isinstance(value, int)
    elif inner is float:
        fits = number or (isinstance(value, str) and _FLOAT_TEXT.fullmatch(value) is not None)
    elif isinstance(inner, type):  # str, and Path and other classes made from text
        fits = isinstance(value, str)
    else:
        raise TypeError(f"cannot read {hint} from a config file")
    if not fits:
        raise _WrongTypeError
    return inner(value)


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_PLURALS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


def _describe(hint: Any) -> str:
    """The type a setting wants, in words: "an integer or null", "one of 'IOB1', 'IOB2'" ..."""
    optional, inner = _strip_optional(hint)
    if typing.get_origin(inner) is Literal:
        text = "one of " + ", ".join(repr(choice) for choice in typing.get_args(inner))
    elif _sequence_type(inner) is not None:
        element, count = _sequence_element(inner, "")
        kinds = _PLURALS.get(element, "paths")
        text = f"a list of {kinds}" if count == "*" else f"a list of {count} {kinds}"
    else:
        text = _KINDS.get(inner, "a path (a string)")
    return text + " or null" if optional else text


def _module_command(config_cls: type) -> str:
    """``python -m MODULE`` for the module that defines ``config_cls`` (a recipe run with
    ``python -m``, or imported), the command that runs that recipe again."""
    module = config_cls.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        if spec is None:  # run as a file: python path/to/recipe.py
            return f"python {sys.argv[0]}"
        module = spec.name
    return f"python -m {module}"


def config_from(config_class: type[T], cfg: Any, **fixed: Any) -> T:
    """A ``config_class`` (TrainerConfig, a model's config ...) built from a recipe's config:
    every field of the dataclass ``cfg`` whose name is a field of ``config_class`` (``lr``,
    ``hidden_size`` ...), plus the ``fixed`` values that the recipe decides itself
    (``output_dir``, ``device``, ``seed``, ``metric`` ...).

    A name both in ``cfg`` and in ``fixed`` is a TypeError: the recipe's option would be
    silently ignored otherwise.
    """
    wanted = {field.name for field in dataclasses.fields(config_class)}
    shared = {
        field.name: getattr(cfg, field.name)
        for field in dataclasses.fields(cfg)
        if field.name in wanted
    }
    twice = shared.keys() & fixed.keys()
    if twice:
        raise TypeError(
            f"{sorted(twice)} are options of {type(cfg).__name__}; do not also fix them"
        )
    return config_class(**shared, **fixed)


# --------------------------------------------------------------------------- CLI options


def _option_strings(name: str) -> list[str]:
    dashed = "--" + name.replace("_", "-")
    return [dashed] if "_" not in name else [dashed, "--" + name]


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_field_option(parser: argparse._ArgumentGroup, field: dataclasses.Field, hint: Any) -> None:
    """One option for a dataclass field, typed from its annotation."""
    default = (
        field.default_factory()
        if field.default_factory is not dataclasses.MISSING
        else field.default
    )
    shown = "required" if default is dataclasses.MISSING else f"default: {default!r}"
    help_text = f"{field.metadata.get('help', '')} ({shown})".strip()
    optional, inner = _strip_optional(hint)
    options = _option_strings(field.name)
    common = {"dest": field.name, "default": argparse.SUPPRESS, "help": help_text}
    if inner is bool:
        parser.add_argument(
            *options,
            nargs="?",
            const=True,
            type=_scalar_parser(bool, optional, field.name),
            metavar="true|false",
            **common,
        )
        negative = ["--no-" + options[0][2:]] + (["--no_" + field.name] if len(options) > 1 else [])
        parser.add_argument(
            *negative,
            action="store_false",
            dest=field.name,
            default=argparse.SUPPRESS,
            help=f"set {field.name} to false",
        )
        return
    if _sequence_type(inner) is not None:
        element, count = _sequence_element(inner, field.name)
        parser.add_argument(
            *options, nargs=count, type=_scalar_parser(element, False, field.name), **common
        )
        return
    choices = typing.get_args(inner) if typing.get_origin(inner) is Literal else None
    parser.add_argument(
        *options,
        type=_scalar_parser(inner, optional, field.name),
        choices=None if choices is None else list(choices) + ([None] if optional else []),
        metavar="{" + ",".join(map(str, choices)) + "}" if choices else None,
        **common,
    )


def _strip_optional(hint: Any) -> tuple[bool, Any]:
    """(whether None is allowed, the annotation without None)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return len(args) < len(typing.get_args(hint)), args[0]
    return False, hint


def _sequence_type(hint: Any) -> type | None:
    """tuple or list when the (possibly Optional) annotation is one, else None."""
    hint = _strip_optional(hint)[1]
    origin = typing.get_origin(hint) or hint
    return origin if origin in (tuple, list) else None


def _sequence_element(hint: Any, name: str) -> tuple[Any, str | int]:
    """The element annotation of tuple[X, ...], tuple[X, X], list[X], and the argparse nargs."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is list or (len(args) == 2 and args[1] is Ellipsis):
        return (args[0] if args else str), "*"
    if args and all(arg == args[0] for arg in args):
        return args[0], len(args)
    raise TypeError(f"field {name!r}: cannot parse {hint} from the command line")


def _scalar_parser(hint: Any, optional: bool, name: str) -> Callable[[str], Any]:
    """str -> value for int, float, str, bool, Path-like classes and Literal; "none" if allowed."""
    if typing.get_origin(hint) is Literal:
        by_text = {str(value): value for value in typing.get_args(hint)}
        convert: Callable[[str], Any] = lambda text: by_text.get(text, text)  # noqa: E731
    elif hint is bool:
        convert = _parse_bool
    elif isinstance(hint, type) and typing.get_origin(hint) is None:
        convert = hint  # int, float, str, Path: constructible from the text
    else:
        raise TypeError(f"field {name!r}: cannot parse {hint} from the command line")

    def parse(text: str) -> Any:
        if optional and text.lower() in _NONE_WORDS:
            return None
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {getattr(hint, '__name__', hint)} value: {text!r}"
            ) from None

    return parse


def _unknown_options_message(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    valid = sorted(
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and "_" not in option
    )
    lines = [f"unrecognized arguments: {' '.join(extras)}"]
    for extra in extras:
        close = difflib.get_close_matches(extra.split("=")[0], valid, n=1)
        if extra.startswith("--") and close:
            lines.append(f"did you mean {close[0]} instead of {extra}?")
    lines.append("valid options: " + " ".join(valid))
    return "\n".join(lines)
