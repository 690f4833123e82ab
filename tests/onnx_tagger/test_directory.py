"""A broken export directory is one CheckpointError naming the file and what was expected."""

import json
import shutil

import pytest

pytest.importorskip("onnxruntime")

from seqlstm.errors import CheckpointError  # noqa: E402
from seqlstm.onnx_tagger import OnnxTagger  # noqa: E402
from seqlstm.text.vocabulary import Vocabulary  # noqa: E402


@pytest.fixture
def directory(fixture_export, tmp_path):
    """A copy of the fixture tagger's export, to break."""
    return shutil.copytree(fixture_export, tmp_path / "export")


def edit_json(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_missing_file(directory):
    (directory / "crf.json").unlink()
    shutil.rmtree(directory / "tokenizer")
    with pytest.raises(CheckpointError, match=r"incomplete: missing crf.json, tokenizer/"):
        OnnxTagger.load(directory)
    with pytest.raises(CheckpointError, match="no such directory"):
        OnnxTagger.load(directory / "nothing")
    (directory / "onnx_tagger.json").unlink()
    with pytest.raises(CheckpointError, match="not an exported tagger: no onnx_tagger.json"):
        OnnxTagger.load(directory)


def test_labels_that_do_not_fit_the_graph(directory):
    path = directory / "vocab" / "labels.json"
    labels = Vocabulary.load(path)
    Vocabulary(labels.tokens[:-1], pad_token=None, unk_token=None).save(path)
    with pytest.raises(CheckpointError) as error:
        OnnxTagger.load(directory)
    message = str(error.value)
    assert f"{path} has 16 labels" in message
    assert f"{directory / 'emissions.onnx'} scores 17" in message


def test_a_config_of_another_format_version(directory):
    edit_json(directory / "onnx_tagger.json", lambda data: data.update(format_version=2))
    with pytest.raises(CheckpointError, match=r"onnx_tagger.json: format_version 2 is not supp"):
        OnnxTagger.load(directory)
    edit_json(directory / "onnx_tagger.json", lambda data: data.update(format="other"))
    with pytest.raises(CheckpointError, match=r"onnx_tagger.json: format is 'other'"):
        OnnxTagger.load(directory)


def test_a_config_that_does_not_fit_the_graphs(directory):
    path = directory / "onnx_tagger.json"
    edit_json(path, lambda data: data["tagger_config"].update(context_words=0))
    with pytest.raises(CheckpointError, match="emissions.onnx: inputs .* expected inputs"):
        OnnxTagger.load(directory)
    edit_json(path, lambda data: data["tagger_config"].update(context_words="60"))
    with pytest.raises(CheckpointError, match="tagger_config.context_words must be an integer"):
        OnnxTagger.load(directory)
    edit_json(path, lambda data: data["tagger_config"].update(context_words=60, chunk_words=None))
    with pytest.raises(CheckpointError, match="tagger_config.chunk_words must be an integer"):
        OnnxTagger.load(directory)
    edit_json(path, lambda data: data["tagger_config"].update(chunk_words=800, scheme="BILOU"))
    with pytest.raises(CheckpointError, match="tagger_config.scheme must be one of"):
        OnnxTagger.load(directory)
    edit_json(path, lambda data: data["tagger_config"].update(scheme="IOB2"))
    edit_json(path, lambda data: data.update(feature_dim=7))
    with pytest.raises(CheckpointError, match="word_features.onnx makes 32 features a word"):
        OnnxTagger.load(directory)


def test_crf_scores_of_another_size(directory):
    path = directory / "crf.json"
    edit_json(path, lambda data: data.update(transitions=data["transitions"][:-1]))
    with pytest.raises(CheckpointError, match=r"crf.json: transitions has shape \[16, 17\]"):
        OnnxTagger.load(directory)


def test_a_graph_of_an_opset_onnxruntime_lacks(directory):
    onnx = pytest.importorskip("onnx")
    path = directory / "emissions.onnx"
    graph = onnx.load(path)
    graph.opset_import[0].version = 99
    onnx.save(graph, path)
    with pytest.raises(CheckpointError) as error:
        OnnxTagger.load(directory)
    message = str(error.value)
    assert str(path) in message and "cannot load this graph (exported at ONNX opset 18)" in message
    assert "99" in message  # onnxruntime's own reason names the opset


def test_a_graph_that_is_not_onnx(directory):
    (directory / "word_features.onnx").write_bytes(b"not a graph")
    with pytest.raises(CheckpointError, match="word_features.onnx: onnxruntime .* cannot load"):
        OnnxTagger.load(directory)
