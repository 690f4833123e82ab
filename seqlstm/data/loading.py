"""``load``: a Hugging Face hub id or local files -> a ``datasets.DatasetDict`` in one schema.

Whatever the source, the result has the columns of docs/CONTRACTS.md and splits named
``train``/``validation``/``test``:

- tagging: ``tokens`` and ``tags``, lists of strings; tags are label names (hub ClassLabel
  integers are mapped to their names) converted to the requested chunk scheme; plus
  ``document``, an id per row, where the data marks documents (``-DOCSTART-`` lines of local
  CoNLL files, a hub column named by ``document_column``);
- translation: one string column per language code;
- text: ``text``, one string per row with line endings kept, so a split's text is
  ``"".join(split["text"])`` whether a row holds a line (wikitext) or a whole split
  (Tiny Shakespeare).

Fetching (hub or files) and schema normalisation are separate steps: the ``normalize_*``
functions take a DatasetDict shaped like the hub's and can be tested without a network.

Offline, a hub id fails fast (``fetch_hub``): with ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``
set, or when the hub does not answer within ``HUB_PROBE_TIMEOUT_S``, only a copy in the local
Hugging Face cache is read, and without one the DataError says so in one line. (Left to
itself, ``datasets.load_dataset`` retries an unreachable hub for about 25 s, logging every
attempt, before it fails.)
"""

import logging
import re
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Literal

import datasets
import huggingface_hub.constants
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from seqlstm.data.readers import iter_lines, read_conll, read_parallel, read_text
from seqlstm.errors import DataError
from seqlstm.text.tag_schemes import SCHEMES, convert_tags, detect_scheme

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

# A split file is recognised by a name part (split at . _ -) starting with one of these,
# e.g. train.txt, val.de, dev.conll, test_2016_flickr.en, wiki.valid.tokens.
_SPLIT_PREFIXES = (
    ("train", "train"),
    ("val", "validation"),
    ("dev", "validation"),
    ("test", "test"),
)
_NAME_PARTS = re.compile(r"[._-]")

# Seconds the hub may take to answer before a hub id is read from the local cache only.
HUB_PROBE_TIMEOUT_S = 2.0


def load(
    source: str | PathLike,
    task: Task,
    *,
    languages: Sequence[str] | None = None,
    label_column: int | str = -1,
    token_column: int | str = 0,
    scheme: str | None = "IOB2",
    hub_config: str | None = None,
    validation_fraction: float | None = None,
    document_column: str | None = None,
) -> DatasetDict:
    """Load a data set for ``task`` from the hub or from local files, in the normalised schema.

    ``source`` is local when the path exists: a directory with split files (``train*``,
    ``valid*``/``val*``/``dev*``, ``test*``; for translation ``{split}.{language}``, e.g.
    multi30k's ``val.de``) or a single file (a CoNLL file or a text file, which becomes the
    ``train`` split). A path that does not exist but looks local (absolute, starting with
    ``.`` or ``~``, or with more than one ``/``) is a DataError, never a hub request;
    anything else is a hub id for ``datasets.load_dataset(source, hub_config)``, which fails
    fast offline (see ``fetch_hub``).

    ``label_column``/``token_column`` pick columns of a CoNLL file by index, or of a hub data
    set by name or by index among its list-valued columns (for ``eriktks/conll2003`` those
    are tokens, pos_tags, chunk_tags, ner_tags, the order of the file's columns, so -1 is the
    NER tags either way). ``scheme`` is the chunk scheme of the returned tags, or None to
    keep labels that are not chunk tags (POS). ``languages`` picks and orders the
    translation columns (default: every language present). ``validation_fraction`` moves the
    last part of ``train`` into a new ``validation`` split: by characters when ``train`` is a
    single text (the first 90% / last 10% convention of Tiny Shakespeare), else by rows.

    Documents (tagging). A tagger reads the sentences of one document with each other as
    context; sentences of no document are read alone. Local CoNLL files mark documents with
    ``-DOCSTART-`` lines: a split whose file has any gets an int ``document`` column, the
    index of each sentence's document in the file (:func:`seqlstm.data.read_conll`). For a
    hub data set, ``document_column`` names the column of document ids (int or str, copied
    into ``document``; gaps are fine, but the rows of a document must be consecutive); the
    default None gives no ``document`` column, so every sentence is independent. It is a
    DataError with local files, which mark documents themselves.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    if document_column is not None and task != "tagging":
        raise ValueError(f"document_column is for tagging data, not {task!r}")
    path = Path(source).expanduser()
    if path.exists():
        if document_column is not None:
            raise DataError(
                f"{source}: document_column={document_column!r} is for hub data sets; in local "
                "CoNLL files -DOCSTART- lines start the documents"
            )
        raw = _read_local(path, task, label_column, token_column, scheme, languages)
        # Local tags were converted by read_conll, which can name the line of a bad tag.
        scheme, label_column, token_column = None, "tags", "tokens"
        if any("document" in dataset.column_names for dataset in raw.values()):
            document_column = "document"
    elif isinstance(source, PathLike) or _looks_local(str(source)):
        raise DataError(f"{source}: no such file or directory")
    else:
        raw = fetch_hub(str(source), hub_config)
    if task == "tagging":
        dsdict = normalize_tagging_dataset(
            raw, label_column, token_column, scheme, document_column=document_column
        )
    elif task == "translation":
        dsdict = normalize_translation_dataset(raw, languages)
    else:
        dsdict = normalize_text_dataset(raw)
    if validation_fraction is not None:
        dsdict = split_off_validation(dsdict, validation_fraction)
    return dsdict


def _looks_local(source: str) -> bool:
    """Whether a missing ``source`` was meant as a path: hub ids are ``name`` or ``owner/name``."""
    return source.startswith(("/", ".", "~")) or "\\" in source or source.count("/") > 1


def fetch_hub(source: str, config: str | None = None) -> DatasetDict:
    """``datasets.load_dataset(source, config)``, quick and in one line when the hub is offline.

    When ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set, or the hub (``HF_ENDPOINT``)
    does not answer within ``HUB_PROBE_TIMEOUT_S`` seconds, the data set is read from the local
    Hugging Face cache only, in the datasets library's offline mode, which never retries.
    Raises DataError naming ``source``: when it is not in the cache then (the hub is offline or
    unreachable; local files are the way out), or when the hub cannot give it.
    """
    offline_by_setting = _offline_by_setting()
    endpoint = datasets.config.HF_ENDPOINT
    reachable = not offline_by_setting and hub_reachable(endpoint)
    try:
        with _hub_offline_mode(not reachable):
            return datasets.load_dataset(source, config)
    except ConnectionError as exc:  # datasets' error for "offline and not in the cache"
        if offline_by_setting:
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


def hub_reachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether ``endpoint`` (the hub's URL) answers an HTTP HEAD request within ``timeout``
    seconds, through the proxies of the environment. Any HTTP status is an answer, and so is a
    TLS failure, which is left for the hub library to report; no connection is no answer."""
    answered: list[bool] = []

    def probe() -> None:
        try:
            request = urllib.request.Request(endpoint, method="HEAD")
            urllib.request.urlopen(request, timeout=timeout).close()
        except urllib.error.HTTPError:
            pass  # an error status is still an answer
        except urllib.error.URLError as error:
            if not isinstance(error.reason, ssl.SSLError):
                return
        except OSError:  # a timeout or reset after connecting
            return
        answered.append(True)

    # A thread, because name resolution (which can hang) ignores the socket timeout.
    thread = threading.Thread(target=probe, name="seqlstm-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(answered)


# The libraries' copies of the offline settings, read once at import: datasets reads
# HF_HUB_OFFLINE (HF_DATASETS_OFFLINE before version 2.19), huggingface_hub its HF_HUB_OFFLINE.
_OFFLINE_SWITCHES = (
    (datasets.config, "HF_HUB_OFFLINE"),
    (datasets.config, "HF_DATASETS_OFFLINE"),
    (huggingface_hub.constants, "HF_HUB_OFFLINE"),
)


def _offline_by_setting() -> bool:
    """Whether HF_HUB_OFFLINE or HF_DATASETS_OFFLINE put the datasets library offline."""
    return any(
        getattr(datasets.config, name, False) for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


@contextmanager
def _hub_offline_mode(offline: bool) -> Iterator[None]:
    """Inside the block, with ``offline``, the datasets and huggingface_hub libraries work as
    under ``HF_HUB_OFFLINE=1``: cache only, no request, no retry. Both read the variable when
    imported, so their copies of it are set here (process-wide), and restored after."""
    if not offline:
        yield
        return
    switches = [(module, name) for module, name in _OFFLINE_SWITCHES if hasattr(module, name)]
    saved = [getattr(module, name) for module, name in switches]
    for module, name in switches:
        setattr(module, name, True)
    try:
        yield
    finally:
        for (module, name), value in zip(switches, saved, strict=True):
            setattr(module, name, value)


# ---- local files -> a DatasetDict shaped like the normalised one ----


def _read_local(
    path: Path,
    task: str,
    label_column: int | str,
    token_column: int | str,
    scheme: str | None,
    languages: Sequence[str] | None,
) -> DatasetDict:
    if task == "translation":
        if path.is_file():
            raise DataError(
                f"{path}: translation needs a directory of {{split}}.{{language}} files"
            )
        by_split: dict[str, dict[str, Path]] = {}
        for (split, language), file in _split_files(path, by_language=True).items():
            by_split.setdefault(split, {})[language] = file
        return DatasetDict(
            {
                split: Dataset.from_dict(_read_aligned(files, languages, f"{path} ({split})"))
                for split, files in by_split.items()
            }
        )
    files = {"train": path} if path.is_file() else _split_files(path, by_language=False)
    if task == "tagging":
        if not (isinstance(label_column, int) and isinstance(token_column, int)):
            raise ValueError("label_column and token_column of CoNLL files are column indices")
        splits = {}
        for split, file in files.items():
            sentences = read_conll(file, label_column, token_column, scheme_to=scheme)
            features = TAGGING_FEATURES
            if "document" in sentences[0]:  # the file has -DOCSTART- lines
                features = Features({**TAGGING_FEATURES, "document": Value("int64")})
            splits[split] = Dataset.from_list(sentences, features=features)
        return DatasetDict(splits)
    # A single text file is one row, as on the hub's Tiny Shakespeare; the split files of a
    # directory give one row a line, as on the hub's wikitext.
    if path.is_file():
        rows = {"train": [read_text(path)]}
    else:
        rows = {
            split: [line for _, line in iter_lines(file, keepends=True)]
            for split, file in files.items()
        }
    return DatasetDict(
        {
            split: Dataset.from_dict({"text": texts}, features=TEXT_FEATURES)
            for split, texts in rows.items()
        }
    )


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


def _column_name(features: Features, column: int | str, what: str) -> str:
    if isinstance(column, str):
        if column not in features:
            raise DataError(f"no {what} column {column!r}; the columns are {list(features)}")
        return column
    candidates = _list_columns(features)
    if not -len(candidates) <= column < len(candidates):
        raise DataError(f"{what} column {column} but the list columns are {candidates}")
    return candidates[column]


def normalize_tagging_dataset(
    dsdict: DatasetDict,
    label_column: int | str = -1,
    token_column: int | str = 0,
    scheme: str | None = "IOB2",
    *,
    document_column: str | None = None,
) -> DatasetDict:
    """Columns ``tokens`` and ``tags`` (label-name strings in ``scheme``) and split names.

    Columns are named, or counted among the list-valued columns. ClassLabel integers are
    replaced by their names; the source scheme is detected over all splits together. With
    ``scheme=None`` the label names are kept as they are.

    ``document_column`` names a column of document ids, copied into ``document`` (int ids as
    int64, ClassLabel ids as their integers, str ids as strings): consecutive rows with equal
    ids form a document. Ids may have gaps, but an id that comes back after another document
    is a DataError naming the split and row, and so is a missing (None) id. A split without
    the column gets no ``document`` column (its sentences are independent, and a warning says
    so); a column that no split has is a DataError.
    """
    if scheme is not None and scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}: expected None or one of {SCHEMES}")
    dsdict = normalize_split_names(dsdict)
    if document_column is not None and all(
        document_column not in dataset.features for dataset in dsdict.values()
    ):
        columns_of = {split: list(dataset.features) for split, dataset in dsdict.items()}
        raise DataError(f"no document column {document_column!r}; the columns are {columns_of}")
    columns: dict[str, tuple[list, list]] = {}
    documents: dict[str, tuple[list, Value]] = {}
    for split, dataset in dsdict.items():
        label_name = _column_name(dataset.features, label_column, "label")
        token_name = _column_name(dataset.features, token_column, "token")
        labels = dataset[label_name][:]
        names = getattr(dataset.features[label_name], "feature", None)
        if isinstance(names, ClassLabel):
            labels = [[names.names[label] for label in row] for row in labels]
        elif any(not isinstance(label, str) for row in labels for label in row):
            raise DataError(
                f"{split} column {label_name!r} holds {names} values without label names "
                "(expected strings or a ClassLabel)"
            )
        tokens = dataset[token_name][:]
        for number, (words, tags) in enumerate(zip(tokens, labels, strict=True)):
            if len(words) != len(tags):
                raise DataError(f"{split} row {number}: {len(words)} tokens but {len(tags)} labels")
        columns[split] = (tokens, labels)
        if document_column is None:
            continue
        if document_column not in dataset.features:
            logger.warning(
                "%s has no document column %r: its sentences are read as independent",
                split,
                document_column,
            )
            continue
        documents[split] = _document_ids(dataset, document_column, split)
    if scheme is not None:
        source_scheme = detect_scheme(tags for _, labels in columns.values() for tags in labels)
        for split, (_, labels) in columns.items():
            for number, tags in enumerate(labels):
                try:
                    labels[number] = convert_tags(tags, source_scheme, scheme)
                except DataError as exc:
                    raise DataError(f"{split} row {number}: {exc}") from None
    normalised = {}
    for split, (tokens, labels) in columns.items():
        data, features = {"tokens": tokens, "tags": labels}, TAGGING_FEATURES
        if split in documents:
            data["document"], feature = documents[split]
            features = Features({**TAGGING_FEATURES, "document": feature})
        normalised[split] = Dataset.from_dict(data, features=features)
    return DatasetDict(normalised)


def _document_ids(dataset: Dataset, column: str, split: str) -> tuple[list, Value]:
    """The ids of ``column`` and their feature (int64 or string), checked: every row has one
    and the rows of a document are consecutive."""
    feature = dataset.features[column]
    if isinstance(feature, ClassLabel) or (
        isinstance(feature, Value) and feature.dtype in _INTEGER_DTYPES
    ):
        target = Value("int64")
    elif isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
        target = Value("string")
    else:
        raise DataError(
            f"{split} document column {column!r} holds {feature}: expected int or str ids"
        )
    ids = dataset[column][:]
    seen: set = set()
    for number, document in enumerate(ids):
        if document is None:
            raise DataError(f"{split} row {number}: no id in the document column {column!r}")
        if number and document == ids[number - 1]:
            continue
        if document in seen:
            raise DataError(
                f"{split} row {number}: document {document!r} comes back after document "
                f"{ids[number - 1]!r}; the rows of a document must be consecutive"
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


def normalize_text_dataset(dsdict: DatasetDict, text_column: str = "text") -> DatasetDict:
    """The column ``text`` (rows kept as they are, empty lines included) and split names."""
    dsdict = normalize_split_names(dsdict)
    normalised = {}
    for split, dataset in dsdict.items():
        feature = dataset.features.get(text_column)
        if not isinstance(feature, Value) or feature.dtype not in ("string", "large_string"):
            raise DataError(
                f"{split}: no text column {text_column!r}; the columns are {dataset.features}"
            )
        dataset = dataset.select_columns([text_column])
        if text_column != "text":
            dataset = dataset.rename_column(text_column, "text")
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
