"""load() of datasets objects, save_to_disk folders and table files (JSON lines, CSV/TSV,
Parquet): the same columns as from CoNLL files and the hub; columns found by name or named."""

import json
import logging

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from test_loading import SENTENCES, conll_hub_like, rows, write_conll_directory

from seqlstm.data import load, loading, normalize_tagging_dataset
from seqlstm.data.columns import find_column
from seqlstm.errors import DataError


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Nothing here may reach the hub."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"hub called with {args}")

    monkeypatch.setattr(loading.datasets, "load_dataset", refuse)
    monkeypatch.setattr(loading, "hub_reachable", refuse)


def expected(scheme="IOB2"):
    """What load makes of the CoNLL files of the same sentences: the reference."""
    return rows(normalize_tagging_dataset(conll_hub_like(), scheme=scheme))


def split_rows(name):
    """The sentences of one split as JSON-able rows with string tags, hub column names."""
    return [
        {"id": str(i), "tokens": [w for w, *_ in s], "ner_tags": [t[-1] for t in s]}
        for i, s in enumerate(SENTENCES[name])
    ]


FILE_NAMES = {"train": "train", "validation": "valid", "test": "test"}


# ---------------------------------------------------------------- datasets objects


def test_a_dataset_dict_and_a_dataset_load_like_the_hub(tmp_path):
    hub = conll_hub_like()
    assert rows(load(hub, "tagging")) == expected()
    assert rows(load(hub, "tagging", scheme="IOBES")) == expected("IOBES")
    # one Dataset is one split: train unless split= names it
    assert list(load(hub["test"], "tagging")) == ["train"]
    alone = load(hub["test"], "tagging", split="test")
    assert rows(alone) == {"test": expected()["test"]}
    # split= of a source with splits keeps that one (names read as file names are)
    assert rows(load(hub, "tagging", split="dev")) == {"validation": expected()["validation"]}
    with pytest.raises(DataError, match=r"no test split; the data has \['train'\]"):
        load(DatasetDict({"train": hub["train"]}), "tagging", split="test")
    with pytest.raises(ValueError, match="split must be train, validation or test"):
        load(hub, "tagging", split="unsupervised")
    with pytest.raises(TypeError, match="source must be a hub id, a path, or a datasets"):
        load([{"tokens": ["a"], "tags": ["O"]}], "tagging")


def test_save_to_disk_folders_of_a_dataset_dict_and_of_a_dataset(tmp_path):
    hub = conll_hub_like()
    hub.save_to_disk(str(tmp_path / "all"))
    assert rows(load(tmp_path / "all", "tagging")) == expected()
    hub["validation"].save_to_disk(str(tmp_path / "one"))
    assert rows(load(tmp_path / "one", "tagging", split="validation")) == {
        "validation": expected()["validation"]
    }
    # the documents of a saved data set come from a named column, as on the hub
    with_ids = hub["train"].add_column("doc", [4, 4, 7])
    DatasetDict({"train": with_ids}).save_to_disk(str(tmp_path / "docs"))
    documents = load(tmp_path / "docs", "tagging", document_column="doc")["train"]
    assert documents["document"][:] == [4, 4, 7]


def test_columns_are_found_by_name_whatever_their_order():
    # before: the first list column was the words and the last the tags, here the reverse
    reordered = Dataset.from_dict(
        {
            "ner_tags": [["B-PER", "I-PER"], ["O"]],
            "pos_tags": [["NNP", "NNP"], ["VBZ"]],
            "tokens": [["Peter", "Blackburn"], ["runs"]],
        }
    )
    dsdict = normalize_tagging_dataset(DatasetDict({"train": reordered}))
    assert dsdict["train"][0] == {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]}
    # words and labels under other usual names
    words = reordered.rename_columns({"tokens": "words", "ner_tags": "labels"})
    assert rows(load(words, "tagging")) == rows(dsdict)
    # other tags only when named; an index only when given
    pos = load(reordered, "tagging", tags_column="pos_tags", scheme=None)["train"]
    assert pos["tags"][:] == [["NNP", "NNP"], ["VBZ"]]
    assert (
        load(reordered, "tagging", tags_column=1, scheme=None)["train"]["tags"][:] == pos["tags"][:]
    )
    # the older argument names still work
    older = load(reordered, "tagging", label_column="pos_tags", token_column="tokens", scheme=None)
    assert rows(older) == rows(load(reordered, "tagging", tags_column="pos_tags", scheme=None))
    with pytest.raises(ValueError, match="label_column is the older name of tags_column"):
        load(reordered, "tagging", label_column=1, tags_column=1)


def test_missing_or_ambiguous_columns_are_errors_naming_the_columns():
    only_pos = Dataset.from_dict({"tokens": [["a"]], "pos_tags": [["NN"]]})
    with pytest.raises(
        DataError,
        match=r"no tags column: none of 'tags', 'ner_tags', 'labels' among the columns "
        r"\['tokens', 'pos_tags'\]; name it with tags_column",
    ):
        load(only_pos, "tagging")
    both = Dataset.from_dict({"tokens": [["a"]], "tags": [["O"]], "ner_tags": [["O"]]})
    with pytest.raises(DataError, match=r"each of the columns \['tags', 'ner_tags'\] could be"):
        load(both, "tagging")
    assert load(both, "tagging", tags_column="ner_tags")["train"][0]["tags"] == ["O"]
    assert find_column(["words", "x"], "tokens") == "words"


def test_class_label_ids_are_checked_and_mapped_through_their_own_names():
    names = ["B-PER", "I-PER", "O"]  # not the order of the hub's NER names
    features = Features(
        {"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names))}
    )
    data = Dataset.from_dict({"tokens": [["Ann", "Lee", "ran"]], "ner_tags": [[0, 1, 2]]}, features)
    assert load(data, "tagging")["train"][0]["tags"] == ["B-PER", "I-PER", "O"]
    # an id the ClassLabel has no name for (the -1 some sets use for "missing") is an error,
    # not the last name
    raw = Dataset.from_dict({"tokens": [["Ann", "ran"]], "ner_tags": [[0, -1]]})
    bad = Dataset(raw.data.table, info=None).cast(features, batch_size=None)
    with pytest.raises(DataError, match=r"train row 0: label id -1 of 'ner_tags' is not one of"):
        load(bad, "tagging")
    one_label = Dataset.from_dict(
        {"tokens": [["a"]], "tags": [0]},
        Features({"tokens": Sequence(Value("string")), "tags": ClassLabel(names=["O"])}),
    )
    with pytest.raises(DataError, match=r"'tags' holds ClassLabel.*one value a row"):
        load(one_label, "tagging")


# ---------------------------------------------------------------- table files


def write_jsonl(path, split_name):
    with path.open("w", encoding="utf-8") as out:
        for row in split_rows(split_name):
            out.write(json.dumps(row) + "\n")


def write_csv(path, split_name, delimiter=","):
    lines = [delimiter.join(["id", "tokens", "ner_tags"])]
    for row in split_rows(split_name):
        # the words as a JSON array, the tags separated by spaces
        words = json.dumps(row["tokens"])
        words = '"' + words.replace('"', '""') + '"' if delimiter == "," else words
        lines.append(delimiter.join([row["id"], words, " ".join(row["ner_tags"])]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_parquet(path, split_name):
    conll_hub_like()[split_name].to_parquet(str(path))  # ClassLabel ids, names in the schema


@pytest.mark.parametrize(
    ("suffix", "writer"),
    [
        (".jsonl", write_jsonl),
        (".csv", write_csv),
        (".tsv", lambda path, name: write_csv(path, name, "\t")),
        (".parquet", write_parquet),
    ],
)
def test_a_directory_of_table_files_loads_like_conll_files(tmp_path, suffix, writer):
    directory = tmp_path / "data"
    directory.mkdir()
    for split, name in FILE_NAMES.items():
        writer(directory / f"{name}{suffix}", split)
    (directory / "README.md").write_text("not a split\n")
    conll = load(write_conll_directory(tmp_path / "conll"), "tagging", scheme="IOBES")
    table = load(directory, "tagging", scheme="IOBES")
    assert rows(table) == rows(conll) == expected("IOBES")
    assert all(table[split].features == conll[split].features for split in conll)
    # one file is one split
    single = load(directory / f"test{suffix}", "tagging", split="test")
    assert rows(single) == {"test": expected()["test"]}


def test_table_files_and_conll_files_do_not_mix(tmp_path):
    directory = write_conll_directory(tmp_path / "mixed")
    (directory / "test.txt").unlink()
    write_jsonl(directory / "test.jsonl", "test")
    with pytest.raises(DataError, match=r"table files \(test.jsonl\) and other files"):
        load(directory, "tagging")


def test_csv_fields_hold_json_lists_python_lists_or_words(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(
        "tokens,tags\n"
        '"[""EU"", ""rejects""]",B-ORG O\n'
        "\"['Peter', 'Blackburn']\",\"['B-PER', 'I-PER']\"\n"
        "1996-08-22,O\n",
        encoding="utf-8",
    )
    assert rows(load(path, "tagging")) == {"train": expected()["train"]}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "a.jsonl",
            '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["b"]\n',
            r"a.jsonl:2: not valid JSON",
        ),
        (
            "a.jsonl",
            '{"tokens": ["a"], "tags": ["O"]}\n\n[1, 2]\n',
            r"a.jsonl:3: expected a JSON object",
        ),
        (
            "a.jsonl",
            '{"tokens": ["a", "b"], "tags": ["O"]}\n',
            r"a.jsonl:1: 2 words \('tokens'\) but 1 tags",
        ),
        (
            "a.jsonl",
            '{"tokens": "a b", "tags": ["O", "O"]}\n',
            r"a.jsonl:1: column 'tokens' must be a list of words, got str",
        ),
        (
            "a.jsonl",
            '{"tokens": ["a"], "ner_tags": [3]}\n',
            r"a.jsonl:1: column 'ner_tags' holds integers \(ClassLabel ids\?\) but this file",
        ),
        (
            "a.jsonl",
            '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["b"], "label": ["O"]}\n',
            r"a.jsonl:2: no 'tags'",
        ),
        (
            "a.jsonl",
            '{"tokens": ["a"]}\n',
            r"a.jsonl: no tags column: none of 'tags', 'ner_tags', 'labels'",
        ),
        (
            "a.csv",
            "tokens,tags\na,O\nb c,O O,x\n",
            r"a.csv:3: expected 2 fields \(as in the header\), found 3",
        ),
        (
            "a.csv",
            'tokens,tags\n"[a, b]",O O\n',
            r"a.csv:2: column 'tokens' starts with '\[' but is not a JSON list",
        ),
        (
            "a.csv",
            "tokens,tags\n\nEU rejects,B-ORG X\n",
            r"a.csv:3, token 1: 'X' is not a chunk tag",
        ),
        (
            "a.jsonl",
            '{"tokens": ["EU", "\\u00a0"], "tags": ["B-ORG", "O"]}\n',
            r"a.jsonl:1, word 1: the token '\\xa0' has no visible character",
        ),
        ("a.csv", "tokens,tags\n", r"a.csv: no rows"),
        ("a.parquet", b"not parquet", r"a.parquet: not a readable Parquet file"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load(path, "tagging")


def test_a_parquet_row_is_named_by_file_and_row(tmp_path):
    Dataset.from_dict({"tokens": [["a"], ["b", "c"]], "tags": [["O"], ["B-X", "Y"]]}).to_parquet(
        str(tmp_path / "train.parquet")
    )
    with pytest.raises(DataError, match=r"train.parquet row 1, token 1: 'Y' is not a chunk tag"):
        load(tmp_path / "train.parquet", "tagging")


def test_table_files_with_document_ids(tmp_path):
    path = tmp_path / "train.jsonl"
    lines = [{"tokens": ["a"], "tags": ["O"], "doc": d} for d in ("x", "x", "y", "x")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(DataError, match=r"train.jsonl:4: document 'x' comes back after"):
        load(path, "tagging", document_column="doc")
    path.write_text("".join(json.dumps(line) + "\n" for line in lines[:3]), encoding="utf-8")
    assert load(path, "tagging", document_column="doc")["train"]["document"][:] == ["x", "x", "y"]
    assert "document" not in load(path, "tagging")["train"].column_names


def test_translation_and_text_table_files(tmp_path, caplog):
    directory = tmp_path / "mt"
    directory.mkdir()
    pairs = [{"de": "Hallo", "en": "Hello"}, {"de": "Welt", "en": ""}, {"de": "Ja", "en": "Yes"}]
    with (directory / "train.jsonl").open("w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(json.dumps({"translation": pair}) + "\n")
    (directory / "test.csv").write_text('en,de\nA cat.,Eine Katze.\n"A, b",Ein b\n')
    with caplog.at_level(logging.WARNING, logger="seqlstm.data.loading"):
        dsdict = load(directory, "translation", languages=("en", "de"))
    assert dsdict["train"].to_list() == [{"en": "Hello", "de": "Hallo"}, {"en": "Yes", "de": "Ja"}]
    assert dsdict["test"].to_list() == [
        {"en": "A cat.", "de": "Eine Katze."},
        {"en": "A, b", "de": "Ein b"},
    ]
    assert "train: dropped 1 of 3 sentence pairs" in caplog.text
    with pytest.raises(DataError, match=r"test.csv: no column for \['fr'\]"):
        load(directory / "test.csv", "translation", languages=("en", "fr"))
    text = tmp_path / "wiki"
    text.mkdir()
    (text / "train.jsonl").write_text('{"text": " = T = \\n"}\n{"text": ""}\n', encoding="utf-8")
    Dataset.from_dict({"content": ["a\n", "b"]}).to_parquet(str(text / "test.parquet"))
    with pytest.raises(DataError, match=r"test.parquet: no text column 'text'; the columns are"):
        load(text, "text")
    (text / "test.parquet").unlink()
    assert load(text, "text")["train"]["text"][:] == [" = T = \n", ""]
    content = Dataset.from_dict({"content": ["a\n", "b"]})
    assert load(content, "text", text_column="content")["train"]["text"][:] == ["a\n", "b"]


def test_load_arguments_of_another_task_are_refused():
    with pytest.raises(ValueError, match="tokens_column and tags_column are for tagging data"):
        load(conll_hub_like(), "text", tags_column="ner_tags")
    with pytest.raises(ValueError, match="text_column is for text data"):
        load(conll_hub_like(), "tagging", text_column="tokens")


def test_conll_columns_are_numbers(tmp_path):
    directory = write_conll_directory(tmp_path / "conll")
    chunks = load(directory, "tagging", tags_column=2)
    assert chunks["validation"][0]["tags"] == ["B-NP", "I-NP"]
    with pytest.raises(ValueError, match="the columns of CoNLL files have no names"):
        load(directory, "tagging", tags_column="ner_tags")
