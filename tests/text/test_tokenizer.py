"""SubwordTokenizer: lossless round trip, special ids, determinism, words, saving, errors."""

import json
import pickle
import random
import unicodedata

import pytest
from locations import SHARED_DATA

from seqlstm.errors import CheckpointError, DataError
from seqlstm.text.tokenizer import SubwordTokenizer, normalize

DATA = SHARED_DATA
MODEL_TYPES = ["unigram", "bpe", "char"]
VOCAB_SIZE = {"unigram": 400, "bpe": 400, "char": 400}

# characters that stress the round trip: never seen in training, multi-byte, combining,
# compatibility forms that NFKC rewrites, whitespace of every kind, controls, SentencePiece's
# own word-boundary mark and strings that look like special pieces
_ODD = (
    list("äöüßéèçñ")
    + [chr(c) for c in range(0x300, 0x370, 7)]  # combining marks
    + list("中文字漢語日本語한국어")
    + ["😀", "👍🏽", "👩\u200d💻", "🇩🇪"]
    + [" ", " ", " ", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", "\u2028", "\x85"]
    + ["\x00", "\x01", "\x7f", "\u200b", "\ufeff", "\u2581", "\ufffd"]
    + ["ﬁ", "①", "Ａ", "㎏", "½", "ｶ"]
    + ["<unk>", "<s>", "</s>", "<pad>", "<0x41>", " ⁇ "]
)


def _random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 25)):
        kind = rng.random()
        if kind < 0.4:
            parts.append("".join(rng.choices("abcdefghijklmnopqrstuvwxyz .,!?'-0123", k=3)))
        elif kind < 0.8:
            parts.append(rng.choice(_ODD))
        else:
            code = rng.randint(0, 0x10FFFF)
            if not 0xD800 <= code <= 0xDFFF:  # surrogates are not characters
                parts.append(chr(code))
    return "".join(parts)


def _corpus(n: int = 300, seed: int = 0) -> list[str]:
    """Synthetic sentences: ASCII words, a few accents and punctuation; no CJK or emoji."""
    rng = random.Random(seed)
    syllables = ["ka", "ri", "to", "men", "sch", "ung", "ver", "ö", "ä", "st", "el", "an", "é"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(200)]
    lines = []
    for _ in range(n):
        sentence = " ".join(rng.choices(words, k=rng.randint(3, 12)))
        lines.append(sentence.capitalize() + rng.choice([".", "!", "?", ", ja."]))
    return lines


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _corpus()


@pytest.fixture(scope="module", params=MODEL_TYPES)
def tok(request, corpus) -> SubwordTokenizer:
    return SubwordTokenizer.train(corpus, VOCAB_SIZE[request.param], model_type=request.param)


def test_special_ids_and_size(tok):
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert [tok.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tok.piece_to_id("<s>") == 2
    # char models treat vocab_size as an upper bound; the others hit it exactly
    if tok.model_type == "char":
        assert len(tok) <= 400
    else:
        assert len(tok) == 400
    assert [tok.id_to_piece(i) for i in (4, 4 + 0x41)] == ["<0x00>", "<0x41>"]


def test_normalize_hand_examples():
    assert normalize("  a\t\n b\u3000c  ") == "a b c"
    assert normalize("ﬁne ①") == "fine 1"
    assert normalize("e\u0301") == "\u00e9"  # NFKC composes
    assert normalize("x\u2581y") == "x y"  # SentencePiece's boundary mark is a space
    assert normalize("\ud800") == "\ufffd"
    assert normalize(" \n\t") == ""


def test_normalize_is_a_fixed_point():
    rng = random.Random(1)
    for _ in range(500):
        once = normalize(_random_text(rng))
        assert normalize(once) == once
        assert unicodedata.is_normalized("NFKC", once)
        assert once == once.strip() and "  " not in once


def test_round_trip_random_unicode(tok):
    rng = random.Random(2)
    texts = [_random_text(rng) for _ in range(400)] + ["", "   ", "\t\n", "<unk> ⁇"]
    for text in texts:
        ids = tok.encode(text)
        assert tok.unk_id not in ids, text
        assert tok.decode(ids) == normalize(text), text
        assert [tok.piece_to_id(p) for p in tok.pieces(text)] == ids


def test_round_trip_training_text_uses_no_bytes(tok, corpus):
    # every training character has its own piece, so byte fallback is not needed there
    for line in corpus[:50]:
        assert not any(p.startswith("<0x") for p in tok.pieces(line))
        assert tok.decode(tok.encode(line)) == line


def test_bos_eos_and_batch(tok, corpus):
    text = corpus[0]
    plain = tok.encode(text)
    assert tok.encode(text, add_bos=True, add_eos=True) == [2, *plain, 3]
    assert tok.decode([0, 2, *plain, 3, 0]) == text  # pad/bos/eos are skipped
    batch = corpus[:20] + ["😀 中文"]
    assert tok.encode_batch(batch, add_eos=True) == [tok.encode(t, add_eos=True) for t in batch]
    assert tok.decode_batch(tok.encode_batch(batch)) == [normalize(t) for t in batch]


def test_decode_rejects_out_of_range_ids(tok):
    with pytest.raises(ValueError, match=f"id {len(tok)} is outside"):
        tok.decode([5, len(tok)])
    with pytest.raises(ValueError, match="id -1 is outside"):
        tok.decode([-1])


def test_encode_words(tok):
    rng = random.Random(3)
    punctuation = [".", ",", "(", ")", "--", "'s", "$", "%"]
    unseen = ["😀", "中文", "Ω", "ß", "x\u0301", "<unk>", "ＡＢ", "\u200b"]
    for _ in range(100):
        pool = ["karito", "Menschung", "Ä", "verst"] + punctuation + unseen
        words = rng.choices(pool, k=rng.randint(1, 15))
        ids, word_index = tok.encode_words(words)
        assert len(ids) == len(word_index)
        assert tok.unk_id not in ids
        # every word gets >= 1 subword, in order, and subwords of a word are contiguous
        assert word_index == sorted(word_index)
        assert sorted(set(word_index)) == list(range(len(words)))
        assert tok.decode(ids) == normalize(" ".join(words))
        # pieces never cross a space, so encoding word by word equals encoding the sentence
        assert ids == tok.encode(" ".join(words))
        for w in range(len(words)):
            word_ids = [i for i, wi in zip(ids, word_index, strict=True) if wi == w]
            assert tok.decode(word_ids) == normalize(words[w])


def test_encode_words_edge_cases(tok):
    assert tok.encode_words([]) == ([], [])
    with pytest.raises(DataError, match="word 1"):
        tok.encode_words(["a", " \t", "b"])


def test_training_is_deterministic(corpus, tmp_path):
    for model_type in MODEL_TYPES:
        first = SubwordTokenizer.train(corpus, 350, model_type=model_type)
        second = SubwordTokenizer.train(list(corpus), 350, model_type=model_type)
        first.save(tmp_path / f"{model_type}1")
        second.save(tmp_path / f"{model_type}2")
        model1 = (tmp_path / f"{model_type}1" / "spm.model").read_bytes()
        model2 = (tmp_path / f"{model_type}2" / "spm.model").read_bytes()
        assert model1 == model2
        assert first.encode_batch(corpus[:30]) == second.encode_batch(corpus[:30])


def test_generator_input_equals_list_input(corpus):
    from_list = SubwordTokenizer.train(corpus, 350)
    from_generator = SubwordTokenizer.train((line for line in corpus), 350)
    assert from_list.encode_batch(corpus[:30]) == from_generator.encode_batch(corpus[:30])


def test_save_load_round_trip(tok, corpus, tmp_path):
    directory = tmp_path / "tok"
    tok.save(directory)
    assert sorted(p.name for p in directory.iterdir()) == ["spm.model", "tokenizer.json"]
    config = json.loads((directory / "tokenizer.json").read_text())
    assert config["model_type"] == tok.model_type
    assert config["vocab_size"] == len(tok)
    assert (config["pad_id"], config["unk_id"], config["bos_id"], config["eos_id"]) == (0, 1, 2, 3)
    loaded = SubwordTokenizer.load(directory)
    assert loaded.model_type == tok.model_type and len(loaded) == len(tok)
    texts = corpus[:20] + ["😀 unseen 中文 ß"]
    assert loaded.encode_batch(texts) == tok.encode_batch(texts)
    tok.save(directory)  # overwriting leaves no temp files behind
    assert sorted(p.name for p in directory.iterdir()) == ["spm.model", "tokenizer.json"]


def test_pickles_for_data_loader_workers(tok, corpus):
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.model_type == tok.model_type
    assert clone.encode_batch(corpus[:10]) == tok.encode_batch(corpus[:10])


def test_load_errors_name_the_file(corpus, tmp_path):
    tok = SubwordTokenizer.train(corpus, 350)
    with pytest.raises(CheckpointError, match="tokenizer.json"):
        SubwordTokenizer.load(tmp_path / "nowhere")
    tok.save(tmp_path / "a")
    (tmp_path / "a" / "spm.model").unlink()
    with pytest.raises(CheckpointError, match="spm.model"):
        SubwordTokenizer.load(tmp_path / "a")
    tok.save(tmp_path / "b")
    (tmp_path / "b" / "spm.model").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="spm.model"):
        SubwordTokenizer.load(tmp_path / "b")
    tok.save(tmp_path / "c")
    (tmp_path / "c" / "tokenizer.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="tokenizer.json"):
        SubwordTokenizer.load(tmp_path / "c")
    tok.save(tmp_path / "d")
    config = json.loads((tmp_path / "d" / "tokenizer.json").read_text())
    config["vocab_size"] = 9999
    (tmp_path / "d" / "tokenizer.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match"):
        SubwordTokenizer.load(tmp_path / "d")


def test_training_errors(corpus):
    with pytest.raises(DataError, match="empty or blank"):
        SubwordTokenizer.train([], 300)
    with pytest.raises(DataError, match="empty or blank"):
        SubwordTokenizer.train(["", "  \t", "\n"], 300)
    with pytest.raises(DataError, match="at least 261"):
        SubwordTokenizer.train(corpus, 100)
    # 4 specials + 256 bytes + every distinct character of the text (and the boundary mark)
    chars = {c for line in corpus for c in line.replace(" ", "\u2581")} | {"\u2581"}
    with pytest.raises(DataError, match=f"at least {260 + len(chars)} pieces"):
        SubwordTokenizer.train(corpus, 265)
    with pytest.raises(DataError, match=r"too large .* at most \d+ pieces"):
        SubwordTokenizer.train(corpus, 50_000)
    assert len(SubwordTokenizer.train(corpus, 50_000, hard_vocab_limit=False)) < 50_000
    with pytest.raises(ValueError, match="model_type"):
        SubwordTokenizer.train(corpus, 300, model_type="wordpiece")
    with pytest.raises(TypeError, match="text 1"):
        SubwordTokenizer.train(["abc", 5], 300)


def test_train_from_files(corpus, tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("\n".join(corpus[:150]) + "\n", encoding="utf-8")
    second.write_text("\n".join(corpus[150:]) + "\n", encoding="utf-8")
    from_files = SubwordTokenizer.train_from_files([first, second], 350)
    in_memory = SubwordTokenizer.train(corpus, 350)
    assert from_files.encode_batch(corpus[:30]) == in_memory.encode_batch(corpus[:30])

    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt: file is empty"):
        SubwordTokenizer.train_from_files([first, empty], 350)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("ok\nso weit\nM\u00e4nner\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin1.txt:3: not UTF-8"):
        SubwordTokenizer.train_from_files([latin1], 350)
    with pytest.raises(DataError, match="missing.txt: no such file"):
        SubwordTokenizer.train_from_files([tmp_path / "missing.txt"], 350)


@pytest.mark.skipif(not (DATA / "multi30k").is_dir(), reason="shared data not present")
def test_real_data_round_trip():
    multi30k = DATA / "multi30k"
    tok = SubwordTokenizer.train_from_files([multi30k / "val.en", multi30k / "val.de"], 1000)
    assert len(tok) == 1000
    lines = (multi30k / "test_2016_flickr.de").read_text(encoding="utf-8").splitlines()
    ids = tok.encode_batch(lines)
    assert all(tok.unk_id not in seq for seq in ids)
    assert tok.decode_batch(ids) == [normalize(line) for line in lines]
    # subwords compress: fewer pieces than characters on unseen German text
    assert sum(map(len, ids)) < 0.5 * sum(map(len, lines))
