"""The one way ganbench writes a file, below every other module (evaluation caches, the
harness's run directories, reports, plugins' pictures all use it).

:func:`atomic_write` writes the content to a hidden temporary file beside the target, flushes
it to disk, then renames it over the target: a process killed at any moment leaves either the
old file or the new one, never half a file; a leftover temporary file is ignored, and removed by
the next run (:meth:`ganbench.harness.rundir.RunDir.remove_stale_temporaries`) or report
(:func:`remove_dead_temporaries`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_SHA256_HEX = frozenset("0123456789abcdef")

TMP_MARKER = ".tmp-"


def temporary_path(path: Path) -> Path:
    """A hidden, unique temporary name in ``path``'s directory (same file system: rename is atomic)."""
    return path.with_name(f".{path.name}{TMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def atomic_write(path: Path | str, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` to write the content to a temporary file, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # the data reaches the disk before the name does
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    atomic_write(path, lambda p: p.write_bytes(data))


# --- temporaries left by killed processes ----------------------------------------------------------


def _temporary_owner(name: str) -> int | None:
    """The pid in a name :func:`temporary_path` made, else None."""
    if not name.startswith(".") or TMP_MARKER not in name:
        return None
    pid, _, tag = name.rpartition(TMP_MARKER)[2].partition("-")
    if not pid.isdigit() or len(tag) != 8 or not set(tag) <= _SHA256_HEX:
        return None
    return int(pid)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def remove_dead_temporaries(folder: Path) -> list[Path]:
    """Temporary files left in ``folder`` (not below it) by a ganbench process that no longer
    runs (a killed report): removed. A live process's are left to it; other files are never touched."""
    stale = []
    try:
        entries = list(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return stale
    for p in sorted(entries):
        pid = _temporary_owner(p.name)
        if pid is not None and not _alive(pid) and p.is_file():
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            stale.append(p)
    return stale


@contextmanager
def build_lock(path: Path | str) -> Iterator[None]:
    """Hold an exclusive lock named after ``path`` (``.<name>.lock`` beside it) while checking
    for, or building, a cached file: two runs sharing a cache (or two test workers) build it
    once, the second waits and then loads it. The kernel releases the lock if its holder dies.
    Where the folder cannot be written (or locks do not exist) the build simply goes unlocked."""
    path = Path(path)
    fd = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        if fd is not None:
            os.close(fd)
        fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the lock
