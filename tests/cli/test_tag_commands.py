"""`seqlstm tag` and `seqlstm evaluate --task ner`: formats, documents, errors."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from locations import FIXTURES

from seqlstm import cli
from seqlstm.data import BucketedBatches, read_conll
from seqlstm.tasks.tagging.context import DocumentWindowBatches
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.text.tag_schemes import is_valid_sequence
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer, TrainerConfig

TRAIN_FILE = FIXTURES / "ner_train.txt"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny tagger trained to reproduce ner_train.txt exactly, saved."""
    examples = read_conll(TRAIN_FILE)
    sentences = [e["tokens"] for e in examples]
    tags = [e["tags"] for e in examples]
    tokenizer = SubwordTokenizer.train(
        [" ".join(s) for s in sentences], 400, hard_vocab_limit=False
    )
    torch.manual_seed(0)
    config = TaggerConfig(
        subword_dim=16, char_embedding_dim=8, char_filters=16, hidden_size=16, dropout=0.0
    )
    model = BiLSTMCRFTagger.build(config, tokenizer, examples)
    encoded = model.encode(examples)
    batches = BucketedBatches(encoded, [e.length for e in encoded], model.collate, 10_000)
    directory = tmp_path_factory.mktemp("tagger")
    train(model, batches, directory / "trainer", steps=60, lr=0.05)
    assert model.predict(sentences) == tags
    return model.save_pretrained(directory / "model")


def train(model, batches, directory: Path, steps: int, lr: float) -> None:
    config = TrainerConfig(
        output_dir=str(directory),
        max_epochs=None,
        max_steps=steps,
        lr=lr,
        save_checkpoints=False,
        progress_bar=False,
        device="cpu",
    )
    Trainer(model, config, batches).fit()


# Documents in which only the sentence before says what a name is: a person after a sports
# heading, a place after a travel heading. Read alone, the name sentence cannot tell.
NAMES = ["Jordan", "Chad", "Georgia", "Kent"]
HEADINGS = {"Sports :": "PER", "Travel :": "LOC"}
NAMED = "Jordan was great ."


@pytest.fixture(scope="module")
def context_model_dir(tmp_path_factory):
    """A tiny tagger with 4 words of document context, trained on those documents."""
    rows, documents = [], []
    for name in NAMES:
        for heading, kind in HEADINGS.items():
            rows.append({"tokens": heading.split(), "tags": ["O", "O"]})
            rows.append({"tokens": [name, "was", "great", "."], "tags": [f"B-{kind}"] + ["O"] * 3})
            documents += [(name, kind)] * 2
    tokenizer = SubwordTokenizer.train(
        [" ".join(row["tokens"]) for row in rows], 400, hard_vocab_limit=False
    )
    torch.manual_seed(0)
    config = TaggerConfig(
        subword_dim=16,
        char_embedding_dim=8,
        char_filters=16,
        hidden_size=16,
        dropout=0.0,
        word_dropout=0.0,
        context_words=4,
    )
    model = BiLSTMCRFTagger.build(config, tokenizer, rows)
    batches = DocumentWindowBatches(
        model.encode(rows), 30, 10_000, model.collate, model.char_pad_id, documents=documents
    )
    directory = tmp_path_factory.mktemp("context_tagger")
    train(model, batches, directory / "trainer", steps=80, lr=0.1)
    for heading, kind in HEADINGS.items():  # the heading decides, by a wide margin
        tagged = model.tag_documents([[heading, NAMED]])[0][1]
        assert tagged.tags[0] == f"B-{kind}" and tagged.confidences[0] > 0.9
    return model.save_pretrained(directory / "model")


def run(argv, capsys, stdin: bytes | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_tag_text_file_to_conll(model_dir, tmp_path, capsys):
    text = tmp_path / "input.txt"
    text.write_text("Peter Blackburn visited Paris.\n\nReuters met Bill Clinton .\n", "utf-8")
    status, out, _ = run(["tag", "--model", str(model_dir), "--input", str(text)], capsys)
    assert status == 0
    # one block per input line, each ended by a blank line; the empty line an empty block
    assert out == (
        "Peter B-PER\nBlackburn I-PER\nvisited O\nParis B-LOC\n. O\n\n"
        "\n"
        "Reuters B-ORG\nmet O\nBill B-PER\nClinton I-PER\n. O\n\n"
    )


def test_tag_stdin_text_to_jsonl(model_dir, capsys, monkeypatch):
    lines = ["  Peter Blackburn visited Paris, then Rome.", "", "no entities here"]
    argv = ["tag", "--model", str(model_dir), "--output-format", "jsonl"]
    status, out, _ = run(argv, capsys, "\n".join(lines).encode(), monkeypatch)
    assert status == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 3
    first = records[0]
    assert first["tokens"] == ["Peter", "Blackburn", "visited", "Paris", ",", "then", "Rome", "."]
    assert first["tags"] == ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "B-LOC", "O"]
    assert len(first["confidences"]) == 8
    assert all(0.0 <= c <= 1.0 for c in first["confidences"])
    assert [(e["text"], e["type"]) for e in first["entities"]] == [
        ("Peter Blackburn", "PER"),
        ("Paris", "LOC"),
        ("Rome", "LOC"),
    ]
    for entity in first["entities"]:
        assert lines[0][entity["start"] : entity["end"]] == entity["text"]
        assert 0.0 < entity["score"] <= 1.0
    assert records[1] == {"tokens": [], "tags": [], "confidences": [], "entities": []}
    assert records[2]["entities"] == []


def test_tag_conll_input_appends_the_prediction(model_dir, tmp_path, capsys):
    conll = tmp_path / "input.conll"
    conll.write_text(
        "-DOCSTART- -X- -X- O\n\nPeter NNP B-PER\nBlackburn NNP I-PER\n\n\nRome NNP B-LOC\n",
        "utf-8",
    )
    argv = ["tag", "--model", str(model_dir), "--input", str(conll), "--format", "conll"]
    status, out, _ = run(argv, capsys)
    assert status == 0
    assert out == ("Peter NNP B-PER B-PER\nBlackburn NNP I-PER I-PER\n\nRome NNP B-LOC B-LOC\n\n")
    status, out, _ = run([*argv, "--output-format", "jsonl"], capsys)
    assert [json.loads(line)["tags"] for line in out.splitlines()] == [
        ["B-PER", "I-PER"],
        ["B-LOC"],
    ]


def test_tag_documents_text_to_conll_and_jsonl(model_dir, tmp_path, capsys):
    text = tmp_path / "documents.txt"
    # blank lines before, between (one or more) and after documents only separate them
    text.write_text(
        "\n\nPeter Blackburn visited Paris.\nReuters met Bill Clinton .\n\n\n\nRome\n\n", "utf-8"
    )
    argv = ["tag", "--model", str(model_dir), "--input", str(text), "--documents"]
    status, out, _ = run(argv, capsys)
    assert status == 0
    # a block per sentence, as without --documents, and one blank line more between documents
    assert out == (
        "Peter B-PER\nBlackburn I-PER\nvisited O\nParis B-LOC\n. O\n\n"
        "Reuters B-ORG\nmet O\nBill B-PER\nClinton I-PER\n. O\n\n"
        "\n"
        "Rome B-LOC\n\n"
    )
    status, out, _ = run([*argv, "--output-format", "jsonl"], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["document"], r["tokens"][0], r["tags"][0]) for r in records] == [
        (0, "Peter", "B-PER"),
        (0, "Reuters", "B-ORG"),
        (1, "Rome", "B-LOC"),
    ]
    # entity offsets stay offsets into the sentence's line
    paris = records[0]["entities"][1]
    assert (paris["text"], paris["start"], paris["end"]) == ("Paris", 24, 29)


def test_tag_documents_conll_input(model_dir, capsys, monkeypatch):
    # a leading block is document 0; the empty document between the -DOCSTART- lines takes
    # index 1, as read_conll counts them
    conll = (
        b"Peter NNP B-PER\nBlackburn NNP I-PER\n\n"
        b"-DOCSTART- -X- -X- O\n\n-DOCSTART- -X- -X- O\n\nRome NNP B-LOC\n\nParis NNP B-LOC\n"
    )
    argv = ["tag", "--model", str(model_dir), "--format", "conll", "--documents"]
    status, out, _ = run(argv, capsys, conll, monkeypatch)
    assert status == 0
    assert out == (
        "Peter NNP B-PER B-PER\nBlackburn NNP I-PER I-PER\n\n"
        "\n"
        "Rome NNP B-LOC B-LOC\n\nParis NNP B-LOC B-LOC\n\n"
    )
    status, out, _ = run([*argv, "--output-format", "jsonl"], capsys, conll, monkeypatch)
    assert [json.loads(line)["document"] for line in out.splitlines()] == [0, 2, 2]
    # without -DOCSTART- lines the input is one document
    plain = b"Peter NNP\nBlackburn NNP\n\nRome NNP\n"
    status, out, _ = run(argv, capsys, plain, monkeypatch)
    assert out == "Peter NNP B-PER\nBlackburn NNP I-PER\n\nRome NNP B-LOC\n\n"
    # ...and without --documents the -DOCSTART- lines are skipped
    status, out, _ = run(argv[:-1], capsys, conll, monkeypatch)
    assert out.count("\n\n\n") == 0 and out.count("B-LOC B-LOC") == 2


def test_a_document_of_one_5000_word_sentence(context_model_dir, capsys, monkeypatch):
    words = [NAMED.split()[i % 4] for i in range(5000)]
    conll = ("-DOCSTART- O\n\n" + "\n".join(words) + "\n").encode()
    argv = ["tag", "--model", str(context_model_dir), "--format", "conll", "--documents"]
    status, out, _ = run(argv, capsys, conll, monkeypatch)
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 5001 and lines[-1] == ""
    assert [line.split()[0] for line in lines[:-1]] == words


def test_docstart_inside_a_sentence_is_a_one_line_error(model_dir, tmp_path, capsys, monkeypatch):
    conll = b"Peter NNP\nBlackburn NNP\n-DOCSTART- -X- -X- O\n\nRome NNP\n"
    for documents in ([], ["--documents"]):
        argv = ["tag", "--model", str(model_dir), "--format", "conll", *documents]
        status, out, err = run(argv, capsys, conll, monkeypatch)
        assert status == 2 and out == ""
        assert "<stdin>:3: -DOCSTART- inside a sentence (its last token is line 2)" in err
    data = tmp_path / "cut.txt"
    data.write_bytes(b"Rome B-LOC\n-DOCSTART- -X- -X- O\n")
    argv = ["evaluate", "--task", "ner", "--model", str(model_dir), "--data", str(data)]
    status, _, err = run(argv, capsys)
    assert status == 2 and f"{data}:2: -DOCSTART- inside a sentence" in err


@pytest.mark.parametrize("documents", [False, True])
@pytest.mark.parametrize("output", ["conll", "jsonl"])
def test_blank_crlf_and_nul_input(model_dir, capsys, monkeypatch, documents, output):
    argv = ["tag", "--model", str(model_dir), "--output-format", output]
    argv += ["--documents"] if documents else []
    status, out, _ = run(argv, capsys, b"\n  \n\t\n", monkeypatch)
    assert status == 0
    # blank lines only: three empty sentences, or (separating documents) no document at all
    empty = {
        "conll": "\n",
        "jsonl": '{"tokens": [], "tags": [], "confidences": [], "entities": []}\n',
    }
    assert out == ("" if documents else 3 * empty[output])
    # CRLF line ends read as LF ones
    status, crlf, _ = run(argv, capsys, b"Bill Clinton\r\n\r\nRome\r\n", monkeypatch)
    status, lf, _ = run(argv, capsys, b"Bill Clinton\n\nRome\n", monkeypatch)
    assert status == 0 and crlf == lf and "Clinton" in lf
    # a lone CR ends a line too
    status, cr, _ = run(argv, capsys, b"Bill Clinton\r\rRome\r", monkeypatch)
    assert status == 0 and cr == lf
    # a NUL byte is no text (a binary file, UTF-16?): an error naming the line and column,
    # in text and in CoNLL input
    status, out, err = run(argv, capsys, b"Rome\nRome\x00Paris\n\x00\n", monkeypatch)
    assert (status, out) == (2, "")
    assert (
        err == "seqlstm tag: error: <stdin>:2: a NUL byte at column 5: a text file has none "
        "(is this a binary file?); expected UTF-8 text\n"
    )
    conll = [*argv, "--format", "conll"]
    status, out, _ = run(conll, capsys, b"\r\n\r\n", monkeypatch)
    assert status == 0 and out == ""
    status, out, err = run(conll, capsys, b"Rome\x00 NNP\r\nParis NNP\r\n", monkeypatch)
    assert status == 2 and "<stdin>:1: a NUL byte at column 5" in err


def test_batch_size_must_be_positive(model_dir, capsys):
    with pytest.raises(SystemExit) as exit_status:
        cli.main(["tag", "--model", str(model_dir), "--batch-size", "0"])
    assert exit_status.value.code == 2
    assert "--batch-size: expected a whole number of at least 1, got '0'" in capsys.readouterr().err


def as_conll(sentence: str, tags: list[str] | None = None) -> str:
    """A sentence of words as CoNLL lines, each word with its tag when tags are given."""
    columns = [[word] for word in sentence.split()]
    if tags is not None:
        columns = [[*row, tag] for row, tag in zip(columns, tags, strict=True)]
    return "".join(" ".join(row) + "\n" for row in columns)


def name_tags(out: str) -> list[str]:
    """The tags of "Jordan" in conll output."""
    return [line.split()[1] for line in out.splitlines() if line.startswith("Jordan ")]


def test_documents_read_only_their_own_neighbours(context_model_dir, capsys, monkeypatch):
    argv = ["tag", "--model", str(context_model_dir)]
    status, out, _ = run(argv, capsys, f"{NAMED}\n".encode(), monkeypatch)
    (alone,) = name_tags(out)
    both = f"Sports :\n{NAMED}\n\nTravel :\n{NAMED}\n".encode()
    # with --documents the heading before the name decides...
    status, out, _ = run([*argv, "--documents"], capsys, both, monkeypatch)
    assert status == 0 and name_tags(out) == ["B-PER", "B-LOC"]
    # ...without, every sentence is read alone, whatever its neighbours
    status, out, _ = run(argv, capsys, both, monkeypatch)
    assert name_tags(out) == [alone, alone]
    status, out, _ = run(argv, capsys, both.replace(b"\n\n", b"\n"), monkeypatch)
    assert name_tags(out) == [alone, alone]
    # a heading in another document is no neighbour
    split = f"Sports :\n\n{NAMED}\n\nTravel :\n\n{NAMED}\n".encode()
    status, out, _ = run([*argv, "--documents"], capsys, split, monkeypatch)
    assert name_tags(out) == [alone, alone]
    # the same in CoNLL input, where -DOCSTART- lines start the documents
    conll = "".join(
        f"-DOCSTART- O\n\n{as_conll(heading)}\n{as_conll(NAMED)}\n" for heading in HEADINGS
    ).encode()
    conll_argv = [*argv, "--format", "conll", "--documents"]
    status, out, _ = run(conll_argv, capsys, conll, monkeypatch)
    assert name_tags(out) == ["B-PER", "B-LOC"]
    status, out, _ = run(conll_argv[:-1], capsys, conll, monkeypatch)
    assert name_tags(out) == [alone, alone]


def test_document_jsonl_matches_the_tagger(context_model_dir, capsys, monkeypatch):
    tagger = BiLSTMCRFTagger.from_pretrained(context_model_dir)
    documents = [["Sports :", NAMED, "Kent was great ."], ["Travel :", "Chad was great ."]]
    text = "\n\n".join("\n".join(document) for document in documents) + "\n"
    argv = ["tag", "--model", str(context_model_dir), "--documents", "--output-format", "jsonl"]
    status, out, _ = run(argv, capsys, text.encode(), monkeypatch)
    records = [json.loads(line) for line in out.splitlines()]
    expected = [
        (number, tagged)
        for number, document in enumerate(tagger.tag_documents(documents))
        for tagged in document
    ]
    assert len(records) == len(expected) == 5
    for record, (number, tagged) in zip(records, expected, strict=True):
        assert record["document"] == number and record["tags"] == tagged.tags
        assert record["confidences"] == pytest.approx(tagged.confidences, abs=1e-4)
    assert [r["entities"][0]["type"] for r in records if r["entities"]] == ["PER", "PER", "LOC"]


def test_evaluate_reads_the_documents_of_a_docstart_file(context_model_dir, tmp_path, capsys):
    blocks = [
        as_conll(heading, ["O", "O"]) + "\n" + as_conll(NAMED, [f"B-{kind}", "O", "O", "O"])
        for heading, kind in HEADINGS.items()
    ]
    with_documents = tmp_path / "documents.txt"
    with_documents.write_text("".join(f"-DOCSTART- O\n\n{block}\n" for block in blocks))
    without = tmp_path / "sentences.txt"
    without.write_text("\n".join(blocks))
    argv = ["evaluate", "--task", "ner", "--model", str(context_model_dir), "--data"]
    status, out, _ = run([*argv, str(with_documents)], capsys)
    assert status == 0
    assert (
        out.splitlines()[0] == "processed 12 tokens with 2 phrases; found: 2 phrases; correct: 2."
    )
    # without -DOCSTART- each sentence is read alone: both names get the same tag, one is wrong
    status, out, _ = run([*argv, str(without)], capsys)
    assert (
        out.splitlines()[0] == "processed 12 tokens with 2 phrases; found: 2 phrases; correct: 1."
    )
    # --documents none ignores the marks; whole-file reads the file as one document, where
    # the heading before each name is still its neighbour
    for documents, file, correct in [
        ("none", with_documents, 1),
        ("whole-file", without, 2),
        ("auto", without, 2),
        ("auto", with_documents, 2),
    ]:
        status, out, _ = run([*argv, str(file), "--documents", documents], capsys)
        assert status == 0 and out.splitlines()[0].endswith(f"correct: {correct}."), documents


def test_evaluate_prints_the_conlleval_report(model_dir, capsys):
    argv = ["evaluate", "--task", "ner", "--model", str(model_dir), "--data", str(TRAIN_FILE)]
    status, out, _ = run(argv, capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "processed 118 tokens with 32 phrases; found: 32 phrases; correct: 32."
    assert "precision: 100.00%; recall: 100.00%; FB1: 100.00" in lines[1]
    per_type = {line.split(":")[0].strip(): line for line in lines[2:]}
    assert sorted(per_type) == ["LOC", "MISC", "ORG", "PER"]
    assert per_type["PER"].endswith("FB1: 100.00  12")


def test_evaluate_scores_an_iob1_file_too(model_dir, tmp_path, capsys):
    # the same sentences in IOB1: read_conll converts them to the tagger's IOB2
    iob1 = tmp_path / "iob1.txt"
    iob1.write_text("Peter I-PER\nBlackburn I-PER\nvisited O\nParis I-LOC\n\nRome I-LOC\n", "utf-8")
    argv = ["evaluate", "--task", "ner", "--model", str(model_dir), "--data", str(iob1)]
    status, out, _ = run(argv, capsys)
    assert status == 0
    assert out.splitlines()[0] == "processed 5 tokens with 3 phrases; found: 3 phrases; correct: 3."


def test_evaluate_names_the_line_of_an_unknown_label(model_dir, capsys):
    data = FIXTURES / "ner_unknown_label.txt"
    argv = ["evaluate", "--task", "ner", "--model", str(model_dir), "--data", str(data)]
    status, out, err = run(argv, capsys)
    assert status == 2 and out == ""
    assert f"{data}:10: 'Monday\\tB-DATE'" in err
    assert "LOC, MISC, ORG, PER" in err
    status, _, err = run(argv[:-2], capsys)
    assert status == 2 and "needs --data" in err


def test_errors_are_one_line_messages(model_dir, tmp_path, capsys, monkeypatch):
    status, _, err = run(["tag", "--model", str(tmp_path / "nowhere")], capsys)
    assert status == 2 and "no such model directory" in err
    status, _, err = run(["tag", "--model", str(model_dir)], capsys, b"ok\n\xff\n", monkeypatch)
    assert status == 2 and "<stdin>:2: not valid UTF-8" in err
    missing = tmp_path / "missing.txt"
    status, _, err = run(["tag", "--model", str(model_dir), "--input", str(missing)], capsys)
    assert status == 2 and f"{missing}: no such file" in err


def test_console_script_pipes_stdin_to_stdout(model_dir):
    script = Path(sys.executable).with_name("seqlstm")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "seqlstm.cli"]
    result = subprocess.run(
        [*command, "tag", "--model", str(model_dir), "--device", "cpu"],
        input="Bill Clinton visited Rome\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    tags = [line.split()[1] for line in result.stdout.splitlines() if line]
    assert tags == ["B-PER", "I-PER", "O", "B-LOC"]
    assert is_valid_sequence(tags, "IOB2")
