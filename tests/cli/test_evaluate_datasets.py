"""`seqlstm evaluate --task ner|mt|lm --dataset ID_OR_PATH [--split] [--config]`: a data set
as `seqlstm.data.load` reads it - a save_to_disk folder, table files, a CoNLL file, a hub id -
scores as the same data given as --data (or --src/--ref), or as the model's own method."""

import json
import time

import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from locations import FIXTURES

from seqlstm import cli
from seqlstm.cli.generate_commands import text_lines
from seqlstm.data import BucketedBatches, loading, read_conll
from seqlstm.data.readers import iter_lines
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
from seqlstm.text.tag_schemes import convert_tags
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer, TrainerConfig

TRAIN_FILE = FIXTURES / "ner_train.txt"
TRAIN = read_conll(TRAIN_FILE)
NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def run(capsys, *argv):
    capsys.readouterr()  # not the progress bars of writing the data
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """The hub is never asked: a hub id finds it unreachable (and its cache empty)."""
    monkeypatch.setattr(loading, "hub_reachable", lambda endpoint: False)


# ---------------------------------------------------------------- ner


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory):
    """A tiny tagger (IOB2) trained to reproduce ner_train.txt, saved."""
    sentences = [row["tokens"] for row in TRAIN]
    tokenizer = SubwordTokenizer.train(
        [" ".join(s) for s in sentences], 400, hard_vocab_limit=False
    )
    torch.manual_seed(0)
    config = TaggerConfig(
        subword_dim=16,
        char_embedding_dim=8,
        char_filters=16,
        hidden_size=16,
        dropout=0.0,
        word_dropout=0.0,
        context_words=0,
        lowercase_subwords=False,
    )
    model = BiLSTMCRFTagger.build(config, tokenizer, TRAIN)
    examples = model.encode(TRAIN)
    batches = BucketedBatches(examples, [e.length for e in examples], model.collate, 10_000)
    directory = tmp_path_factory.mktemp("tagger")
    settings = dict(max_epochs=None, max_steps=60, lr=0.05, save_checkpoints=False)
    trainer_config = TrainerConfig(
        output_dir=str(directory / "trainer"), progress_bar=False, device="cpu", **settings
    )
    Trainer(model, trainer_config, batches).fit()
    assert model.eval().predict(sentences) == [row["tags"] for row in TRAIN]
    return model.save_pretrained(directory / "model")


def gold_rows():
    """The training sentences with a few gold tags changed: an F1 below 100."""
    rows = [{"tokens": row["tokens"], "tags": list(row["tags"])} for row in TRAIN]
    rows[0]["tags"][0] = "B-LOC"
    rows[1]["tags"] = ["O"] * len(rows[1]["tags"])
    rows[2]["tags"][0] = "B-PER"
    return rows


def hub_like(scheme="IOB2"):
    """gold_rows as datasets.load_dataset("eriktks/conll2003") gives them: ClassLabel ids,
    in ``scheme``."""
    rows = gold_rows()
    tags = [convert_tags(row["tags"], "IOB2", scheme) for row in rows]
    names = NAMES if scheme == "IOB2" else sorted({tag for sentence in tags for tag in sentence})
    features = Features(
        {
            "id": Value("string"),
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(ClassLabel(names=names)),
        }
    )
    test = Dataset.from_dict(
        {
            "id": [str(n) for n in range(len(rows))],
            "tokens": [row["tokens"] for row in rows],
            "ner_tags": [[names.index(tag) for tag in sentence] for sentence in tags],
        },
        features=features,
    )
    return DatasetDict({"train": test.select(range(3)), "validation": test, "test": test})


@pytest.fixture(scope="module")
def expected_report(tagger_dir):
    tagger = BiLSTMCRFTagger.from_pretrained(tagger_dir)
    report = tagger.entity_scores(gold_rows()).report()
    assert "FB1:  100.00" not in report.splitlines()[1]  # not a perfect score
    return report


def test_ner_scores_a_save_to_disk_folder_split(tagger_dir, expected_report, tmp_path, capsys):
    hub_like("IOB1").save_to_disk(str(tmp_path / "saved"))  # IOB1: converted to the model's
    argv = ["evaluate", "--task", "ner", "--model", tagger_dir, "--dataset", tmp_path / "saved"]
    status, out, err = run(capsys, *argv)
    assert status == 0, err
    assert out == expected_report + "\n"
    # another split; a split the folder lacks is one line naming the splits it has
    status, out, _ = run(capsys, *argv, "--split", "train")
    assert status == 0 and out.splitlines()[0].startswith("processed 28 tokens")  # 3 rows
    DatasetDict({"train": hub_like()["train"]}).save_to_disk(str(tmp_path / "train_only"))
    argv[-1] = tmp_path / "train_only"
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    missing = f"{tmp_path / 'train_only'}: no test split; the data has ['train']"
    assert err == f"seqlstm evaluate: error: {missing}\n"


def test_ner_scores_table_files_and_a_conll_file(tagger_dir, expected_report, tmp_path, capsys):
    jsonl = tmp_path / "test.jsonl"
    with jsonl.open("w", encoding="utf-8") as out:
        for row in gold_rows():
            out.write(json.dumps({"words": row["tokens"], "ner": row["tags"]}) + "\n")
    parquet = tmp_path / "eval.parquet"
    hub_like("IOBES")["test"].to_parquet(str(parquet))
    conll = tmp_path / "test.conll"
    conll.write_text(
        "\n".join(
            "".join(f"{w} {t}\n" for w, t in zip(r["tokens"], r["tags"], strict=True))
            for r in gold_rows()
        ),
        encoding="utf-8",
    )
    base = ["evaluate", "--task", "ner", "--model", tagger_dir, "--dataset"]
    for argv in (
        [*base, jsonl, "--tokens-column", "words", "--tags-column", "ner"],
        [*base, parquet],
        [*base, conll],
        [*base, conll, "--tags-column", "-1", "--split", "validation"],
    ):
        status, out, err = run(capsys, *argv)
        assert status == 0, (argv, err)
        assert out == expected_report + "\n", argv
    # the CoNLL file through --data gives the same report
    status, out, _ = run(
        capsys, "evaluate", "--task", "ner", "--model", tagger_dir, "--data", conll
    )
    assert status == 0 and out == expected_report + "\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--data", "x.txt", "--dataset", "y"],
            "give --data FILE or --dataset ID_OR_PATH, not both",
        ),
        (
            ["--data", "x.txt", "--split", "test"],
            "--split and --config choose what --dataset reads",
        ),
        (
            ["--data", "x.txt", "--tags-column", "ner"],
            "--tokens-column and --tags-column are for --dataset",
        ),
        ([], "needs --data FILE (CoNLL: token first, gold tag last column) or --dataset"),
        (["--dataset", "./missing"], "./missing: no such file or directory"),
        (
            ["--dataset", "DATA", "--split", "unsupervised"],
            "split must be train, validation or test",
        ),
        (["--dataset", "DATA", "--tags-column", "id"], "column 'id' holds Value"),
        (["--dataset", "DATA", "--tags-column", "9"], "tags column 9 but the list columns are"),
    ],
)
def test_ner_dataset_option_errors_are_one_line(tagger_dir, tmp_path, capsys, extra, message):
    hub_like().save_to_disk(str(tmp_path / "saved"))
    extra = [str(tmp_path / "saved") if part == "DATA" else part for part in extra]
    status, out, err = run(capsys, "evaluate", "--task", "ner", "--model", tagger_dir, *extra)
    assert status == 2 and out == ""
    assert message in err and len(err.splitlines()) == 1, err


def test_ner_scores_a_hub_id_with_its_config(tagger_dir, expected_report, capsys, monkeypatch):
    calls = []

    def load_dataset(source, config):
        calls.append((source, config))
        return hub_like()

    monkeypatch.setattr(loading, "hub_reachable", lambda endpoint: True)
    monkeypatch.setattr(loading.datasets, "load_dataset", load_dataset)
    status, out, err = run(
        capsys, "evaluate", "--task", "ner", "--model", tagger_dir,
        "--dataset", "eriktks/conll2003", "--config", "conll2003", "--split", "test",
    )  # fmt: skip
    assert status == 0, err
    assert calls == [("eriktks/conll2003", "conll2003")]
    assert out == expected_report + "\n"


def test_an_offline_hub_id_fails_at_once_in_one_line(tagger_dir, capsys):
    started = time.monotonic()
    status, out, err = run(
        capsys,
        "evaluate",
        "--task",
        "ner",
        "--model",
        tagger_dir,
        "--dataset",
        "seqlstm-tests/not-in-any-cache",
        "--config",
        "conll2003",
    )
    assert time.monotonic() - started < 10
    assert status == 2 and out == "" and len(err.splitlines()) == 1
    assert "seqlstm-tests/not-in-any-cache: the Hugging Face hub (" in err and "unreachable" in err


# ---------------------------------------------------------------- mt

PAIRS = [
    ("a red cat runs", "eine rote Katze rennt"),
    ("the dog sleeps", "der Hund schläft"),
    ("a small bird eats", "ein kleiner Vogel frisst"),
    ("the cat sleeps", "die Katze schläft"),
]


@pytest.fixture(scope="module")
def translator_dir(tmp_path_factory):
    tokenizer = SubwordTokenizer.train(
        [text for pair in PAIRS for text in pair] * 4, vocab_size=400, hard_vocab_limit=False
    )
    torch.manual_seed(0)
    config = TranslatorConfig(
        embedding_dim=16,
        encoder_hidden_size=8,
        encoder_layers=1,
        decoder_hidden_size=16,
        decoder_layers=1,
        max_length_constant=2,
        source_language="en",
        target_language="de",
    )
    return Seq2SeqLSTM(config, tokenizer).save_pretrained(tmp_path_factory.mktemp("mt") / "model")


def test_mt_scores_a_dataset_as_the_same_src_and_ref_files(translator_dir, tmp_path, capsys):
    src, ref = tmp_path / "test.en", tmp_path / "test.de"
    src.write_text("".join(f"{en}\n" for en, _ in PAIRS), encoding="utf-8")
    ref.write_text("".join(f"{de}\n" for _, de in PAIRS), encoding="utf-8")
    base = ["evaluate", "--task", "mt", "--model", translator_dir, "--beam", "2"]
    status, expected, err = run(capsys, *base, "--src", src, "--ref", ref)
    assert status == 0, err
    data = tmp_path / "wmt"
    data.mkdir()
    with (data / "test.jsonl").open("w", encoding="utf-8") as out:
        for en, de in PAIRS:
            out.write(json.dumps({"translation": {"de": de, "en": en}}) + "\n")
    status, out, err = run(capsys, *base, "--dataset", data)
    assert status == 0, err
    assert out == expected
    # language columns under other codes, named by --languages; a model's own codes missing
    Dataset.from_dict({"src": [e for e, _ in PAIRS], "tgt": [d for _, d in PAIRS]}).save_to_disk(
        str(tmp_path / "codes")
    )
    status, out, err = run(
        capsys,
        *base,
        "--dataset",
        tmp_path / "codes",
        "--split",
        "test",
        "--languages",
        "src",
        "tgt",
    )
    assert status == 0 and out == expected, err
    status, out, err = run(capsys, *base, "--dataset", tmp_path / "codes", "--split", "test")
    assert (
        status == 2 and "translation needs two or more text columns; asked for ['en', 'de']" in err
    )
    status, out, err = run(capsys, *base, "--dataset", data, "--src", src)
    assert status == 2 and "give --src and --ref, or --dataset, not both" in err


# ---------------------------------------------------------------- lm

LINES = ["to be or not to be", "", "that is the question", "whether tis nobler"]


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    tokenizer = SubwordTokenizer.train(LINES * 4, vocab_size=400, model_type="char")
    torch.manual_seed(0)
    config = LanguageModelConfig(embedding_dim=8, hidden_size=16, num_layers=1, tie_weights=False)
    model = LSTMLanguageModel(config, tokenizer).eval()
    return model.save_pretrained(tmp_path_factory.mktemp("lm") / "model")


def test_lm_scores_the_lines_of_a_dataset_as_those_of_a_file(lm_dir, tmp_path, capsys):
    text = tmp_path / "test.txt"
    text.write_text("".join(f"{line}\n" for line in LINES), encoding="utf-8")
    base = ["evaluate", "--task", "lm", "--model", lm_dir, "--bptt", "5"]
    status, expected, err = run(capsys, *base, "--data", text)
    assert status == 0, err
    metrics = expected.splitlines()[1:]
    assert expected.splitlines()[0] == f"{text}: 4 lines"
    # rows of a line each (wikitext's hub layout), a whole text in one row, a text file
    lines = Dataset.from_dict({"text": [f"{line}\n" for line in LINES]})
    lines.save_to_disk(str(tmp_path / "lines"))
    whole = Dataset.from_dict({"content": ["".join(f"{line}\n" for line in LINES)]})
    whole.save_to_disk(str(tmp_path / "whole"))
    for extra in (
        [tmp_path / "lines"],
        [tmp_path / "whole", "--text-column", "content"],
        [text, "--split", "train"],
    ):
        status, out, err = run(capsys, *base, "--dataset", *extra)
        assert status == 0, err
        where = extra[0]
        assert out.splitlines()[0].startswith(f"{where} (")
        assert out.splitlines()[0].endswith("split): 4 lines")
        assert out.splitlines()[1:] == metrics
    status, out, err = run(capsys, *base, "--dataset", tmp_path / "whole")
    assert status == 2 and "no text column 'text'; the columns are ['content']" in err


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("", [""]),
        ("a\n", ["a"]),
        ("a\r\nb\rc\n\nd", ["a", "b", "c", "", "d"]),
        ("a\r", ["a"]),
    ],
)
def test_a_rows_text_is_cut_into_lines_as_a_file_is(tmp_path, text, lines):
    """The lines `evaluate --task lm --dataset` scores from a row's text are those
    `iter_lines` reads from a file of that text (an empty text aside: one empty line, a row
    of the hub's wikitext)."""
    assert text_lines(text) == lines
    if text:
        path = tmp_path / "text.txt"
        path.write_bytes(text.encode())
        assert [line for _, line in iter_lines(path)] == lines
