"""Pretrained word vectors (GloVe or word2vec text files) for the tagger's word table.

Format: one ``token v1 ... v_D`` line per vector, space-separated. A first line of two
integers ``N D`` is a word2vec header (:func:`_header` is the one rule both functions here
use to recognise it). A token may contain spaces (as in glove.840B) when the field after it
is not a number.

- :func:`word_vectors_dimension` reads D from the header or the first vector line;
- :func:`load_word_vectors` builds the table for a vocabulary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from seqlstm.errors import DataError
from seqlstm.text.vocabulary import Vocabulary


def word_vectors_dimension(path: str | os.PathLike) -> int:
    """The size D of the vectors in a GloVe/word2vec text file, from its first line.

    The header's D for word2vec text, else the number of values after the token of the first
    vector line. Raises DataError for a missing file or a first line without a vector.
    """
    path = Path(path)
    for lineno, fields in _lines(path):
        header = _header(lineno, fields)
        if header is not None:
            return header[1]
        if len(fields) < 2:
            raise DataError(f"{path}:{lineno}: expected a token and its vector")
        return len(fields) - 1
    raise DataError(f"{path}: no vectors in the file")


def load_word_vectors(path: str | os.PathLike, vocab: Vocabulary, dim: int) -> tuple[Tensor, int]:
    """Pretrained vectors for the tokens of vocab, from a GloVe or word2vec text file.

    A word2vec header is checked against dim and the number of lines. Lookup: the exact
    token, else its lowercase form; the first occurrence in the file wins. Every line's field
    count is checked; the numbers are parsed on the lines that are used. Rows found nowhere
    are drawn from N(0, s^2), s the std of the found values (torch's global generator; seed it
    for reproducibility); the pad row is zero.

    Returns (FloatTensor[len(vocab), dim], number of rows filled from the file). Raises
    DataError with file, line and the expected dimension for a malformed line.
    """
    path = Path(path)
    rows = {token: i for i, token in enumerate(vocab.tokens)}
    by_lower: dict[str, list[int]] = {}
    for token, i in rows.items():
        by_lower.setdefault(token.lower(), []).append(i)
    exact: dict[int, Tensor] = {}
    lowered: dict[int, Tensor] = {}
    header_count = None
    num_vectors = 0
    for lineno, fields in _lines(path):
        header = _header(lineno, fields)
        if header is not None:
            header_count, header_dim = header
            if header_dim != dim:
                raise DataError(
                    f"{path}:1: header announces {header_dim}-dimensional vectors, expected {dim}"
                )
            continue
        token, values = _split_vector_line(fields, dim, path, lineno)
        num_vectors += 1
        wanted_exact = token in rows and rows[token] not in exact
        wanted_lower = any(i not in lowered for i in by_lower.get(token, ()))
        if not (wanted_exact or wanted_lower):
            continue
        try:
            vector = torch.tensor([float(v) for v in values])
        except ValueError:
            raise DataError(
                f"{path}:{lineno}: expected {dim} numbers after the token {token!r}, "
                f"found a non-number"
            ) from None
        if wanted_exact:
            exact[rows[token]] = vector
        for i in by_lower.get(token, ()):
            lowered.setdefault(i, vector)
    if header_count is not None and header_count != num_vectors:
        raise DataError(
            f"{path}: header announces {header_count} vectors but the file holds {num_vectors}"
        )
    found = {**lowered, **exact}  # an exact match beats a lowercase one
    if vocab.pad_id is not None:
        found.pop(vocab.pad_id, None)
    if found:
        values = torch.stack(list(found.values()))
        std = values.std().item() if values.numel() > 1 else 1.0
    else:
        std = 1.0
    table = torch.randn(len(vocab), dim) * std
    for i, vector in found.items():
        table[i] = vector
    if vocab.pad_id is not None:
        table[vocab.pad_id] = 0.0
    return table, len(found)


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, space-separated fields) of each non-blank line of a vectors file."""
    if not path.is_file():
        raise DataError(f"{path}: no such vectors file")
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip()
            except UnicodeDecodeError:
                raise DataError(
                    f"{path}:{lineno}: not UTF-8 text (only the text formats of GloVe and "
                    "word2vec are read, not word2vec binary)"
                ) from None
            if line:
                yield lineno, line.split(" ")


def _header(lineno: int, fields: list[str]) -> tuple[int, int] | None:
    """(N, D) if this is a word2vec header: a first line of exactly two integers."""
    if lineno == 1 and len(fields) == 2 and all(field.isdigit() for field in fields):
        return int(fields[0]), int(fields[1])
    return None


def _split_vector_line(
    fields: list[str], dim: int, path: Path, lineno: int
) -> tuple[str, list[str]]:
    """(token, dim value strings) of one line; a token may hold spaces (glove.840B)."""
    if len(fields) > dim + 1 and not _is_number(fields[1]):
        fields = [" ".join(fields[:-dim]), *fields[-dim:]]
    if len(fields) != dim + 1:
        raise DataError(
            f"{path}:{lineno}: expected a token and {dim} numbers, found {len(fields) - 1} values"
        )
    return fields[0], fields[1:]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
