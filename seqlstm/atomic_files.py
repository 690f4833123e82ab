"""Atomic writes: a crash leaves either the old file (or directory) or the new one, never half.

A file is written to a temporary sibling, fsynced and renamed over the target with
``os.replace``, which is atomic on POSIX and Windows. A directory is built in a temporary
sibling (:func:`staged_directory`), fsynced file by file, and swapped into place; since
``os.replace`` cannot rename onto a non-empty directory, an old target is first renamed
aside and deleted after the swap, so only the instant between the two renames has no
target at all.

Temporary names start with :data:`TMP_PREFIX` (files being written, directories being
built), :data:`OLD_PREFIX` (a replaced directory awaiting deletion) or
:data:`DELETING_PREFIX` (a directory being deleted by :func:`delete_directory`), so that a
crash's leftovers can be recognised, and removed by :func:`remove_temporaries`: a directory
is renamed aside before it is deleted, so a half-deleted one never keeps its name.

One writer per directory: :func:`lock_directory` takes an exclusive ``flock`` on the file
``DIRECTORY/.lock`` and keeps it open until released. The operating system drops the lock
when the process ends in any way (``kill -9`` too), so a crash never leaves a stale lock;
the file itself stays, with the last holder's pid, host and start time, which a refused
writer names. Within one process the lock is re-entrant. ``flock`` is advisory: it holds
between processes of one machine on local file systems (on NFS only where the client maps
it to NFS locks, as Linux does). Where ``fcntl`` is missing (Windows) nothing is locked
and a warning is logged.

Permissions are those of a plain ``open(path, "w")`` or ``mkdir``: the temporaries are created
with mode 0o666 (files) or 0o777 (directories) less the process umask, so a model saved under
umask 022 is readable by other users, as ``tempfile.mkstemp``/``mkdtemp`` (always 0o600/0o700)
would not allow; and the files a writer puts in a staged directory get at least the
permissions of a plain ``open`` (safetensors' ``save_file`` makes its files 0o600).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import secrets
import shutil
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from seqlstm.errors import CheckpointError

try:
    import fcntl
except ImportError:  # Windows: no flock (see the module docstring)
    fcntl = None

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
DELETING_PREFIX = ".deleting-"
LOCK_FILE = ".lock"
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


def delete_directory(path: str | os.PathLike) -> None:
    """Delete the directory tree ``path``; a crash part-way leaves it whole or gone from
    ``path``: it is renamed to a :data:`DELETING_PREFIX` sibling (atomic) before the files
    are deleted, so a half-deleted tree is never found under its own name."""
    path = Path(path)
    _, aside = _create_unique(path.parent, f"{DELETING_PREFIX}{path.name}-", _create_directory)
    os.replace(path, aside / path.name)
    fsync_path(path.parent)  # the rename reaches the disk before any file is deleted
    shutil.rmtree(aside)


def remove_temporaries(directory: str | os.PathLike) -> list[str]:
    """Delete the leftovers of interrupted atomic writes and deletions in ``directory`` (its
    entries named :data:`TMP_PREFIX`, :data:`OLD_PREFIX` or :data:`DELETING_PREFIX` ...);
    returns their names, sorted. Only safe while no other process writes there (hold
    :func:`lock_directory`)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for entry in sorted(directory.iterdir()):
        if not entry.name.startswith((TMP_PREFIX, OLD_PREFIX, DELETING_PREFIX)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


class DirectoryInUseError(CheckpointError):
    """Another process holds the lock of a directory it writes to (:func:`lock_directory`)."""


class DirectoryLock:
    """An exclusive lock on a directory, held from :func:`lock_directory` until
    :meth:`release` (or the end of a ``with`` block, or of the process)."""

    def __init__(self, path: Path, key: tuple[int, int] | None) -> None:
        self.path = path  # the lock file
        self._key = key  # its entry in _HELD; None once released, or where nothing is locked

    @property
    def held(self) -> bool:
        return self._key is not None

    def release(self) -> None:
        """Drop this hold (a second call does nothing). When it was the process's last one
        the lock is released, and the holder record cleared first, so that after a clean
        exit the file names nobody."""
        key, self._key = self._key, None
        if key is None:
            return
        with _HELD_GUARD:
            entry = _HELD[key]
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[key]
        try:
            os.ftruncate(entry[0], 0)
        finally:
            os.close(entry[0])  # closing the descriptor releases the flock

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:  # a hold dropped without release (a run that raised)
        if getattr(self, "_key", None) is not None:
            self.release()


# The locks this process holds: (st_dev, st_ino) of the lock file -> [descriptor, holds].
# Within one process the lock is re-entrant, so that a run started again in the same process
# (a test, a notebook) is not refused by what an earlier, failed one still holds.
_HELD: dict[tuple[int, int], list[int]] = {}
_HELD_GUARD = threading.Lock()


def lock_directory(directory: str | os.PathLike) -> DirectoryLock:
    """Make this process the one writer of ``directory`` (created if needed) until the
    returned lock is released; see the module docstring. Re-entrant within a process: every
    hold must be released (or dropped) before another process can take the lock.

    Raises DirectoryInUseError (a CheckpointError) at once, without waiting, when another
    process holds it, naming the directory and the holder's pid, host and start time.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    if fcntl is None:
        logger.warning("no fcntl on this platform: %s is not locked against other runs", directory)
        return DirectoryLock(path, None)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    info = os.fstat(fd)
    key = (info.st_dev, info.st_ino)
    with _HELD_GUARD:
        if key in _HELD:  # this process holds it already
            os.close(fd)
            _HELD[key][1] += 1
            return DirectoryLock(path, key)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:  # BlockingIOError: somebody holds it; other errors: say so too
            holder = _describe_holder(os.pread(fd, 4096, 0))
            os.close(fd)
            if not isinstance(err, BlockingIOError):
                raise CheckpointError(f"cannot lock {directory} ({path}): {err}") from err
            raise DirectoryInUseError(
                f"{directory} is in use by another run ({holder}); wait for it to end or "
                "choose another output directory"
            ) from None
        _HELD[key] = [fd, 1]
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    return DirectoryLock(path, key)


def _describe_holder(content: bytes) -> str:
    """``pid N on HOST, started TIME`` from a lock file's record, or why it cannot say."""
    try:
        record = json.loads(content.decode())
        return f"pid {record['pid']} on {record['host']}, started {record['started']}"
    except (ValueError, KeyError, TypeError):
        return "holder not recorded yet"
