"""`seqlstm train-tokenizer`: train the SentencePiece tokenizer that the models share."""

import argparse
from pathlib import Path

from seqlstm.cli.command import Command


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
    from seqlstm.text.tokenizer import SubwordTokenizer

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


COMMANDS = [
    Command(
        "train-tokenizer",
        "train the SentencePiece tokenizer that the models share",
        _train_tokenizer_arguments,
        _train_tokenizer,
    ),
]
