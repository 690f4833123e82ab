"""The data of `seqlstm evaluate`: ``--data FILE`` (each task's own file format) or
``--dataset ID_OR_PATH [--split test] [--config NAME]``, any source `seqlstm.data.load` reads.

``--dataset`` takes a Hugging Face hub id (offline it fails fast, in one line), a
``save_to_disk`` folder, a directory of split files or one file (CoNLL, text, JSON lines,
CSV/TSV, Parquet; one file is the split asked for). The options are added by
`seqlstm.cli._evaluate_arguments`; the task's run function calls :func:`dataset_split`.
"""

import argparse
from typing import TYPE_CHECKING, Any

from seqlstm.errors import DataError

if TYPE_CHECKING:  # datasets is imported by the command that needs it, not by `seqlstm --help`
    from datasets import Dataset

DEFAULT_SPLIT = "test"


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dataset``, ``--split`` and ``--config``, shared by every `evaluate` task."""
    parser.add_argument(
        "--dataset",
        metavar="ID_OR_PATH",
        help="evaluation data set instead of --data: a Hugging Face hub id, a save_to_disk "
        "folder, a directory of split files (train/valid/test) or one file (CoNLL, text, "
        ".jsonl, .csv, .tsv, .parquet)",
    )
    parser.add_argument(
        "--split",
        metavar="NAME",
        help=f"the split of --dataset to score (default: {DEFAULT_SPLIT}; one file is it)",
    )
    parser.add_argument("--config", metavar="NAME", help="the hub configuration of --dataset")


def dataset_split(args: argparse.Namespace, task: str, **options: Any) -> "Dataset | None":
    """The ``--split`` of ``--dataset`` for ``task`` in the columns `seqlstm.data.load` makes
    (``options`` go to it: columns, scheme, languages), or None without ``--dataset``.

    DataError for ``--data`` and ``--dataset`` together, and for ``--split``/``--config``
    without ``--dataset``; `load` names what is wrong with the data.
    """
    if args.dataset is None:
        if args.split is not None or args.config is not None:
            raise DataError("--split and --config choose what --dataset reads; give --dataset")
        return None
    if args.data is not None:
        raise DataError("give --data FILE or --dataset ID_OR_PATH, not both")
    from seqlstm.data import load

    split = args.split or DEFAULT_SPLIT
    try:
        dsdict = load(args.dataset, task, split=split, hub_config=args.config, **options)
    except ValueError as err:  # a bad --split name; DataError (a ValueError) passes on
        if isinstance(err, DataError):
            raise
        raise DataError(str(err)) from None
    return next(iter(dsdict.values()))


def column_option(text: str) -> str | int:
    """The argparse type of ``--tokens-column``/``--tags-column``: a column name, or a
    number (a CoNLL field, or an index among the list columns; negative from the end)."""
    stripped = text.strip()
    if stripped.lstrip("-").isdecimal():
        return int(stripped)
    if not stripped:
        raise argparse.ArgumentTypeError("expected a column name or number")
    return stripped
