"""OnnxTagger gives the PyTorch tagger's tags: same encoding, any batch, documents, no torch."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest
from locations import FIXTURES, ROOT

pytest.importorskip("onnxruntime")

from seqlstm.errors import DataError  # noqa: E402
from seqlstm.onnx_tagger import OnnxTagger  # noqa: E402
from seqlstm.tasks.base import evaluating  # noqa: E402
from seqlstm.text.words import tokenize  # noqa: E402

# words no training text has: accents, CJK, a ligature NFKC rewrites, symbols, all capitals
UNSEEN = ["Zürich", "東京", "ﬁne", "☃", "€3,50", "U.S.", "O'NEILL", "naïve-looking", "…"]


def sentences(seed: int = 0) -> list:
    """Sentences of unequal lengths (0 to 20 words) of known and unseen words, raw text among
    them."""
    known = [row.split()[0] for row in (FIXTURES / "ner_train.txt").read_text().splitlines() if row]
    rng = random.Random(seed)
    words = known + UNSEEN
    result = [[rng.choice(words) for _ in range(rng.randint(0, 20))] for _ in range(40)]
    result += [[], ["EU"], "Peter Blackburn met the EU in Brussels.", "BRUSSELS 1996-08-22"]
    return result


@pytest.fixture(params=["fixture", "tiny"])
def pair(request):
    """(the PyTorch tagger, its export loaded by OnnxTagger at one thread)."""
    tagger = request.getfixturevalue(f"{request.param}_tagger")
    directory = request.getfixturevalue(f"{request.param}_export")
    return tagger, OnnxTagger.load(directory, threads=1)


def torch_emissions(tagger, words) -> list[np.ndarray]:
    """The tagger's emission scores of each sentence, read alone, all in one padded batch."""
    with evaluating(tagger):
        batch = tagger.collate(tagger.encode([{"tokens": w} for w in words]))
        scores, _ = tagger.emissions(batch)
    return [scores[i, : len(w)].numpy() for i, w in enumerate(words)]


def test_the_fixture_tagger_predicts_what_it_predicted_under_0_1(fixture_export):
    expected = json.loads((FIXTURES / "models_0_1" / "expected.json").read_text())
    onnx_tagger = OnnxTagger.load(fixture_export, threads=1)
    assert onnx_tagger.config["context_words"] == 60
    texts = expected["tagger_sentences"]
    assert onnx_tagger.predict(texts) == expected["tagger_predict_alone"]
    assert onnx_tagger.predict_documents([texts]) == [expected["tagger_predict_together"]]


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_tags_and_emissions_are_the_taggers_at_any_batch_size(pair, batch_size):
    tagger, onnx_tagger = pair
    texts = sentences()
    assert onnx_tagger.predict(texts, batch_size=batch_size) == tagger.predict(texts)
    words = [[t.text for t in tokenize(s)] if isinstance(s, str) else s for s in texts]
    got = onnx_tagger.emissions(words, batch_size=batch_size)
    for exported, expected in zip(got, torch_emissions(tagger, words), strict=True):
        assert exported.shape == expected.shape
        np.testing.assert_allclose(exported, expected, atol=1e-5)


@pytest.mark.parametrize("chunk_words", [0, 5, 800])
def test_documents_are_read_with_the_taggers_chunks(
    fixture_tagger, fixture_export, monkeypatch, chunk_words
):
    # 60 words of context and chunks of 5 words cut sentences; documents never mix
    onnx_tagger = OnnxTagger.load(fixture_export, threads=1)
    monkeypatch.setattr(fixture_tagger.config, "chunk_words", chunk_words)
    monkeypatch.setitem(onnx_tagger.config, "chunk_words", chunk_words)
    texts = sentences(seed=1)
    documents = [texts[:15], [], texts[15:16], texts[16:30] + [[]], texts[30:]]
    expected = fixture_tagger.predict_documents(documents, batch_size=4)
    assert onnx_tagger.predict_documents(documents, batch_size=4) == expected
    assert onnx_tagger.predict_documents(documents, batch_size=64) == expected


def test_words_are_encoded_as_the_tagger_encodes_them(pair):
    tagger, onnx_tagger = pair
    for word in ["EU", "eu", "Brussels", "BRUSSELS", ".", *UNSEEN]:
        # the exported tokenizer and vocabularies give the codes of the saved ones
        assert onnx_tagger.word_coder.code(word, "") == tagger.word_coder.code(word, "")


def test_nothing_to_tag(pair):
    _, onnx_tagger = pair
    assert onnx_tagger.predict([]) == []
    assert onnx_tagger.predict(["", []]) == [[], []]
    assert onnx_tagger.predict_documents([[], [""]]) == [[], [[]]]
    assert [e.shape for e in onnx_tagger.emissions([[]])] == [(0, len(onnx_tagger.labels))]


def test_bad_sentences_are_errors(fixture_export):
    onnx_tagger = OnnxTagger.load(fixture_export, threads=1)
    with pytest.raises(TypeError, match="not one string"):
        onnx_tagger.predict("EU rejects German call .")
    with pytest.raises(TypeError, match="sentence 1"):
        onnx_tagger.predict([["EU"], ["EU", 3]])
    with pytest.raises(TypeError, match="list of documents"):
        onnx_tagger.predict_documents(["EU rejects German call ."])
    with pytest.raises(DataError, match="sentence 1: word 2: .* empty after normalisation"):
        onnx_tagger.predict([["EU"], ["EU", "rejects", "\u2581"]])
    with pytest.raises(ValueError, match="batch_size"):
        onnx_tagger.predict(["EU"], batch_size=0)


def test_tagging_imports_no_torch(fixture_export):
    # a fresh interpreter: loading and tagging (sentences alone) must not import torch
    texts = ["EU rejects German call .", "Peter Blackburn"]
    code = (
        "import json, sys\n"
        "from seqlstm.onnx_tagger import OnnxTagger\n"
        "tagger = OnnxTagger.load(sys.argv[1], threads=1)\n"
        "print(json.dumps(tagger.predict(json.loads(sys.argv[2]))))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(fixture_export), json.dumps(texts)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    expected = OnnxTagger.load(fixture_export, threads=1).predict(texts)
    assert json.loads(result.stdout) == expected
