"""Atomic writes: a crash leaves either the old file (or directory) or the new one, never half.

A file is written to a temporary sibling, fsynced and renamed over the target with
``os.replace``, which is atomic on POSIX and Windows. A directory is built in a temporary
sibling (:func:`staged_directory`), fsynced file by file, and swapped into place; since
``os.replace`` cannot rename onto a non-empty directory, an old target is first renamed
aside and deleted after the swap, so only the instant between the two renames has no
target at all.

Temporary names start with :data:`TMP_PREFIX` (files being written, directories being
built) or :data:`OLD_PREFIX` (a replaced directory awaiting deletion), so that a crash's
leftovers can be recognised and removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's entry to disk (a directory: its list of names)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Make the file ``path`` contain exactly ``data``; its parent directory must exist."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)  # the rename itself must survive a power cut


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """:func:`write_bytes_atomic` for text."""
    write_bytes_atomic(path, text.encode(encoding))


@contextmanager
def staged_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``path`` to fill; on success it replaces ``path``.

    When the ``with`` body raises, the temporary directory is deleted and ``path`` (if it
    existed) is left untouched. The parent of ``path`` is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=path.parent))
    try:
        yield staging
        _fsync_tree(staging)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{OLD_PREFIX}{path.name}-", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(staging, path)
            shutil.rmtree(old)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_path(path.parent)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (directories after their contents)."""
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(Path(directory) / name)
        fsync_path(Path(directory))
