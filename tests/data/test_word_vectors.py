"""load_word_vectors and word_vectors_dimension against hand-written vector files."""

import pytest
import torch
from locations import FIXTURES

from seqlstm.data.word_vectors import load_word_vectors, word_vectors_dimension
from seqlstm.errors import DataError
from seqlstm.text.vocabulary import Vocabulary

VOCAB = Vocabulary(
    ["<pad>", "<unk>", "The", "the", "Paris", "Berlin", "BERLIN", "Köln", ",", ". . .", "gone"],
    pad_token="<pad>",
    unk_token="<unk>",
)


def _row(vocab: Vocabulary, token: str) -> int:
    return vocab.index(token)


def test_load_glove_vectors():
    torch.manual_seed(0)
    table, found = load_word_vectors(FIXTURES / "vectors_small.txt", VOCAB, 4)
    assert table.shape == (len(VOCAB), 4)
    the = torch.tensor([0.1, 0.2, 0.3, 0.4])
    expected = {
        "the": the,  # first occurrence wins over the later duplicate
        "The": the,  # lowercase fallback
        "Paris": torch.tensor([1.5, -1.5, 2.0, -2.0]),
        "Berlin": torch.full((4,), 3.0),  # exact match beats the earlier lowercase line
        "BERLIN": torch.full((4,), -3.0),
        "Köln": torch.tensor([0.01, 0.02, 0.03, 0.04]),
        ",": torch.tensor([-0.5, 0.25, 0.0, 1.0]),
        ". . .": torch.full((4,), 0.7),  # a token with spaces, as in glove.840B
    }
    for token, vector in expected.items():
        torch.testing.assert_close(table[_row(VOCAB, token)], vector)
    assert found == len(expected)
    assert torch.all(table[VOCAB.pad_id] == 0)
    assert table[_row(VOCAB, "gone")].abs().sum() > 0  # random, not zero


def test_load_word2vec_text_vectors():
    table, found = load_word_vectors(FIXTURES / "emb_vectors_w2v.txt", VOCAB, 4)
    assert found == 5  # the, The, Paris, Berlin, Köln
    torch.testing.assert_close(table[_row(VOCAB, "Köln")], torch.tensor([0.01, 0.02, 0.03, 0.04]))
    torch.testing.assert_close(table[_row(VOCAB, "Berlin")], torch.full((4,), 3.0))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("the 1 2 3 4\nparis 1 2 3\n", r"bad.txt:2: expected a token and 4 numbers, found 3"),
        ("the 1 2 3 4 5\n", r"bad.txt:1: expected a token and 4 numbers, found 5"),
        ("the 1 2 x 4\n", r"bad.txt:1: expected 4 numbers after the token 'the'"),
        ("2 5\nthe 1 2 3 4 5\n", r"bad.txt:1: header announces 5-dimensional vectors, expected 4"),
        ("3 4\nthe 1 2 3 4\n", r"bad.txt: header announces 3 vectors but the file holds 1"),
    ],
)
def test_malformed_vector_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_word_vectors(path, VOCAB, 4)


def test_binary_vectors_are_rejected(tmp_path):
    path = tmp_path / "vectors.bin"
    path.write_bytes(b"1 4\nthe \x00\x00\x80\xbf\xff\xfe\x00\x00\x00\x00\x00\x00\x00\x00\n")
    with pytest.raises(DataError, match="vectors.bin:2: not UTF-8 .*binary"):
        load_word_vectors(path, VOCAB, 4)


def test_dimension_of_glove_and_word2vec_text(tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2 0.3\n")
    word2vec = tmp_path / "w2v.txt"
    word2vec.write_text("1 5\nthe 1 2 3 4 5\n")
    assert word_vectors_dimension(glove) == 3
    assert word_vectors_dimension(word2vec) == 5
    # what it reads is what load_word_vectors accepts, header or not
    for name, tokens_found in (("vectors_small.txt", 8), ("emb_vectors_w2v.txt", 5)):
        path = FIXTURES / name
        dim = word_vectors_dimension(path)
        assert dim == 4
        table, found = load_word_vectors(path, VOCAB, dim)
        assert table.shape == (len(VOCAB), 4) and found == tokens_found


def test_both_read_the_same_header_rule(tmp_path):
    # "2 3" on the first line is a word2vec header for both functions: 2 vectors of size 3
    header = tmp_path / "header.txt"
    header.write_text("2 3\nthe 1 2 3\nparis 4 5 6\n")
    assert word_vectors_dimension(header) == 3
    table, found = load_word_vectors(header, VOCAB, 3)
    assert found == 3  # the, The (lowercase fallback), Paris
    # ...but only on the first line, and only as exactly two integers: here "2" is a token
    # with a 1-dimensional vector, and "7 1.5" a second one
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("2 3.5\n7 1.5\n")
    assert word_vectors_dimension(vectors) == 1
    assert load_word_vectors(vectors, VOCAB, 1)[1] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"v.txt: no vectors in the file"),
        ("\n\n", r"v.txt: no vectors in the file"),
        ("the\n", r"v.txt:1: expected a token and its vector"),
    ],
)
def test_dimension_of_a_file_without_vectors(tmp_path, content, message):
    path = tmp_path / "v.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        word_vectors_dimension(path)


def test_missing_and_binary_files_are_data_errors(tmp_path):
    for read in (word_vectors_dimension, lambda p: load_word_vectors(p, VOCAB, 4)):
        with pytest.raises(DataError, match="nowhere.txt: no such vectors file"):
            read(tmp_path / "nowhere.txt")
    path = tmp_path / "vectors.bin"
    path.write_bytes(b"\xff\xfe 1 2\n")
    with pytest.raises(DataError, match="vectors.bin:1: not UTF-8"):
        word_vectors_dimension(path)
