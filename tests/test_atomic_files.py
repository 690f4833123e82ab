import os

import pytest

from seqlstm.atomic_files import staged_directory, write_bytes_atomic, write_text_atomic


def test_write_bytes_and_text_replace_the_content_and_leave_no_temporaries(tmp_path):
    path = tmp_path / "file.bin"
    write_bytes_atomic(path, b"\x00old")
    write_bytes_atomic(path, b"\x00new\xff")
    assert path.read_bytes() == b"\x00new\xff"
    text = tmp_path / "note.txt"
    write_text_atomic(text, "é\nline\n")
    assert text.read_bytes() == "é\nline\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin", "note.txt"]


def test_failed_file_write_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "file.txt"
    write_text_atomic(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_staged_directory_creates_and_replaces_a_directory(tmp_path):
    target = tmp_path / "parent" / "model"  # the parent is created
    with staged_directory(target) as staging:
        assert staging.parent == target.parent and staging != target
        (staging / "a.txt").write_text("first")
        (staging / "sub").mkdir()
        (staging / "sub" / "b.txt").write_text("nested")
    assert (target / "a.txt").read_text() == "first"
    assert (target / "sub" / "b.txt").read_text() == "nested"
    with staged_directory(target) as staging:
        (staging / "c.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]  # the old files are gone
    assert [p.name for p in target.parent.iterdir()] == ["model"]


def test_staged_directory_keeps_the_old_directory_if_the_writer_raises(tmp_path):
    target = tmp_path / "model"
    with staged_directory(target) as staging:
        (staging / "a.txt").write_text("old")
    with pytest.raises(RuntimeError, match="midway"), staged_directory(target) as staging:
        (staging / "a.txt").write_text("half of the new")
        raise RuntimeError("midway")
    assert [p.name for p in target.iterdir()] == ["a.txt"]
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    with pytest.raises(RuntimeError), staged_directory(tmp_path / "never"):
        raise RuntimeError("before anything was written")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
