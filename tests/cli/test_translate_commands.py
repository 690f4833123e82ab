import io
import random
import sys

import pytest
import sacrebleu
import torch

from seqlstm.cli import main
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer

WORDS = ["ein", "Hund", "rennt", "the", "dog", "runs", "eine", "Katze", "schläft", "a", "cat"]


def _sentences(count, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) for _ in range(count)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny randomly initialised translator, saved; outputs are at most 2 x source + 2."""
    tokenizer = SubwordTokenizer.train(_sentences(200, 0), vocab_size=300, hard_vocab_limit=False)
    torch.manual_seed(0)
    config = TranslatorConfig(
        embedding_dim=16,
        encoder_hidden_size=8,
        encoder_layers=1,
        decoder_hidden_size=16,
        decoder_layers=1,
        max_length_constant=2,
    )
    directory = tmp_path_factory.mktemp("translator") / "model"
    Seq2SeqLSTM(config, tokenizer).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def model(model_dir):
    return Seq2SeqLSTM.from_pretrained(model_dir)


def _run(argv, capsys, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", stdin)
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_translate_keeps_line_alignment_with_empty_lines(model_dir, model, capsys, monkeypatch):
    lines = ["ein Hund rennt", "", "   ", "eine Katze schläft a dog", "", "the cat"]
    # bytes with CRLF endings through stdin.buffer, as a shell pipe delivers them
    stdin = io.TextIOWrapper(io.BytesIO("\r\n".join(lines).encode("utf-8") + b"\r\n"))
    status, out, err = _run(
        ["translate", "--model", str(model_dir), "--beam", "3", "--batch-size", "2"],
        capsys,
        stdin,
        monkeypatch,
    )
    assert status == 0, err
    assert out.endswith("\n")
    outputs = out.removesuffix("\n").split("\n")
    assert len(outputs) == len(lines)
    for line, output in zip(lines, outputs, strict=True):
        if not line.strip():
            assert output == ""
        else:
            # each line translated on its own gives the same output: nothing was shifted
            assert output == model.translate([line], beam_size=3)[0]
            assert output  # a random model rarely stops at once; these are non-empty


def test_a_library_warning_is_one_line(model_dir, tmp_path, capsys):
    """An over-long source is truncated with a warning: one line naming the command, not
    Python's file:line and source line."""
    source = tmp_path / "src.txt"
    source.write_text(" ".join(["ein Hund rennt"] * 200) + "\n", encoding="utf-8")
    status, out, err = _run(
        ["translate", "--model", str(model_dir), "--input", str(source)], capsys
    )
    assert status == 0 and len(out.splitlines()) == 1
    assert err.splitlines() == [
        "seqlstm translate: warning: 1 of 1 source sentences are longer than "
        "max_source_length=256 subwords and were truncated"
    ]


def test_translate_reads_input_file_and_writes_nbest(model_dir, model, tmp_path, capsys):
    source = tmp_path / "src.txt"
    source.write_text("ein Hund\n\nthe cat runs\n", encoding="utf-8")
    status, out, _ = _run(
        ["translate", "--model", str(model_dir), "--input", str(source), "--n-best", "2"], capsys
    )
    assert status == 0
    rows = [line.split(" ||| ") for line in out.splitlines()]
    assert [int(row[0]) for row in rows] == [0, 0, 1, 2, 2]
    assert rows[2][1:] == ["", "0.0000"]
    best = model.translate(["ein Hund", "the cat runs"], beam_size=5, n_best=2)
    assert [rows[0][1], rows[1][1]] == best[0]
    assert [rows[3][1], rows[4][1]] == best[1]
    assert float(rows[0][2]) >= float(rows[1][2])


def test_evaluate_prints_sacrebleu_scores_and_signatures(model_dir, model, tmp_path, capsys):
    sources = _sentences(12, 1) + [""]
    hypotheses = model.translate(sources, beam_size=2)
    # half of the references are the model's own output: a score between 0 and 100
    references = [
        h if i % 2 == 0 else s for i, (h, s) in enumerate(zip(hypotheses, sources, strict=True))
    ]
    src, ref = tmp_path / "test.en", tmp_path / "test.de"
    src.write_text("\n".join(sources) + "\n", encoding="utf-8")
    ref.write_text("\n".join(references) + "\n", encoding="utf-8")
    status, out, err = _run(
        ["evaluate", "--task", "mt", "--model", str(model_dir)]
        + ["--src", str(src), "--ref", str(ref), "--beam", "2", "--batch-size", "4"],
        capsys,
    )
    assert status == 0, err
    # sacreBLEU itself on the same translations: cased 13a BLEU, then chrF2
    bleu, chrf = sacrebleu.BLEU(), sacrebleu.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    assert 0 < bleu_score.score < 100
    assert out.splitlines() == [
        str(bleu_score),
        f"  signature: {bleu.get_signature()}",
        str(chrf_score),
        f"  signature: {chrf.get_signature()}",
    ]
    assert "case:mixed" in out and "tok:13a" in out


def test_evaluate_mismatched_files_names_both_files_and_counts(model_dir, tmp_path, capsys):
    src, ref = tmp_path / "a.en", tmp_path / "b.de"
    src.write_text("one\ntwo\nthree\n", encoding="utf-8")
    ref.write_text("eins\nzwei\n", encoding="utf-8")
    status, out, err = _run(
        ["evaluate", "--task", "mt", "--model", str(model_dir), "--src", str(src)]
        + ["--ref", str(ref)],
        capsys,
    )
    assert status == 2 and out == ""
    assert str(src) in err and str(ref) in err
    assert "3 lines" in err and "has 2" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "needs --src FILE and --ref FILE"),
        (["--src", "x", "--ref", "y", "--beam", "0"], "--beam and --batch-size must be >= 1"),
    ],
)
def test_evaluate_bad_options_are_one_line_errors(model_dir, capsys, extra, message):
    status, _, err = _run(["evaluate", "--task", "mt", "--model", str(model_dir), *extra], capsys)
    assert status == 2 and message in err and len(err.splitlines()) == 1


def test_translate_missing_model_directory(tmp_path, capsys):
    status, _, err = _run(["translate", "--model", str(tmp_path / "nothing")], capsys)
    assert status == 2 and "no such model directory" in err
