"""Model directories saved by seqlstm 0.1 load and predict as they did under 0.1.

tests/fixtures/models_0_1 holds the smoke-preset models of the six recipes, saved by the 0.1
code before the package was reorganised, and expected.json what that code predicted with them
(tags, token confidences, translations, generated text, LM metrics, classifier logits and a
forecast). The reorganisation moved every class and renamed methods; the saved format and
the numbers must not change.
"""

import json

import pytest
import torch
from locations import FIXTURES

from seqlstm import (
    BiLSTMCRFTagger,
    LSTMClassifier,
    LSTMForecaster,
    LSTMLanguageModel,
    Seq2SeqLSTM,
)

MODELS = FIXTURES / "models_0_1"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((MODELS / "expected.json").read_text())


def test_tagger_predicts_the_same_tags_and_confidences(expected):
    # 0.1 read the sentences of one call as one text (its "together" outputs); now that is
    # a document, and sentences passed as a list are read alone (0.1's one call per sentence)
    tagger = BiLSTMCRFTagger.from_pretrained(MODELS / "tagger")
    assert tagger.config.context_words == 60 and tagger.config.chunk_words == 800
    sentences = expected["tagger_sentences"]
    assert tagger.predict(sentences) == expected["tagger_predict_alone"]
    assert tagger.predict_documents([sentences]) == [expected["tagger_predict_together"]]
    # the per-sentence way of 0.1 (each sentence with its own context) gives the same here
    tagger.config.chunk_words = 0
    assert tagger.predict_documents([sentences]) == [expected["tagger_predict_together"]]
    tagged = tagger.tag_documents([sentences])[0]
    confidences = [sentence.confidences for sentence in tagged]
    for got, want in zip(confidences, expected["tagger_confidences_together"], strict=True):
        assert got == pytest.approx(want, abs=1e-5)


def test_translator_gives_the_same_translations(expected):
    translator = Seq2SeqLSTM.from_pretrained(MODELS / "translator")
    sources = expected["translator_sources"]
    assert translator.translate(sources, beam_size=3) == expected["translator_beam3"]
    assert translator.translate(sources, beam_size=1) == expected["translator_greedy"]


def test_language_model_generates_and_scores_the_same(expected):
    lm = LSTMLanguageModel.from_pretrained(MODELS / "char_lm")
    greedy = lm.generate(expected["lm_prompt"], max_new_tokens=40, temperature=0.0)
    assert greedy == expected["lm_generate_greedy"]
    metrics = lm.evaluate(expected["lm_text"], batch_size=2, bptt=16)
    for name, value in expected["lm_evaluate"].items():
        assert metrics[name] == pytest.approx(value, rel=1e-5), name


def test_classifier_gives_the_same_logits(expected):
    classifier = LSTMClassifier.from_pretrained(MODELS / "classifier")
    with torch.no_grad():
        logits = classifier.logits(torch.tensor(expected["classifier_inputs"]))
    want = torch.tensor(expected["classifier_logits"])
    assert logits.flatten().tolist() == pytest.approx(want.flatten().tolist(), abs=1e-5)


def test_forecaster_gives_the_same_forecast(expected):
    forecaster = LSTMForecaster.from_pretrained(MODELS / "forecaster")
    with torch.no_grad():
        forecast = forecaster.forecast(torch.tensor(expected["forecaster_window"]))
    assert forecast.flatten().tolist() == pytest.approx(
        torch.tensor(expected["forecaster_forecast"]).flatten().tolist(), abs=1e-4
    )
