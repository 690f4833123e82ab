"""A ``datasets.Dataset`` given where a task model takes rows, read through its own features.

The task models' ``evaluate`` (and the tagger's ``entity_scores``) take rows - dicts with the
columns :func:`seqlstm.data.load` makes - or a ``datasets.Dataset``. A Dataset straight from
the hub is shaped otherwise: its tags are ClassLabel ids in ``ner_tags``, its sentence pairs
sit in a ``translation`` column. The functions here turn such a Dataset into the rows the
model reads, with the data set's own label names, its chunk scheme converted to the model's
and its columns found as :mod:`seqlstm.data.columns` says (or named). Rows that are not a
Dataset pass through unchanged, and the model checks them.

What would be read wrong is a DataError saying what to pass, never a silent wrong answer: a
``DatasetDict`` (pick a split), one column of a Dataset where rows are expected, a lone text.

A Dataset is recognised by its ``features`` and ``column_names`` attributes, so a list of
dicts never touches the ``datasets`` library here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from seqlstm.data.columns import find_column
from seqlstm.data.loading import normalize_tagging_split
from seqlstm.errors import DataError


def is_dataset(value: object) -> bool:
    """Whether ``value`` is a ``datasets.Dataset``: anything with ``features``,
    ``column_names`` and a length that is not a mapping (a DatasetDict is a mapping, a
    streamed IterableDataset has no length)."""
    return (
        hasattr(value, "features")
        and hasattr(value, "column_names")
        and hasattr(value, "__len__")  # not a streamed IterableDataset
        and not isinstance(value, Mapping)
    )


def tagging_rows(
    rows: Any,
    scheme: str,
    *,
    tokens_column: str | int | None = None,
    tags_column: str | int | None = None,
) -> Iterable[Mapping[str, Any]]:
    """The rows a tagger scores: ``{"tokens", "tags"[, "document"]}`` dicts.

    A Dataset gives one dict per row: its words and its tags (found by name, or named by
    ``tokens_column``/``tags_column``; ClassLabel ids mapped to the data set's own names),
    the tags' chunk scheme detected in the data set and converted to ``scheme`` (the
    tagger's), and its ``document`` column, if it has one, copied as it is. Other rows are
    returned as they are, with ``tokens_column``/``tags_column`` (names) read into
    ``tokens``/``tags``. DataError for a DatasetDict, a column of a Dataset, a missing or
    ambiguous column, ClassLabel ids out of range, labels that are not chunk tags.
    """
    if is_dataset(rows):
        normalised = normalize_tagging_split(rows, tags_column, tokens_column, scheme)
        if "document" in rows.column_names:
            normalised = normalised.add_column("document", rows["document"][:])
        return normalised.to_list()
    _refuse_splits(rows)
    if hasattr(rows, "features") and hasattr(rows, "column_name"):  # a datasets Column
        raise DataError(
            f"got the column {rows.column_name!r} of a data set where rows are expected: pass "
            "the Dataset itself (e.g. tagger.evaluate(ds['test'])), whose rows hold both the "
            "words and the tags"
        )
    if tokens_column is None and tags_column is None:
        return rows
    if isinstance(tokens_column, int) or isinstance(tags_column, int):
        raise TypeError("rows of dicts have named columns: tokens_column and tags_column are names")
    return _renamed(rows, {tokens_column or "tokens": "tokens", tags_column or "tags": "tags"})


def translation_rows(
    rows: Any, source_language: str | None, target_language: str | None
) -> Iterable[Mapping[str, Any]]:
    """The rows a translator scores: a Dataset gives ``{"source", "target"}`` dicts, from
    its ``source``/``target`` columns, else from the columns of the two languages or its
    ``translation`` column of ``{language: sentence}`` dicts (the WMT layout). Other rows
    are returned as they are. DataError for a DatasetDict, or a Dataset without the
    columns, naming them."""
    if not is_dataset(rows):
        _refuse_splits(rows)
        return rows
    columns = rows.column_names
    if "source" in columns and "target" in columns:
        sources, targets = rows["source"][:], rows["target"][:]
    elif source_language is None or target_language is None:
        raise DataError(
            f"the data set has the columns {columns} but no 'source' and 'target', and the model "
            "does not name its languages (config.source_language/target_language); pass rows "
            "with 'source' and 'target'"
        )
    elif "translation" in columns and not {source_language, target_language} <= set(columns):
        pairs = rows["translation"][:]
        for number, pair in enumerate(pairs):
            if not isinstance(pair, Mapping):
                raise DataError(
                    f"row {number}: 'translation' must be a {{language: sentence}} dict, got "
                    f"{type(pair).__name__}"
                )
        sources = [pair.get(source_language) for pair in pairs]
        targets = [pair.get(target_language) for pair in pairs]
    else:
        missing = [code for code in (source_language, target_language) if code not in columns]
        if missing:
            raise DataError(
                f"the data set has no column for {missing}: its columns are {columns} (expected "
                f"'{source_language}' and '{target_language}', a 'translation' column or "
                "'source' and 'target')"
            )
        sources, targets = rows[source_language][:], rows[target_language][:]
    return [
        {"source": source, "target": target}
        for source, target in zip(sources, targets, strict=True)
    ]


def text_rows(rows: Any, text_column: str | None = None) -> Iterable[Any]:
    """The texts a language model scores: a Dataset gives its text column (``text``, or
    ``text_column``) as a list of str; other rows are returned as they are. DataError for a
    DatasetDict, a lone str or a lone mapping (each would be read as many texts: its
    characters, its keys)."""
    if is_dataset(rows):
        return rows[find_column(rows.column_names, "text", text_column)][:]
    _refuse_splits(rows)
    if isinstance(rows, str | Mapping):
        raise DataError(
            f"expected texts (str or {{'text': str}} rows), got one {type(rows).__name__}; "
            "pass a list of them (e.g. [text])"
        )
    return rows


def _refuse_splits(rows: Any) -> None:
    """DataError for a DatasetDict (a mapping of Datasets) or a streamed data set (an
    IterableDataset, whose features may be unknown) given as rows."""
    if isinstance(rows, Mapping) and rows and all(is_dataset(v) for v in rows.values()):
        raise DataError(
            f"got a {type(rows).__name__} of the splits {list(rows)} where rows are expected: "
            "pass one split (e.g. data['test'])"
        )
    if hasattr(rows, "features") and hasattr(rows, "column_names"):
        raise DataError(
            f"got a streamed {type(rows).__name__}: pass a datasets.Dataset (load the split "
            "without streaming=True, or take datasets.Dataset.from_list(list(data)))"
        )


def _renamed(rows: Iterable[Any], names: dict[str, str]) -> list[dict[str, Any]]:
    """Rows as dicts with the columns ``names`` renamed (the others kept as they are)."""
    renamed = []
    for number, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataError(
                f"row {number}: expected a mapping of columns, got {type(row).__name__}"
            )
        missing = [name for name in names if name not in row]
        if missing:
            raise DataError(f"row {number}: no column {missing[0]!r}; it has {list(row)}")
        kept = {key: value for key, value in row.items() if key not in names.values()}
        renamed.append({**kept, **{new: row[old] for old, new in names.items()}})
    return renamed
