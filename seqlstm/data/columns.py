"""Which columns of a data set hold the words, the tags or the text: given, or found by name.

Data sets on the Hugging Face hub and in JSON lines, CSV or Parquet files name their columns
in a few usual ways; these are looked for, in this order:

- words of a tagging row: ``tokens``, ``words``;
- tags of a tagging row: ``tags``, ``ner_tags``, ``labels`` (``pos_tags``, ``chunk_tags`` and
  any other column only when named: a data set with POS and NER tags must not be scored on the
  wrong ones by accident);
- text of a language-modelling row: ``text``.

A column is found by its name first. Exactly one of the usual names must be present: none,
or two (``tags`` beside ``ner_tags``), is a DataError naming the columns and the argument
that picks one. An integer picks a column by its index among the list-valued columns, and
only when given (``tags_column=-1``: the last list column, which for CoNLL-2003's tokens,
pos_tags, chunk_tags, ner_tags are the NER tags). Nothing here imports ``datasets``.
"""

from __future__ import annotations

from collections.abc import Sequence

from seqlstm.errors import DataError

TOKENS_COLUMNS = ("tokens", "words")
TAGS_COLUMNS = ("tags", "ner_tags", "labels")
TEXT_COLUMNS = ("text",)

# what each column is, and the keyword argument (and command-line option) that names it
_ARGUMENTS = {
    "tokens": "tokens_column (--tokens-column)",
    "tags": "tags_column (--tags-column)",
    "text": "text_column (--text-column)",
}
_USUAL_NAMES = {"tokens": TOKENS_COLUMNS, "tags": TAGS_COLUMNS, "text": TEXT_COLUMNS}


def find_column(
    columns: Sequence[str],
    what: str,
    given: str | int | None = None,
    *,
    list_columns: Sequence[str] | None = None,
    where: str = "",
) -> str:
    """The name of the ``what`` column (``"tokens"``, ``"tags"`` or ``"text"``) among
    ``columns``: ``given`` if it is a name, the ``given``-th of ``list_columns`` (the columns
    holding a list per row, in order; negative counts from the end) if it is an int, else
    the one usual name of the module docstring that is present.

    ``where`` (e.g. ``"data/train.jsonl: "``) starts every error message. Raises DataError
    for a missing named column, an index out of range, or none or more than one usual name.
    """
    if what not in _USUAL_NAMES:
        raise ValueError(f"unknown column kind {what!r}: expected one of {list(_USUAL_NAMES)}")
    argument = _ARGUMENTS[what]
    if isinstance(given, str):
        if given not in columns:
            raise DataError(f"{where}no {what} column {given!r}; the columns are {list(columns)}")
        return given
    if isinstance(given, int) and not isinstance(given, bool):
        candidates = list(columns if list_columns is None else list_columns)
        if not -len(candidates) <= given < len(candidates):
            raise DataError(f"{where}{what} column {given} but the list columns are {candidates}")
        return candidates[given]
    if given is not None:
        raise TypeError(f"{argument.split()[0]} must be a column name, an index or None")
    usual = _USUAL_NAMES[what]
    present = [name for name in usual if name in columns]
    if len(present) == 1:
        return present[0]
    names = ", ".join(repr(name) for name in usual)
    if not present:
        if len(usual) == 1:
            raise DataError(
                f"{where}no {what} column {usual[0]!r}; the columns are {list(columns)}; name "
                f"the column of {what} with {argument}"
            )
        raise DataError(
            f"{where}no {what} column: none of {names} among the columns {list(columns)}; "
            f"name it with {argument}"
        )
    raise DataError(
        f"{where}each of the columns {present} could be the {what}; pick one with {argument}"
    )
