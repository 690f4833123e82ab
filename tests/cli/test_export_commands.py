"""`seqlstm export --format onnx`: a tagger's export tags as the tagger; other models are one
clear error."""

import json

import pytest
from locations import FIXTURES

from seqlstm import cli

MODELS = FIXTURES / "models_0_1"


def test_export_writes_what_onnx_tagger_loads(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from seqlstm.onnx_tagger import OnnxTagger

    out = tmp_path / "onnx"
    argv = ["export", "--model", str(MODELS / "tagger"), "--format", "onnx", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"exported the tagger to {out} (ONNX opset 18)" in printed
    expected = json.loads((MODELS / "expected.json").read_text())
    tagger = OnnxTagger.load(out, threads=1)
    assert tagger.predict(expected["tagger_sentences"]) == expected["tagger_predict_alone"]


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("translator", "Seq2SeqLSTM: its beam search is a Python loop"),
        ("char_lm", "LSTMLanguageModel: its sampling is a Python loop"),
        ("classifier", "LSTMClassifier: only the tagger has an ONNX export"),
    ],
)
def test_other_models_are_one_error(tmp_path, capsys, model, reason):
    pytest.importorskip("onnxruntime")
    argv = ["export", "--model", str(MODELS / model), "--format", "onnx", "--out", str(tmp_path)]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"seqlstm export: error: {MODELS / model}: ONNX export covers the ")
    assert reason in error and error.count("\n") == 1


def test_bad_arguments(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    missing = ["export", "--model", str(tmp_path / "none"), "--format", "onnx", "--out", "x"]
    assert cli.main(missing) == 2
    assert "no such model directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", "--model", str(MODELS / "tagger"), "--format", "tflite", "--out", "x"])
    assert exit_info.value.code == 2
