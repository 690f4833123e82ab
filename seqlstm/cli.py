"""The `seqlstm` console script.

Each subcommand is a `Command`: a function that adds its options to an argparse parser and a
function that runs it, listed in COMMANDS. Adding a subcommand is those two functions and one
entry in the list. Run functions import what they need themselves, so `seqlstm --help` stays
fast (no torch import). Bad input (DataError, CheckpointError) ends the command with a
one-line message on stderr and exit status 2, never a traceback.
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from seqlstm.errors import CheckpointError, DataError


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]


# --------------------------------------------------------------------------- train-tokenizer


def _train_tokenizer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        nargs="+",
        type=Path,
        required=True,
        metavar="FILE",
        help="text, one sentence a line",
    )
    parser.add_argument("--vocab-size", type=int, default=8000, metavar="N", help="(default: 8000)")
    parser.add_argument(
        "--model-type",
        choices=("unigram", "bpe", "char"),
        default="unigram",
        help="(default: unigram)",
    )
    parser.add_argument(
        "--character-coverage",
        type=float,
        default=1.0,
        help="share of characters kept as pieces; the rest use byte fallback (default: 1.0)",
    )
    parser.add_argument(
        "--hard-vocab-limit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="make --vocab-size exact; with --no-hard-vocab-limit it is an upper bound",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to save it")


def _train_tokenizer(args: argparse.Namespace) -> None:
    from seqlstm.tokenizer import SubwordTokenizer

    tokenizer = SubwordTokenizer.train_from_files(
        args.input,
        vocab_size=args.vocab_size,
        model_type=args.model_type,
        character_coverage=args.character_coverage,
        hard_vocab_limit=args.hard_vocab_limit,
    )
    tokenizer.save(args.out)
    print(f"saved a {args.model_type} tokenizer with {len(tokenizer)} pieces to {args.out}")
    example = _first_text_line(args.input[0])
    print(f"example: {example}")
    print(f"pieces:  {' '.join(tokenizer.pieces(example))}")


def _first_text_line(path: Path, max_chars: int = 200) -> str:
    with path.open(encoding="utf-8") as f:
        line = next((line for line in f if line.strip()), "")
    return line.strip()[:max_chars]


COMMANDS: list[Command] = [
    Command(
        "train-tokenizer",
        "train the SentencePiece tokenizer that the models share",
        _train_tokenizer_arguments,
        _train_tokenizer,
    ),
]


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line argv (default sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (DataError, CheckpointError) as err:
        message = "; ".join(line.strip() for line in str(err).splitlines())
        print(f"seqlstm {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
