"""export_onnx: the files it writes, its dynamic axes, its check, and what it refuses."""

import json
import shutil

import pytest
import torch
from locations import FIXTURES

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")

from seqlstm import BiLSTMCRFTagger, LSTMLanguageModel  # noqa: E402
from seqlstm.errors import CheckpointError  # noqa: E402
from seqlstm.onnx_tagger import OnnxTagger  # noqa: E402
from seqlstm.onnx_tagger import export as export_module  # noqa: E402
from seqlstm.onnx_tagger.export import OPSET, NotExportedError, export_onnx  # noqa: E402

FIXTURE_TAGGER = FIXTURES / "models_0_1" / "tagger"


def test_the_export_holds_graphs_with_dynamic_axes_and_json(fixture_export, tiny_export):
    files = sorted(str(p.relative_to(fixture_export)) for p in fixture_export.rglob("*"))
    assert files == [
        "crf.json",
        "emissions.onnx",
        "onnx_tagger.json",
        "tokenizer",
        "tokenizer/spm.model",
        "tokenizer/tokenizer.json",
        "vocab",
        "vocab/chars.json",
        "vocab/labels.json",
        "word_features.onnx",
    ]
    assert (tiny_export / "vocab" / "words.json").is_file()
    header = json.loads((fixture_export / "onnx_tagger.json").read_text())
    check = header["export_check"]
    assert header["opset"] == OPSET and check["max_abs_difference"] <= check["tolerance"]
    shapes = {}
    for name in ("word_features", "emissions"):
        graph = onnx.load(fixture_export / f"{name}.onnx").graph
        assert [o.version for o in onnx.load(fixture_export / f"{name}.onnx").opset_import] == [
            OPSET
        ]
        for value in [*graph.input, *graph.output]:
            shapes[f"{name}.{value.name}"] = [
                d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim
            ]
    assert shapes == {
        "word_features.subword_ids": ["words", "subwords"],
        "word_features.char_ids": ["words", "characters"],
        "word_features.features": ["words", 32],
        "emissions.features": ["batch", "steps", 32],
        "emissions.lengths": ["batch"],
        "emissions.sentence_start": ["batch", "steps"],
        "emissions.emissions": ["batch", "steps", 17],
    }
    # the backward LSTM starts at each text's own last word: ONNX's LSTM with sequence_lens
    lstm = [
        n for n in onnx.load(fixture_export / "emissions.onnx").graph.node if n.op_type == "LSTM"
    ]
    assert len(lstm) == 1 and len(lstm[0].input) == 5 and lstm[0].input[4]


def test_only_the_tagger_is_exported(tmp_path):
    lm = LSTMLanguageModel.from_pretrained(FIXTURES / "models_0_1" / "char_lm")
    with pytest.raises(NotExportedError, match="LSTMLanguageModel: its sampling is a Python loop"):
        export_onnx(lm, tmp_path / "lm")
    assert not (tmp_path / "lm").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_a_quantized_tagger_is_not_exported(tmp_path):
    if torch.backends.quantized.engine == "none":
        pytest.skip("this torch has no quantized engine")
    quantized = torch.ao.quantization.quantize_dynamic(
        BiLSTMCRFTagger.from_pretrained(FIXTURE_TAGGER),
        {torch.nn.LSTM, torch.nn.Linear},
        dtype=torch.qint8,
        inplace=True,
    )
    with pytest.raises(ValueError, match="quantized .* export the float model"):
        export_onnx(quantized, tmp_path / "int8")


def test_other_files_are_never_replaced(fixture_tagger, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="is not an exported tagger .* refusing"):
        export_onnx(fixture_tagger, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_graphs_that_differ_from_the_tagger_are_not_kept(fixture_export, tmp_path, monkeypatch):
    # the fixture tagger's graphs, for a tagger whose emission layer scores 0.5 more: the
    # check finds the difference, and the export already there is left as it was
    def copy_graph(module, inputs, path):
        shutil.copy(fixture_export / path.name, path)

    monkeypatch.setattr(export_module, "_export", copy_graph)
    changed = BiLSTMCRFTagger.from_pretrained(FIXTURE_TAGGER)
    with torch.no_grad():
        changed.emission.bias += 0.5
    target = shutil.copytree(fixture_export, tmp_path / "export")
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    with pytest.raises(CheckpointError, match=r"differ from the tagger's by up to 0\.5 .* nothing"):
        export_onnx(changed, target)
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before
    assert OnnxTagger.load(target).predict(["EU rejects German call ."])
