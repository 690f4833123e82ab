"""load(): hub-shaped data sets (built here, offline) and local files give the same schema."""

import http.server
import logging
import socket
import threading
import time
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from locations import SHARED_DATA

from seqlstm.data import load, loading
from seqlstm.data.loading import (
    TAGGING_FEATURES,
    hub_reachable,
    normalize_tagging_dataset,
    normalize_text_dataset,
    normalize_translation_dataset,
    split_of,
    split_off_validation,
)
from seqlstm.errors import DataError
from seqlstm.text.tag_schemes import convert_tags, is_valid_sequence

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real data not found at {SHARED_DATA}"
)

# The label names and column layout of eriktks/conll2003 (ner_tags shortened to what we use).
NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
POS = ["NN", "NNP", "VBZ", "JJ", "CD"]
CHUNK = ["O", "B-NP", "I-NP", "B-VP", "I-VP"]
CONLL_FEATURES = Features(
    {
        "id": Value("string"),
        "tokens": Sequence(Value("string")),
        "pos_tags": Sequence(ClassLabel(names=POS)),
        "chunk_tags": Sequence(ClassLabel(names=CHUNK)),
        "ner_tags": Sequence(ClassLabel(names=NER)),
    }
)
SENTENCES = {
    "train": [
        [("EU", "NNP", "B-NP", "B-ORG"), ("rejects", "VBZ", "B-VP", "O")],
        [("Peter", "NNP", "B-NP", "B-PER"), ("Blackburn", "NNP", "I-NP", "I-PER")],
        [("1996-08-22", "CD", "B-NP", "O")],
    ],
    "validation": [[("German", "JJ", "B-NP", "B-MISC"), ("BRUSSELS", "NNP", "I-NP", "B-LOC")]],
    "test": [[("Smith", "NNP", "B-NP", "B-PER")]],
}


def conll_hub_like() -> DatasetDict:
    """A DatasetDict shaped like datasets.load_dataset("eriktks/conll2003")."""
    splits = {}
    for split, sentences in SENTENCES.items():
        rows = {name: [] for name in CONLL_FEATURES}
        for number, sentence in enumerate(sentences):
            tokens, pos, chunk, ner = zip(*sentence, strict=True)
            rows["id"].append(str(number))
            rows["tokens"].append(list(tokens))
            rows["pos_tags"].append([POS.index(tag) for tag in pos])
            rows["chunk_tags"].append([CHUNK.index(tag) for tag in chunk])
            rows["ner_tags"].append([NER.index(tag) for tag in ner])
        splits[split] = Dataset.from_dict(rows, features=CONLL_FEATURES)
    return DatasetDict(splits)


def write_conll_directory(directory: Path) -> Path:
    """The same sentences as local files, named as in ../shared/data/conll2003."""
    directory.mkdir()
    names = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
    for split, sentences in SENTENCES.items():
        blocks = ["\n".join(" ".join(row) for row in sentence) for sentence in sentences]
        (directory / names[split]).write_text("\n\n".join(blocks) + "\n")
    (directory / "README.md").write_text("not a split\n")
    return directory


def rows(dsdict: DatasetDict) -> dict[str, list[dict]]:
    return {split: dataset.to_list() for split, dataset in dsdict.items()}


@pytest.fixture(autouse=True)
def hub_answers(monkeypatch):
    """The tests that fake datasets.load_dataset do not probe the real hub: it answers."""
    monkeypatch.setattr(loading, "hub_reachable", lambda endpoint: True)


@pytest.fixture
def no_hub(monkeypatch):
    """Fail the test if anything reaches datasets.load_dataset."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"hub called with {args}")

    monkeypatch.setattr(loading.datasets, "load_dataset", refuse)


def test_tagging_normalisation_maps_class_labels_to_names():
    dsdict = normalize_tagging_dataset(conll_hub_like())
    assert list(dsdict) == ["train", "validation", "test"]
    assert dsdict["train"].features == TAGGING_FEATURES
    assert dsdict["train"][1] == {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]}
    iobes = normalize_tagging_dataset(conll_hub_like(), scheme="IOBES")
    assert iobes["train"][1]["tags"] == ["B-PER", "E-PER"]
    assert iobes["validation"][0]["tags"] == ["S-MISC", "S-LOC"]


def test_tagging_tags_column_by_index_or_name():
    # The list columns tokens, pos_tags, chunk_tags, ner_tags are the file's columns 0..3.
    pos = normalize_tagging_dataset(conll_hub_like(), tags_column=1, scheme=None)
    assert pos["train"][0]["tags"] == ["NNP", "VBZ"]
    chunks = normalize_tagging_dataset(conll_hub_like(), tags_column="chunk_tags")
    assert chunks["validation"][0]["tags"] == ["B-NP", "I-NP"]
    with pytest.raises(DataError, match=r"train row 0, token 0: 'NNP' is not a chunk tag"):
        normalize_tagging_dataset(conll_hub_like(), tags_column="pos_tags")
    with pytest.raises(DataError, match=r"no tags column 'ner'.*'ner_tags'"):
        normalize_tagging_dataset(conll_hub_like(), tags_column="ner")
    with pytest.raises(DataError, match="tags column 4 but the list columns are"):
        normalize_tagging_dataset(conll_hub_like(), tags_column=4)


def test_tagging_integers_without_names_are_rejected():
    dataset = Dataset.from_dict({"tokens": [["a"]], "tags": [[3]]})
    with pytest.raises(DataError, match="without label names"):
        normalize_tagging_dataset(DatasetDict({"train": dataset}))
    uneven = Dataset.from_dict({"tokens": [["a"], ["b", "c"]], "tags": [["O"], ["O"]]})
    with pytest.raises(DataError, match="train row 1: 2 tokens but 1 labels"):
        normalize_tagging_dataset(DatasetDict({"train": uneven}))


def test_local_and_hub_tagging_give_identical_datasets(tmp_path, no_hub):
    local = load(write_conll_directory(tmp_path / "conll"), "tagging", scheme="IOBES")
    hub = normalize_tagging_dataset(conll_hub_like(), scheme="IOBES")
    assert list(local) == list(hub) == ["train", "validation", "test"]
    assert all(local[split].features == hub[split].features for split in hub)
    assert rows(local) == rows(hub)


# ---------------------------------------------------------------- documents

DOCUMENT_FEATURES = Features({**TAGGING_FEATURES, "document": Value("int64")})


def with_documents(data: DatasetDict, ids: dict[str, list], name: str = "doc_id") -> DatasetDict:
    """The hub-shaped data with a column of document ids added to the splits in ``ids``."""
    return DatasetDict(
        {
            split: dataset.add_column(name, ids[split]) if split in ids else dataset
            for split, dataset in data.items()
        }
    )


def test_local_docstart_gives_a_document_column_like_the_hub_column(tmp_path, no_hub):
    directory = write_conll_directory(tmp_path / "conll")
    # train: a first document of two sentences, an empty one, then one of one sentence
    blocks = ["\n".join(" ".join(row) for row in s) for s in SENTENCES["train"]]
    train = "-DOCSTART- -X- -X- O\n\n{}\n\n{}\n\n-DOCSTART- -X- -X- O\n\n"
    train += "-DOCSTART- -X- -X- O\n\n{}\n"
    (directory / "train.txt").write_text(train.format(*blocks))
    local = load(directory, "tagging")
    assert local["train"].features == DOCUMENT_FEATURES
    assert local["train"]["document"][:] == [0, 0, 2]  # the empty document leaves a gap
    # validation and test have no -DOCSTART- line: independent sentences, no column
    assert local["validation"].features == local["test"].features == TAGGING_FEATURES
    hub = normalize_tagging_dataset(
        with_documents(conll_hub_like(), {"train": [0, 0, 2]}), document_column="doc_id"
    )
    assert all(local[split].features == hub[split].features for split in hub)
    assert rows(local) == rows(hub)


def test_hub_document_ids_may_be_strings_with_gaps(monkeypatch):
    data = with_documents(
        conll_hub_like(),
        {"train": ["wiki-7", "wiki-7", "wiki-2"], "validation": ["a"], "test": ["b"]},
    )
    monkeypatch.setattr(loading.datasets, "load_dataset", lambda source, config: data)
    dsdict = load("owner/name", "tagging", document_column="doc_id")
    assert dsdict["train"].features["document"] == Value("string")
    assert dsdict["train"]["document"][:] == ["wiki-7", "wiki-7", "wiki-2"]
    assert dsdict["train"].column_names == ["tokens", "tags", "document"]
    # ClassLabel ids are kept as their integers
    labelled = DatasetDict(
        {"train": conll_hub_like()["train"].cast_column("id", ClassLabel(names=["0", "1", "2"]))}
    )
    ids = normalize_tagging_dataset(labelled, document_column="id")["train"]
    assert ids.features == DOCUMENT_FEATURES and ids["document"][:] == [0, 1, 2]
    # the default: no document column, whatever columns the data has
    assert load("owner/name", "tagging")["train"].features == TAGGING_FEATURES


def test_a_document_that_comes_back_names_the_split_and_row():
    data = with_documents(conll_hub_like(), {"train": [5, 9, 5]})
    with pytest.raises(
        DataError, match=r"train row 2: document 5 comes back after document 9; the rows of a "
    ):
        normalize_tagging_dataset(data, document_column="doc_id")
    missing = with_documents(conll_hub_like(), {"train": ["a", None, "b"]})
    with pytest.raises(DataError, match=r"train row 1: no id in the document column 'doc_id'"):
        normalize_tagging_dataset(missing, document_column="doc_id")
    floats = with_documents(conll_hub_like(), {"train": [0.5, 1.5, 2.5]})
    with pytest.raises(DataError, match=r"train document column 'doc_id' holds .*float64.*int or"):
        normalize_tagging_dataset(floats, document_column="doc_id")


def test_document_column_missing(caplog):
    with pytest.raises(DataError, match=r"no document column 'doc'; the columns are .*'train'"):
        normalize_tagging_dataset(conll_hub_like(), document_column="doc")
    with caplog.at_level(logging.WARNING, logger="seqlstm.data.loading"):
        some = normalize_tagging_dataset(
            with_documents(conll_hub_like(), {"train": [1, 1, 2]}), document_column="doc_id"
        )
    assert "validation has no document column 'doc_id'" in caplog.text
    assert some["train"].features == DOCUMENT_FEATURES
    assert some["test"].features == TAGGING_FEATURES


def test_document_column_is_not_for_conll_files(tmp_path, no_hub):
    directory = write_conll_directory(tmp_path / "conll")
    with pytest.raises(
        DataError,
        match=r"document_column='id' is for data sets with a column .*"
        "-DOCSTART-",
    ):
        load(directory, "tagging", document_column="id")
    with pytest.raises(ValueError, match="document_column is for tagging data"):
        load(directory, "text", document_column="id")


def test_load_from_hub_id_normalises(monkeypatch):
    calls = []

    def fake_load_dataset(source, config):
        calls.append((source, config))
        data = conll_hub_like()
        return DatasetDict({"train": data["train"], "valid": data["validation"]})

    monkeypatch.setattr(loading.datasets, "load_dataset", fake_load_dataset)
    dsdict = load("eriktks/conll2003", "tagging", hub_config="conll2003")
    assert calls == [("eriktks/conll2003", "conll2003")]
    assert list(dsdict) == ["train", "validation"]
    assert dsdict["validation"][0]["tags"] == ["B-MISC", "B-LOC"]


def test_hub_failure_becomes_data_error(monkeypatch):
    def missing(source, config):
        raise FileNotFoundError(f"Dataset '{source}' doesn't exist on the Hub")

    monkeypatch.setattr(loading.datasets, "load_dataset", missing)
    with pytest.raises(
        DataError, match=r"could not load 'karpathy/tiny_shakes'.*doesn't exist.*--data-dir"
    ):
        load("karpathy/tiny_shakes", "text")


def offline_flags() -> tuple[bool, bool]:
    """The offline settings of the datasets and huggingface_hub libraries, as they stand."""
    return datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE


def test_an_unreachable_hub_fails_at_once_in_one_line_naming_the_id(monkeypatch):
    # the real datasets.load_dataset: left to itself it retries for ~25 s; an id that no
    # cache holds
    monkeypatch.setattr(loading, "hub_reachable", lambda endpoint: False)
    before = offline_flags()
    started = time.monotonic()
    with pytest.raises(DataError) as raised:
        load("seqlstm-tests/not-in-any-cache", "tagging")
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("seqlstm-tests/not-in-any-cache: the Hugging Face hub (https://")
    assert "is unreachable" in message and "--data-dir DIR" in message
    assert offline_flags() == before  # offline only for the call


def test_the_offline_setting_skips_the_probe_and_fails_at_once(monkeypatch):
    def probe(endpoint):
        raise AssertionError("HF_HUB_OFFLINE is set: no request")

    monkeypatch.setattr(loading, "hub_reachable", probe)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # what HF_*_OFFLINE=1 sets
    started = time.monotonic()
    with pytest.raises(DataError, match=r"^owner/name: the Hugging Face hub is off \(HF_HUB_OFF"):
        load("owner/name", "text")
    assert time.monotonic() - started < 5


def test_an_unreachable_hub_still_gives_a_cached_copy(monkeypatch):
    monkeypatch.setattr(loading, "hub_reachable", lambda endpoint: False)
    before = offline_flags()

    def cache_only(source, config):
        # datasets and huggingface_hub read only their caches in offline mode
        assert offline_flags() == (True, True)
        return conll_hub_like()

    monkeypatch.setattr(loading.datasets, "load_dataset", cache_only)
    assert list(load("eriktks/conll2003", "tagging")) == ["train", "validation", "test"]
    assert offline_flags() == before


def test_hub_reachable_needs_an_http_answer_in_time(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a machine's proxy must not stand between

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 (the name http.server calls)
            self.send_response(404)  # an error status is an answer
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    silent = socket.socket()  # accepts connections (backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    closed = socket.socket()  # a port nobody listens on
    closed.bind(("127.0.0.1", 0))
    try:
        assert hub_reachable(f"http://127.0.0.1:{server.server_port}", timeout=2)
        assert not hub_reachable(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.2)
        assert not hub_reachable(f"http://127.0.0.1:{closed.getsockname()[1]}", timeout=2)
    finally:
        server.shutdown()
        server.server_close()
        silent.close()
        closed.close()


@pytest.mark.parametrize("source", ["./missing", "/no/such/dir", "~/nope", "data/conll/train"])
def test_missing_local_looking_path_is_not_a_hub_call(source, no_hub):
    with pytest.raises(DataError, match="no such file"):
        load(source, "tagging")


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        load("x", "parsing")


def multi30k_hub_like() -> DatasetDict:
    """Shaped like bentrevett/multi30k: columns en, de; one pair with an empty side."""
    return DatasetDict(
        {
            "train": Dataset.from_dict(
                {"en": ["Two dogs.", "", "A man."], "de": ["Zwei Hunde.", "Leer.", "Ein Mann."]}
            ),
            "validation": Dataset.from_dict({"en": ["A cat."], "de": ["Eine Katze."]}),
            "test": Dataset.from_dict({"en": ["A bird."], "de": ["Ein Vogel."]}),
        }
    )


def test_translation_normalisation_drops_empty_pairs_and_logs(caplog):
    with caplog.at_level(logging.WARNING, logger="seqlstm.data.loading"):
        dsdict = normalize_translation_dataset(multi30k_hub_like(), languages=("de", "en"))
    assert dsdict["train"].column_names == ["de", "en"]
    assert dsdict["train"]["en"][:] == ["Two dogs.", "A man."]
    assert "train: dropped 1 of 3 sentence pairs" in caplog.text
    with pytest.raises(DataError, match=r"asked for \['en', 'fr'\]"):
        normalize_translation_dataset(multi30k_hub_like(), languages=("en", "fr"))


def test_translation_wmt_layout():
    pairs = [{"de": "Hallo", "en": "Hello"}, {"de": "Welt", "en": "World"}]
    dsdict = DatasetDict({"train": Dataset.from_dict({"translation": pairs})})
    normalised = normalize_translation_dataset(dsdict, languages=("en", "de"))
    assert normalised["train"].to_list() == [
        {"en": "Hello", "de": "Hallo"},
        {"en": "World", "de": "Welt"},
    ]


def write_multi30k_directory(directory: Path) -> Path:
    directory.mkdir()
    names = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
    for split, dataset in multi30k_hub_like().items():
        for language in ("en", "de"):
            lines = dataset[language][:]
            (directory / f"{names[split]}.{language}").write_text("\n".join(lines) + "\n")
    (directory / "train.fr").write_text("Deux chiens.\nVide.\nUn homme.\n")
    return directory


def test_local_and_hub_translation_give_identical_datasets(tmp_path, no_hub):
    directory = write_multi30k_directory(tmp_path / "multi30k")
    local = load(directory, "translation", languages=("en", "de"))
    hub = normalize_translation_dataset(multi30k_hub_like(), languages=("en", "de"))
    assert list(local) == ["train", "validation", "test"]
    assert all(local[split].features == hub[split].features for split in hub)
    assert rows(local) == rows(hub)
    # fr exists only for train, so asking for it (or for all languages) is an error.
    with pytest.raises(
        DataError, match=r"multi30k \(test\): need parallel files for \['en', 'fr'\]"
    ):
        load(directory, "translation", languages=("en", "fr"))


def test_local_translation_misaligned(tmp_path):
    directory = tmp_path / "mt"
    directory.mkdir()
    (directory / "train.en").write_text("a\nb\nc\n")
    (directory / "train.de").write_text("x\ny\n")
    with pytest.raises(DataError, match=r"train.de has 2 lines but .*train.en has 3"):
        load(directory, "translation")
    with pytest.raises(DataError, match="translation needs a directory"):
        load(directory / "train.en", "translation")


def test_text_single_file_with_validation_fraction(tmp_path):
    text = "".join(f"line {i}\n" for i in range(100))
    path = tmp_path / "input.txt"
    path.write_text(text)
    dsdict = load(path, "text", validation_fraction=0.1)
    cut = int(len(text) * 0.9)
    assert dsdict["train"]["text"][:] == [text[:cut]]
    assert dsdict["validation"]["text"][:] == [text[cut:]]
    assert list(load(path, "text")) == ["train"]


def test_text_directory_gives_lines_like_wikitext(tmp_path):
    directory = tmp_path / "wikitext"
    directory.mkdir()
    contents = {"train": " = Title = \n \n Body .\n", "valid": " V\n", "test": " T\n\n"}
    for split, content in contents.items():
        (directory / f"wiki.{split}.tokens").write_text(content)
    dsdict = load(directory, "text")
    assert list(dsdict) == ["train", "validation", "test"]
    assert dsdict["train"]["text"][:] == [" = Title = \n", " \n", " Body .\n"]
    assert "".join(dsdict["test"]["text"][:]) == contents["test"]


def test_text_normalisation_of_hub_shapes():
    shakespeare = DatasetDict(
        {split: Dataset.from_dict({"text": [f"{split} text"]}) for split in ("train", "validation")}
    )
    assert normalize_text_dataset(shakespeare)["validation"][0] == {"text": "validation text"}
    with pytest.raises(DataError, match="no text column 'text'"):
        normalize_text_dataset(DatasetDict({"train": Dataset.from_dict({"content": ["x"]})}))


def test_split_names(caplog):
    assert [split_of(name) for name in ("train.txt", "val.de", "dev", "eng.testa")] == [
        "train",
        "validation",
        "validation",
        "test",
    ]
    assert split_of("test_2016_flickr") == "test"
    assert split_of("wiki.valid.tokens") == "validation"
    assert split_of("README.md") is None
    data = DatasetDict(
        {
            "unsupervised": Dataset.from_dict({"text": ["u"]}),
            "train": Dataset.from_dict({"text": ["t"]}),
        }
    )
    with caplog.at_level(logging.WARNING, logger="seqlstm.data.loading"):
        assert list(normalize_text_dataset(data)) == ["train"]
    assert "'unsupervised' is not train/validation/test" in caplog.text


def test_ambiguous_split_files(tmp_path):
    directory = tmp_path / "two_trains"
    directory.mkdir()
    (directory / "train.txt").write_text("a O\n")
    (directory / "train_extra.txt").write_text("b O\n")
    with pytest.raises(DataError, match="both train.txt and train_extra.txt look like the train"):
        load(directory, "tagging")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no split files"):
        load(empty, "tagging")


def test_split_off_validation_by_rows_and_errors():
    train = Dataset.from_dict({"en": [str(i) for i in range(10)], "de": ["x"] * 10})
    dsdict = split_off_validation(DatasetDict({"train": train}), 0.2)
    assert dsdict["train"]["en"][:] == [str(i) for i in range(8)]
    assert dsdict["validation"]["en"][:] == ["8", "9"]
    with pytest.raises(DataError, match="already has a validation split"):
        split_off_validation(dsdict, 0.2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_off_validation(DatasetDict({"train": train}), 1.0)
    with pytest.raises(DataError, match="leaves train or validation empty"):
        split_off_validation(DatasetDict({"train": train.select([0])}), 0.5)


@pytest.fixture(scope="module")
def real_conll():
    return load(SHARED_DATA / "conll2003", "tagging")


@needs_shared_data
def test_real_conll2003(real_conll):
    expected = {"train": (14041, 203621), "validation": (3250, 51362), "test": (3453, 46435)}
    assert list(real_conll) == ["train", "validation", "test"]
    for split, (sentences, tokens) in expected.items():
        dataset = real_conll[split]
        assert dataset.features == TAGGING_FEATURES
        assert len(dataset) == sentences
        assert sum(len(tokens) for tokens in dataset["tokens"][:]) == tokens
    tags = real_conll["train"]["tags"][:]
    assert {tag for row in tags for tag in row} == set(NER)
    # Round trip through IOBES gives back the file's IOB2 tags.
    for row in tags:
        assert is_valid_sequence(row, "IOB2")
        assert convert_tags(convert_tags(row, "IOB2", "IOBES"), "IOBES", "IOB2") == row


@needs_shared_data
def test_real_multi30k_and_shakespeare():
    multi30k = load(SHARED_DATA / "multi30k", "translation", languages=("en", "de"))
    counts = {split: len(dataset) for split, dataset in multi30k.items()}
    assert counts == {"train": 29000, "validation": 1014, "test": 1000}
    assert multi30k["train"].column_names == ["en", "de"]
    assert multi30k["train"][0]["de"].startswith("Zwei junge weiße Männer")
    shakespeare = load(
        SHARED_DATA / "tinyshakespeare" / "input.txt", "text", validation_fraction=0.1
    )
    train, validation = shakespeare["train"][0]["text"], shakespeare["validation"][0]["text"]
    assert len(train) + len(validation) == 1_115_394
    assert len(train) == int(1_115_394 * 0.9)
    assert train.startswith("First Citizen:")
