import random

import pytest
from locations import SHARED_DATA
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support

from seqlstm.errors import DataError
from seqlstm.metrics import entity_f1

DATA = SHARED_DATA
TYPES = ("PER", "LOC", "ORG")


def _random_tags(rng: random.Random, length: int, prefixes: str) -> list[str]:
    # uniform over all tags, so ill-formed sequences (I- after O, type changes inside a
    # chunk, lone I-, B-X I-Y, E- without B-) are common
    labels = ["O"] + [f"{p}-{t}" for p in prefixes for t in TYPES]
    return [rng.choice(labels) for _ in range(length)]


def _perturb(rng: random.Random, tags: list[str], prefixes: str) -> list[str]:
    # predictions close to gold, so that many chunks match and many nearly match
    labels = ["O"] + [f"{p}-{t}" for p in prefixes for t in TYPES]
    return [rng.choice(labels) if rng.random() < 0.25 else tag for tag in tags]


def _assert_same_as_seqeval(gold, pred, scheme):
    ours = entity_f1(gold, pred, scheme=scheme)
    p, r, f, _ = precision_recall_fscore_support(gold, pred, average="micro", zero_division=0)
    assert ours.precision == pytest.approx(100 * p, abs=1e-9)
    assert ours.recall == pytest.approx(100 * r, abs=1e-9)
    assert ours.f1 == pytest.approx(100 * f, abs=1e-9)
    ps, rs, fs, supports = precision_recall_fscore_support(
        gold, pred, average=None, zero_division=0
    )
    # seqeval lists every type seen in gold or pred, sorted, as we do
    assert len(ps) == len(ours.per_type)
    for name, p, r, f, support in zip(ours.per_type, ps, rs, fs, supports, strict=True):
        scores = ours.per_type[name]
        assert scores.precision == pytest.approx(100 * p, abs=1e-9)
        assert scores.recall == pytest.approx(100 * r, abs=1e-9)
        assert scores.f1 == pytest.approx(100 * f, abs=1e-9)
        assert scores.n_gold == support


@pytest.mark.parametrize(
    ("scheme", "prefixes"), [("IOB2", "BI"), ("IOB1", "BI"), ("IOBES", "BIES")]
)
def test_matches_seqeval_on_random_ill_formed_sequences(scheme, prefixes):
    rng = random.Random(1234)
    for _ in range(300):
        gold, pred = [], []
        for _ in range(rng.randint(1, 8)):
            tags = _random_tags(rng, rng.randint(0, 10), prefixes)
            gold.append(tags)
            pred.append(_perturb(rng, tags, prefixes))
        _assert_same_as_seqeval(gold, pred, scheme)


def test_hand_computed_scores_and_counts():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-LOC"]]
    scores = entity_f1(gold, pred)
    assert (scores.n_gold, scores.n_pred, scores.n_correct) == (3, 4, 2)
    assert scores.precision == pytest.approx(50.0)
    assert scores.recall == pytest.approx(200 / 3)
    assert scores.f1 == pytest.approx(2 * 50 * (200 / 3) / (50 + 200 / 3))
    assert (scores.n_tokens, scores.n_correct_tokens) == (6, 4)
    assert scores.accuracy == pytest.approx(100 * 4 / 6)
    assert list(scores.per_type) == ["LOC", "ORG", "PER"]
    loc, org, per = scores.per_type.values()
    assert (loc.n_gold, loc.n_pred, loc.n_correct, loc.f1) == (1, 1, 0, 0.0)
    assert (org.n_gold, org.n_pred, org.n_correct) == (1, 2, 1)
    assert org.precision == pytest.approx(50.0) and org.recall == pytest.approx(100.0)
    assert per.f1 == pytest.approx(100.0)
    assert scores.as_dict()["f1_ORG"] == pytest.approx(org.f1)
    assert "processed 6 tokens with 3 phrases; found: 4 phrases; correct: 2." in scores.report()


def test_conlleval_repair_rules():
    # a stray I- after O starts a chunk: the same entity as B-PER I-PER
    assert entity_f1([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]]).f1 == 100.0
    # a type change inside a chunk splits it: B-PER I-LOC is PER(0) + LOC(1)
    split = entity_f1([["B-PER", "B-LOC"]], [["B-PER", "I-LOC"]])
    assert (split.n_pred, split.n_correct) == (2, 2)
    # IOB1: B- after a same-type chunk separates two chunks
    iob1 = entity_f1([["I-PER", "B-PER", "O"]], [["I-PER", "I-PER", "O"]], scheme="IOB1")
    assert (iob1.n_gold, iob1.n_pred, iob1.n_correct) == (2, 1, 0)
    # IOBES: E- closes, S- is a single-token chunk
    iobes = entity_f1([["B-PER", "E-PER", "S-PER"]], [["B-PER", "I-PER", "I-PER"]], "IOBES")
    assert (iobes.n_gold, iobes.n_pred, iobes.n_correct) == (2, 1, 0)


def test_no_predicted_entities_no_gold_entities_and_empty_sentences():
    none_found = entity_f1([["B-PER", "O"]], [["O", "O"]])
    assert (none_found.precision, none_found.recall, none_found.f1) == (0.0, 0.0, 0.0)
    assert none_found.accuracy == 50.0
    nothing_to_find = entity_f1([["O", "O"]], [["B-PER", "O"]])
    assert (nothing_to_find.precision, nothing_to_find.recall, nothing_to_find.f1) == (0, 0, 0)
    empty = entity_f1([[], ["O"], []], [[], ["O"], []])
    assert (empty.n_gold, empty.n_pred, empty.n_tokens, empty.f1) == (0, 0, 1, 0.0)
    assert empty.accuracy == 100.0 and empty.per_type == {}
    assert entity_f1([], []).accuracy == 0.0


def test_length_mismatch_names_sentence_and_lengths():
    with pytest.raises(DataError, match=r"sentence 1: gold has 3 tags but pred has 2"):
        entity_f1([["O"], ["O", "O", "O"]], [["O"], ["O", "O"]])
    with pytest.raises(DataError, match=r"gold has 2 sentences but pred has 1"):
        entity_f1([["O"], ["O"]], [["O"]])


def test_bad_tags_raise_data_error():
    with pytest.raises(DataError, match=r"pred sentence 0, tag 1: 'PER'"):
        entity_f1([["O", "O"]], [["O", "PER"]])
    with pytest.raises(DataError, match=r"gold sentence 0, tag 0: 'S-PER' is not an IOB2 tag"):
        entity_f1([["S-PER"]], [["O"]])
    with pytest.raises(DataError, match=r"expected a sequence of tags"):
        entity_f1(["B-PER O"], ["O O"])
    with pytest.raises(ValueError, match=r"unknown tag scheme"):
        entity_f1([["O"]], [["O"]], scheme="BIO")


def test_conll2003_valid_counts_match_conlleval():
    path = DATA / "conll2003" / "valid.txt"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.split()[-1])
        elif current:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    scores = entity_f1(sentences, sentences)
    # conlleval on eng.testa: "processed 51362 tokens with 5942 phrases"
    assert (scores.n_tokens, scores.n_gold, scores.f1) == (51362, 5942, 100.0)
