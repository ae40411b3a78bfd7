"""Atomic file writes: a reader sees the old file or the new one, never half of either (models and io use them).

Temporary files are created with mode 0o666 filtered by the process umask, as ``open()`` creates
files, so the renamed result gets the permissions the user expects (``tempfile.mkstemp`` would
make every file 0o600).
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _create_beside(target: Path) -> Path:
    """Create an empty temporary file next to ``target`` (umask-filtered 0o666) and return its path."""
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, _CREATE_FLAGS, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success, fsync it and rename it over ``path``.

    If the body raises, the temporary file is removed and ``path`` is left as it was.

    Args:
        path: The file to write.

    Yields:
        The temporary path to write to.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_beside(target)
    mode = stat.S_IMODE(tmp.stat().st_mode)
    try:
        yield tmp
        if stat.S_IMODE(tmp.stat().st_mode) != mode:  # a writer that replaced the file (safetensors does)
            os.chmod(tmp, mode)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_directory(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` and move the result over ``path`` atomically.

    Args:
        path: The file to write.
        write: Writes the whole file at the path it is given.
    """
    with atomic_path(path) as tmp:
        write(tmp)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically.

    Args:
        path: The file to write.
        text: UTF-8 content.
    """
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def check_writable(directory: str | os.PathLike[str]) -> None:
    """Create ``directory`` if needed and check that files can be created in it.

    Args:
        directory: The directory.

    Raises:
        OSError: If the directory cannot be created, is not a directory, or is not writable.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    _create_beside(folder / "write-check").unlink()
