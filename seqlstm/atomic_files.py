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

Permissions are those of a plain ``open(path, "w")`` or ``mkdir``: the temporaries are created
with mode 0o666 (files) or 0o777 (directories) less the process umask, so a model saved under
umask 022 is readable by other users, as ``tempfile.mkstemp``/``mkdtemp`` (always 0o600/0o700)
would not allow; and the files a writer puts in a staged directory get at least the
permissions of a plain ``open`` (safetensors' ``save_file`` makes its files 0o600).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from seqlstm.errors import CheckpointError

_T = TypeVar("_T")

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
_NAME_ATTEMPTS = 100  # random names tried before giving up, as tempfile does


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
    fd, tmp = _create_unique(path.parent, f"{TMP_PREFIX}{path.name}-", _create_file)
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


def refuse_foreign_directory(directory: Path, marker: str, what: str) -> None:
    """CheckpointError unless `directory` is absent, empty, or `what` (it holds `marker`):
    a wrong output path never replaces other files."""
    if (
        directory.exists()
        and not (directory / marker).is_file()
        and (not directory.is_dir() or any(directory.iterdir()))
    ):
        raise CheckpointError(
            f"{directory} exists and is not {what} (no {marker}); refusing to overwrite it"
        )


@contextmanager
def staged_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``path`` to fill; on success it replaces ``path``.

    When the ``with`` body raises, the temporary directory is deleted and ``path`` (if it
    existed) is left untouched. The parent of ``path`` is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _, staging = _create_unique(path.parent, f"{TMP_PREFIX}{path.name}-", _create_directory)
    try:
        yield staging
        _settle_tree(staging)
        if path.exists():
            _, old = _create_unique(path.parent, f"{OLD_PREFIX}{path.name}-", _create_directory)
            os.replace(path, old / path.name)
            os.replace(staging, path)
            shutil.rmtree(old)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_path(path.parent)


def _settle_tree(root: Path) -> None:
    """Give every file under ``root`` at least the permissions a plain ``open`` gives, then
    fsync every file and directory (directories after their contents)."""
    file_mode = stat.S_IMODE(root.stat().st_mode) & 0o666  # root was made 0o777 less the umask
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            path = Path(directory) / name
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode) and stat.S_IMODE(mode) & file_mode != file_mode:
                os.chmod(path, stat.S_IMODE(mode) | file_mode)
            fsync_path(path)
        fsync_path(Path(directory))


def _create_file(path: Path) -> int:
    """Create ``path`` (it must not exist) for writing; the umask applies, as for ``open``."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def _create_directory(path: Path) -> None:
    """Create the directory ``path`` (it must not exist); the umask applies, as for ``mkdir``."""
    os.mkdir(path, 0o777)


def _create_unique(parent: Path, prefix: str, create: Callable[[Path], _T]) -> tuple[_T, Path]:
    """``create`` a new entry of ``parent`` named ``prefix`` + a random suffix; returns what
    ``create`` returned and the path. Unlike ``tempfile``, which creates its files 0o600 and
    its directories 0o700, the umask decides the permissions."""
    for _ in range(_NAME_ATTEMPTS):
        candidate = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            return create(candidate), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: no free temporary name starting with {prefix!r}")
