"""`seqlstm translate` and `seqlstm evaluate --task mt`: use a saved Seq2SeqLSTM.

    seqlstm translate --model DIR [--input FILE] [--beam 5] [--batch-size 64] [--n-best N]
        [--int8] < src.txt > hyp.txt

reads one source sentence a line from FILE or stdin and writes one translation a line, in
input order; an empty (or blank) line gives an empty line. With ``--n-best N`` (N > 1) it
writes the Moses n-best format instead, up to N lines per input line:
``INDEX ||| TRANSLATION ||| SCORE``, INDEX counting input lines from 0, best first, SCORE the
length-normalised log-probability the beam ranked them by.

    seqlstm evaluate --task mt --model DIR --src FILE --ref FILE [--beam 5]

translates the line-aligned source file and prints sacreBLEU's BLEU and chrF of the output
against the reference file (detokenized, cased, 13a), each with its signature.

    seqlstm evaluate --task mt --model DIR --dataset ID_OR_PATH [--split test] [--config NAME]
        [--languages SRC TGT]

does the same on a split of a data set as `seqlstm.data.load` reads it (hub id, save_to_disk
folder, {split}.{language} files, JSON lines/CSV/Parquet), with the columns of the model's
languages or of ``--languages`` (language columns, or a ``translation`` column of
``{language: sentence}``). Pairs with an empty side are left out, as ``load`` leaves them.
"""

import argparse
import sys
from pathlib import Path

from seqlstm.cli.command import (
    Command,
    Evaluation,
    add_int8_argument,
    add_model_argument,
    input_lines,
    load_model,
    positive_int,
)
from seqlstm.cli.evaluation_data import dataset_split
from seqlstm.errors import DataError


def _decoding_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--beam", type=int, default=5, metavar="K", help="beam size; 1 is greedy (default: 5)"
    )
    parser.add_argument(
        "--length-penalty",
        type=float,
        default=1.0,
        metavar="ALPHA",
        help="GNMT length penalty exponent; 0 ranks by log-probability alone (default: 1.0)",
    )


def _translate_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    parser.add_argument(
        "--input", type=Path, metavar="FILE", help="source sentences, one a line (default: stdin)"
    )
    _decoding_arguments(parser)
    parser.add_argument(
        "--n-best",
        type=int,
        default=1,
        metavar="N",
        help="write the N best translations per sentence in Moses n-best format (default: 1)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="sentences per batch (default: 64)"
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_int8_argument(parser)


def _translate(args: argparse.Namespace) -> None:
    from seqlstm.tasks.translation.translator import Seq2SeqLSTM

    _check_decoding(args.beam, args.batch_size, args.n_best)
    model = load_model(Seq2SeqLSTM, args.model, args.device, args.int8)
    sentences = [line for _, line in input_lines(args.input)]
    options = dict(beam_size=args.beam, length_penalty=args.length_penalty)
    out = sys.stdout
    if args.n_best == 1:
        for text in model.translate(sentences, batch_size=args.batch_size, **options):
            out.write(_one_line(text) + "\n")
        return
    # Translation objects carry the scores; their attention is not needed here
    nbest = model.translate(
        sentences, batch_size=args.batch_size, n_best=args.n_best, return_attention=True, **options
    )
    for index, translations in enumerate(nbest):
        for t in translations:
            out.write(f"{index} ||| {_one_line(t.text)} ||| {t.score:.4f}\n")


def _evaluate_arguments(group: argparse._ArgumentGroup) -> None:
    group.description = (
        "--src FILE --ref FILE: line-aligned sources and references; or --dataset: its "
        "columns of the model's languages (or --languages), or its 'translation' column"
    )
    group.add_argument("--src", type=Path, metavar="FILE", help="source sentences, one a line")
    group.add_argument(
        "--ref", type=Path, metavar="FILE", help="reference translations, line-aligned with --src"
    )
    group.add_argument(
        "--languages",
        nargs=2,
        metavar=("SRC", "TGT"),
        help="the language codes of the source and the target in --dataset (default: the "
        "model's own, when it was trained with them)",
    )
    _decoding_arguments(group)


def _evaluate_mt(args: argparse.Namespace) -> None:
    from seqlstm.data import read_parallel
    from seqlstm.tasks.translation.translator import Seq2SeqLSTM

    if args.data is not None:
        raise DataError(
            "evaluate --task mt reads --src and --ref, or --dataset; --data is not used"
        )
    if args.dataset is not None and (args.src is not None or args.ref is not None):
        raise DataError("give --src and --ref, or --dataset, not both")
    if args.dataset is None and (args.src is None or args.ref is None):
        raise DataError(
            "evaluate --task mt needs --src FILE and --ref FILE (line-aligned source sentences "
            "and reference translations), or --dataset ID_OR_PATH"
        )
    if args.dataset is None and args.languages is not None:
        raise DataError("--languages is for --dataset")
    _check_decoding(args.beam, args.batch_size, 1)
    if args.dataset is None:
        dataset_split(args, "translation")  # only checks that --split/--config are not given
        pairs = read_parallel(args.src, args.ref)  # DataError naming both files if misaligned
    model = load_model(Seq2SeqLSTM, args.model, args.device, args.int8)
    if args.dataset is not None:
        config = model.config
        source, target = args.languages or (config.source_language, config.target_language)
        if source is None or target is None:
            raise DataError(
                "the model does not name its languages (it was trained without them): give "
                "--languages SRC TGT, the codes of --dataset's source and target"
            )
        split = dataset_split(args, "translation", languages=(source, target))
        pairs = list(zip(split[source][:], split[target][:], strict=True))
    scores = model.score(
        [{"source": src, "target": ref} for src, ref in pairs],
        beam_size=args.beam,
        batch_size=args.batch_size,
        length_penalty=args.length_penalty,
    )
    for score in (scores["bleu"], scores["chrf"]):
        print(score.summary)
        print(f"  signature: {score.signature}")


def _check_decoding(beam: int, batch_size: int, n_best: int) -> None:
    # argparse would accept them; the model's ValueError would end in a traceback
    if beam < 1 or batch_size < 1:
        raise DataError(f"--beam and --batch-size must be >= 1, got {beam} and {batch_size}")
    if not 1 <= n_best <= beam:
        raise DataError(f"--n-best must be between 1 and --beam ({beam}), got {n_best}")


def _one_line(text: str) -> str:
    # byte-fallback pieces can decode to a line break, which would shift every later line
    return " ".join(text.splitlines())


COMMANDS = [
    Command(
        "translate",
        "translate sentences with a trained Seq2SeqLSTM, one a line",
        _translate_arguments,
        _translate,
    ),
]

EVALUATIONS = [
    Evaluation(
        "mt",
        "sacreBLEU BLEU and chrF of a translator on a source file and a reference file",
        _evaluate_arguments,
        _evaluate_mt,
    ),
]
