"""Vocabulary: order, min_freq/max_size, pad/unk handling, frozenness, saving."""

import json
import random
from collections import Counter

import pytest

from seqlstm.errors import CheckpointError
from seqlstm.text.vocabulary import Vocabulary


def test_order_by_frequency_then_code_point():
    sentences = [["b", "a", "c"], ["c", "a", "d"], ["c"], ["B"]]
    vocab = Vocabulary.build(sentences)
    # c:3, a:2, then B, b, d once each in code-point order ("B" < "b" < "d")
    assert vocab.tokens == ("<pad>", "<unk>", "c", "a", "B", "b", "d")
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)


def test_order_does_not_depend_on_data_order():
    rng = random.Random(0)
    tokens = [rng.choice("abcdefghij") for _ in range(300)]
    shuffled = tokens[:]
    rng.shuffle(shuffled)
    assert Vocabulary.build(tokens) == Vocabulary.build(shuffled)


def test_against_counter_brute_force():
    rng = random.Random(1)
    sentences = [[f"w{rng.randint(0, 60)}" for _ in range(rng.randint(1, 9))] for _ in range(200)]
    counts = Counter(t for s in sentences for t in s)
    for min_freq in (1, 3, 8):
        vocab = Vocabulary.build(sentences, min_freq=min_freq, specials=["<s>", "</s>"])
        kept = [t for t, c in counts.items() if c >= min_freq]
        expected = sorted(kept, key=lambda t: (-counts[t], t))
        assert vocab.tokens == ("<pad>", "<unk>", "<s>", "</s>", *expected)


def test_flat_tokens_equal_sentences():
    sentences = [["x", "y"], ["y", "z", "y"]]
    flat = [t for s in sentences for t in s]
    assert Vocabulary.build(sentences) == Vocabulary.build(flat)


def test_max_size_counts_every_entry():
    tokens = list("aaaabbbccd")
    vocab = Vocabulary.build(tokens, max_size=4)
    assert vocab.tokens == ("<pad>", "<unk>", "a", "b")
    assert len(Vocabulary.build(tokens, max_size=2)) == 2
    with pytest.raises(ValueError, match="max_size=1 leaves no room"):
        Vocabulary.build(tokens, max_size=1)


def test_specials_always_present_and_not_counted_twice():
    vocab = Vocabulary.build([["<s>", "a"], ["a"]], min_freq=2, specials=["<s>"])
    assert vocab.tokens == ("<pad>", "<unk>", "<s>", "a")
    assert vocab.specials == ("<s>",)


def test_unknown_tokens():
    vocab = Vocabulary.build(["a", "b"])
    assert vocab.index("zzz") == vocab.unk_id == 1
    assert vocab.encode(["a", "zzz", "b"]) == [2, 1, 3]
    labels = Vocabulary.build([["O", "B-PER"], ["I-PER", "O"]], pad_token=None, unk_token=None)
    assert labels.tokens == ("O", "B-PER", "I-PER")
    assert (labels.pad_id, labels.unk_id) == (None, None)
    with pytest.raises(KeyError, match="'B-ORG' is not in the vocabulary .* no unk token"):
        labels.index("B-ORG")


def test_pad_only_and_character_vocabulary():
    words = ["Haus", "aus", "ß"]
    chars = Vocabulary.build((ch for w in words for ch in w), unk_token=None)
    assert chars.tokens == ("<pad>", "a", "s", "u", "H", "ß")
    assert chars.unk_id is None and chars.pad_id == 0
    assert chars.encode("Haus") == [4, 1, 3, 2]


def test_decode_and_lookup():
    vocab = Vocabulary.build(["a", "b", "b"])
    assert vocab.decode(vocab.encode(["b", "a"])) == ["b", "a"]
    assert vocab[2] == "b" and "a" in vocab and "q" not in vocab
    assert list(vocab) == list(vocab.tokens)
    with pytest.raises(IndexError, match="index 4 is outside"):
        vocab.decode([4])
    with pytest.raises(IndexError):
        vocab[-1]


def test_frozen():
    vocab = Vocabulary.build(["a"])
    assert not hasattr(vocab, "add")
    with pytest.raises(AttributeError, match="frozen"):
        vocab.unk_token = None
    with pytest.raises(AttributeError):
        vocab.new_attribute = 1
    assert isinstance(vocab.tokens, tuple)
    vocab.index("never seen")  # a lookup does not grow the vocabulary
    assert len(vocab) == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="must differ"):
        Vocabulary.build(["a"], pad_token="<x>", unk_token="<x>")
    with pytest.raises(ValueError, match="must differ"):
        Vocabulary.build(["a"], specials=["<pad>"])
    with pytest.raises(ValueError, match="min_freq"):
        Vocabulary.build(["a"], min_freq=0)
    with pytest.raises(TypeError, match="item 1"):
        Vocabulary.build([["a"], [3]])
    with pytest.raises(ValueError, match="appears twice"):
        Vocabulary(["a", "b", "a"])
    with pytest.raises(ValueError, match="pad_token"):
        Vocabulary(["a"], pad_token="<pad>")


def test_equality():
    a = Vocabulary.build(["x", "y"])
    assert a == Vocabulary.build(["y", "x"])
    assert hash(a) == hash(Vocabulary.build(["y", "x"]))
    assert a != Vocabulary.build(["x", "y"], unk_token=None)
    assert a != Vocabulary.build(["x", "y", "y"])  # same tokens, other order
    assert a != a.tokens


def test_save_load(tmp_path):
    vocab = Vocabulary.build([["Straße", "😀"], ["x"]], specials=["<s>"])
    path = tmp_path / "vocab" / "words.json"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded == vocab
    assert loaded.encode(["😀", "new"]) == vocab.encode(["😀", "new"])
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["tokens"] == list(vocab.tokens) and data["format_version"] == 1
    vocab.save(path)  # overwrite: no temp file left
    assert [p.name for p in path.parent.iterdir()] == ["words.json"]
    labels = Vocabulary.build(["O"], pad_token=None, unk_token=None)
    labels.save(tmp_path / "labels.json")
    assert Vocabulary.load(tmp_path / "labels.json").unk_id is None


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="missing.json"):
        Vocabulary.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2", encoding="utf-8")
    with pytest.raises(CheckpointError, match="broken.json"):
        Vocabulary.load(broken)
    no_tokens = tmp_path / "no_tokens.json"
    no_tokens.write_text(json.dumps({"format_version": 1}), encoding="utf-8")
    with pytest.raises(CheckpointError, match="no_tokens.json"):
        Vocabulary.load(no_tokens)
    duplicate = tmp_path / "duplicate.json"
    record = {"format_version": 1, "specials": [], "pad_token": None, "unk_token": None}
    duplicate.write_text(json.dumps({**record, "tokens": ["a", "a"]}), encoding="utf-8")
    with pytest.raises(CheckpointError, match="duplicate.json.*appears twice"):
        Vocabulary.load(duplicate)
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**record, "tokens": ["a"], "format_version": 9}))
    with pytest.raises(CheckpointError, match="format_version 9"):
        Vocabulary.load(future)
