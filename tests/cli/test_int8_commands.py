"""`--int8` on `seqlstm tag`, `translate`, `generate` and `evaluate`, with the fixture models.

A command with --int8 must print what the int8 model of the Python API gives (the same
computation, so the same output), and an int8 request it cannot serve - on CUDA, or without
a quantized engine - is a one-line error with exit status 2.
"""

import io
import json
import sys

import pytest
import torch
from locations import FIXTURES

from seqlstm import cli
from seqlstm.data import read_conll
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger
from seqlstm.tasks.translation.translator import Seq2SeqLSTM

MODELS = FIXTURES / "models_0_1"
NER_FILE = FIXTURES / "ner_train.txt"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((MODELS / "expected.json").read_text())


def run(capsys, monkeypatch, argv, stdin: str | None = None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8"))))
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_tag_int8(capsys, monkeypatch):
    sentences = [row["tokens"] for row in read_conll(NER_FILE)]
    stdin = "".join(" ".join(words) + "\n" for words in sentences)
    argv = ["tag", "--model", MODELS / "tagger", "--int8", "--output-format", "jsonl"]
    status, out, err = run(capsys, monkeypatch, argv, stdin)
    assert status == 0, err
    int8 = BiLSTMCRFTagger.from_pretrained(MODELS / "tagger", quantize="int8")
    tagged = int8.tag(sentences)
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["tags"] for r in records] == [t.tags for t in tagged]
    assert [r["confidences"] for r in records] == [
        [round(c, 4) for c in t.confidences] for t in tagged
    ]


def test_translate_int8(expected, capsys, monkeypatch):
    sources = expected["translator_sources"]
    argv = ["translate", "--model", MODELS / "translator", "--int8", "--beam", "3"]
    status, out, err = run(capsys, monkeypatch, argv, "\n".join(sources) + "\n")
    assert status == 0, err
    int8 = Seq2SeqLSTM.from_pretrained(MODELS / "translator", quantize="int8")
    assert out.splitlines() == int8.translate(sources, beam_size=3)


def test_generate_int8(expected, capsys, monkeypatch):
    prompt = expected["lm_prompt"]
    argv = ["generate", "--model", MODELS / "char_lm", "--int8", "--prompt", prompt]
    argv += ["--max-new-tokens", "30", "--temperature", "0.8", "--seed", "3"]
    status, out, err = run(capsys, monkeypatch, argv)
    assert status == 0, err
    int8 = LSTMLanguageModel.from_pretrained(MODELS / "char_lm", quantize="int8")
    text = int8.generate(prompt, 30, temperature=0.8, seed=3, multiline=True)
    assert out == text + "\n"


def test_evaluate_ner_int8(capsys, monkeypatch):
    argv = ["evaluate", "--task", "ner", "--model", MODELS / "tagger", "--data", NER_FILE]
    status, out, err = run(capsys, monkeypatch, [*argv, "--int8"])
    assert status == 0, err
    int8 = BiLSTMCRFTagger.from_pretrained(MODELS / "tagger", quantize="int8")
    # no -DOCSTART- in the file: every sentence is read alone
    rows = read_conll(NER_FILE, scheme_to=int8.config.scheme)
    assert out == int8.entity_scores(rows).report() + "\n"


def test_evaluate_mt_int8(expected, tmp_path, capsys, monkeypatch):
    # float32's translations as the references: int8's BLEU against them, whatever it is
    sources, references = expected["translator_sources"], expected["translator_beam3"]
    src, ref = tmp_path / "test.en", tmp_path / "test.de"
    src.write_text("\n".join(sources) + "\n", encoding="utf-8")
    ref.write_text("\n".join(references) + "\n", encoding="utf-8")
    argv = ["evaluate", "--task", "mt", "--model", MODELS / "translator", "--int8"]
    status, out, err = run(capsys, monkeypatch, [*argv, "--src", src, "--ref", ref, "--beam", "3"])
    assert status == 0, err
    int8 = Seq2SeqLSTM.from_pretrained(MODELS / "translator", quantize="int8")
    pairs = zip(sources, references, strict=True)
    rows = [{"source": s, "target": t} for s, t in pairs]
    bleu = int8.score(rows, beam_size=3)["bleu"]
    assert out.splitlines()[:2] == [bleu.summary, f"  signature: {bleu.signature}"]


def test_evaluate_lm_int8(expected, tmp_path, capsys, monkeypatch):
    data = tmp_path / "text.txt"
    data.write_text("\n".join(expected["lm_text"]) + "\n", encoding="utf-8")
    argv = ["evaluate", "--task", "lm", "--model", MODELS / "char_lm", "--data", data]
    status, out, err = run(capsys, monkeypatch, [*argv, "--int8", "--bptt", "16"])
    assert status == 0, err
    int8 = LSTMLanguageModel.from_pretrained(MODELS / "char_lm", quantize="int8")
    metrics = int8.evaluate(expected["lm_text"], batch_size=64, bptt=16)
    assert f"nats_per_character  {metrics['nats_per_character']:.4f}" in out.splitlines()


COMMANDS = {
    "tag": ["tag", "--model", MODELS / "tagger"],
    "translate": ["translate", "--model", MODELS / "translator"],
    "generate": ["generate", "--model", MODELS / "char_lm"],
    "evaluate": ["evaluate", "--task", "lm", "--model", MODELS / "char_lm", "--data", NER_FILE],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_int8_on_cuda_is_a_one_line_error(command, capsys, monkeypatch):
    status, out, err = run(capsys, monkeypatch, [*COMMANDS[command], "--int8", "--device", "cuda"])
    assert status == 2 and out == ""
    message = "--int8 runs on the CPU only: use --device cpu or auto, or drop --int8"
    assert err == f"seqlstm {command}: error: {message}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_int8_without_a_quantized_engine_is_a_one_line_error(command, capsys, monkeypatch):
    engines = type(torch.backends.quantized)
    monkeypatch.setattr(engines, "engine", "none")
    monkeypatch.setattr(engines, "supported_engines", ["none"])
    status, out, err = run(capsys, monkeypatch, [*COMMANDS[command], "--int8"])
    assert status == 2 and out == ""
    assert err.startswith(f"seqlstm {command}: error: quantize='int8' needs a quantized engine")
    assert err.count("\n") == 1
