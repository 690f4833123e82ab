"""What a subcommand of the `seqlstm` console script is; task modules import it from here."""

import argparse
import math
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


# The most tokens a generation may add (`--max-new-tokens` of generate and serve): the
# language model's own MAX_NEW_TOKENS, written out so that `seqlstm --help` does not import
# torch (tests/cli/test_generate_commands.py checks that the two are equal).
MAX_NEW_TOKENS = 65_536


def at_least(minimum: float, kind: type, maximum: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number of `kind` (int or float) that is >= minimum (and
    <= maximum, if given)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {text}")
        return value

    return parse


def positive_int(text: str) -> int:
    """The argparse type of counts such as ``--batch-size``: a whole number, at least 1, so
    that 0 or -3 is a usage error (exit status 2) before anything is loaded, in every command
    alike, never a traceback or a silent clamp."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def add_int8_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``--int8`` option of the commands that load a model (see `load_model`)."""
    parser.add_argument(
        "--int8",
        action="store_true",
        help="quantize the model's LSTM and Linear layers to int8 at load: faster on the CPU, "
        "outputs close to but not always equal to float32's; CPU only (--device auto is then "
        "the CPU)",
    )


# metavar and help of the --model option of the commands that load a model
MODEL_METAVAR = "DIR|OWNER/NAME"
MODEL_HELP = "model directory, or a Hugging Face hub repo id (owner/name)"


def model_location(text: str) -> str:
    """The argparse type of ``--model``: the text as typed. Not a Path, which drops a leading
    ``./`` - and ``./owner/name`` is a local path, where ``owner/name`` is a hub id
    (seqlstm.hub_connection.looks_local)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a model directory or a hub repo id")
    return text


def add_model_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``--model DIR|OWNER/NAME`` option of the commands that load a model."""
    parser.add_argument(
        "--model", type=model_location, required=True, metavar=MODEL_METAVAR, help=MODEL_HELP
    )


def model_directory(source: str | Path) -> Path:
    """The local model directory of ``--model``: the path itself, or the hub repo's files
    downloaded (or read from the cache) as ``from_pretrained`` does (seqlstm.model_hub), for
    the commands that read config.json before loading."""
    from seqlstm.model_hub import resolve_model_directory

    return resolve_model_directory(source)


def load_model(
    model_class: type, directory: str | Path, device: str, int8: bool = False
):  # -> a PretrainedModel
    """``model_class.from_pretrained(directory)`` on ``device`` (auto, cpu or cuda), with
    ``int8`` quantized (seqlstm.quantization). ``directory`` may be a hub repo id
    (``owner/name``), downloaded as ``from_pretrained`` does. A device that is not there, or
    int8 on CUDA or without a quantized engine, is a DataError, so the command prints a
    message, not a traceback.

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

    Read as seqlstm.data.readers reads files: ``\\n``, ``\\r\\n`` and a lone ``\\r`` end a
    line, a UTF-8 BOM is dropped, and bad UTF-8, a NUL byte or UTF-16 text is a DataError
    naming the line (``<stdin>:LINE`` for stdin). Blank lines are kept: the command decides
    what they mean.
    """
    from seqlstm.data.readers import decode_lines, iter_lines

    if path is not None:
        return list(iter_lines(path))
    # sys.stdin may be a text stream without bytes underneath (tests, notebooks); a lone
    # surrogate in it becomes bytes that are not UTF-8, hence a DataError, not a traceback
    stream = getattr(sys.stdin, "buffer", None)
    raw_lines = (
        iter(stream)
        if stream is not None
        else (s.encode("utf-8", "surrogatepass") for s in sys.stdin)
    )
    return list(decode_lines(raw_lines, "<stdin>"))
