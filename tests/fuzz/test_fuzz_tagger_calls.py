"""Fuzz cases of the tagger's own entry points - ``predict``, ``tag`` and
``predict_documents`` - on the sentences of generated text with empty sentences put in at
random places, at batch sizes 1 to 64: one tag per word (an empty sentence gets none, at any
batch size), or a DataError naming the sentence and the word; never another exception."""

import random
import re

import pytest
from fuzz_inputs import ROUNDS, SLOW_KINDS, TEXT_KINDS, case_input, cases
from fuzz_outcomes import Expected, library_case

from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger
from seqlstm.text.tag_schemes import is_valid_sequence
from seqlstm.text.words import tokenize

# a 200 KB line goes through the same calls in test_fuzz_cli.py (tag --output-format jsonl)
KINDS = [kind for kind in TEXT_KINDS if kind not in SLOW_KINDS]


@pytest.fixture(scope="module")
def tagger(fuzz_models) -> BiLSTMCRFTagger:
    return BiLSTMCRFTagger.from_pretrained(fuzz_models["tagger"])


def check_tags(tags: list[list[str]], sentences: list[list[str]], allowed: set[str]) -> None:
    assert [len(t) for t in tags] == [len(s) for s in sentences], "tags per sentence"
    for sentence_tags in tags:
        assert set(sentence_tags) <= allowed, f"tags the model does not have: {sentence_tags}"
        assert is_valid_sequence(sentence_tags, "IOB2"), f"not IOB2: {sentence_tags}"


def generated_lines(kind: str, seed: int, rng: random.Random) -> list[str]:
    """The lines of a generated file (bad UTF-8 replaced), with empty ones put in."""
    text = case_input(kind, seed).decode("utf-8", "replace")
    lines = re.split(r"\r\n|\r|\n", text)
    for _ in range(rng.randint(1, 4)):
        lines.insert(rng.randint(0, len(lines)), "")
    return lines


@pytest.mark.parametrize(("kind", "seed"), cases(KINDS, 1, 19000, ROUNDS))
def test_predict(kind, seed, tagger, tagger_tags, request):
    rng = random.Random(seed)
    sentences = [line.split() for line in generated_lines(kind, seed, rng)]
    batch_size = rng.choice([1, 2, 3, 64])
    library_case(
        request,
        "BiLSTMCRFTagger.predict",
        lambda: tagger.predict(sentences, batch_size=batch_size),
        Expected(["sentence"], keys=["word"]),
        lambda tags: check_tags(tags, sentences, tagger_tags),
    )


@pytest.mark.parametrize(("kind", "seed"), cases(KINDS, 1, 20000, ROUNDS))
def test_tag(kind, seed, tagger, tagger_tags, request):
    rng = random.Random(seed)
    lines = generated_lines(kind, seed, rng)
    batch_size = rng.choice([1, 2, 3, 64])

    def check(tagged) -> None:
        assert [t.tokens for t in tagged] == [[w.text for w in tokenize(x)] for x in lines]
        check_tags([t.tags for t in tagged], [t.tokens for t in tagged], tagger_tags)
        for t, line in zip(tagged, lines, strict=True):
            assert len(t.confidences) == len(t.tokens)
            for entity in t.entities:
                assert line[entity.start : entity.end] == entity.text, (entity, line)

    library_case(
        request,
        "BiLSTMCRFTagger.tag",
        lambda: tagger.tag(lines, batch_size=batch_size),
        Expected(["sentence"], keys=["word"]),
        check,
    )


@pytest.mark.parametrize(("kind", "seed"), cases(KINDS, 1, 21000, ROUNDS))
def test_predict_documents(kind, seed, tagger, tagger_tags, request):
    rng = random.Random(seed)
    sentences = [line.split() for line in generated_lines(kind, seed, rng)]
    cuts = sorted(rng.sample(range(len(sentences) + 1), min(2, len(sentences) + 1)))
    documents = [sentences[: cuts[0]], sentences[cuts[0] : cuts[-1]], sentences[cuts[-1] :]]
    batch_size = rng.choice([1, 2, 3, 64])

    def check(tags) -> None:
        assert len(tags) == len(documents), f"{len(tags)} documents for {len(documents)}"
        for document_tags, document in zip(tags, documents, strict=True):
            check_tags(document_tags, document, tagger_tags)

    library_case(
        request,
        "BiLSTMCRFTagger.predict_documents",
        lambda: tagger.predict_documents(documents, batch_size=batch_size),
        Expected(["sentence"], keys=["word"]),
        check,
    )
