"""Readers for the three file formats: CoNLL columns, line-aligned parallel text, plain text.

Every reader streams its file line by line as UTF-8 and reports a problem as a DataError
naming the file and the 1-based line number, so a bad byte in line 180,000 of a corpus is
found without a traceback through a decoder. What every reader (and ``seqlstm tag``,
``translate`` and ``evaluate``, which read stdin the same way) does with awkward input:

- Line ends: ``\\n``, ``\\r\\n`` and a lone ``\\r`` (old Mac files; Python's universal
  newlines) each end a line, in every format, and line numbers count them all. Other Unicode
  line breaks (U+2028, U+2029, U+0085, form feed) are characters inside a line, so a stray
  one in a sentence cannot shift the alignment of parallel files.
- Byte-order marks: a UTF-8 BOM at the start of the file is dropped. A UTF-16 or UTF-32 BOM
  is a DataError saying so: convert the file to UTF-8 (``iconv -f UTF-16 -t UTF-8``).
- NUL bytes: a DataError naming the line and column; no text file has one. When two or more
  NULs fill a quarter or more of the line, the message says the file looks like UTF-16 (or
  UTF-32) text without a BOM, which is what such a file usually is, and how to convert it.
- Invalid UTF-8: a DataError naming the line, the byte and its column.
- Blank lines (empty or only whitespace) are returned as they are; what they mean is the
  format's: in CoNLL they end a sentence, in parallel files they are pairs with an empty
  side (kept by :func:`read_parallel`, left out by ``seqlstm.data.load``), in text files
  they are empty lines. A CoNLL file without any sentence, parallel files without any pair
  of non-blank lines, or a CoNLL token that has no visible character (``\\xa0``, ``\\u2581``,
  which the subword tokenizer's normalisation turns into nothing) are DataErrors naming the
  file (and the line).
"""

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import zip_longest
from os import PathLike
from pathlib import Path
from typing import Any

from seqlstm.errors import DataError
from seqlstm.text.tag_schemes import SCHEMES, convert_tags, detect_scheme, split_tag
from seqlstm.text.tokenizer import normalize

logger = logging.getLogger(__name__)

_COLUMN_SEPARATOR = re.compile(r"[ \t]+")


def iter_lines(path: str | PathLike, *, keepends: bool = False) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for every line of a UTF-8 file, numbers starting at 1.

    Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``, and nowhere else (not at U+2028); a
    UTF-8 byte-order mark at the start is dropped; NUL bytes, UTF-16/32 text and invalid UTF-8
    are DataErrors naming the line (see the module docstring). Without ``keepends`` the line
    ending is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open("rb") as handle:
        yield from decode_lines(handle, str(path), keepends=keepends)


def decode_lines(
    raw_lines: Iterable[bytes], source: str, *, keepends: bool = False
) -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` of lines read as bytes (a file's, stdin's, each ending at
    ``\\n``), as `iter_lines` describes: a lone ``\\r`` inside one ends a line too. A line
    with a NUL byte or bad UTF-8 is a DataError naming ``source``, the line and the byte."""
    number = 0
    for raw in raw_lines:
        # a lone CR ends a line; UTF-8 has no 0x0D inside a multi-byte character
        pieces = _LONE_CR.split(raw) if b"\r" in raw else (raw,)
        for piece in pieces:
            if not piece:
                continue  # after a lone CR that ends the file (or the \n-line)
            number += 1
            if number == 1 and piece.startswith(_UTF16_BOMS):
                raise DataError(
                    f"{source}:1: starts with a UTF-16 byte-order mark ({piece[:2].hex(' ')}): "
                    "this is UTF-16 or UTF-32 text; convert it to UTF-8 (e.g. iconv -f UTF-16 -t "
                    "UTF-8 FILE > FILE.utf8)"
                )
            if b"\0" in piece:
                raise DataError(_nul_message(piece, source, number))
            try:
                line = piece.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{source}:{number}: not valid UTF-8 (byte {piece[exc.start]:#04x} at column "
                    f"{exc.start + 1}); re-encode it as UTF-8"
                ) from None
            if number == 1:
                line = line.removeprefix("\ufeff")
            if not keepends:
                line = line.removesuffix("\n").removesuffix("\r")
            yield number, line


# a CR not followed by LF, kept at the end of the line it ends (split by a lookbehind)
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _nul_message(piece: bytes, source: str, number: int) -> str:
    """The DataError message for a line (bytes) with a NUL byte: UTF-16 or UTF-32 text
    without a BOM when NULs are two or more and a quarter of its bytes or more (ASCII in
    UTF-16 is half NULs), else simply not text."""
    text = piece.rstrip(b"\r\n")
    nuls = text.count(b"\0")
    if nuls > 1 and nuls * 4 >= len(text):
        return (
            f"{source}:{number}: {nuls} of its {len(text)} bytes are NUL: this looks like "
            "UTF-16 (or UTF-32) text without a byte-order mark; convert it to UTF-8 (e.g. "
            "iconv -f UTF-16LE -t UTF-8 FILE > FILE.utf8, or -f UTF-16BE)"
        )
    column = piece.index(b"\0") + 1
    return (
        f"{source}:{number}: a NUL byte at column {column}: a text file has none (is this a "
        "binary file?); expected UTF-8 text"
    )


def read_text(path: str | PathLike) -> str:
    """The whole file as one string, checked to be UTF-8 line by line (line endings kept)."""
    return "".join(line for _, line in iter_lines(path, keepends=True))


def read_parallel(src_path: str | PathLike, tgt_path: str | PathLike) -> list[tuple[str, str]]:
    """Line-aligned sentence pairs: line ``i`` of the source with line ``i`` of the target.

    Every line pair is returned, empty ones included, so that ``pairs[i]`` is always line
    ``i + 1`` of both files; the caller decides what to do with pairs where one side is
    empty (:func:`seqlstm.data.load` drops them and logs how many). Line endings are removed,
    other whitespace is kept. Files with different line counts raise a DataError naming both
    files and both counts; so do files without a single pair of non-blank lines (empty files,
    say), which hold no sentence pair at all.
    """
    pairs: list[tuple[str, str]] = []
    src_lines, tgt_lines = iter_lines(src_path), iter_lines(tgt_path)
    for src, tgt in zip_longest(src_lines, tgt_lines):
        if src is None or tgt is None:
            src_count = len(pairs) + (src is not None) + sum(1 for _ in src_lines)
            tgt_count = len(pairs) + (tgt is not None) + sum(1 for _ in tgt_lines)
            raise DataError(
                f"{src_path} has {src_count} lines but {tgt_path} has {tgt_count}: "
                "parallel files must be line-aligned"
            )
        pairs.append((src[1], tgt[1]))
    empty = sum(1 for src, tgt in pairs if not src.strip() or not tgt.strip())
    if empty == len(pairs):
        found = "no lines" if not pairs else f"{len(pairs)} lines but no pair of non-blank ones"
        raise DataError(
            f"{src_path} and {tgt_path} have {found}: expected line-aligned sentences, one a line"
        )
    if empty:
        logger.info(
            "%s / %s: %d of %d line pairs have an empty side", src_path, tgt_path, empty, len(pairs)
        )
    return pairs


DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class ConllSentence:
    """One sentence of a CoNLL file, as :func:`conll_sentences` cuts it.

    ``document`` is the 0-based index of its document in the file, or None when the file has
    no ``-DOCSTART-`` line (its sentences are independent); per token, ``numbers`` holds the
    1-based line number, ``lines`` the line and ``fields`` its columns, split by spaces and
    tabs.
    """

    document: int | None
    numbers: list[int]
    lines: list[str]
    fields: list[list[str]]


def conll_sentences(lines: Iterable[tuple[int, str]], source: str) -> list[ConllSentence]:
    """Cut numbered CoNLL lines (from `iter_lines`/`decode_lines`) into sentences and documents.

    Blank lines (only whitespace) end a sentence; other lines are token lines, split into
    columns at runs of spaces and tabs only (a non-breaking space belongs to its token). A line
    starting with ``-DOCSTART-`` starts a new document and is not a sentence. The sentences
    before the first ``-DOCSTART-`` form a document of their own when there are any, and a
    document without sentences (two ``-DOCSTART-`` lines with nothing between them) still
    takes its index, so indices may have gaps. Without any ``-DOCSTART-`` line every
    ``document`` is None. A ``-DOCSTART-`` line right after a token line, with no blank line
    between, is a DataError naming ``source`` and the line: the file is probably cut wrongly.
    """
    sentences: list[ConllSentence] = []
    numbers: list[int] = []
    texts: list[str] = []
    fields: list[list[str]] = []
    document, marked = 0, False
    for number, line in lines:
        if line.startswith(DOCSTART):
            if numbers:
                raise DataError(
                    f"{source}:{number}: {DOCSTART} inside a sentence (its last token is line "
                    f"{numbers[-1]}); expected a blank line before {DOCSTART}"
                )
            # the leading block is a document of its own only when it has sentences
            if marked or sentences:
                document += 1
            marked = True
            continue
        if not line.strip():
            if numbers:
                sentences.append(ConllSentence(document, numbers, texts, fields))
                numbers, texts, fields = [], [], []
            continue
        numbers.append(number)
        texts.append(line)
        fields.append(_COLUMN_SEPARATOR.split(line.strip(" \t\r")))
    if numbers:
        sentences.append(ConllSentence(document, numbers, texts, fields))
    if not marked:
        sentences = [ConllSentence(None, s.numbers, s.lines, s.fields) for s in sentences]
    return sentences


def read_conll(
    path: str | PathLike,
    label_column: int = -1,
    token_column: int = 0,
    scheme_from: str = "auto",
    scheme_to: str | None = "IOB2",
    *,
    columns: bool = False,
) -> list[dict[str, Any]]:
    """Sentences of a CoNLL-style file: one token a line, columns split by spaces or tabs.

    Blank lines separate sentences and every token line must have as many columns as the
    first one. Returns one dict per sentence: ``{"tokens": [...], "tags": [...]}`` taken from
    ``token_column`` and ``label_column`` (negative indices count from the right), plus
    ``"columns"``, the list of all columns (each a list as long as the sentence), when
    ``columns=True``.

    Documents. ``-DOCSTART-`` lines start documents (:func:`conll_sentences`). When the file
    has at least one, every dict also gets ``"document"``: the 0-based index of its document
    in the file, counting the sentences before the first ``-DOCSTART-`` as a document when
    there are any, and counting empty documents too (so indices may have gaps); a tagger
    reads the sentences of one document with each other as context. Without any
    ``-DOCSTART-`` line there is no ``"document"`` key and the sentences are independent.

    The labels are chunk tags converted from ``scheme_from`` (``"auto"``: detected over the
    whole file with :func:`seqlstm.text.tag_schemes.detect_scheme`) to ``scheme_to``; with
    ``scheme_to=None`` they are kept as they are, which is what POS or other non-chunk labels
    need. Raises DataError, naming the file and line, for a wrong number of columns, a token
    without a visible character (:func:`check_word`), a label that is not a tag of the
    scheme, a ``-DOCSTART-`` line inside a sentence, bad UTF-8, a NUL byte, or a file
    without any sentence.
    """
    if scheme_from != "auto" and scheme_from not in SCHEMES:
        raise ValueError(f"unknown scheme_from {scheme_from!r}: expected 'auto' or {SCHEMES}")
    if scheme_to is not None and scheme_to not in SCHEMES:
        raise ValueError(f"unknown scheme_to {scheme_to!r}: expected None or {SCHEMES}")
    sentences = conll_sentences(iter_lines(path), str(path))
    if not sentences:
        raise DataError(f"{path}: no sentences (the file is empty or has only blank lines)")
    width = len(sentences[0].fields[0])
    for name, index in (("token_column", token_column), ("label_column", label_column)):
        if not -width <= index < width:
            raise DataError(
                f"{path}:{sentences[0].numbers[0]}: {name}={index} but the file has {width} columns"
            )
    checked_tags: set[str] = set()
    checked_words: set[str] = set()
    examples = []
    for sentence in sentences:
        for number, line, fields in zip(
            sentence.numbers, sentence.lines, sentence.fields, strict=True
        ):
            if len(fields) != width:
                raise DataError(
                    f"{path}:{number}: expected {width} columns (as in the first token line), "
                    f"found {len(fields)}: {line!r}"
                )
            if fields[token_column] not in checked_words:
                check_word(fields[token_column], f"{path}:{number}")
                checked_words.add(fields[token_column])
            if scheme_to is not None and fields[label_column] not in checked_tags:
                _check_tag(fields[label_column], scheme_from, path, number)
                checked_tags.add(fields[label_column])
        by_column = [list(column) for column in zip(*sentence.fields, strict=True)]
        example: dict[str, Any] = {
            "tokens": by_column[token_column],
            "tags": by_column[label_column],
        }
        if sentence.document is not None:
            example["document"] = sentence.document
        if columns:
            example["columns"] = by_column
        examples.append(example)
    if scheme_to is not None:
        source_scheme = scheme_from
        if scheme_from == "auto":
            source_scheme = detect_scheme(example["tags"] for example in examples)
            logger.info("%s: tags read as %s", path, source_scheme)
        for example in examples:
            example["tags"] = convert_tags(example["tags"], source_scheme, scheme_to)
    return examples


def check_word(word: str, where: str) -> None:
    """A DataError "``where``: ..." if ``word`` has no visible character: the subword
    tokenizer's normalisation (seqlstm.text.tokenizer.normalize: NFKC, then U+2581 and every
    whitespace character a space, stripped) leaves nothing of it - a token ``\\xa0`` or
    ``\\u2581`` - so no model could read it as a word."""
    if not normalize(word):
        raise DataError(
            f"{where}: the token {word!r} has no visible character (only spaces or U+2581, "
            "which the tokenizer's normalisation removes); every token needs one"
        )


def _check_tag(tag: str, scheme: str, path: str | PathLike, number: int) -> None:
    """Fail at the line of a bad tag, before conversion loses track of where it was."""
    try:
        prefix, _ = split_tag(tag)
    except DataError as exc:
        raise DataError(f"{path}:{number}: {exc} (pass scheme_to=None for other labels)") from None
    if scheme in ("IOB1", "IOB2") and prefix in ("E", "S"):
        raise DataError(f"{path}:{number}: {tag!r} is not an {scheme} tag (only B-/I-)")
