"""`seqlstm tag` and `seqlstm evaluate --task ner`: use a saved BiLSTMCRFTagger.

    seqlstm tag --model DIR [--input FILE] [--format text|conll] [--output-format conll|jsonl]

reads sentences from FILE or stdin: with ``--format text`` one raw sentence a line (split into
words by seqlstm.text.words; a blank line is an empty sentence), with ``--format conll``
one token a line in the first column, sentences separated by blank lines (``-DOCSTART-``
lines are not sentences and are skipped). It writes CoNLL - each word, or each input line
with its columns, followed by the predicted tag, and a blank line after every sentence - or
JSON lines, one object per sentence with tokens, tags, token confidences and entities. A
model trained with document context (``context_words``) reads the sentences of the input as
consecutive text, each with the words of its neighbours, in both formats.

    seqlstm evaluate --task ner --model DIR --data FILE

scores the tagger on a CoNLL file (token in the first column, gold tag in the last) and
prints conlleval's report: overall and per-type precision, recall and F1.
"""

import argparse
import json
import sys
from pathlib import Path

from seqlstm.cli.command import Command, Evaluation, input_lines, load_model
from seqlstm.errors import DataError

_DOCSTART = "-DOCSTART-"


def _tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, metavar="DIR", help="model directory")
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
        "--output-format",
        choices=("conll", "jsonl"),
        default="conll",
        help="conll: token and tag a line; jsonl: one JSON object a sentence (default: conll)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="(default: 64)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def _tag(args: argparse.Namespace) -> None:
    from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger
    from seqlstm.text.words import tokenize

    tagger = load_model(BiLSTMCRFTagger, args.model, args.device)
    lines = input_lines(args.input)
    # rows: per sentence, the columns of each token line; the first column is the word
    if args.format == "text":
        sentences = [line for _, line in lines]  # raw text, so entity offsets are into lines
        rows = [[[token.text] for token in tokenize(text)] for text in sentences]
    else:
        rows = _conll_rows(lines)
        sentences = [[fields[0] for fields in sentence] for sentence in rows]
    out = sys.stdout
    if args.output_format == "jsonl":
        for tagged in tagger.tag(sentences, batch_size=args.batch_size):
            record = {
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
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    words = [[fields[0] for fields in sentence] for sentence in rows]
    for sentence, tags in zip(rows, tagger.predict(words, batch_size=args.batch_size), strict=True):
        for fields, tag in zip(sentence, tags, strict=True):
            out.write(" ".join([*fields, tag]) + "\n")
        out.write("\n")


def _evaluate_ner(args: argparse.Namespace) -> None:
    from seqlstm.data import read_conll
    from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, UnknownLabelError

    if args.data is None:
        raise DataError(
            "evaluate --task ner needs --data FILE (CoNLL: token first, gold tag last column)"
        )
    tagger = load_model(BiLSTMCRFTagger, args.model, args.device)
    rows = read_conll(args.data, scheme_to=tagger.config.scheme)
    try:
        scores = tagger.entity_scores(rows, batch_size=args.batch_size)
    except UnknownLabelError as err:
        number, line = _conll_line(args.data, err.sentence, err.position)
        known = ", ".join(tagger.entity_types)
        raise DataError(
            f"{args.data}:{number}: {line.strip()!r}: its tag ({err.tag} in "
            f"{tagger.config.scheme}) has a label the model never saw in training; the model "
            f"knows the entity types {known}"
        ) from None
    print(scores.report())


def _conll_rows(lines: list[tuple[int, str]]) -> list[list[list[str]]]:
    """Sentences of CoNLL lines, each a list of token lines split into their columns."""
    sentences: list[list[list[str]]] = []
    current: list[list[str]] = []
    for _, line in lines:
        if line.startswith(_DOCSTART) or not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        current.append(line.split())
    if current:
        sentences.append(current)
    return sentences


def _conll_line(path: Path, sentence: int, position: int) -> tuple[int, str]:
    """(number, text) of the file line of token ``position`` of sentence ``sentence``, with
    the sentences counted as read_conll counts them."""
    from seqlstm.data.readers import iter_lines

    seen, in_sentence = -1, False
    for number, line in iter_lines(path):
        if line.startswith(_DOCSTART) or not line.strip():
            in_sentence = False
            continue
        if not in_sentence:
            seen, token, in_sentence = seen + 1, 0, True
        else:
            token += 1
        if seen == sentence and token == position:
            return number, line
    raise ValueError(f"{path} has no token {position} in sentence {sentence}")


COMMANDS = [
    Command("tag", "tag sentences with a trained BiLSTM-CRF tagger", _tag_arguments, _tag),
]

EVALUATIONS = [
    Evaluation(
        "ner",
        "entity precision/recall/F1 (conlleval) of a tagger on a CoNLL file",
        lambda group: None,
        _evaluate_ner,
    ),
]
