import itertools
import json
from dataclasses import dataclass

import pytest
import torch
from safetensors import safe_open
from torch import nn

from seqlstm.errors import CheckpointError
from seqlstm.pretrained import PretrainedModel
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.text.vocabulary import Vocabulary


@dataclass
class ToyConfig:
    hidden: int = 6
    layers: tuple[int, ...] = (5, 4)
    tie: bool = True
    extra_layer: bool = False


class ToyModel(PretrainedModel):
    """Embedding -> MLP -> vocabulary logits (optionally tied) and label logits."""

    config_class = ToyConfig
    vocabulary_names = ("label_vocab", "char_vocab")

    def __init__(self, config, tokenizer, label_vocab, char_vocab=None):
        super().__init__(config, tokenizer, label_vocab=label_vocab, char_vocab=char_vocab)
        self.embedding = nn.Embedding(len(tokenizer), config.hidden)
        sizes = (config.hidden, *config.layers, config.hidden)
        self.mlp = nn.Sequential(*(nn.Linear(a, b) for a, b in itertools.pairwise(sizes)))
        self.output = nn.Linear(config.hidden, len(tokenizer), bias=False)
        if config.tie:
            self.output.weight = self.embedding.weight
        self.labels = nn.Linear(config.hidden, len(label_vocab))
        if config.extra_layer:
            self.extra = nn.Linear(2, 2)
        self.register_buffer("scale", torch.tensor(1.0))

    def forward(self, ids):
        hidden = self.mlp(self.embedding(ids)) * self.scale
        return self.output(hidden), self.labels(hidden)


class OtherModel(ToyModel):
    pass


@pytest.fixture(scope="module")
def tokenizer():
    texts = [f"the quick brown fox jumps over the lazy dog {i}" for i in range(50)]
    return SubwordTokenizer.train(texts, vocab_size=300, hard_vocab_limit=False)


def _model(tokenizer, **config):
    torch.manual_seed(0)
    labels = Vocabulary.build([["O", "B-PER", "I-PER"]], pad_token=None, unk_token=None)
    model = ToyModel(ToyConfig(**config), tokenizer, label_vocab=labels)
    with torch.no_grad():
        model.scale.fill_(0.5)  # a buffer that differs from its initial value
    return model


def test_round_trip_gives_identical_outputs(tokenizer, tmp_path):
    model = _model(tokenizer)
    model.save_pretrained(tmp_path / "model")
    loaded = ToyModel.from_pretrained(tmp_path / "model")
    ids = torch.tensor([tokenizer.encode("the lazy fox")])
    for before, after in zip(model.eval()(ids), loaded(ids), strict=True):
        assert torch.equal(before, after)
    assert not loaded.training
    assert loaded.config == model.config and isinstance(loaded.config.layers, tuple)
    assert loaded.label_vocab == model.label_vocab and loaded.char_vocab is None
    assert loaded.tokenizer.encode("quick brown") == tokenizer.encode("quick brown")


def test_directory_layout_and_header(tokenizer, tmp_path):
    chars = Vocabulary.build(["abc"])
    model = ToyModel(ToyConfig(), tokenizer, label_vocab=Vocabulary.build(["x"]), char_vocab=chars)
    model.save_pretrained(tmp_path / "model")
    names = sorted(p.relative_to(tmp_path / "model").as_posix() for p in tmp_path.rglob("*"))
    assert "config.json" in names and "model.safetensors" in names
    assert "vocab/char_vocab.json" in names and "vocab/label_vocab.json" in names
    assert any(name.startswith("tokenizer/") for name in names)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary directory left
    header = json.loads((tmp_path / "model" / "config.json").read_text())
    assert header["model_class"] == "ToyModel"
    assert header["config"] == {"hidden": 6, "layers": [5, 4], "tie": True, "extra_layer": False}
    assert header["vocabularies"] == ["char_vocab", "label_vocab"]
    assert isinstance(header["seqlstm_version"], str)
    assert ToyModel.from_pretrained(tmp_path / "model").char_vocab == chars


def test_tied_weights_are_stored_once_and_stay_tied(tokenizer, tmp_path):
    model = _model(tokenizer)
    model.save_pretrained(tmp_path / "model")
    with safe_open(tmp_path / "model" / "model.safetensors", framework="pt") as f:
        keys = set(f.keys())
    assert len({"embedding.weight", "output.weight"} & keys) == 1
    loaded = ToyModel.from_pretrained(tmp_path / "model")
    assert loaded.output.weight is loaded.embedding.weight
    untied = _model(tokenizer, tie=False)
    untied.save_pretrained(tmp_path / "untied")
    loaded = ToyModel.from_pretrained(tmp_path / "untied")
    assert loaded.output.weight is not loaded.embedding.weight
    assert torch.equal(loaded.output.weight, untied.output.weight)


def test_weights_viewing_one_flat_buffer_are_saved(tokenizer, tmp_path):
    # cuDNN keeps an LSTM's weights on a GPU as views into one flat buffer, which
    # safetensors refuses to save as they are; emulate that layout on the CPU
    model = _model(tokenizer, tie=False)
    layers = [model.mlp[0], model.mlp[1]]
    flat = torch.cat([p.detach().flatten() for m in layers for p in (m.weight, m.bias)])
    offset = 0
    for m in layers:
        for name in ("weight", "bias"):
            size = getattr(m, name).numel()
            view = flat[offset : offset + size].view_as(getattr(m, name))
            setattr(m, name, nn.Parameter(view))
            offset += size
    assert model.mlp[0].bias.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
    model.save_pretrained(tmp_path / "model")
    loaded = ToyModel.from_pretrained(tmp_path / "model")
    ids = torch.tensor([tokenizer.encode("the lazy fox")])
    for before, after in zip(model.eval()(ids), loaded(ids), strict=True):
        assert torch.equal(before, after)


def test_missing_files_are_all_named(tokenizer, tmp_path):
    _model(tokenizer).save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").unlink()
    (tmp_path / "model" / "vocab" / "label_vocab.json").unlink()
    with pytest.raises(CheckpointError, match=r"missing model.safetensors, vocab/label_vocab.json"):
        ToyModel.from_pretrained(tmp_path / "model")
    (tmp_path / "model" / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"missing config.json, model.safetensors"):
        ToyModel.from_pretrained(tmp_path / "model")
    with pytest.raises(CheckpointError, match=r"no such model directory"):
        ToyModel.from_pretrained(tmp_path / "nowhere")


def test_checkpoint_of_another_class_is_refused(tokenizer, tmp_path):
    _model(tokenizer).save_pretrained(tmp_path / "model")
    with pytest.raises(CheckpointError, match=r"holds a ToyModel, not a OtherModel"):
        OtherModel.from_pretrained(tmp_path / "model")


def test_corrupt_or_pickled_weights_are_refused(tokenizer, tmp_path):
    model = _model(tokenizer)
    model.save_pretrained(tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"model.safetensors: not a readable safetensors"):
        ToyModel.from_pretrained(tmp_path / "model")
    torch.save(model.state_dict(), weights)  # a pickle must never be loaded
    with pytest.raises(CheckpointError, match=r"not a readable safetensors"):
        ToyModel.from_pretrained(tmp_path / "model")


def test_shape_and_name_mismatches_are_listed(tokenizer, tmp_path):
    _model(tokenizer).save_pretrained(tmp_path / "model")
    config_path = tmp_path / "model" / "config.json"
    header = json.loads(config_path.read_text())
    header["config"].update(hidden=7, extra_layer=True)
    config_path.write_text(json.dumps(header))
    with pytest.raises(CheckpointError) as error:
        ToyModel.from_pretrained(tmp_path / "model")
    message = str(error.value)
    assert "missing tensor 'extra.weight'" in message and "missing tensor 'extra.bias'" in message
    assert "'mlp.0.weight' has shape (5, 6) in the file but (5, 7) in the model" in message
    header["config"]["unknown_field"] = 1
    config_path.write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match=r"config has fields \['unknown_field'\]"):
        ToyModel.from_pretrained(tmp_path / "model")
    config_path.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config.json: not valid JSON"):
        ToyModel.from_pretrained(tmp_path / "model")


def test_overwrite_is_atomic_and_never_deletes_other_files(tokenizer, tmp_path, monkeypatch):
    target = tmp_path / "model"
    first = _model(tokenizer)
    first.save_pretrained(target)
    second = _model(tokenizer, hidden=4, tie=False)
    second.save_pretrained(target)  # replacing an older model is fine
    assert ToyModel.from_pretrained(target).config.hidden == 4

    def fail(directory):
        raise OSError("disk full")

    monkeypatch.setattr(first.tokenizer, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        first.save_pretrained(target)
    # the failed save left the previous model intact and no temporary directory behind
    assert ToyModel.from_pretrained(target).config.hidden == 4
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    monkeypatch.undo()

    results = tmp_path / "results"
    results.mkdir()
    (results / "results.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"not a seqlstm model directory"):
        first.save_pretrained(results)
    assert (results / "results.json").exists()


@dataclass
class NumericConfig:
    features: int = 3
    outputs: int = 2


class NumericModel(PretrainedModel):
    """A model of numbers: no tokenizer, no vocabularies."""

    config_class = NumericConfig

    def __init__(self, config, tokenizer=None):
        super().__init__(config, tokenizer)
        self.linear = nn.Linear(config.features, config.outputs)

    def forward(self, x):
        return self.linear(x)


def test_model_without_tokenizer_round_trips_and_writes_no_tokenizer(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = NumericModel(NumericConfig(features=4))
    model.save_pretrained(tmp_path / "numeric")
    assert sorted(p.name for p in (tmp_path / "numeric").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    assert json.loads((tmp_path / "numeric" / "config.json").read_text())["tokenizer"] is False
    loaded = NumericModel.from_pretrained(tmp_path / "numeric")
    assert loaded.tokenizer is None and loaded.config == NumericConfig(features=4)
    x = torch.randn(5, 4)
    assert torch.equal(loaded(x), model(x))
    # a directory saved with a tokenizer still needs it
    _model(tokenizer).save_pretrained(tmp_path / "text")
    assert json.loads((tmp_path / "text" / "config.json").read_text())["tokenizer"] is True
    for path in (tmp_path / "text" / "tokenizer").iterdir():
        path.unlink()
    (tmp_path / "text" / "tokenizer").rmdir()
    with pytest.raises(CheckpointError, match=r"missing tokenizer/"):
        ToyModel.from_pretrained(tmp_path / "text")
