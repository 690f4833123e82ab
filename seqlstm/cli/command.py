"""What a subcommand of the `seqlstm` console script is; task modules import it from here."""

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seqlstm.errors import DataError


@dataclass(frozen=True)
class Command:
    """A subcommand: a function adding its options to a parser and a function running it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]


@dataclass(frozen=True)
class Evaluation:
    """One `seqlstm evaluate --task NAME` target.

    `evaluate` itself owns the options every task shares (`--model`, `--data`, `--batch-size`,
    `--device`, `--int8`); `add_arguments` adds only this task's own options, into an argument
    group titled by the task, and `run` must check that the options it needs were given.
    """

    task: str
    help: str
    add_arguments: Callable[[argparse._ArgumentGroup], None]
    run: Callable[[argparse.Namespace], None]


def at_least(minimum: float, kind: type) -> Callable[[str], float]:
    """An argparse type: a number of `kind` (int or float) that is >= minimum."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        return value

    return parse


def add_int8_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``--int8`` option of the commands that load a model (see `load_model`)."""
    parser.add_argument(
        "--int8",
        action="store_true",
        help="quantize the model's LSTM and Linear layers to int8 at load: faster on the CPU, "
        "outputs close to but not always equal to float32's; CPU only (--device auto is then "
        "the CPU)",
    )


def load_model(
    model_class: type, directory: Path, device: str, int8: bool = False
):  # -> a PretrainedModel
    """``model_class.from_pretrained(directory)`` on ``device`` (auto, cpu or cuda), with
    ``int8`` quantized (seqlstm.quantization). A device that is not there, or int8 on CUDA or
    without a quantized engine, is a DataError, so the command prints a message, not a
    traceback.

    The caller imports ``model_class`` inside its command, which keeps torch out of
    ``seqlstm --help``.
    """
    from seqlstm.quantization import check_quantization
    from seqlstm.training.device import resolve_device

    if int8 and device == "cuda":
        raise DataError("--int8 runs on the CPU only: use --device cpu or auto, or drop --int8")
    quantize = "int8" if int8 else None
    try:
        # int8 runs on the CPU only, so there "auto" is the CPU
        target = resolve_device("cpu" if int8 else device)
        check_quantization(quantize, target)
    except ValueError as err:
        raise DataError(str(err)) from None
    return model_class.from_pretrained(directory, map_location=target, quantize=quantize)


def input_lines(path: Path | None) -> list[tuple[int, str]]:
    """(line number, line without its ending) of FILE, or of stdin when no FILE is given.

    Bad UTF-8 is a DataError naming the line and byte, as for files (seqlstm.data.readers).
    """
    from seqlstm.data.readers import decode_lines, iter_lines

    if path is not None:
        return list(iter_lines(path))
    # sys.stdin may be a text stream without bytes underneath (tests, notebooks)
    stream = getattr(sys.stdin, "buffer", None)
    raw_lines = iter(stream) if stream is not None else (s.encode("utf-8") for s in sys.stdin)
    return list(decode_lines(raw_lines, "<stdin>"))
