"""int8: `from_pretrained(directory, quantize="int8")` for every model, and its errors.

Dynamic quantization changes the numbers a little, and how much depends on the CPU's int8
kernels, so the int8 models are compared with their float32 selves by margins (shares of
equal tags and translations, BLEU, nats per character), never bit for bit. The models are
those of tests/fixtures/models_0_1 (smoke-preset models saved by seqlstm 0.1), a small
translator overfitted here on a word-reversal task, whose outputs are confident enough for
BLEU to mean something, and a random language model whose output layer is tied to its
embedding. How fast int8 is, and how close on real test sets with trained models, is
benchmarks/bench_int8.py's job.
"""

import json
import random
from dataclasses import dataclass

import pytest
import torch
from locations import FIXTURES
from torch import nn

from seqlstm import (
    BiLSTMCRFTagger,
    LanguageModelConfig,
    LSTMClassifier,
    LSTMForecaster,
    LSTMLanguageModel,
    PretrainedModel,
    Seq2SeqLSTM,
    TranslatorConfig,
)
from seqlstm.data import BucketedBatches, read_conll
from seqlstm.metrics import corpus_bleu
from seqlstm.quantization import is_quantized
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer, TrainerConfig
from seqlstm.viz import gate_activations

MODELS = FIXTURES / "models_0_1"
WORDS = ["red", "blue", "green", "cat", "dog", "bird", "runs", "sleeps", "eats", "big", "small"]


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((MODELS / "expected.json").read_text())


def _layers(model: nn.Module) -> dict[str, int]:
    """How many layers of each kind: float or dynamically quantized LSTM and Linear."""
    kinds = {
        "float LSTM": nn.LSTM,
        "float Linear": nn.Linear,
        "int8 LSTM": torch.ao.nn.quantized.dynamic.LSTM,
        "int8 Linear": torch.ao.nn.quantized.dynamic.Linear,
    }
    return {
        name: sum(type(module) is kind for module in model.modules())
        for name, kind in kinds.items()
    }


def _agreement(first: list[list[str]], second: list[list[str]]) -> float:
    pairs = [(a, b) for x, y in zip(first, second, strict=True) for a, b in zip(x, y, strict=True)]
    return sum(a == b for a, b in pairs) / len(pairs)


def test_int8_tagger_tags_as_float32_does():
    sentences = [row["tokens"] for row in read_conll(FIXTURES / "ner_train.txt")]
    sentences += [row["tokens"] for row in read_conll(FIXTURES / "data_conll_iob1.txt")]
    float32 = BiLSTMCRFTagger.from_pretrained(MODELS / "tagger")
    int8 = BiLSTMCRFTagger.from_pretrained(MODELS / "tagger", quantize="int8")
    # the BiLSTM and the emission layer; the CRF, the character CNN and the tables stay float
    assert _layers(int8) == {"float LSTM": 0, "float Linear": 0, "int8 LSTM": 1, "int8 Linear": 1}
    assert int8.device == torch.device("cpu") and not int8.training
    assert is_quantized(int8) and not is_quantized(float32)
    # sentences alone, and as one document (the model reads 60 words of context)
    assert _agreement(int8.predict(sentences), float32.predict(sentences)) >= 0.95
    together = int8.predict_documents([sentences])[0]
    assert _agreement(together, float32.predict_documents([sentences])[0]) >= 0.95
    confidences = [
        (a, b)
        for x, y in zip(int8.tag(sentences), float32.tag(sentences), strict=True)
        for a, b in zip(x.confidences, y.confidences, strict=True)
    ]
    assert max(abs(a - b) for a, b in confidences) < 0.05


@pytest.fixture(scope="module")
def reversal_dir(tmp_path_factory):
    """A translator overfitted on 20 word-reversal pairs, saved; its sources and targets."""
    rng = random.Random(0)
    sources = [" ".join(rng.choices(WORDS, k=rng.randint(3, 6))) for _ in range(20)]
    targets = [" ".join(s.split()[::-1]) for s in sources]
    tokenizer = SubwordTokenizer.train(sources + targets, vocab_size=300, hard_vocab_limit=False)
    torch.manual_seed(0)
    config = TranslatorConfig(
        embedding_dim=32,
        encoder_hidden_size=32,
        decoder_hidden_size=64,  # tied through a projection: one more Linear to quantize
        encoder_layers=1,
        decoder_layers=1,
        dropout=0.0,
        label_smoothing=0.0,
    )
    model = Seq2SeqLSTM(config, tokenizer)
    pairs = zip(sources, targets, strict=True)
    examples = model.encode({"source": s, "target": t} for s, t in pairs)
    batches = BucketedBatches(
        examples, [len(s) + len(t) for s, t in examples], model.collate, 10_000, shuffle=False
    )
    directory = tmp_path_factory.mktemp("reversal")
    trainer_config = TrainerConfig(
        output_dir=str(directory / "trainer"),
        max_epochs=None,
        max_steps=100,
        lr=0.02,
        lr_decay_factor=1.0,
        save_checkpoints=False,
        progress_bar=False,
        device="cpu",
    )
    Trainer(model, trainer_config, batches).fit()
    return model.eval().save_pretrained(directory / "model"), sources, targets


@pytest.mark.parametrize("beam_size", [1, 5])
def test_int8_translator_translates_as_float32_does(reversal_dir, beam_size):
    directory, sources, targets = reversal_dir
    float32 = Seq2SeqLSTM.from_pretrained(directory)
    int8 = Seq2SeqLSTM.from_pretrained(directory, quantize="int8")
    # encoder, decoder, bridge (2), attention keys, combine, projection, tied output layer
    assert _layers(int8) == {"float LSTM": 0, "float Linear": 0, "int8 LSTM": 2, "int8 Linear": 6}
    # the embedding the output layer is tied to stays a float Parameter
    assert int8.target_embedding.token_embedding.weight.dtype == torch.float32
    expected = float32.translate(sources, beam_size=beam_size)
    assert corpus_bleu(expected, targets).score > 95  # the model learnt the task
    got = int8.translate(sources, beam_size=beam_size)
    assert sum(a == b for a, b in zip(got, expected, strict=True)) >= 0.9 * len(sources)
    assert corpus_bleu(got, targets).score >= corpus_bleu(expected, targets).score - 5


@pytest.fixture(scope="module")
def tied_lm_dir(expected, tmp_path_factory):
    """A random character LM whose output layer is tied to its embedding through a
    projection (the AWD-LSTM layout), saved."""
    tokenizer = SubwordTokenizer.train(expected["lm_text"], vocab_size=1000, model_type="char")
    torch.manual_seed(0)
    config = LanguageModelConfig(embedding_dim=16, hidden_size=32, num_layers=2, output_size=24)
    directory = tmp_path_factory.mktemp("tied_lm") / "model"
    return LSTMLanguageModel(config, tokenizer).save_pretrained(directory)


@pytest.mark.parametrize("tied", [False, True])
def test_int8_language_model_scores_and_generates(expected, tied_lm_dir, tied):
    directory = tied_lm_dir if tied else MODELS / "char_lm"
    float32 = LSTMLanguageModel.from_pretrained(directory)
    int8 = LSTMLanguageModel.from_pretrained(directory, quantize="int8")
    # the LSTMs inside the weight-dropped layers, the output layer (and the projection before
    # it when tied); the embedding table stays float, also when the output layer is tied to it
    layers = 2 if tied else 1
    assert _layers(int8) == {
        "float LSTM": 0,
        "float Linear": 0,
        "int8 LSTM": layers,
        "int8 Linear": layers,
    }
    assert int8.embedding.token_embedding.weight.dtype == torch.float32
    texts = expected["lm_text"]
    want = float32.evaluate(texts, batch_size=2, bptt=16)
    got = int8.evaluate(texts, batch_size=2, bptt=16)
    assert got["characters"] == want["characters"]
    assert got["nats_per_character"] == pytest.approx(want["nats_per_character"], abs=0.01)
    # generation starts from init_hidden, which must not read the quantized output layer
    prompts = ["ROMEO:", "To be"]
    for multiline in (False, True):
        texts = int8.generate(prompts, 20, temperature=0.8, seed=0, multiline=multiline)
        assert all(t.startswith(p) for t, p in zip(texts, prompts, strict=True))
    # the gate pictures need the float LSTM weights: a clear error, not an AttributeError
    with pytest.raises(ValueError, match="load the model without quantize"):
        gate_activations(int8, "To be")


def test_int8_classifier_and_forecaster(expected):
    # not the three models, but every PretrainedModel takes quantize="int8"; their
    # LSTM is seqlstm.layers.lstm.LSTM, not an nn.LSTM, so only the output layer is int8
    classifier = LSTMClassifier.from_pretrained(MODELS / "classifier", quantize="int8")
    forecaster = LSTMForecaster.from_pretrained(MODELS / "forecaster", quantize="int8")
    for model in (classifier, forecaster):
        assert _layers(model) == {
            "float LSTM": 0,
            "float Linear": 0,
            "int8 LSTM": 0,
            "int8 Linear": 1,
        }
    with torch.no_grad():
        logits = classifier.logits(torch.tensor(expected["classifier_inputs"]))
        forecast = forecaster.forecast(torch.tensor(expected["forecaster_window"]))
    want = torch.tensor(expected["classifier_logits"])
    assert (logits - want).abs().max() < 0.05 * want.abs().max()
    want = torch.tensor(expected["forecaster_forecast"])
    assert (forecast - want).abs().max() < 0.05 * want.abs().max()


@dataclass
class _HeadConfig:
    size: int = 4


class _Head(PretrainedModel):
    """A model of one Linear layer: quantized, it has no Parameter left."""

    config_class = _HeadConfig

    def __init__(self, config: _HeadConfig, tokenizer: None) -> None:
        super().__init__(config, tokenizer)
        self.linear = nn.Linear(config.size, config.size)


def test_the_device_of_a_model_without_float_tensors_is_the_cpu(tmp_path):
    _Head(_HeadConfig(), None).save_pretrained(tmp_path / "head")
    model = _Head.from_pretrained(tmp_path / "head", quantize="int8")
    assert not list(model.parameters()) and not list(model.buffers())
    assert model.device == torch.device("cpu")


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("value", ["int4", "INT8", "fp16", "dynamic"])
def test_an_unknown_quantization_is_a_value_error(value):
    with pytest.raises(
        ValueError, match=rf"quantize must be None or one of \['int8'\], got '{value}'"
    ):
        LSTMLanguageModel.from_pretrained(MODELS / "char_lm", quantize=value)


@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("meta")])
def test_int8_on_another_device_than_the_cpu_is_a_value_error(device):
    # checked before anything is loaded, so no GPU is needed to see the error
    with pytest.raises(ValueError, match="runs on the CPU only"):
        Seq2SeqLSTM.from_pretrained(MODELS / "translator", map_location=device, quantize="int8")


def test_int8_without_a_quantized_engine_is_a_value_error(monkeypatch):
    # what torch reports on a build with no quantized engine (it cannot be set to "none")
    engines = type(torch.backends.quantized)
    monkeypatch.setattr(engines, "engine", "none")
    monkeypatch.setattr(engines, "supported_engines", ["none"])
    with pytest.raises(ValueError, match=r"needs a quantized engine .* \['none'\]"):
        BiLSTMCRFTagger.from_pretrained(MODELS / "tagger", quantize="int8")
    BiLSTMCRFTagger.from_pretrained(MODELS / "tagger")  # float32 needs no engine


@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated")
def test_a_quantized_model_is_not_saved(tmp_path):
    int8 = LSTMLanguageModel.from_pretrained(MODELS / "char_lm", quantize="int8")
    with pytest.raises(ValueError, match=r"quantize at load.*quantize='int8'"):
        int8.save_pretrained(tmp_path / "int8")
    assert not (tmp_path / "int8").exists()
    # also when torch's quantize_dynamic was called by hand
    by_hand = LSTMLanguageModel.from_pretrained(MODELS / "char_lm")
    torch.ao.quantization.quantize_dynamic(by_hand, {nn.Linear}, dtype=torch.qint8, inplace=True)
    with pytest.raises(ValueError, match="quantize at load"):
        by_hand.save_pretrained(tmp_path / "by_hand")
    assert not (tmp_path / "by_hand").exists()
