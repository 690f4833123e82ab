"""`seqlstm tag` and `seqlstm evaluate --task ner`: use a saved BiLSTMCRFTagger.

    seqlstm tag --model DIR [--input FILE] [--format text|conll] [--documents]
                [--output-format conll|jsonl] [--int8]

reads sentences from FILE or stdin: with ``--format text`` one raw sentence a line (split into
words by seqlstm.text.words), with ``--format conll`` one token a line in the first column,
sentences separated by blank lines. It writes CoNLL - each word, or each input line with its
columns, followed by the predicted tag, and a blank line after every sentence - or JSON
lines, one object per sentence with tokens, tags, token confidences and entities.

Without ``--documents`` every sentence is read alone (``tagger.predict``/``tag``), whatever
the model's context setting: a blank text line is an empty sentence (an empty block, or an
object with empty lists), and ``-DOCSTART-`` lines of CoNLL input are skipped. With
``--documents`` the input is documents, and a model trained with document context
(``context_words``) reads each sentence with its neighbours in the same document, never across
documents (``tagger.predict_documents``/``tag_documents``): in text input one or more blank
lines separate documents (one sentence a line); in CoNLL input ``-DOCSTART-`` lines start
documents, as seqlstm.data.read_conll reads them (no ``-DOCSTART-`` line: the whole input is
one document). The output then has one more blank line between documents (CoNLL), or a
``"document"`` index in every object (JSON lines: the document's place in the input,
counting, in CoNLL input, the blocks read_conll counts, empty documents included).

Both CoNLL readers split columns at spaces and tabs only (``New\\xa0York`` is one token),
and a ``-DOCSTART-`` line right after a token line (no blank line between) is an error
naming the line.

Awkward input is handled on purpose (seqlstm.data.readers has the rules for every reader):
input that is empty or only blank lines gives empty sentences, or nothing with
``--documents``; ``\\r\\n`` and a lone ``\\r`` end a line like ``\\n``; a UTF-8 BOM is
dropped; a NUL byte, UTF-16 text (with or without a BOM) or bad UTF-8 is an error naming the
line; U+2581 separates words like a space in text input, and a CoNLL token without a visible
character (``\\xa0``, ``\\u2581``) is an error naming the line. An empty sentence always gets
no tags. ``--batch-size`` must be at least 1 (a usage error, exit status 2, otherwise).

    seqlstm evaluate --task ner --model DIR --data FILE

scores the tagger on a CoNLL file (token in the first column, gold tag in the last) and
prints conlleval's report: overall and per-type precision, recall and F1. When the file has
``-DOCSTART-`` lines, the sentences of each document are read together, as in ``tag
--documents``; without, every sentence is read alone.

    seqlstm evaluate --task ner --model DIR --dataset ID_OR_PATH [--split test]
                     [--config NAME] [--tokens-column C] [--tags-column C]

scores it on a split of a data set as `seqlstm.data.load` reads it - a Hugging Face hub id, a
``save_to_disk`` folder, a directory of split files or one file (CoNLL, JSON lines, CSV/TSV,
Parquet) - with its tags (ClassLabel ids read through the data set's own label names) in the
model's scheme.
"""

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqlstm.cli.command import (
    Command,
    Evaluation,
    add_int8_argument,
    add_model_argument,
    input_lines,
    load_model,
    positive_int,
)
from seqlstm.cli.evaluation_data import DEFAULT_SPLIT, column_option, dataset_split
from seqlstm.errors import DataError

if TYPE_CHECKING:  # the tagger imports torch, which `seqlstm --help` does without
    from seqlstm.tasks.tagging.tagger import TaggedSentence

_EPILOG = """\
Without --documents every sentence is read alone, whatever the model's context
setting (a blank text line is an empty sentence, -DOCSTART- lines are skipped).
With --documents the input is documents:
  --format text   one sentence a line, one or more blank lines between documents
  --format conll  -DOCSTART- lines start documents (none: all one document)
and a model trained with document context reads each sentence with its
neighbours in the same document, never across documents. The output then has
one blank line more between documents (conll) or a "document" index in every
object (jsonl).

Input: UTF-8; \\n, \\r\\n and a lone \\r end a line; a UTF-8 BOM is dropped.
Empty or blank-only input gives empty sentences (nothing with --documents), and
an empty sentence gets no tags. A NUL byte, UTF-16 text, bad UTF-8 or a conll
token without a visible character (a lone no-break space or U+2581) is an error
naming the line; in text input U+2581 separates words like a space."""


def _tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    add_model_argument(parser)
    parser.add_argument(
        "--input", type=Path, metavar="FILE", help="sentences to tag (default: stdin)"
    )
    parser.add_argument(
        "--format",
        choices=("text", "conll"),
        default="text",
        help="text: one raw sentence a line; conll: one token a line (default: text)",
    )
    parser.add_argument(
        "--documents",
        action="store_true",
        help="the input is documents: text: blank lines separate them; conll: -DOCSTART- "
        "lines start them; sentences are read with their neighbours in the same document",
    )
    parser.add_argument(
        "--output-format",
        choices=("conll", "jsonl"),
        default="conll",
        help="conll: token and tag a line; jsonl: one JSON object a sentence (default: conll)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=64,
        help="sentences read at a time, at least 1 (default: 64)",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_int8_argument(parser)


@dataclass(frozen=True)
class _Input:
    """One sentence of the input: what the tagger reads (the raw line of text input, so
    entity offsets are into it, or the words of CoNLL input) and, per word, the columns
    written before its tag."""

    sentence: str | list[str]
    columns: list[list[str]]


def _tag(args: argparse.Namespace) -> None:
    from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger

    tagger = load_model(BiLSTMCRFTagger, args.model, args.device, args.int8)
    source = str(args.input) if args.input is not None else "<stdin>"
    lines = input_lines(args.input)
    if args.format == "text":
        documents = _text_documents(lines, args.documents)
    else:
        documents = _conll_documents(lines, source, args.documents)
    out = sys.stdout
    if args.output_format == "jsonl":
        read = [[s.sentence for s in document] for _, document in documents]
        if args.documents:
            tagged = tagger.tag_documents(read, batch_size=args.batch_size)
        else:  # at most one group: every sentence, each read alone
            tagged = [tagger.tag(group, batch_size=args.batch_size) for group in read]
        for (index, _), results in zip(documents, tagged, strict=True):
            for result in results:
                record = _record(result)
                if args.documents:
                    record["document"] = index
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    words = [[[fields[0] for fields in s.columns] for s in document] for _, document in documents]
    if args.documents:
        predicted = tagger.predict_documents(words, batch_size=args.batch_size)
    else:
        predicted = [tagger.predict(group, batch_size=args.batch_size) for group in words]
    for number, ((_, document), tags) in enumerate(zip(documents, predicted, strict=True)):
        if number:
            out.write("\n")  # a blank line more between documents
        for sentence, sentence_tags in zip(document, tags, strict=True):
            for fields, tag in zip(sentence.columns, sentence_tags, strict=True):
                out.write(" ".join([*fields, tag]) + "\n")
            out.write("\n")


def _record(tagged: "TaggedSentence") -> dict[str, Any]:
    """The JSON object of a tagged sentence."""
    return {
        "tokens": tagged.tokens,
        "tags": tagged.tags,
        "confidences": [round(c, 4) for c in tagged.confidences],
        "entities": [
            {
                "text": e.text,
                "type": e.type,
                "start": e.start,
                "end": e.end,
                "score": round(e.score, 4),
            }
            for e in tagged.entities
        ],
    }


def _text_documents(
    lines: list[tuple[int, str]], documents: bool
) -> list[tuple[int, list[_Input]]]:
    """(index, sentences) of each document of text input: without ``documents`` one group of
    every line, blank ones as empty sentences; with it, blank lines separate documents."""
    from seqlstm.text.words import tokenize

    def sentence(line: str) -> _Input:
        return _Input(line, [[token.text] for token in tokenize(line)])

    if not documents:
        return [(0, [sentence(line) for _, line in lines])] if lines else []
    groups: list[list[_Input]] = [[]]
    for _, line in lines:
        if line.strip():
            groups[-1].append(sentence(line))
        elif groups[-1]:
            groups.append([])
    return list(enumerate(group for group in groups if group))


def _conll_documents(
    lines: list[tuple[int, str]], source: str, documents: bool
) -> list[tuple[int, list[_Input]]]:
    """(index, sentences) of each document of CoNLL input, cut as read_conll cuts files:
    without ``documents`` one group of every sentence; with it, one group per document
    index (the whole input when it has no -DOCSTART- line)."""
    from seqlstm.data.readers import check_word, conll_sentences

    groups: dict[int, list[_Input]] = {}
    for s in conll_sentences(lines, source):
        for number, fields in zip(s.numbers, s.fields, strict=True):
            check_word(fields[0], f"{source}:{number}")  # the tagger could not read it
        # without documents (or without -DOCSTART- lines) all in group 0
        document = (s.document or 0) if documents else 0
        groups.setdefault(document, []).append(_Input([f[0] for f in s.fields], s.fields))
    return list(groups.items())


def _ner_arguments(group: argparse._ArgumentGroup) -> None:
    group.description = (
        "--data FILE: CoNLL, token first and gold tag last; or --dataset: its tokens and tags "
        "columns (tokens/words, tags/ner_tags/labels; ClassLabel ids read through the data "
        "set's own label names)"
    )
    group.add_argument(
        "--documents",
        choices=("auto", "marked", "whole-file", "none"),
        default="marked",
        help="which sentences are read together (seqlstm.data.documents): 'marked' the "
        "documents -DOCSTART- lines start (none: every sentence alone), 'whole-file' the file "
        "as one document (files in document order without -DOCSTART-, such as the shared "
        "CoNLL-2003 ones, as the NER recipe reads them), 'auto' marked if the file has "
        "-DOCSTART- lines else whole-file, 'none' every sentence alone (default: marked); for "
        "--dataset the split stands for the file",
    )
    group.add_argument(
        "--tokens-column",
        type=column_option,
        metavar="C",
        help="the column of words of --dataset: a name, or a number (default: tokens or words)",
    )
    group.add_argument(
        "--tags-column",
        type=column_option,
        metavar="C",
        help="the column of gold tags of --dataset: a name, or a number (default: tags, "
        "ner_tags or labels)",
    )


def _evaluate_ner(args: argparse.Namespace) -> None:
    from seqlstm.data import read_conll
    from seqlstm.data.documents import mark_documents
    from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, UnknownLabelError

    if args.data is None and args.dataset is None:
        raise DataError(
            "evaluate --task ner needs --data FILE (CoNLL: token first, gold tag last column) "
            "or --dataset ID_OR_PATH"
        )
    if args.data is not None and (args.tokens_column is not None or args.tags_column is not None):
        raise DataError("--tokens-column and --tags-column are for --dataset")
    tagger = load_model(BiLSTMCRFTagger, args.model, args.device, args.int8)
    split = dataset_split(
        args,
        "tagging",
        tokens_column=args.tokens_column,
        tags_column=args.tags_column,
        scheme=tagger.config.scheme,
    )
    # rows carry "document" when the file has -DOCSTART- lines; --documents decides
    rule = "whole-split" if args.documents == "whole-file" else args.documents
    if split is not None:
        rows, _ = mark_documents(split.to_list(), rule)
    else:
        rows, _ = mark_documents(read_conll(args.data, scheme_to=tagger.config.scheme), rule)
    try:
        scores = tagger.entity_scores(rows, batch_size=args.batch_size)
    except UnknownLabelError as err:
        if split is not None:
            raise DataError(
                f"{args.dataset} ({args.split or DEFAULT_SPLIT} split), {err}"
            ) from None
        known = ", ".join(tagger.entity_types)
        number, line = _conll_line(args.data, err.sentence, err.position)
        raise DataError(
            f"{args.data}:{number}: {line.strip()!r}: its tag ({err.tag} in "
            f"{tagger.config.scheme}) has a label the model never saw in training; the model "
            f"knows the entity types {known}"
        ) from None
    print(scores.report())


def _conll_line(path: Path, sentence: int, position: int) -> tuple[int, str]:
    """(number, text) of the file line of token ``position`` of sentence ``sentence``, with
    the sentences counted as read_conll counts them."""
    from seqlstm.data.readers import conll_sentences, iter_lines

    found = conll_sentences(iter_lines(path), str(path))[sentence]
    return found.numbers[position], found.lines[position]


COMMANDS = [
    Command("tag", "tag sentences with a trained BiLSTM-CRF tagger", _tag_arguments, _tag),
]

EVALUATIONS = [
    Evaluation(
        "ner",
        "entity precision/recall/F1 (conlleval) of a tagger on a CoNLL file or a data set",
        _ner_arguments,
        _evaluate_ner,
    ),
]
