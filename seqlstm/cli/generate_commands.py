"""`seqlstm generate` and `seqlstm evaluate --task lm`: use a saved LSTMLanguageModel.

    seqlstm generate --model runs/tinyshakespeare_char_lm/model --prompt "ROMEO:" --seed 0
    seqlstm evaluate --task lm --model runs/wikitext2_lm/model --data wiki.test.raw
    seqlstm evaluate --task lm --model runs/wikitext2_lm/model --dataset Salesforce/wikitext \\
        --config wikitext-2-raw-v1 --split test

Text is read and written line by line, as the models are trained (`LSTMLanguageModel.encode`
frames each line as `BOS line EOS`): a line ends with EOS, which `generate` prints as a
newline and goes on writing the next line (`--single-line` stops there instead). A prompt
may be empty: the text then starts from BOS.

Characters that the tokenizer has no piece for (an accented letter for a model trained on
plain English, say) are not an error: SentencePiece's byte fallback reads them as their UTF-8
bytes. Those byte pieces never occurred in training, so the model reads them through
untrained embeddings; the prompt still comes back unchanged in the output, and `generate`
names such characters in a warning on stderr.
"""

import argparse
import re
import sys
from typing import TYPE_CHECKING

from seqlstm.cli.command import (
    MAX_NEW_TOKENS,
    Command,
    Evaluation,
    add_int8_argument,
    add_model_argument,
    at_least,
    load_model,
)
from seqlstm.cli.evaluation_data import DEFAULT_SPLIT, dataset_split

if TYPE_CHECKING:
    from seqlstm.text.tokenizer import SubwordTokenizer

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _probability(text: str) -> float:
    value = at_least(0.0, float)(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    parser.add_argument("--prompt", default="", help="text to continue (default: start afresh)")
    parser.add_argument(
        "--max-new-tokens",
        type=at_least(0, int, MAX_NEW_TOKENS),
        default=200,
        metavar="N",
        help=f"at most {MAX_NEW_TOKENS:,} (default: 200)",
    )
    parser.add_argument(
        "--temperature",
        type=at_least(0.0, float),
        default=1.0,
        help="0 is greedy decoding (default: 1.0)",
    )
    parser.add_argument(
        "--top-k", type=at_least(1, int), metavar="K", help="sample among the K likeliest"
    )
    parser.add_argument(
        "--top-p", type=_probability, metavar="P", help="nucleus sampling: probability mass P"
    )
    parser.add_argument("--seed", type=int, help="random seed; the same seed gives the same text")
    parser.add_argument(
        "--single-line",
        action="store_true",
        help="stop at the end of the first line, and read the prompt as one line",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_int8_argument(parser)


def _generate(args: argparse.Namespace) -> None:
    from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel

    model = load_model(LSTMLanguageModel, args.model, args.device, args.int8)
    unknown = unknown_characters(model.tokenizer, args.prompt)
    if unknown:
        print(
            f"seqlstm generate: warning: the tokenizer has no piece for {''.join(unknown)!r}; "
            "the model reads these characters as UTF-8 bytes it never saw in training",
            file=sys.stderr,
        )
    text = model.generate(
        args.prompt,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        multiline=not args.single_line,
    )
    print(text)


def unknown_characters(tokenizer: "SubwordTokenizer", text: str) -> list[str]:
    """The distinct characters of normalize(text) that byte fallback encodes, in order."""
    characters = dict.fromkeys(tokenizer.normalize(text).replace(" ", ""))
    return [ch for ch in characters if tokenizer.piece_to_id(ch) == tokenizer.unk_id]


def _evaluate_arguments(group: argparse._ArgumentGroup) -> None:
    group.description = (
        "--data FILE: UTF-8 text, one text a line; or --dataset: the lines of its text column"
    )
    group.add_argument(
        "--bptt", type=at_least(1, int), default=70, help="window length in tokens (default: 70)"
    )
    group.add_argument(
        "--text-column", metavar="C", help="the column of text of --dataset (default: text)"
    )


def _evaluate(args: argparse.Namespace) -> None:
    from seqlstm.data.readers import iter_lines
    from seqlstm.errors import DataError
    from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel

    if args.data is None and args.dataset is None:
        raise DataError(
            "evaluate --task lm needs --data FILE (UTF-8 text, one line per line) or --dataset "
            "ID_OR_PATH"
        )
    if args.data is not None and args.text_column is not None:
        raise DataError("--text-column is for --dataset")
    split = dataset_split(args, "text", text_column=args.text_column)
    if split is not None:
        # the lines of every row, as --data reads a file: a row of a whole text (a text file,
        # Tiny Shakespeare) gives its lines, a row of a line (wikitext) that line
        lines = [line for text in split["text"][:] for line in text_lines(text)]
        where = f"{args.dataset} ({args.split or DEFAULT_SPLIT} split)"
    else:
        lines = [line for _, line in iter_lines(args.data)]
        where = str(args.data)
    if not lines:
        empty = "the file is empty" if split is None else "the split is empty"
        raise DataError(f"{where}: {empty}; there is no text to evaluate")
    model = load_model(LSTMLanguageModel, args.model, args.device, args.int8)
    metrics = model.evaluate(lines, batch_size=args.batch_size, bptt=args.bptt)
    print(f"{where}: {len(lines)} lines")
    print(f"nll                 {metrics['nll']:.4f}  nats per token ({metrics['tokens']} tokens)")
    print(f"perplexity          {metrics['perplexity']:.4f}")
    characters = f"({metrics['characters']} characters, a newline per line)"
    print(f"bits_per_character  {metrics['bits_per_character']:.4f}  {characters}")
    print(f"nats_per_character  {metrics['nats_per_character']:.4f}")
    words = f"({metrics['words']} words, an end of line per line)"
    print(f"word_perplexity     {metrics['word_perplexity']:.4f}  {words}")


def text_lines(text: str) -> list[str]:
    """The lines of a text as a file's lines are read (seqlstm.data.readers.iter_lines): cut
    at ``\n``, ``\r\n`` or a lone ``\r``, without their endings; a last line break ends a
    line, not a new one, and an empty text is one empty line."""
    lines = _LINE_BREAK.split(text)
    if len(lines) > 1 and not lines[-1]:
        lines.pop()
    return lines


COMMANDS = [
    Command(
        "generate",
        "continue a prompt with a saved language model",
        _generate_arguments,
        _generate,
    ),
]

EVALUATIONS = [
    Evaluation(
        "lm",
        "perplexity, bits per character and word perplexity of a language model on a text",
        _evaluate_arguments,
        _evaluate,
    ),
]
