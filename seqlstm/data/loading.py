"""``load``: a hub id, local files or a ``datasets`` object -> a ``DatasetDict`` in one schema.

Sources: a Hugging Face hub id; a ``datasets.Dataset`` or ``DatasetDict`` already in memory;
a folder written by ``save_to_disk``; local files - CoNLL column files (tagging), text files
(text), ``{split}.{language}`` line-aligned files (translation), and table files of any task
(JSON lines, CSV/TSV, Parquet: :mod:`seqlstm.data.table_files`) - one file, or a directory
of split files. Whatever the source, the result has the columns of docs/CONTRACTS.md and
splits named ``train``/``validation``/``test``:

- tagging: ``tokens`` and ``tags``, lists of strings; tags are label names (hub ClassLabel
  integers are mapped to their names) converted to the requested chunk scheme; plus
  ``document``, an id per row, where the data marks documents (``-DOCSTART-`` lines of local
  CoNLL files, a column named by ``document_column``);
- translation: one string column per language code;
- text: ``text``, one string per row with line endings kept, so a split's text is
  ``"".join(split["text"])`` whether a row holds a line (wikitext) or a whole split
  (Tiny Shakespeare).

Columns are found by name (:mod:`seqlstm.data.columns`: ``tokens``/``words``,
``tags``/``ner_tags``/``labels``, ``text``, a ``translation`` column or language columns) or
named by the caller (``tokens_column``, ``tags_column``, ``text_column``, ``languages``).

Fetching (hub or files) and schema normalisation are separate steps: the ``normalize_*``
functions take a DatasetDict shaped like the hub's and can be tested without a network.

Offline, a hub id fails fast (``fetch_hub``): with ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``
set, or when the hub does not answer within ``HUB_PROBE_TIMEOUT_S``, only a copy in the local
Hugging Face cache is read, and without one the DataError says so in one line. (Left to
itself, ``datasets.load_dataset`` retries an unreachable hub for about 25 s, logging every
attempt, before it fails.) The probe, the offline settings and which sources look local are
seqlstm.hub_connection's, shared with ``from_pretrained`` (seqlstm.model_hub).
"""

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Literal

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from seqlstm.data import table_files
from seqlstm.data.columns import find_column
from seqlstm.data.readers import iter_lines, read_conll, read_parallel, read_text
from seqlstm.errors import DataError
from seqlstm.hub_connection import (
    hub_offline_mode,
    hub_reachable,
    looks_local,
    offline_by_setting,
)
from seqlstm.text.tag_schemes import SCHEMES, convert_tags, detect_scheme, split_tag

logger = logging.getLogger(__name__)

Task = Literal["tagging", "translation", "text"]
TASKS = ("tagging", "translation", "text")
SPLITS = ("train", "validation", "test")

TAGGING_FEATURES = Features(
    {"tokens": datasets.Sequence(Value("string")), "tags": datasets.Sequence(Value("string"))}
)
TEXT_FEATURES = Features({"text": Value("string")})
# the dtype of a document id column: local files and integer hub ids give int64
_INTEGER_DTYPES = {f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)}
_STRING_DTYPES = ("string", "large_string")

# A split file is recognised by a name part (split at . _ -) starting with one of these,
# e.g. train.txt, val.de, dev.conll, test_2016_flickr.en, wiki.valid.tokens.
_SPLIT_PREFIXES = (
    ("train", "train"),
    ("val", "validation"),
    ("dev", "validation"),
    ("test", "test"),
)
_NAME_PARTS = re.compile(r"[._-]")

# The names of the rows of each split in error messages (``data/train.jsonl:4``), where the
# rows come from files; without, a row is ``train row 3``.
RowPlaces = Mapping[str, Sequence[str]]


def load(
    source: "str | PathLike | Dataset | DatasetDict",
    task: Task,
    *,
    split: str | None = None,
    tokens_column: int | str | None = None,
    tags_column: int | str | None = None,
    text_column: str | None = None,
    languages: Sequence[str] | None = None,
    scheme: str | None = "IOB2",
    hub_config: str | None = None,
    validation_fraction: float | None = None,
    document_column: str | None = None,
    label_column: int | str | None = None,
    token_column: int | str | None = None,
) -> DatasetDict:
    """Load a data set for ``task`` in the normalised schema (see the module docstring).

    ``source`` is a ``datasets.Dataset`` or ``DatasetDict``, or a path when it exists:

    - a folder written by ``save_to_disk`` (it holds ``dataset_dict.json``, or
      ``dataset_info.json`` and ``state.json``);
    - a directory of split files (``train*``, ``valid*``/``val*``/``dev*``, ``test*``; for
      translation also ``{split}.{language}``, e.g. multi30k's ``val.de``), each a table file
      (``.jsonl``/``.json`` JSON lines, ``.csv``, ``.tsv``, ``.parquet``) or else a CoNLL
      file (tagging) or a text file (text); CoNLL and table files do not mix in one directory;
    - a single such file.

    A path that does not exist but looks local (absolute, starting with ``.`` or ``~``, or
    with more than one ``/``) is a DataError, never a hub request; anything else is a hub id
    for ``datasets.load_dataset(source, hub_config)``, which fails fast offline (see
    ``fetch_hub``). Errors in files name the file and line (or Parquet row).

    ``split``: a source of one split - a file, a ``Dataset``, a ``save_to_disk`` folder of
    one - becomes this split (default ``train``); of a source with splits only this one is
    kept, and a source without it is a DataError naming the splits it has. Names are read as
    split files are (``valid``, ``dev`` -> ``validation``).

    Columns (tagging). ``tokens_column`` and ``tags_column`` name the columns of words and of
    tags; by default they are found by name (``tokens`` or ``words``; ``tags``, ``ner_tags``
    or ``labels``; another tag column such as ``pos_tags`` only when named). An int picks a
    column by its index among the list-valued columns, only when given; in CoNLL files the
    columns are numbered fields (default: the first is the word, the last the tag) and have
    no names. ``label_column`` and ``token_column`` are the older names of ``tags_column``
    and ``tokens_column``. ``text_column`` (text) names the column of text (default
    ``text``); ``languages`` picks and orders the translation columns (default: every
    language present).

    ``scheme`` is the chunk scheme of the returned tags (detected in the data, over all its
    splits together), or None to keep labels that are not chunk tags (POS).
    ``validation_fraction`` moves the last part of ``train`` into a new ``validation`` split
    (before ``split`` picks one): by characters when ``train`` is a single text (the first
    90% / last 10% convention of Tiny Shakespeare), else by rows.

    Documents (tagging). A tagger reads the sentences of one document with each other as
    context; sentences of no document are read alone. Local CoNLL files mark documents with
    ``-DOCSTART-`` lines: a split whose file has any gets an int ``document`` column, the
    index of each sentence's document in the file (:func:`seqlstm.data.read_conll`). For
    other sources ``document_column`` names the column of document ids (int or str, copied
    into ``document``; gaps are fine, but the rows of a document must be consecutive); the
    default None gives no ``document`` column, so every sentence is independent. It is a
    DataError with CoNLL files, which mark documents themselves.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    if document_column is not None and task != "tagging":
        raise ValueError(f"document_column is for tagging data, not {task!r}")
    tokens_column = _one_of(tokens_column, "tokens_column", token_column, "token_column")
    tags_column = _one_of(tags_column, "tags_column", label_column, "label_column")
    if task != "tagging" and (tokens_column is not None or tags_column is not None):
        raise ValueError(f"tokens_column and tags_column are for tagging data, not {task!r}")
    if text_column is not None and task != "text":
        raise ValueError(f"text_column is for text data, not {task!r}")
    if split is not None:
        split = _split_name(split)
    one_split = "train" if split is None or validation_fraction is not None else split
    raw = _Raw(DatasetDict())
    if isinstance(source, Dataset | DatasetDict):
        raw.splits = source if isinstance(source, DatasetDict) else DatasetDict({one_split: source})
    elif not isinstance(source, str | PathLike):
        raise TypeError(
            "source must be a hub id, a path, or a datasets.Dataset or DatasetDict, not "
            f"{type(source).__name__}"
        )
    else:
        path = Path(source).expanduser()
        if path.exists():
            raw = _read_local(
                path,
                task,
                one_split,
                tokens_column,
                tags_column,
                text_column,
                scheme,
                languages,
                document_column,
            )
        elif isinstance(source, PathLike) or looks_local(str(source)):
            raise DataError(f"{source}: no such file or directory")
        else:
            raw.splits = fetch_hub(str(source), hub_config)
    if raw.chosen:  # local files: the columns were chosen (and CoNLL tags converted) reading them
        tokens_column, tags_column, text_column = "tokens", "tags", "text"
        if any("document" in dataset.column_names for dataset in raw.splits.values()):
            document_column = "document"
    if task == "tagging":
        normalised = _normalize_tagging(
            normalize_split_names(raw.splits),
            tags_column,
            tokens_column,
            None if raw.converted else scheme,
            document_column,
            raw.places,
        )
        dsdict = DatasetDict(normalised)
    elif task == "translation":
        dsdict = normalize_translation_dataset(raw.splits, languages)
    else:
        dsdict = normalize_text_dataset(raw.splits, text_column)
    if validation_fraction is not None:
        dsdict = split_off_validation(dsdict, validation_fraction)
    if split is not None:
        if split not in dsdict:
            where = "the data set" if isinstance(source, Dataset | DatasetDict) else source
            raise DataError(f"{where}: no {split} split; the data has {list(dsdict)}")
        dsdict = DatasetDict({split: dsdict[split]})
    return dsdict


def _one_of(value: object, name: str, older: object, older_name: str) -> object:
    """The value of an argument that also has an older name; both given is a ValueError."""
    if older is None:
        return value
    if value is not None:
        raise ValueError(f"{older_name} is the older name of {name}: pass only {name}")
    return older


def _split_name(split: str) -> str:
    """train, validation or test, as the name ``split`` stands for (``dev`` -> validation)."""
    name = split_of(split) if isinstance(split, str) else None
    if name is None:
        raise ValueError(f"split must be train, validation or test (or valid, dev), got {split!r}")
    return name


@dataclass
class _Raw:
    """Splits as read, before normalisation. ``chosen``: local files, whose tagging columns are
    already ``tokens``/``tags``/``document`` and text column ``text``; ``converted``: their tags
    are already in the requested scheme (CoNLL files, converted by read_conll, which names the
    line of a bad tag); ``places``: the names of the rows of the splits read from table files."""

    splits: DatasetDict
    chosen: bool = False
    converted: bool = False
    places: dict[str, list[str]] = field(default_factory=dict)


def fetch_hub(source: str, config: str | None = None) -> DatasetDict:
    """``datasets.load_dataset(source, config)``, quick and in one line when the hub is offline.

    When ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set, or the hub (``HF_ENDPOINT``)
    does not answer within ``HUB_PROBE_TIMEOUT_S`` seconds, the data set is read from the local
    Hugging Face cache only, in the datasets library's offline mode, which never retries.
    Raises DataError naming ``source``: when it is not in the cache then (the hub is offline or
    unreachable; local files are the way out), or when the hub cannot give it.
    """
    by_setting = offline_by_setting()
    endpoint = datasets.config.HF_ENDPOINT
    # looked up here, so that tests can substitute loading.hub_reachable
    reachable = not by_setting and hub_reachable(endpoint)
    try:
        with hub_offline_mode(not reachable):
            return datasets.load_dataset(source, config)
    except ConnectionError as exc:  # datasets' error for "offline and not in the cache"
        if by_setting:
            why = "the Hugging Face hub is off (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set)"
        else:
            why = f"the Hugging Face hub ({endpoint}) is unreachable"
        raise DataError(
            f"{source}: {why} and the data set is not in the local cache; pass local files "
            "instead (a recipe's --data-dir DIR, or a path for seqlstm.data.load)"
        ) from exc
    except (OSError, ValueError) as exc:  # not found, gated, bad config ...
        raise DataError(
            f"could not load {source!r} (config {config!r}) from the Hugging Face hub: {exc}; "
            "pass local files instead (a recipe's --data-dir DIR)"
        ) from exc


# ---- local files -> a DatasetDict shaped like the normalised one ----


def _read_local(
    path: Path,
    task: str,
    one_split: str,
    tokens_column: int | str | None,
    tags_column: int | str | None,
    text_column: str | None,
    scheme: str | None,
    languages: Sequence[str] | None,
    document_column: str | None,
) -> _Raw:
    """The splits of a local path (see :func:`load`): a ``save_to_disk`` folder as it is
    (normalised like hub data), files with their columns chosen as ``_Raw`` says."""
    if path.is_dir() and (
        (path / "dataset_dict.json").is_file()
        or ((path / "dataset_info.json").is_file() and (path / "state.json").is_file())
    ):
        try:
            saved = datasets.load_from_disk(str(path))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable save_to_disk folder: {exc}") from None
        if isinstance(saved, Dataset):
            saved = DatasetDict({one_split: saved})
        return _Raw(saved)
    if path.is_file():
        files = {one_split: path}
    else:
        files = _split_files(path, by_language=task == "translation")
        if task == "translation" and any(table_files.is_table_file(f) for f in files.values()):
            files = _split_files(path, by_language=False)
    tables = {split: file for split, file in files.items() if table_files.is_table_file(file)}
    if tables:
        if len(tables) < len(files):
            others = sorted(f.name for f in files.values() if not table_files.is_table_file(f))
            raise DataError(
                f"{path}: table files ({', '.join(sorted(f.name for f in tables.values()))}) "
                f"and other files ({', '.join(others)}) in one directory; keep one kind"
            )
        raw = _Raw(DatasetDict(), chosen=True)
        for split, file in files.items():
            raw.splits[split], raw.places[split] = _read_table_file(
                file, task, tokens_column, tags_column, text_column, languages, document_column
            )
        return raw
    if document_column is not None and task == "tagging":
        raise DataError(
            f"{path}: document_column={document_column!r} is for data sets with a column of "
            "document ids; in CoNLL files -DOCSTART- lines start the documents"
        )
    if task == "translation":
        if path.is_file():
            raise DataError(
                f"{path}: translation needs a directory of {{split}}.{{language}} files, or a "
                "table file (.jsonl, .csv, .tsv, .parquet)"
            )
        by_split: dict[str, dict[str, Path]] = {}
        for (split, language), file in files.items():
            by_split.setdefault(split, {})[language] = file
        return _Raw(
            DatasetDict(
                {
                    split: Dataset.from_dict(_read_aligned(files, languages, f"{path} ({split})"))
                    for split, files in by_split.items()
                }
            )
        )
    if task == "tagging":
        if isinstance(tokens_column, str) or isinstance(tags_column, str):
            raise ValueError(
                "the columns of CoNLL files have no names: tokens_column and tags_column are "
                "their indices"
            )
        splits = {}
        for split, file in files.items():
            sentences = read_conll(
                file,
                -1 if tags_column is None else tags_column,
                0 if tokens_column is None else tokens_column,
                scheme_to=scheme,
            )
            features = TAGGING_FEATURES
            if "document" in sentences[0]:  # the file has -DOCSTART- lines
                features = Features({**TAGGING_FEATURES, "document": Value("int64")})
            splits[split] = Dataset.from_list(sentences, features=features)
        return _Raw(DatasetDict(splits), chosen=True, converted=True)
    # A single text file is one row, as on the hub's Tiny Shakespeare; the split files of a
    # directory give one row a line, as on the hub's wikitext.
    if path.is_file():
        rows = {one_split: [read_text(path)]}
    else:
        rows = {
            split: [line for _, line in iter_lines(file, keepends=True)]
            for split, file in files.items()
        }
    return _Raw(
        DatasetDict(
            {
                split: Dataset.from_dict({"text": texts}, features=TEXT_FEATURES)
                for split, texts in rows.items()
            }
        ),
        chosen=True,
    )


def _read_table_file(
    path: Path,
    task: str,
    tokens_column: int | str | None,
    tags_column: int | str | None,
    text_column: str | None,
    languages: Sequence[str] | None,
    document_column: str | None,
) -> tuple[Dataset, list[str]]:
    """(a split with the normalised column names, the names of its rows) of a table file;
    tags stay as the file has them (names, or a Parquet file's ClassLabel ids)."""
    table = table_files.read_table(path)
    if isinstance(table, Dataset):  # Parquet: typed columns, found here, checked by normalising
        places = table_files.parquet_places(path, len(table))
        chosen = _chosen_columns(
            table,
            f"{path}: ",
            task,
            tokens_column,
            tags_column,
            text_column,
            languages,
            document_column,
        )
        return chosen, places
    if task == "tagging":
        data = table_files.tagging_columns(table, tokens_column, tags_column, document_column)
        features = TAGGING_FEATURES
        if "document" in data:
            kind = "int64" if isinstance(data["document"][0], int) else "string"
            features = Features({**TAGGING_FEATURES, "document": Value(kind)})
        return Dataset.from_dict(data, features=features), table.places
    if task == "translation":
        data = table_files.translation_columns(table, languages)
        features = Features({language: Value("string") for language in data})
        return Dataset.from_dict(data, features=features), table.places
    texts = table_files.text_column(table, text_column)
    return Dataset.from_dict({"text": texts}, features=TEXT_FEATURES), table.places


def _chosen_columns(
    dataset: Dataset,
    where: str,
    task: str,
    tokens_column: int | str | None,
    tags_column: int | str | None,
    text_column: str | None,
    languages: Sequence[str] | None,
    document_column: str | None,
) -> Dataset:
    """The columns of ``dataset`` that ``task`` reads, renamed to the normalised names."""
    columns = dataset.column_names
    if task == "tagging":
        lists = _list_columns(dataset.features)
        found = {
            kind: find_column(columns, kind, given, list_columns=lists, where=where)
            for kind, given in (("tokens", tokens_column), ("tags", tags_column))
        }
        names = {name: kind for kind, name in found.items()}
        if document_column is not None:
            if document_column not in columns:
                raise DataError(
                    f"{where}no document column {document_column!r}; the columns are {columns}"
                )
            names[document_column] = "document"
    elif task == "translation":
        if "translation" in columns:
            dataset = dataset.flatten()
            dataset = dataset.rename_columns(
                {name: name.removeprefix("translation.") for name in dataset.column_names}
            )
        return dataset
    else:
        names = {find_column(columns, "text", text_column, where=where): "text"}
    if task == "tagging" and len(names) < (3 if document_column is not None else 2):
        raise DataError(f"{where}one column for two things among {list(names)}: name them apart")
    dataset = dataset.select_columns(list(names))
    return dataset.rename_columns({old: new for old, new in names.items() if old != new})


def split_of(filename: str) -> str | None:
    """The split a file name stands for (``"wiki.valid.tokens"`` -> ``"validation"``), or None."""
    for part in _NAME_PARTS.split(filename.lower()):
        for prefix, split in _SPLIT_PREFIXES:
            if part.startswith(prefix):
                return split
    return None


def _split_files(directory: Path, *, by_language: bool) -> dict:
    """``{split: file}``, or ``{(split, language): file}`` with the suffix as the language."""
    found: dict = {}
    for file in sorted(directory.iterdir()):
        if file.name.startswith(".") or not file.is_file():
            continue
        split = split_of(file.stem if by_language else file.name)
        if split is None:
            continue
        key = (split, file.suffix.lstrip(".")) if by_language else split
        if key in found:
            raise DataError(
                f"{directory}: both {found[key].name} and {file.name} look like the {key} "
                "file; keep only one of them in the directory"
            )
        found[key] = file
    if not found:
        raise DataError(
            f"{directory}: no split files (expected names like train*, valid*/val*/dev*, test*)"
        )
    return found


def _read_aligned(
    files: dict[str, Path], languages: Sequence[str] | None, where: str
) -> dict[str, list[str]]:
    """One column per language, from line-aligned files (checked pairwise against the first)."""
    wanted = list(languages) if languages is not None else sorted(files)
    missing = [language for language in wanted if language not in files]
    if missing or len(wanted) < 2:
        found = ", ".join(file.name for file in files.values())
        raise DataError(f"{where}: need parallel files for {wanted}, found {found}")
    first, *others = wanted
    columns: dict[str, list[str]] = {}
    for language in others:
        pairs = read_parallel(files[first], files[language])
        columns[first] = [src for src, _ in pairs]
        columns[language] = [tgt for _, tgt in pairs]
    return {language: columns[language] for language in wanted}


# ---- normalisation of a hub-shaped DatasetDict ----


def normalize_split_names(dsdict: DatasetDict) -> DatasetDict:
    """Rename splits to train/validation/test (``valid``, ``dev`` ... -> ``validation``), in
    that order. Splits with other names are left out, with a warning naming them.
    """
    renamed: dict[str, Dataset] = {}
    for name, dataset in dsdict.items():
        split = split_of(name)
        if split is None:
            logger.warning("split %r is not train/validation/test: left out", name)
            continue
        if split in renamed:
            raise DataError(f"splits {list(dsdict)} have more than one {split} split")
        renamed[split] = dataset
    if not renamed:
        raise DataError(f"no train/validation/test split among {list(dsdict)}")
    return DatasetDict({split: renamed[split] for split in SPLITS if split in renamed})


def _list_columns(features: Features) -> list[str]:
    """Columns holding a list per row, in order (``datasets.Sequence``/``List``)."""
    return [name for name, feature in features.items() if hasattr(feature, "feature")]


def _row_name(split: str, number: int, places: RowPlaces | None) -> str:
    """How an error names row ``number`` of ``split``: its place in a file when known."""
    if places and split in places:
        return places[split][number]
    return f"{split} row {number}" if split else f"row {number}"


def normalize_tagging_dataset(
    dsdict: DatasetDict,
    tags_column: int | str | None = None,
    tokens_column: int | str | None = None,
    scheme: str | None = "IOB2",
    *,
    document_column: str | None = None,
) -> DatasetDict:
    """A hub-shaped DatasetDict in the tagging schema: split names ``train``/``validation``/
    ``test``, columns ``tokens`` and ``tags`` (label-name strings in ``scheme``).

    This is what :func:`load` does to the data it fetched; call it on a DatasetDict of your
    own to get the columns the tagger reads. The columns are found by name (``tokens`` or
    ``words``; ``tags``, ``ner_tags`` or ``labels``; see seqlstm.data.columns), or named by
    ``tokens_column``/``tags_column``; an int picks the column by its index among the
    list-valued columns. ClassLabel integers are replaced by the data set's own label names;
    the source scheme is detected over all splits together and converted to ``scheme``. With
    ``scheme=None`` the label names are kept as they are (POS tags). DataError names the split
    and row of a row whose words and tags differ in number, a tag that is not a chunk tag, a
    ClassLabel id out of range; and a column that is missing, ambiguous or of the wrong type.

    ``document_column`` names a column of document ids, copied into ``document`` (int ids as
    int64, ClassLabel ids as their integers, str ids as strings): consecutive rows with equal
    ids form a document. Ids may have gaps, but an id that comes back after another document
    is a DataError naming the split and row, and so is a missing (None) id. A split without
    the column gets no ``document`` column (its sentences are independent, and a warning says
    so); a column that no split has is a DataError.
    """
    splits = normalize_split_names(dsdict)
    return DatasetDict(
        _normalize_tagging(splits, tags_column, tokens_column, scheme, document_column)
    )


def normalize_tagging_split(
    dataset: Dataset,
    tags_column: int | str | None = None,
    tokens_column: int | str | None = None,
    scheme: str | None = "IOB2",
    *,
    document_column: str | None = None,
) -> Dataset:
    """:func:`normalize_tagging_dataset` for one Dataset, whatever split it is: errors name
    its rows as ``row N``, and the scheme is detected in this Dataset alone."""
    normalised = _normalize_tagging(
        {"": dataset}, tags_column, tokens_column, scheme, document_column
    )
    return normalised[""]


def _normalize_tagging(
    splits: Mapping[str, Dataset],
    tags_column: int | str | None,
    tokens_column: int | str | None,
    scheme: str | None,
    document_column: str | None,
    places: RowPlaces | None = None,
) -> dict[str, Dataset]:
    if scheme is not None and scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}: expected None or one of {SCHEMES}")
    if document_column is not None and all(
        document_column not in dataset.features for dataset in splits.values()
    ):
        columns_of = {split: list(dataset.features) for split, dataset in splits.items()}
        raise DataError(f"no document column {document_column!r}; the columns are {columns_of}")
    columns: dict[str, tuple[list, list]] = {}
    documents: dict[str, tuple[list, Value]] = {}
    for split, dataset in splits.items():
        columns[split] = _tagging_columns(dataset, split, tags_column, tokens_column, places)
        if document_column is None:
            continue
        if document_column not in dataset.features:
            logger.warning(
                "%s has no document column %r: its sentences are read as independent",
                split,
                document_column,
            )
            continue
        documents[split] = _document_ids(dataset, document_column, split, places)
    if scheme is not None:
        _check_chunk_tags(columns, places)
        source_scheme = detect_scheme(tags for _, labels in columns.values() for tags in labels)
        for split, (_, labels) in columns.items():
            for number, tags in enumerate(labels):
                try:
                    labels[number] = convert_tags(tags, source_scheme, scheme)
                except DataError as exc:
                    raise DataError(f"{_row_name(split, number, places)}: {exc}") from None
    normalised = {}
    for split, (tokens, labels) in columns.items():
        data, features = {"tokens": tokens, "tags": labels}, TAGGING_FEATURES
        if split in documents:
            data["document"], feature = documents[split]
            features = Features({**TAGGING_FEATURES, "document": feature})
        normalised[split] = Dataset.from_dict(data, features=features)
    return normalised


def _tagging_columns(
    dataset: Dataset,
    split: str,
    tags_column: int | str | None,
    tokens_column: int | str | None,
    places: RowPlaces | None,
) -> tuple[list[list[str]], list[list[str]]]:
    """(words, tag names) of every row of one split, found and checked (see
    :func:`normalize_tagging_dataset`)."""
    features = dataset.features
    lists = _list_columns(features)
    where = f"{split}: " if split else ""
    token_name = find_column(
        dataset.column_names, "tokens", tokens_column, list_columns=lists, where=where
    )
    label_name = find_column(
        dataset.column_names, "tags", tags_column, list_columns=lists, where=where
    )
    if token_name == label_name:
        raise DataError(f"{where}the words and the tags are both the column {token_name!r}")
    word_feature = getattr(features[token_name], "feature", None)
    if not (isinstance(word_feature, Value) and word_feature.dtype in _STRING_DTYPES):
        raise DataError(
            f"{where}column {token_name!r} holds {features[token_name]}: expected a list of "
            "str words a row"
        )
    label_feature = getattr(features[label_name], "feature", None)
    if label_feature is None:
        raise DataError(
            f"{where}column {label_name!r} holds {features[label_name]}, one value a row: "
            "expected a list of tags a row (one a word)"
        )
    names = label_feature.names if isinstance(label_feature, ClassLabel) else None
    if names is None and not (
        isinstance(label_feature, Value) and label_feature.dtype in _STRING_DTYPES
    ):
        raise DataError(
            f"{where}column {label_name!r} holds {label_feature} values without label names "
            "(expected strings or a ClassLabel)"
        )
    tokens, labels = dataset[token_name][:], dataset[label_name][:]
    for number, (words, tags) in enumerate(zip(tokens, labels, strict=True)):
        if words is None or tags is None:
            missing = token_name if words is None else label_name
            raise DataError(f"{_row_name(split, number, places)}: no {missing!r} (None)")
        if names is not None:
            if any(not 0 <= label < len(names) for label in tags):
                bad = next(label for label in tags if not 0 <= label < len(names))
                raise DataError(
                    f"{_row_name(split, number, places)}: label id {bad} of {label_name!r} is "
                    f"not one of the {len(names)} ClassLabel names"
                )
            labels[number] = tags = [names[label] for label in tags]
        if len(words) != len(tags):
            raise DataError(
                f"{_row_name(split, number, places)}: {len(words)} tokens but {len(tags)} labels"
            )
    return tokens, labels


def _check_chunk_tags(columns: Mapping[str, tuple[list, list]], places: RowPlaces | None) -> None:
    """DataError naming the row and token of the first label that is not a chunk tag."""
    checked: set[str] = set()
    for split, (_, labels) in columns.items():
        for number, tags in enumerate(labels):
            for position, tag in enumerate(tags):
                if tag in checked:
                    continue
                try:
                    split_tag(tag)
                except DataError as exc:
                    raise DataError(
                        f"{_row_name(split, number, places)}, token {position}: {exc} (pass "
                        "scheme=None to keep labels that are not chunk tags)"
                    ) from None
                checked.add(tag)


def _document_ids(
    dataset: Dataset, column: str, split: str, places: RowPlaces | None = None
) -> tuple[list, Value]:
    """The ids of ``column`` and their feature (int64 or string), checked: every row has one
    and the rows of a document are consecutive."""
    feature = dataset.features[column]
    if isinstance(feature, ClassLabel) or (
        isinstance(feature, Value) and feature.dtype in _INTEGER_DTYPES
    ):
        target = Value("int64")
    elif isinstance(feature, Value) and feature.dtype in _STRING_DTYPES:
        target = Value("string")
    else:
        where = f"{split} " if split else ""
        raise DataError(
            f"{where}document column {column!r} holds {feature}: expected int or str ids"
        )
    ids = dataset[column][:]
    seen: set = set()
    for number, document in enumerate(ids):
        if document is None:
            raise DataError(
                f"{_row_name(split, number, places)}: no id in the document column {column!r}"
            )
        if number and document == ids[number - 1]:
            continue
        if document in seen:
            raise DataError(
                f"{_row_name(split, number, places)}: document {document!r} comes back after "
                f"document {ids[number - 1]!r}; the rows of a document must be consecutive"
            )
        seen.add(document)
    return ids, target


def normalize_translation_dataset(
    dsdict: DatasetDict, languages: Sequence[str] | None = None
) -> DatasetDict:
    """One string column per language (in ``languages`` order) and split names.

    A ``translation`` column of ``{language: sentence}`` dicts (the WMT layout) is unpacked
    first. ``languages=None`` keeps every string column. Rows where any language is empty or
    blank are dropped, and how many is logged per split, so that no model sees an empty side.
    """
    dsdict = normalize_split_names(dsdict)
    normalised = {}
    for split, dataset in dsdict.items():
        if "translation" in dataset.column_names:
            dataset = dataset.flatten()
            dataset = dataset.rename_columns(
                {name: name.removeprefix("translation.") for name in dataset.column_names}
            )
        strings = [
            name
            for name, feature in dataset.features.items()
            if isinstance(feature, Value) and feature.dtype in ("string", "large_string")
        ]
        wanted = list(languages) if languages is not None else strings
        missing = [language for language in wanted if language not in strings]
        if missing or len(wanted) < 2:
            raise DataError(
                f"{split}: translation needs two or more text columns; asked for {wanted}, "
                f"the text columns are {strings}"
            )
        dataset = dataset.select_columns(wanted)
        rows = zip(*(dataset[language][:] for language in wanted), strict=True)
        keep = [number for number, texts in enumerate(rows) if all(t.strip() for t in texts)]
        if len(keep) < len(dataset):
            logger.warning(
                "%s: dropped %d of %d sentence pairs with an empty side",
                split,
                len(dataset) - len(keep),
                len(dataset),
            )
            dataset = dataset.select(keep)
        normalised[split] = dataset
    return DatasetDict(normalised)


def normalize_text_dataset(dsdict: DatasetDict, text_column: str | None = None) -> DatasetDict:
    """The column ``text`` (rows kept as they are, empty lines included) and split names.

    ``text_column`` names the column of text; by default it is the column ``text``.
    """
    dsdict = normalize_split_names(dsdict)
    normalised = {}
    for split, dataset in dsdict.items():
        name = find_column(dataset.column_names, "text", text_column, where=f"{split}: ")
        feature = dataset.features[name]
        if not isinstance(feature, Value) or feature.dtype not in _STRING_DTYPES:
            raise DataError(
                f"{split}: the text column {name!r} holds {feature}: expected a str a row"
            )
        dataset = dataset.select_columns([name])
        if name != "text":
            dataset = dataset.rename_column(name, "text")
        normalised[split] = dataset
    return DatasetDict(normalised)


def split_off_validation(dsdict: DatasetDict, fraction: float) -> DatasetDict:
    """Move the last ``fraction`` of ``train`` into ``validation`` (no shuffling).

    A ``train`` split of one ``text`` row is cut by characters, anything else by rows.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {fraction}")
    if "validation" in dsdict:
        raise DataError("the data already has a validation split; drop validation_fraction")
    if "train" not in dsdict:
        raise DataError(f"no train split to take a validation split from: {list(dsdict)}")
    train = dsdict["train"]
    if train.column_names == ["text"] and len(train) == 1:
        text = train[0]["text"]
        cut, size = int(len(text) * (1 - fraction)), len(text)
        pieces = {"train": [text[:cut]], "validation": [text[cut:]]}
        parts = {
            name: Dataset.from_dict({"text": rows}, features=TEXT_FEATURES)
            for name, rows in pieces.items()
        }
    else:
        cut, size = int(len(train) * (1 - fraction)), len(train)
        parts = {"train": train.select(range(cut)), "validation": train.select(range(cut, size))}
    if not 0 < cut < size:
        raise DataError(
            f"validation_fraction {fraction} of {size} leaves train or validation empty"
        )
    return DatasetDict({**dsdict, **parts})
