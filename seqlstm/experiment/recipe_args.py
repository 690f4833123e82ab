"""A recipe's command line: every field of its config dataclass is an option.

A recipe's settings are one dataclass with defaults. `parse_recipe_args` turns every field
into an option (`--hidden-size 512` or `--hidden_size 512`) next to the common options

    --preset full|cpu|smoke   --dataset HUB_ID | --data-dir DIR   --out DIR   --seed N
    --device auto|cpu|cuda|mps

and resolves each value with the precedence  dataclass default < preset < explicit option.
`config_from` hands the fields that are model (or Trainer) settings on to those configs.
What a run does with the result is `seqlstm.experiment.run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

C = TypeVar("C")
T = TypeVar("T")

# the names seqlstm.training.device.resolve_device understands (cuda:N aside)
DEVICES = ("auto", "cpu", "cuda", "mps")
# The common options other than --preset, which presets may also set.
_COMMON = ("dataset", "data_dir", "out", "seed", "device")
_NONE_WORDS = ("none", "null")


@dataclasses.dataclass(frozen=True)
class RecipeArgs(Generic[C]):
    """The parsed command line: the recipe's config and the common options."""

    config: C
    preset: str | None
    dataset: str | None
    data_dir: Path | None
    out: Path
    seed: int
    device: str


def parse_recipe_args(
    config_cls: type[C],
    presets: Mapping[str, Mapping[str, Any]],
    argv: Sequence[str] | None = None,
    default_out: str = "runs/NAME",
    description: str | None = None,
) -> RecipeArgs[C]:
    """Parse argv (default sys.argv[1:]) into the recipe's config and the common options.

    presets: name -> {field: value}; the keys may be config fields or the common options
    other than --preset. The "full" preset applies when --preset is not given (if there is
    one). A config field named like a common option (seed, device, ...) is set by that
    option. Bad options exit through argparse (status 2) with a message listing the valid
    ones.
    """
    hints = typing.get_type_hints(config_cls)
    fields = [f for f in dataclasses.fields(config_cls) if f.init]
    field_names = {f.name for f in fields}
    for preset, values in presets.items():
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
        description=description,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = parser.add_argument_group("common options")
    default_preset = "full" if "full" in presets else None
    common.add_argument(
        "--preset",
        choices=sorted(presets),
        default=argparse.SUPPRESS,
        help=f"named group of settings, overridden by explicit options (default: {default_preset})",
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

    namespace, extras = parser.parse_known_args(argv)
    if extras:
        parser.error(_unknown_options_message(parser, extras))
    explicit = vars(namespace)
    preset = explicit.pop("preset", default_preset)

    # dataclass default < preset < explicit option
    values = dict(defaults)
    if preset is not None:
        values.update(presets[preset])
    values.update(explicit)
    for field in fields:
        if field.name not in values:
            parser.error(f"{_option_strings(field.name)[0]} is required (it has no default)")
        if _sequence_type(hints[field.name]) is tuple and isinstance(values[field.name], list):
            values[field.name] = tuple(values[field.name])
    try:
        config = config_cls(**{f.name: values[f.name] for f in fields})
    except ValueError as err:  # the config's own validation (__post_init__)
        parser.error(str(err))
    return RecipeArgs(
        config=config,
        preset=preset,
        dataset=values["dataset"],
        data_dir=None if values["data_dir"] is None else Path(values["data_dir"]),
        out=Path(values["out"]),
        seed=int(values["seed"]),
        device=values["device"],
    )


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
