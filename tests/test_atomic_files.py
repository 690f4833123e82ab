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


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_written_files_and_directories_get_the_permissions_the_umask_gives(
    tmp_path, restore_umask, mask, file_mode, dir_mode
):
    os.umask(mask)
    write_text_atomic(tmp_path / "note.txt", "new")
    write_text_atomic(tmp_path / "note.txt", "replaced")  # a replaced file too
    with staged_directory(tmp_path / "model") as staging:
        (staging / "a.txt").write_text("first")
    with staged_directory(tmp_path / "model") as staging:  # and a replaced directory
        (staging / "b.txt").write_text("second")
        # a writer that makes its files 0o600, as safetensors' save_file does
        os.close(os.open(staging / "weights.bin", os.O_WRONLY | os.O_CREAT, 0o600))
        (staging / "sub").mkdir()
        os.close(os.open(staging / "sub" / "c.bin", os.O_WRONLY | os.O_CREAT, 0o600))
    # what a plain open/mkdir gives under the same umask
    (tmp_path / "plain.txt").write_text("plain")
    (tmp_path / "plain").mkdir()
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "plain").stat().st_mode & 0o777 == dir_mode
    assert (tmp_path / "note.txt").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "model").stat().st_mode & 0o777 == dir_mode
    for name in ("b.txt", "weights.bin", "sub/c.bin"):
        assert (tmp_path / "model" / name).stat().st_mode & 0o777 == file_mode, name
    assert (tmp_path / "model" / "sub").stat().st_mode & 0o777 == dir_mode
