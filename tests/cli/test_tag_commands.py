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
    trainer_config = TrainerConfig(
        output_dir=str(directory / "trainer"),
        max_epochs=None,
        max_steps=60,
        lr=0.05,
        save_checkpoints=False,
        progress_bar=False,
        device="cpu",
    )
    Trainer(model, trainer_config, batches).fit()
    assert model.predict(sentences) == tags
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
