"""Where the documents of a tagging data set come from, decided explicitly.

A tagger with document context reads a sentence with its neighbours of the same document, so
which sentences form a document must be a decision, recorded with the results, never an
accident of how the rows were listed. ``mark_documents`` sets every row's ``document`` key
(the column ``seqlstm.data.load`` makes from ``-DOCSTART-`` lines or a hub data set's
document-id column) by one of these rules:

- ``marked``: the data's own marks; rows without them are independent sentences;
- ``whole-split``: the split is one document, in row order: for files in document order
  that mark no boundaries (the shared CoNLL-2003 files, the hub's ``eriktks/conll2003``);
- ``none``: every sentence is read alone (unrelated sentences: queries, tweets, shuffled sets);
- ``auto``: ``marked`` where the data has marks, else ``whole-split``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

DocumentSource = Literal["auto", "marked", "whole-split", "none"]
DOCUMENT_SOURCES = ("auto", "marked", "whole-split", "none")


def mark_documents(
    rows: Sequence[Mapping[str, Any]], source: DocumentSource
) -> tuple[list[dict[str, Any]], str]:
    """(the rows as dicts with ``document`` set by ``source``, the rule used: ``marked``,
    ``whole-split`` or ``none``). Under ``none``, and ``marked`` without marks, every row's
    ``document`` is None (a document of its own)."""
    if source not in DOCUMENT_SOURCES:
        raise ValueError(f"documents must be one of {DOCUMENT_SOURCES}, got {source!r}")
    marked = any(row.get("document") is not None for row in rows)
    if source == "auto":
        source = "marked" if marked else "whole-split"
    if source == "marked":
        return [dict(row, document=row.get("document")) for row in rows], source
    document = 0 if source == "whole-split" else None
    return [dict(row, document=document) for row in rows], source


def count_documents(rows: Sequence[Mapping[str, Any]]) -> int:
    """How many documents the rows form: runs of equal ``document`` values, and every row
    without one."""
    count, previous = 0, None
    for row in rows:
        document = row.get("document")
        count += document is None or document != previous
        previous = document
    return count


def mark_split_documents(
    splits: Mapping[str, Sequence[Mapping[str, Any]]], source: DocumentSource
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """:func:`mark_documents` for each split: (the rows of each split, and for results files
    the rule used and the number of documents of each split)."""
    rows, summary = {}, {}
    for split, split_rows in splits.items():
        rows[split], rule = mark_documents(split_rows, source)
        summary[split] = {"rule": rule, "documents": count_documents(rows[split])}
    return rows, summary
