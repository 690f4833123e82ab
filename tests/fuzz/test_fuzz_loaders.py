"""Fuzz cases of the library's readers and ``seqlstm.data.load``: every generated file gives
a result that matches the suite's own reading of it, or a DataError naming the file (and
the line, for a defect of one line); never another exception, never a hang."""

import re

import pytest
from fuzz_inputs import (
    CONLL_KINDS,
    LINE_KINDS,
    PARALLEL_KINDS,
    ROUNDS,
    TEXT_KINDS,
    case_input,
    cases,
    parallel_must_fail,
    reference_conll,
    reference_lines,
    reference_text,
    unreadable,
)
from fuzz_outcomes import Expected, library_case

from seqlstm.data import load, read_conll, read_parallel, read_text
from seqlstm.text.tag_schemes import is_valid_sequence

IOB2_TAG = re.compile(r"O|[BI]-.+")


def check_tagging_rows(rows: list[dict], data: bytes) -> None:
    """Rows of read_conll/load: the tokens of the file's token lines, sentence by sentence,
    each with a valid IOB2 tag, and a document index exactly when the file marks documents."""
    reading = reference_conll(data)
    assert reading is not None
    expected = [[fields[0] for fields in sentence] for sentence in reading.sentences]
    assert [list(row["tokens"]) for row in rows] == expected, "tokens differ from the file's"
    for row in rows:
        tags = list(row["tags"])
        assert len(tags) == len(row["tokens"]), f"{len(tags)} tags for {len(row['tokens'])} tokens"
        assert all(IOB2_TAG.fullmatch(tag) for tag in tags), f"not IOB2 tags: {tags}"
        assert is_valid_sequence(tags, "IOB2"), f"not a valid IOB2 sequence: {tags}"
        assert ("document" in row and row["document"] is not None) == reading.marked, (
            f"document {row.get('document')!r} in a file with -DOCSTART- lines: {reading.marked}"
        )


# ----------------------------------------------------------------------------- text


@pytest.mark.parametrize(("kind", "seed"), cases(TEXT_KINDS, 2, 1000, ROUNDS))
def test_read_text(kind, seed, tmp_path, request):
    data = case_input(kind, seed)
    path = tmp_path / "input.txt"
    path.write_bytes(data)

    def check(text):
        assert text == reference_text(data), "the text differs from the file's"

    expected = Expected([str(path)], line=kind in LINE_KINDS, must_fail=unreadable(data))
    library_case(request, "read_text", lambda: read_text(path), expected, check)


@pytest.mark.parametrize(("kind", "seed"), cases(TEXT_KINDS, 1, 4000, ROUNDS))
def test_load_text(kind, seed, tmp_path, request):
    data = case_input(kind, seed)
    path = tmp_path / "train.txt"
    path.write_bytes(data)

    def check(dataset):
        assert list(dataset) == ["train"], f"splits {list(dataset)}"
        text = "".join(dataset["train"]["text"])
        assert text == reference_text(data), "the text differs from the file's"

    expected = Expected([str(path)], line=kind in LINE_KINDS, must_fail=unreadable(data))
    library_case(request, "load(text)", lambda: load(path, "text"), expected, check)


# ----------------------------------------------------------------------------- CoNLL


@pytest.mark.parametrize(("kind", "seed"), cases(CONLL_KINDS, 3, 2000, ROUNDS))
def test_read_conll(kind, seed, tmp_path, request):
    data = case_input(kind, seed)
    path = tmp_path / "input.conll"
    path.write_bytes(data)
    expected = Expected([str(path)], line=kind in LINE_KINDS, must_fail=unreadable(data))
    library_case(
        request,
        "read_conll",
        lambda: read_conll(path),
        expected,
        lambda rows: check_tagging_rows(rows, data),
    )


@pytest.mark.parametrize(("kind", "seed"), cases(CONLL_KINDS, 1, 5000, ROUNDS))
def test_load_tagging(kind, seed, tmp_path, request):
    data = case_input(kind, seed)
    path = tmp_path / "train.conll"
    path.write_bytes(data)

    def check(dataset):
        assert list(dataset) == ["train"], f"splits {list(dataset)}"
        check_tagging_rows(dataset["train"].to_list(), data)

    expected = Expected([str(path)], line=kind in LINE_KINDS, must_fail=unreadable(data))
    library_case(request, "load(tagging)", lambda: load(path, "tagging"), expected, check)


# ----------------------------------------------------------------------------- parallel


@pytest.mark.parametrize(("kind", "seed"), cases(PARALLEL_KINDS, 3, 3000, ROUNDS))
def test_read_parallel(kind, seed, tmp_path, request):
    src, tgt = case_input(kind, seed)
    src_path, tgt_path = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src_path.write_bytes(src)
    tgt_path.write_bytes(tgt)

    def check(pairs):
        expected = list(zip(reference_lines(src), reference_lines(tgt), strict=True))
        assert pairs == expected, "the pairs differ from the files' lines"

    expected = Expected(
        [str(src_path), str(tgt_path)],
        line=kind in LINE_KINDS,
        must_fail=parallel_must_fail(src, tgt),
    )
    library_case(
        request, "read_parallel", lambda: read_parallel(src_path, tgt_path), expected, check
    )


@pytest.mark.parametrize(("kind", "seed"), cases(PARALLEL_KINDS, 1, 6000, ROUNDS))
def test_load_translation(kind, seed, tmp_path, request):
    src, tgt = case_input(kind, seed)
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "train.de").write_bytes(src)
    (directory / "train.en").write_bytes(tgt)

    def check(dataset):
        assert list(dataset) == ["train"], f"splits {list(dataset)}"
        rows = list(zip(dataset["train"]["de"], dataset["train"]["en"], strict=True))
        pairs = zip(reference_lines(src), reference_lines(tgt), strict=True)
        # load leaves out the pairs with an empty side
        assert rows == [(s, t) for s, t in pairs if s.strip() and t.strip()], "rows differ"

    expected = Expected(
        [str(directory)], line=kind in LINE_KINDS, must_fail=parallel_must_fail(src, tgt)
    )
    library_case(
        request, "load(translation)", lambda: load(directory, "translation"), expected, check
    )
