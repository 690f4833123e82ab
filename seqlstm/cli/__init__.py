"""The `seqlstm` console script.

Each subcommand is a `Command` (seqlstm/cli/command.py) listed in the `COMMANDS` of the module
for its task: `tokenizer.py` here, and one module per model. `seqlstm evaluate --task NAME`
dispatches to the `EVALUATIONS` those modules list. Run functions import what they need
themselves, so `seqlstm --help` stays fast (no torch import). Bad input (DataError,
CheckpointError) ends the command with a one-line message on stderr and exit status 2, never a
traceback.
"""

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

from seqlstm.cli import (
    export_commands,
    generate_commands,
    hub_commands,
    serve_commands,
    tag_commands,
    tokenizer_commands,
    train_commands,
    translate_commands,
)
from seqlstm.cli.command import (
    Command,
    Evaluation,
    add_int8_argument,
    add_model_argument,
    positive_int,
)
from seqlstm.cli.evaluation_data import add_dataset_arguments
from seqlstm.errors import CheckpointError, DataError, one_line

_TASK_MODULES = (
    tokenizer_commands,
    tag_commands,
    generate_commands,
    translate_commands,
    export_commands,
    serve_commands,
    train_commands,
    hub_commands,
)

EVALUATIONS: list[Evaluation] = [
    evaluation for module in _TASK_MODULES for evaluation in getattr(module, "EVALUATIONS", [])
]


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task", required=True, choices=[e.task for e in EVALUATIONS], help="what to evaluate"
    )
    add_model_argument(parser)
    parser.add_argument("--data", type=Path, metavar="FILE", help="evaluation data")
    add_dataset_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=64, help="(default: 64)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_int8_argument(parser)
    for evaluation in EVALUATIONS:
        evaluation.add_arguments(parser.add_argument_group(f"--task {evaluation.task}"))


def _evaluate(args: argparse.Namespace) -> None:
    next(e for e in EVALUATIONS if e.task == args.task).run(args)


COMMANDS: list[Command] = [
    command for module in _TASK_MODULES for command in getattr(module, "COMMANDS", [])
]
if EVALUATIONS:
    COMMANDS.append(
        Command("evaluate", "score a saved model on data", _evaluate_arguments, _evaluate)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqlstm", description="LSTM sequence models: tagging, translation, language models."
    )
    parser.add_argument("--version", action="version", version=f"seqlstm {version('seqlstm')}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        subparser = subcommands.add_parser(
            command.name, help=command.help, description=command.help
        )
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def _one_line_warning(command: str) -> Callable[..., None]:
    def show(message: Warning | str, *_: object, **__: object) -> None:
        text = one_line(message) if isinstance(message, Warning) else message
        print(f"seqlstm {command}: warning: {text}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line argv (default sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            # a library warning (e.g. sentences truncated to the model's length limit) is one
            # line for the user, as errors are, not Python's file:line plus source line
            warnings.showwarning = _one_line_warning(args.command)
            args.run(args)
    except (DataError, CheckpointError) as err:
        print(f"seqlstm {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0
