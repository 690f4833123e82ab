"""Tag scheme conversion and validity, checked against seqeval (conlleval's chunk reading)."""

import itertools
import random

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from seqlstm.errors import DataError
from seqlstm.text.tag_schemes import (
    SCHEMES,
    allowed_end_labels,
    allowed_start_labels,
    allowed_transitions,
    chunks_to_tags,
    convert_tags,
    detect_scheme,
    is_valid_sequence,
    split_tag,
    tag_chunks,
)

TYPES = ("PER", "LOC")
BIO = ["O"] + [f"{p}-{t}" for p in "BI" for t in TYPES]
BIOES = ["O"] + [f"{p}-{t}" for p in "BIES" for t in TYPES]
ALPHABET = {"IOB1": BIO, "IOB2": BIO, "IOBES": BIOES}


def reference_chunks(tags: list[str]) -> list[tuple[str, int, int]]:
    """seqeval's conlleval port, with exclusive ends like ours."""
    return [(t, start, end + 1) for t, start, end in get_entities(list(tags))]


def random_tags(rng: random.Random, alphabet: list[str]) -> list[str]:
    return [rng.choice(alphabet) for _ in range(rng.randint(0, 12))]


def random_valid(rng: random.Random, scheme: str) -> list[str]:
    """A valid sequence: random non-overlapping chunks written in ``scheme``."""
    length, chunks, position = rng.randint(0, 12), [], 0
    while position < length:
        if rng.random() < 0.4:
            position += 1
            continue
        end = rng.randint(position + 1, min(length, position + 4))
        chunks.append((rng.choice(TYPES), position, end))
        position = end
    return chunks_to_tags(length, chunks, scheme)


def test_split_tag():
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("I-ORG-X") == ("I", "ORG-X")
    assert split_tag("O") == ("O", "")
    for bad in ("PER", "X-PER", "B-", "", "NN", "o"):
        with pytest.raises(DataError, match="not a chunk tag"):
            split_tag(bad)


def test_chunks_read_like_conlleval():
    # A stray I- after O starts a chunk; a type change starts a chunk; E- closes one.
    tags = ["I-PER", "I-PER", "O", "B-LOC", "I-PER", "E-PER", "E-PER", "S-LOC", "I-LOC"]
    assert tag_chunks(tags) == [
        ("PER", 0, 2),
        ("LOC", 3, 4),
        ("PER", 4, 6),
        ("PER", 6, 7),
        ("LOC", 7, 8),
        ("LOC", 8, 9),
    ]
    assert tag_chunks(tags) == reference_chunks(tags)


def test_chunks_match_seqeval_on_random_sequences():
    rng = random.Random(0)
    for _ in range(3000):
        tags = random_tags(rng, BIOES)
        assert tag_chunks(tags) == reference_chunks(tags), tags


def test_hand_conversions():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-PER"]
    iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-PER"]
    iobes = ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-PER"]
    assert convert_tags(iob1, "IOB1", "IOB2") == iob2
    assert convert_tags(iob2, "IOB2", "IOBES") == iobes
    assert convert_tags(iobes, "IOBES", "IOB1") == iob1
    # A stray I- in IOB2 input is read as the start of a chunk.
    assert convert_tags(["O", "I-LOC", "I-LOC"], "IOB2", "IOB2") == ["O", "B-LOC", "I-LOC"]
    assert convert_tags([], "IOB2", "IOBES") == []


def test_conversion_rejects_prefixes_of_another_scheme():
    with pytest.raises(DataError, match=r"tag 1: 'S-PER' is not an IOB2 tag"):
        convert_tags(["O", "S-PER"], "IOB2", "IOBES")
    with pytest.raises(DataError, match="tag 0"):
        convert_tags(["NN"], "IOB2", "IOBES")
    with pytest.raises(ValueError, match="unknown tag scheme"):
        convert_tags(["O"], "BIO", "IOBES")


def test_conversion_keeps_chunks_on_random_sequences():
    rng = random.Random(1)
    for _ in range(3000):
        from_scheme = rng.choice(SCHEMES)
        tags = random_tags(rng, ALPHABET[from_scheme])
        expected = reference_chunks(tags)
        for to_scheme in SCHEMES:
            converted = convert_tags(tags, from_scheme, to_scheme)
            assert len(converted) == len(tags)
            assert reference_chunks(converted) == expected, (tags, to_scheme, converted)
            assert is_valid_sequence(converted, to_scheme), (tags, to_scheme, converted)


def test_round_trips_of_valid_sequences():
    rng = random.Random(2)
    for _ in range(2000):
        iob2 = random_valid(rng, "IOB2")
        assert convert_tags(convert_tags(iob2, "IOB2", "IOBES"), "IOBES", "IOB2") == iob2
        assert convert_tags(convert_tags(iob2, "IOB2", "IOB1"), "IOB1", "IOB2") == iob2
        for scheme in SCHEMES:
            valid = random_valid(rng, scheme)
            assert is_valid_sequence(valid, scheme)
            assert convert_tags(valid, scheme, scheme) == valid


def all_sequences(max_length: int):
    for length in range(max_length + 1):
        yield from itertools.product(BIOES, repeat=length)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_validity_equals_transition_tables(scheme):
    """Exhaustively up to length 4: valid <=> allowed start, transitions, end <=> canonical."""
    starts = allowed_start_labels(BIOES, scheme)
    ends = allowed_end_labels(BIOES, scheme)
    transitions = allowed_transitions(BIOES, scheme)
    number_valid = 0
    for tags in all_sequences(4):
        tags = list(tags)
        by_tables = not tags or (
            tags[0] in starts
            and tags[-1] in ends
            and all(pair in transitions for pair in itertools.pairwise(tags))
        )
        # Independent definition: a valid sequence is the canonical writing of its chunks.
        in_alphabet = all(tag in ALPHABET[scheme] for tag in tags)
        canonical = in_alphabet and chunks_to_tags(len(tags), tag_chunks(tags), scheme) == tags
        valid = is_valid_sequence(tags, scheme)
        assert valid == by_tables == canonical, tags
        number_valid += valid
    assert number_valid > 100


def test_iob2_transitions_forbid_inside_without_begin():
    labels = ["O", "B-X", "I-X", "B-Y", "I-Y"]
    transitions = allowed_transitions(labels, "IOB2")
    assert ("O", "I-X") not in transitions
    assert ("B-Y", "I-X") not in transitions
    assert ("I-Y", "I-X") not in transitions
    assert {("B-X", "I-X"), ("I-X", "I-X"), ("I-X", "B-Y"), ("O", "B-X")} <= transitions
    assert len(transitions) == 25 - 6
    assert allowed_start_labels(labels, "IOB2") == {"O", "B-X", "B-Y"}
    assert allowed_end_labels(labels, "IOB2") == set(labels)
    # IOBES-only labels cannot appear in an IOB2 sequence at all.
    assert not any("S-X" in pair for pair in allowed_transitions(labels + ["S-X"], "IOB2"))


def test_iobes_transitions():
    labels = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y"]
    transitions = allowed_transitions(labels, "IOBES")
    assert ("B-X", "O") not in transitions
    assert ("E-X", "I-X") not in transitions
    assert {("B-X", "E-X"), ("B-X", "I-X"), ("E-X", "B-Y"), ("S-X", "S-X")} <= transitions
    assert allowed_start_labels(labels, "IOBES") == {"O", "B-X", "S-X", "B-Y"}
    assert allowed_end_labels(labels, "IOBES") == {"O", "E-X", "S-X"}


def test_detect_scheme():
    assert detect_scheme([["O", "O"], []]) == "IOB1"  # no chunk: fits all, weakest first
    assert detect_scheme([["B-PER", "I-PER", "O"], ["O", "B-LOC"]]) == "IOB2"
    assert detect_scheme([["I-PER", "I-PER", "B-PER"], ["O", "I-LOC"]]) == "IOB1"
    assert detect_scheme([["S-PER", "O"], ["B-LOC", "E-LOC"]]) == "IOBES"
    # Fits no scheme strictly: read as conlleval would, by the prefixes present.
    assert detect_scheme([["B-PER", "O"], ["O", "I-LOC"]]) == "IOB1"
    assert detect_scheme([["B-PER", "O"], ["S-LOC"]]) == "IOBES"
    with pytest.raises(DataError, match=r"sequence 1, tag 2: 'NN'"):
        detect_scheme([["O"], ["O", "B-PER", "NN"]])


def test_chunks_to_tags_rejects_overlaps():
    with pytest.raises(ValueError, match="overlaps"):
        chunks_to_tags(4, [("X", 0, 2), ("Y", 1, 3)], "IOB2")
    with pytest.raises(ValueError, match="out of range"):
        chunks_to_tags(2, [("X", 1, 3)], "IOB2")
