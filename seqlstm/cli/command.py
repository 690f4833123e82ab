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
    `--device`); `add_arguments` adds only this task's own options, into an argument group
    titled by the task, and `run` must check that the options it needs were given.
    """

    task: str
    help: str
    add_arguments: Callable[[argparse._ArgumentGroup], None]
    run: Callable[[argparse.Namespace], None]


def load_model(model_class: type, directory: Path, device: str):  # -> a PretrainedModel
    """``model_class.from_pretrained(directory)`` on ``device`` (auto, cpu or cuda); a device
    that is not there is a DataError, so the command prints a message, not a traceback.

    The caller imports ``model_class`` inside its command, which keeps torch out of
    ``seqlstm --help``.
    """
    from seqlstm.training.device import resolve_device

    try:
        target = resolve_device(device)
    except ValueError as err:
        raise DataError(str(err)) from None
    return model_class.from_pretrained(directory, map_location=target)


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
