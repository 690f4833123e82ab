"""What a subcommand of the `seqlstm` console script is; task modules import it from here."""

import argparse
from collections.abc import Callable
from dataclasses import dataclass


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
