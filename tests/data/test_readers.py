"""CoNLL, parallel and plain-text readers: content, schemes, documents, errors naming the line."""

import hashlib
import json
import logging
from pathlib import Path

import pytest
from locations import FIXTURES, SHARED_DATA

from seqlstm.data import read_conll, read_parallel, read_text
from seqlstm.data.readers import conll_sentences, iter_lines
from seqlstm.errors import DataError
from seqlstm.text.tag_schemes import is_valid_sequence

FIXTURE = FIXTURES / "data_conll_iob1.txt"
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real data not found at {SHARED_DATA}"
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_read_conll_converts_iob1_to_iob2():
    examples = read_conll(FIXTURE)
    assert [e["tokens"] for e in examples] == [
        ["EU", "rejects", "German", "call"],
        ["Peter", "Blackburn", "Smith"],
        ["BRUSSELS", "1996-08-22"],
    ]
    assert [e["tags"] for e in examples] == [
        ["B-ORG", "O", "B-MISC", "O"],
        ["B-PER", "I-PER", "B-PER"],
        ["B-LOC", "O"],
    ]
    assert "columns" not in examples[0]
    # the fixture's two -DOCSTART- lines: the first two sentences are document 0
    assert [e["document"] for e in examples] == [0, 0, 1]


def test_read_conll_other_schemes_and_columns():
    raw = read_conll(FIXTURE, scheme_to=None, columns=True)
    assert raw[1]["tags"] == ["I-PER", "I-PER", "B-PER"]
    assert raw[1]["columns"] == [
        ["Peter", "Blackburn", "Smith"],
        ["NNP", "NNP", "NNP"],
        ["B-NP", "I-NP", "I-NP"],
        ["I-PER", "I-PER", "B-PER"],
    ]
    iobes = read_conll(FIXTURE, scheme_from="IOB1", scheme_to="IOBES")
    assert iobes[1]["tags"] == ["B-PER", "E-PER", "S-PER"]
    chunks = read_conll(FIXTURE, label_column=2)
    assert chunks[0]["tags"] == ["B-NP", "B-VP", "B-NP", "I-NP"]
    pos = read_conll(FIXTURE, label_column=1, token_column=-1, scheme_to=None)
    assert pos[0] == {
        "tokens": ["I-ORG", "O", "I-MISC", "O"],
        "tags": ["NNP", "VBZ", "JJ", "NN"],
        "document": 0,
    }


def test_non_chunk_labels_need_scheme_none():
    with pytest.raises(DataError, match=r"data_conll_iob1.txt:3: 'NNP' is not a chunk tag.*None"):
        read_conll(FIXTURE, label_column=1)


def test_wrong_column_count_names_file_line_and_counts(tmp_path):
    path = write(tmp_path, "bad.txt", "a X O\nb Y O\n\nc Z\n")
    with pytest.raises(DataError, match=r"bad.txt:4: expected 3 columns .*found 2"):
        read_conll(path)


def test_label_column_out_of_range(tmp_path):
    path = write(tmp_path, "two.txt", "a O\n")
    with pytest.raises(DataError, match=r"two.txt:1: label_column=2 but the file has 2 columns"):
        read_conll(path, label_column=2)


def test_explicit_scheme_rejects_other_prefixes(tmp_path):
    path = write(tmp_path, "iobes.txt", "a B-X\nb E-X\n\nc S-Y\n")
    with pytest.raises(DataError, match=r"iobes.txt:2: 'E-X' is not an IOB2 tag"):
        read_conll(path, scheme_from="IOB2")
    assert read_conll(path)[1]["tags"] == ["B-Y"]  # auto-detected IOBES


@pytest.mark.parametrize("content", ["", "\n\n", "-DOCSTART- O\n\n"])
def test_file_without_sentences_is_an_error(tmp_path, content):
    path = write(tmp_path, "empty.txt", content)
    with pytest.raises(DataError, match="empty.txt: no sentences"):
        read_conll(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_conll(tmp_path / "nope.txt")


def test_bad_utf8_names_the_line(tmp_path):
    path = write(tmp_path, "latin1.txt", b"a O\nb O\n" + "Müller B-PER\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt:3: not valid UTF-8 \(byte 0xfc at column 2\)"):
        read_conll(path)
    with pytest.raises(DataError, match="latin1.txt:3"):
        read_text(path)


def test_bom_crlf_and_non_breaking_space(tmp_path):
    # A non-breaking space belongs to the token: only spaces and tabs separate columns.
    path = write(tmp_path, "crlf.txt", "\ufeffNew\u00a0York I-LOC\r\nis O\r\n")
    assert read_conll(path) == [{"tokens": ["New\u00a0York", "is"], "tags": ["B-LOC", "O"]}]


# ---------------------------------------------------------------- documents


def documents_of(path: Path) -> list:
    return [example.get("document") for example in read_conll(path)]


def test_without_docstart_there_is_no_document_key(tmp_path):
    path = write(tmp_path, "plain.txt", "a O\n\nb O\nc O\n")
    assert read_conll(path) == [
        {"tokens": ["a"], "tags": ["O"]},
        {"tokens": ["b", "c"], "tags": ["O", "O"]},
    ]


def test_document_indices_count_every_docstart(tmp_path):
    # a leading -DOCSTART- opens document 0; sentences keep their document until the next one
    first = "-DOCSTART- O\n\na O\n\nb O\n\n-DOCSTART- O\n\nc O\n"
    assert documents_of(write(tmp_path, "first.txt", first)) == [0, 0, 1]
    # sentences before the first -DOCSTART- are a document of their own
    leading = "a O\n\n-DOCSTART- O\n\nb O\n\nc O\n"
    assert documents_of(write(tmp_path, "leading.txt", leading)) == [0, 1, 1]
    # ...but blank lines alone before it are not
    assert documents_of(write(tmp_path, "blank.txt", "\n\n" + first)) == [0, 0, 1]
    # a -DOCSTART- line may be followed by a token line directly
    tight = write(tmp_path, "tight.txt", "-DOCSTART- O\na O\n\n-DOCSTART- O\nb O\n")
    assert read_conll(tight) == [
        {"tokens": ["a"], "tags": ["O"], "document": 0},
        {"tokens": ["b"], "tags": ["O"], "document": 1},
    ]


def test_an_empty_document_keeps_its_index(tmp_path):
    content = "-DOCSTART- O\n\na O\n\n-DOCSTART- O\n\n\n-DOCSTART- O\n-DOCSTART- O\n\nb O\n"
    # documents 1 and 2 have no sentences: the ids have a gap
    assert documents_of(write(tmp_path, "gaps.txt", content)) == [0, 3]
    trailing = write(tmp_path, "trailing.txt", "-DOCSTART- O\n\na O\n\n-DOCSTART- O\n\n")
    assert documents_of(trailing) == [0]


def test_docstart_inside_a_sentence_names_the_line(tmp_path):
    path = write(tmp_path, "cut.txt", "-DOCSTART- O\n\na O\nb O\n-DOCSTART- O\n\nc O\n")
    with pytest.raises(
        DataError,
        match=r"cut.txt:5: -DOCSTART- inside a sentence \(its last token is line 4\); "
        r"expected a blank line before -DOCSTART-",
    ):
        read_conll(path)


def test_a_document_of_one_5000_word_sentence(tmp_path):
    words = [f"w{i}" for i in range(5000)]
    lines = [f"{word} {'B-PER' if i % 7 == 0 else 'O'}" for i, word in enumerate(words)]
    path = write(tmp_path, "long.txt", "-DOCSTART- O\n\n" + "\n".join(lines) + "\n")
    (example,) = read_conll(path)
    assert example["tokens"] == words and example["document"] == 0
    assert example["tags"].count("B-PER") == len(range(0, 5000, 7))


def test_conll_sentences_give_lines_numbers_and_fields():
    lines = [(1, "-DOCSTART- -X- O"), (2, ""), (3, "New\u00a0York\tB-LOC"), (4, "is  O"), (5, " ")]
    (sentence,) = conll_sentences(lines, "<stdin>")
    assert sentence.document == 0
    assert sentence.numbers == [3, 4]
    assert sentence.lines == ["New\u00a0York\tB-LOC", "is  O"]
    # only spaces and tabs separate columns, as in read_conll
    assert sentence.fields == [["New\u00a0York", "B-LOC"], ["is", "O"]]
    assert conll_sentences([(1, "a O"), (2, "")], "x")[0].document is None
    assert conll_sentences([(1, "   "), (2, "-DOCSTART-")], "x") == []
    with pytest.raises(DataError, match="<stdin>:2: -DOCSTART- inside a sentence"):
        conll_sentences([(1, "a O"), (2, "-DOCSTART- O")], "<stdin>")


def test_read_parallel_keeps_alignment_and_empty_lines(tmp_path, caplog):
    src = write(tmp_path, "x.en", "one\n\nthree \nfour")
    tgt = write(tmp_path, "x.de", "eins\nzwei\n   \nvier\n")
    with caplog.at_level(logging.INFO, logger="seqlstm.data.readers"):
        pairs = read_parallel(src, tgt)
    assert pairs == [("one", "eins"), ("", "zwei"), ("three ", "   "), ("four", "vier")]
    assert "2 of 4 line pairs have an empty side" in caplog.text


def test_read_parallel_line_u2028_does_not_split(tmp_path):
    src = write(tmp_path, "u.en", "a\u2028b\nc\n")
    tgt = write(tmp_path, "u.de", "x\ny\n")
    assert read_parallel(src, tgt) == [("a\u2028b", "x"), ("c", "y")]


@pytest.mark.parametrize("longer", ["src", "tgt"])
def test_read_parallel_different_line_counts(tmp_path, longer):
    short = write(tmp_path, "short.txt", "a\nb\n")
    long = write(tmp_path, "long.txt", "a\nb\nc\nd\ne\n")
    src, tgt = (long, short) if longer == "src" else (short, long)
    counts = (5, 2) if longer == "src" else (2, 5)
    pattern = rf"{src.name} has {counts[0]} lines but .*{tgt.name} has {counts[1]}"
    with pytest.raises(DataError, match=pattern):
        read_parallel(src, tgt)


def test_read_text_and_lines(tmp_path):
    content = "First Citizen:\r\nBefore we proceed\n\nno newline at end"
    path = write(tmp_path, "t.txt", content)
    assert read_text(path) == content
    assert list(iter_lines(path)) == [
        (1, "First Citizen:"),
        (2, "Before we proceed"),
        (3, ""),
        (4, "no newline at end"),
    ]


@needs_shared_data
def test_real_conll2003_validation_split():
    # The train and test counts are checked through load() in test_data_loading.py.
    examples = read_conll(SHARED_DATA / "conll2003" / "valid.txt", scheme_to=None, columns=True)
    assert len(examples) == 3250
    assert sum(len(e["tokens"]) for e in examples) == 51362
    assert all(len(e["columns"]) == 4 for e in examples)
    assert all(is_valid_sequence(e["tags"], "IOB2") for e in examples)  # README: IOB2


@needs_shared_data
def test_real_multi30k_is_aligned():
    directory = SHARED_DATA / "multi30k"
    pairs = read_parallel(directory / "val.en", directory / "val.de")
    assert len(pairs) == 1014
    assert all(en.strip() and de.strip() for en, de in pairs)


# sha256 of json.dumps(read_conll(file)) and of json.dumps(read_conll(file, scheme_to=None,
# columns=True)), recorded with the reader that dropped -DOCSTART- lines: the shared files
# have none, so they must read exactly as they did
CONLL2003_DIGESTS = {
    "train": (
        "9e80fe6ba8c53ac035dcba6f141dc5234529ddfe104578c1eb7f4f31f6fb51be",
        "694eb98fa4610afcb9dec0f78360ed0d0f1f0bdcdc29897ac5bfb258426333ef",
    ),
    "valid": (
        "40f160a33d3ac39343c2989836d0787c141c1eed4f46282a39add1de8a1485fc",
        "13f86add1c496de70653ca0f37284a0a1bfef5ed4293e3c12402d930f3ba3792",
    ),
    "test": (
        "5a003123a6772e6eac489ff3da658b7c32decd6cd7583ceaf2c4a24a2e0a5a8c",
        "3541ad4a3d4b2d3b8694666ac10129ee3dc88d0b417367d051c46029678041bb",
    ),
}


@needs_shared_data
@pytest.mark.parametrize("split", sorted(CONLL2003_DIGESTS))
def test_real_conll2003_reads_as_before(split):
    path = SHARED_DATA / "conll2003" / f"{split}.txt"
    converted, raw = read_conll(path), read_conll(path, scheme_to=None, columns=True)
    assert not any("document" in example for example in raw)
    digests = tuple(hashlib.sha256(json.dumps(e).encode()).hexdigest() for e in (converted, raw))
    assert digests == CONLL2003_DIGESTS[split]


# ---------------------------------------------------------------- awkward input (issue 18)


def test_a_lone_cr_ends_a_line_in_every_format(tmp_path):
    conll = write(tmp_path, "mac.txt", "EU B-ORG\rrejects O\r\rPeter B-PER\r")
    assert read_conll(conll) == [
        {"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]},
        {"tokens": ["Peter"], "tags": ["B-PER"]},
    ]
    src = write(tmp_path, "mac.en", "one\rtwo\r\rfour")
    tgt = write(tmp_path, "unix.de", "eins\nzwei\n\nvier\n")
    assert read_parallel(src, tgt) == [("one", "eins"), ("two", "zwei"), ("", ""), ("four", "vier")]
    mixed = write(tmp_path, "mixed.txt", "a\rb\r\nc\n\r\rd")
    assert list(iter_lines(mixed)) == [(1, "a"), (2, "b"), (3, "c"), (4, ""), (5, ""), (6, "d")]
    assert [line for _, line in iter_lines(mixed, keepends=True)] == [
        "a\r",
        "b\r\n",
        "c\n",
        "\r",
        "\r",
        "d",
    ]
    assert read_text(mixed) == "a\rb\r\nc\n\r\rd"
    # line numbers in errors count lone CRs too
    bad = write(tmp_path, "bad.txt", "a O\rb O\rc O d\r")
    with pytest.raises(DataError, match="bad.txt:3: expected 2 columns"):
        read_conll(bad)


def test_nul_bytes_are_an_error_naming_line_and_column(tmp_path):
    path = write(tmp_path, "nul.txt", b"a O\n\nb\0c O\n")
    for reader in (read_conll, read_text, lambda p: list(iter_lines(p))):
        with pytest.raises(DataError, match=r"nul.txt:3: a NUL byte at column 2: a text file"):
            reader(path)
    other = write(tmp_path, "ok.txt", "x\ny\nz\n")
    with pytest.raises(DataError, match="nul.txt:3: a NUL byte"):
        read_parallel(other, path)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_utf16_without_a_bom_is_named(tmp_path, encoding):
    path = write(tmp_path, "wide.txt", "EU B-ORG\nrejects O\n".encode(encoding))
    with pytest.raises(DataError, match=r"wide.txt:1: \d+ of its \d+ bytes are NUL: .*UTF-16"):
        read_conll(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_with_a_bom_is_named(tmp_path, encoding):
    path = write(tmp_path, "bom16.txt", "EU B-ORG\n".encode(encoding))
    with pytest.raises(DataError, match="bom16.txt:1: starts with a UTF-16 byte-order mark"):
        read_text(path)


def test_a_utf8_bom_is_dropped_from_the_first_line_only(tmp_path):
    path = write(tmp_path, "bom8.txt", "\ufeffa\r\ufeffb\n")
    assert list(iter_lines(path)) == [(1, "a"), (2, "\ufeffb")]


@pytest.mark.parametrize("token", ["\xa0", "\u2581", "\u2029", "\u3000\u2581"])
def test_a_token_without_a_visible_character_names_the_line(tmp_path, token):
    path = write(tmp_path, "invisible.txt", f"EU B-ORG\n\nrejects O\n{token} O\n")
    with pytest.raises(DataError, match=r"invisible.txt:4: the token .* no visible character"):
        read_conll(path)
    # only the token column is a word: a label column may hold anything the scheme allows
    assert read_conll(path, token_column=-1, label_column=-1, scheme_to=None)[1]["tokens"] == [
        "O",
        "O",
    ]


@pytest.mark.parametrize("content", ["", "\n", "  \n\t\n"])
def test_parallel_files_without_a_pair_of_sentences_name_both_files(tmp_path, content):
    src = write(tmp_path, "e.en", content)
    tgt = write(tmp_path, "e.de", content)
    with pytest.raises(DataError, match=r"e.en and .*e.de have .*expected line-aligned"):
        read_parallel(src, tgt)


def test_parallel_files_whose_every_pair_has_an_empty_side_are_an_error(tmp_path):
    src = write(tmp_path, "a.en", "one\n\n")
    tgt = write(tmp_path, "a.de", "\nzwei\n")
    with pytest.raises(DataError, match="have 2 lines but no pair of non-blank ones"):
        read_parallel(src, tgt)
