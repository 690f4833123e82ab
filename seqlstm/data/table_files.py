"""Table files - JSON lines, CSV/TSV and Parquet - read into the columns ``load`` makes.

A table file holds one row a line (JSON lines: a JSON object; CSV/TSV: a header line, then
the fields of a row) or, for Parquet, one row a table row. The columns are found as
:mod:`seqlstm.data.columns` says (``tokens``/``words`` and ``tags``/``ner_tags``/``labels``,
``text``, the language columns or a ``translation`` column of ``{language: sentence}``
objects), or named by the caller. Every problem is a DataError naming the file and the line
(JSON lines, CSV) or the row (Parquet, counted from 0 as ``datasets`` counts them) and what
was expected, as for CoNLL files.

Values. In JSON lines a tagging row's words and tags are JSON arrays of strings. A CSV field
holds a list either as a JSON array (``["EU", "rejects"]``; a Python list literal, which is
what pandas writes, is read too) or as words separated by whitespace (``EU rejects``); a field
that starts with ``[`` but is not such a list is an error rather than a guess. Tags must be
label names: integers are ClassLabel ids, whose names only a Parquet file written by
``datasets`` (or a ``save_to_disk`` folder) keeps, and a JSON lines or CSV file with integer
tags is an error that says so.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow
import pyarrow.parquet
from datasets import Dataset

from seqlstm.data.columns import find_column
from seqlstm.data.readers import check_word, iter_lines
from seqlstm.errors import DataError

# file suffix -> format; anything else is a CoNLL file (tagging), a text file (text) or a
# {split}.{language} file (translation)
TABLE_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}


def is_table_file(path: Path) -> bool:
    """Whether ``path`` is named as a table file (by its suffix, in any case)."""
    return path.suffix.lower() in TABLE_FORMATS


@dataclass(frozen=True)
class TableRows:
    """The rows of a JSON lines or CSV/TSV file, before any column is chosen.

    ``columns``: every column name, in the order first seen; ``rows``: one dict per row
    (JSON values, or CSV fields as strings); ``places``: ``"FILE:LINE"`` of each row, for
    error messages; ``text_fields``: whether the values are CSV text (lists still to parse).
    """

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    places: list[str]
    text_fields: bool


def read_table(path: Path) -> TableRows | Dataset:
    """The rows of a table file: a :class:`TableRows` of a JSON lines or CSV/TSV file, or the
    ``datasets.Dataset`` of a Parquet file (with the ClassLabel names ``datasets`` writes
    into its schema). DataError names the file and line of a malformed row."""
    table_format = TABLE_FORMATS.get(path.suffix.lower())
    if table_format is None:
        raise ValueError(f"{path} is not a table file ({', '.join(TABLE_FORMATS)})")
    if table_format == "parquet":
        return read_parquet(path)
    if table_format == "jsonl":
        table = _read_json_lines(path)
    else:
        table = _read_delimited(path, "\t" if table_format == "tsv" else ",")
    if not table.rows:
        raise DataError(f"{path}: no rows (the file is empty or has only a header)")
    return table


def read_parquet(path: Path) -> Dataset:
    """A Parquet file as a Dataset; its features come from the schema (``datasets`` keeps
    ClassLabel names there)."""
    try:
        table = pyarrow.parquet.read_table(path)
    except (OSError, pyarrow.ArrowException) as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: no rows")
    return Dataset(table)


def parquet_places(path: Path, rows: int) -> list[str]:
    """The names of the rows of a Parquet file in error messages."""
    return [f"{path} row {number}" for number in range(rows)]


def _read_json_lines(path: Path) -> TableRows:
    columns: dict[str, None] = {}
    rows, places = [], []
    for number, line in iter_lines(path):
        if not line.strip():
            continue  # a blank line (a trailing one, say) is no row
        place = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(
                f"{place}: not valid JSON ({exc}); expected one JSON object a line"
            ) from None
        if not isinstance(row, dict):
            raise DataError(
                f"{place}: expected a JSON object (one row a line), got {type(row).__name__}"
            )
        columns.update(dict.fromkeys(row))
        rows.append(row)
        places.append(place)
    return TableRows(path, list(columns), rows, places, text_fields=False)


def _read_delimited(path: Path, delimiter: str) -> TableRows:
    lines = iter_lines(path, keepends=True)
    # csv reads a quoted field across line breaks, so the numbers come from its own count
    reader = csv.reader((line for _, line in lines), delimiter=delimiter)
    header: list[str] | None = None
    rows, places = [], []
    start = 1
    for fields in reader:
        place, start = f"{path}:{start}", reader.line_num + 1
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if header is None:
            if len(set(fields)) != len(fields):
                raise DataError(f"{place}: the header names a column twice: {fields}")
            header = fields
            continue
        if len(fields) != len(header):
            raise DataError(
                f"{place}: expected {len(header)} fields (as in the header), found {len(fields)}"
            )
        rows.append(dict(zip(header, fields, strict=True)))
        places.append(place)
    return TableRows(path, header or [], rows, places, text_fields=True)


# ---- one task's columns of the rows, checked row by row ----


def tagging_columns(
    table: TableRows,
    tokens_column: str | int | None,
    tags_column: str | int | None,
    document_column: str | None,
) -> dict[str, list[Any]]:
    """``{"tokens": [...], "tags": [...]}`` (and ``"document"`` with ``document_column``) of
    the rows: lists of str words and of as many str tags a row. DataError names the line."""
    lists = _list_columns(table)
    where = f"{table.path}: "
    tokens_name = find_column(
        table.columns, "tokens", tokens_column, list_columns=lists, where=where
    )
    tags_name = find_column(table.columns, "tags", tags_column, list_columns=lists, where=where)
    if tokens_name == tags_name:
        raise DataError(f"{where}the words and the tags are both the column {tokens_name!r}")
    data: dict[str, list[Any]] = {"tokens": [], "tags": []}
    if document_column is not None:
        if document_column not in table.columns:
            raise DataError(
                f"{where}no document column {document_column!r}; the columns are {table.columns}"
            )
        data["document"] = []
    for row, place in zip(table.rows, table.places, strict=True):
        words = _strings(table, row, place, tokens_name, "words")
        tags = _strings(table, row, place, tags_name, "tags")
        if len(words) != len(tags):
            raise DataError(f"{place}: {len(words)} words ({tokens_name!r}) but {len(tags)} tags")
        for number, word in enumerate(words):
            check_word(word, f"{place}, word {number}")
        data["tokens"].append(words)
        data["tags"].append(tags)
        if document_column is not None:
            document = row.get(document_column)
            if isinstance(document, bool) or not isinstance(document, int | str):
                raise DataError(
                    f"{place}: document column {document_column!r} holds {document!r}; "
                    "expected an int or str id"
                )
            data["document"].append(document)
    if document_column is not None and len({type(d) for d in data["document"]}) > 1:
        raise DataError(f"{where}document column {document_column!r} mixes int and str ids")
    return data


def translation_columns(table: TableRows, languages: Sequence[str] | None) -> dict[str, list[str]]:
    """One list of sentences per language: from a ``translation`` column of ``{language:
    sentence}`` objects, or from string columns (``languages``, default every column)."""
    if "translation" in table.columns and not table.text_fields:
        pairs = [_pair(row, place) for row, place in zip(table.rows, table.places, strict=True)]
        wanted = (
            list(languages)
            if languages is not None
            else sorted({language for pair in pairs for language in pair})
        )
        return {
            language: [
                _string(pair.get(language), place, f"translation.{language}")
                for pair, place in zip(pairs, table.places, strict=True)
            ]
            for language in wanted
        }
    wanted = list(languages) if languages is not None else list(table.columns)
    missing = [language for language in wanted if language not in table.columns]
    if missing:
        raise DataError(
            f"{table.path}: no column for {missing}; the columns are {table.columns} (expected "
            "one column per language, or a 'translation' column of {language: sentence})"
        )
    return {
        language: [
            _string(row.get(language), place, language)
            for row, place in zip(table.rows, table.places, strict=True)
        ]
        for language in wanted
    }


def text_column(table: TableRows, column: str | None) -> list[str]:
    """The text of every row, from ``column`` (default: the ``text`` column)."""
    name = find_column(table.columns, "text", column, where=f"{table.path}: ")
    return [
        _string(row.get(name), place, name)
        for row, place in zip(table.rows, table.places, strict=True)
    ]


def _pair(row: dict[str, Any], place: str) -> dict[str, Any]:
    pair = row.get("translation")
    if not isinstance(pair, dict):
        raise DataError(
            f"{place}: 'translation' must be an object {{language: sentence}}, got "
            f"{type(pair).__name__}"
        )
    return pair


def _string(value: Any, place: str, column: str) -> str:
    if not isinstance(value, str):
        got = "nothing" if value is None else type(value).__name__
        raise DataError(f"{place}: column {column!r} must be a string, got {got}")
    return value


def _list_columns(table: TableRows) -> list[str]:
    """The columns an index counts among: in JSON lines those holding a list in the first row
    that has them; in CSV every column (any field can hold a list)."""
    if table.text_fields:
        return list(table.columns)
    first: dict[str, Any] = {}
    for row in table.rows:
        for name, value in row.items():
            first.setdefault(name, value)
    return [name for name in table.columns if isinstance(first.get(name), list)]


def _strings(
    table: TableRows, row: dict[str, Any], place: str, column: str, what: str
) -> list[str]:
    """The list of str in ``row[column]`` (a CSV field parsed as the module docstring says)."""
    if column not in row:
        raise DataError(f"{place}: no {column!r} (expected a list of {what})")
    value = row[column]
    if table.text_fields:
        value = _parse_list_field(value, place, column)
    if not isinstance(value, list):
        raise DataError(
            f"{place}: column {column!r} must be a list of {what}, got {type(value).__name__}"
        )
    if all(isinstance(item, str) for item in value):
        return value
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        raise DataError(
            f"{place}: column {column!r} holds integers (ClassLabel ids?) but this file does not "
            f"name the labels; write the {what} as strings, or save the data set with "
            "save_to_disk or to_parquet, which keep the label names"
        )
    raise DataError(f"{place}: column {column!r} must be a list of str {what}: {value!r}")


def _parse_list_field(field: str, place: str, column: str) -> Any:
    text = field.strip()
    if not text.startswith("["):
        return text.split()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)  # pandas writes lists as Python literals
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise DataError(
            f"{place}: column {column!r} starts with '[' but is not a JSON list: {field!r} "
            "(write a list as a JSON array, or as words separated by spaces)"
        ) from None
