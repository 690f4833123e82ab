"""seqlstm.data.documents: which sentences form a document is an explicit, recorded rule."""

import pytest

from seqlstm.data.documents import count_documents, mark_documents, mark_split_documents

ROWS = [{"tokens": [str(i)], "tags": ["O"]} for i in range(5)]
MARKED = [dict(row, document=d) for row, d in zip(ROWS, [0, 0, 3, 3, 3], strict=True)]


def test_auto_takes_the_marks_of_the_data_else_reads_the_split_as_one_document():
    rows, rule = mark_documents(MARKED, "auto")
    assert rule == "marked" and [r["document"] for r in rows] == [0, 0, 3, 3, 3]
    rows, rule = mark_documents(ROWS, "auto")
    assert rule == "whole-split" and [r["document"] for r in rows] == [0] * 5
    assert "document" not in ROWS[0]  # the caller's rows are left as they were


def test_none_and_marked_without_marks_read_every_sentence_alone():
    for source, rows in (("none", MARKED), ("marked", ROWS)):
        marked, rule = mark_documents(rows, source)
        assert rule == source and all(r["document"] is None for r in marked)
        assert count_documents(marked) == 5
    with pytest.raises(ValueError, match="documents must be one of"):
        mark_documents(ROWS, "sentences")


def test_counts_per_split_for_the_results_file():
    rows, summary = mark_split_documents({"train": MARKED, "test": ROWS}, "auto")
    assert summary == {
        "train": {"rule": "marked", "documents": 2},
        "test": {"rule": "whole-split", "documents": 1},
    }
    assert count_documents([]) == 0
    assert count_documents([{"document": 1}, {"document": None}, {"document": 1}]) == 3
