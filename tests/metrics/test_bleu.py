import pytest
import sacrebleu

from seqlstm.errors import DataError
from seqlstm.metrics import corpus_bleu, corpus_chrf, translation_scores

HYPS = [
    "a man in a red shirt is climbing a rock wall .",
    "two dogs play in the snow",
    "The children are sitting on a bench outside.",
]
REFS = [
    "A man in a red shirt climbs a rock wall.",
    "two dogs are playing in the snow .",
    "Children sit on a bench outdoors.",
]
REFS2 = [
    "a man wearing a red shirt climbs up a wall",
    "Two dogs playing in snow.",
    "The kids are sitting on a bench outside.",
]


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("tokenize", ["13a", "intl", "char"])
def test_bleu_matches_sacrebleu(lowercase, tokenize):
    ours = corpus_bleu(HYPS, REFS, lowercase=lowercase, tokenize=tokenize)
    bleu = sacrebleu.BLEU(lowercase=lowercase, tokenize=tokenize)
    theirs = bleu.corpus_score(HYPS, [REFS])
    assert ours.score == theirs.score
    assert ours.signature == str(bleu.get_signature())
    assert f"tok:{tokenize}" in ours.signature
    assert ours.summary == str(theirs)


def test_multiple_reference_streams():
    ours = corpus_bleu(HYPS, [REFS, REFS2])
    assert ours.score == sacrebleu.corpus_bleu(HYPS, [REFS, REFS2]).score
    assert ours.signature.startswith("nrefs:2|")
    # a second reference can only add matches
    assert ours.score > corpus_bleu(HYPS, REFS).score
    chrf = corpus_chrf(HYPS, [REFS, REFS2])
    assert chrf.score == sacrebleu.corpus_chrf(HYPS, [REFS, REFS2]).score


@pytest.mark.parametrize("word_order", [0, 2])
def test_chrf_matches_sacrebleu(word_order):
    ours = corpus_chrf(HYPS, REFS, word_order=word_order)
    chrf = sacrebleu.CHRF(word_order=word_order)
    assert ours.score == chrf.corpus_score(HYPS, [REFS]).score
    assert ours.signature == str(chrf.get_signature())


def test_perfect_hypotheses_score_100():
    assert corpus_bleu(REFS, REFS).score == pytest.approx(100.0)
    assert corpus_chrf(REFS, REFS).score == pytest.approx(100.0)


def test_translation_scores_are_cased_bleu_chrf2_and_lowercased_bleu():
    scores = translation_scores(HYPS, REFS)
    metrics = {
        "bleu": sacrebleu.BLEU(),
        "chrf": sacrebleu.CHRF(),
        "bleu_lowercase": sacrebleu.BLEU(lowercase=True),
    }
    assert list(scores) == list(metrics)
    for name, metric in metrics.items():
        theirs = metric.corpus_score(HYPS, [REFS])
        assert scores[name].score == theirs.score, name
        assert scores[name].signature == str(metric.get_signature())
        assert scores[name].summary == str(theirs)
    assert "case:mixed" in scores["bleu"].signature and "tok:13a" in scores["bleu"].signature
    assert "case:lc" in scores["bleu_lowercase"].signature
    assert "nc:6|nw:0" in scores["chrf"].signature  # chrF2: character 6-grams, no words
    # some words differ from the references in case alone (A/a, The/the): lowercasing matches them
    assert scores["bleu_lowercase"].score > scores["bleu"].score
    with pytest.raises(DataError, match=r"reference stream 0 has 2 lines but there are 3 hyp"):
        translation_scores(HYPS, REFS[:2])


def test_line_count_mismatch_names_both_counts():
    with pytest.raises(DataError, match=r"reference stream 0 has 2 lines but there are 3 hyp"):
        corpus_bleu(HYPS, REFS[:2])
    with pytest.raises(DataError, match=r"reference stream 1 has 4 lines but there are 3 hyp"):
        corpus_chrf(HYPS, [REFS, REFS2 + ["extra"]])
    with pytest.raises(DataError, match=r"not one string"):
        corpus_bleu(HYPS, "a single string")
