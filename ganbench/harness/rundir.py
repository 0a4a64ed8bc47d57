"""The run directory: its layout, its lock, and the one way ganbench writes a file.

Every file ganbench writes (tables, config.json, checkpoints, sample grids, and the caches
under the cache directory) goes through :func:`atomic_write`: the content is written to a
hidden temporary file beside the target, flushed to disk, then renamed over the target. A
process killed at any moment leaves either the old file or the new one, never half a file;
a leftover temporary file is ignored and removed by the next run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganbench.errors import UsageError, describe
from ganbench.files import (  # noqa: F401 - the one way a file is written, re-exported for the harness
    TMP_MARKER,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    remove_dead_temporaries,
    temporary_path,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# --- layout -----------------------------------------------------------------------------------

CONFIG_JSON = "config.json"
METRICS_CSV = "metrics.csv"
METRICS_PARQUET = "metrics.parquet"
SUMMARY_CSV = "summary.csv"
PER_CLASS_CSV = "per_class.csv"
TRAIN_LOG_CSV = "train_log.csv"
JOBS_CSV = "jobs.csv"
SAMPLING_TABLE = "sampling"  # sampling.csv (--resample): a table of the writer, like the probes' tables
SAMPLES_DIR = "samples"
CHECKPOINTS_DIR = "checkpoints"
PROBES_DIR = "probes"
LOCK_FILE = ".lock"
# config.json's "format": what tells a ganbench run from a folder that merely holds a config.json.
RUN_FORMAT = "ganbench-run/1"
ACCEPTED_OUT = "accepted: a new or empty directory, or a ganbench run to resume"


def job_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}"


class RunDir:
    """Where everything of one run lives; the only code that knows the file names."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def config(self) -> Path:
        return self.path / CONFIG_JSON

    def table(self, name: str) -> Path:
        return self.path / name

    def checkpoint(self, variant: str, seed: int) -> Path:
        return self.path / CHECKPOINTS_DIR / f"{job_name(variant, seed)}.pt"

    def sample_grid(self, variant: str, seed: int) -> Path:
        return self.path / SAMPLES_DIR / f"{job_name(variant, seed)}.png"

    def probe_picture(self, variant: str, seed: int, probe: str, name: str) -> Path:
        """A probe's picture (a steering strip): ``probes/<variant>-seed<k>/<probe>/<name>``, a
        folder per probe, so that two probes' pictures never share a name and the report shows
        each under its own probe."""
        if Path(name).name != name or name.startswith("."):
            raise ValueError(f"a probe's picture needs a plain file name, got {name!r}")
        return self.path / PROBES_DIR / job_name(variant, seed) / probe / name

    def relative(self, path: Path) -> str:
        return path.relative_to(self.path).as_posix()

    def remove_stale_temporaries(self) -> list[Path]:
        """Temporary files of a killed writer: never trusted, removed (only while holding the lock)."""
        stale = sorted(self.path.rglob(f".*{TMP_MARKER}*"))
        for p in stale:
            p.unlink(missing_ok=True)
        return stale


# --- what --out holds --------------------------------------------------------------------------


def _is_ours(name: str) -> bool:
    return name == LOCK_FILE or (name.startswith(".") and TMP_MARKER in name)


def read_record(path: Path) -> dict | None:
    """config.json of a ganbench run, or None when it is not one (missing, unreadable, foreign)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(record, dict) and record.get("format") == RUN_FORMAT and isinstance(record.get("run"), dict):
        return record
    return None


def run_options(run_dir: Path | str) -> dict[str, Any]:
    """The options of the run in ``run_dir`` (``--resume``), as ``RunConfig.from_mapping`` takes them."""
    path = Path(run_dir)
    record = read_record(path / CONFIG_JSON)
    if record is None:
        raise UsageError(f"--resume {path}: no ganbench run there (no readable {CONFIG_JSON} of a run)")
    return {**record["run"], "out": str(path)}


def inspect_out(path: Path) -> dict | None:
    """What ``--out`` holds: None when it is absent or empty (a new run), the run's config.json
    record when it is a ganbench run. Anything else is refused before anything is written."""
    if not path.exists():
        if path.is_symlink():
            raise UsageError(f"--out {path} is a broken symbolic link; {ACCEPTED_OUT}")
        return None
    if not path.is_dir():
        raise UsageError(f"--out {path} is a file, not a directory; {ACCEPTED_OUT}")
    try:
        names = sorted(p.name for p in path.iterdir() if not _is_ours(p.name))
    except OSError as exc:
        raise UsageError(f"--out {path} cannot be read ({exc.strerror}); {ACCEPTED_OUT}") from None
    if not names:
        return None  # empty, or left by a run killed before it wrote anything
    record = read_record(path / CONFIG_JSON) if CONFIG_JSON in names else None
    if record is not None:
        return record
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    raise UsageError(f"--out {path} already holds files that are not a ganbench run ({shown}); {ACCEPTED_OUT}")


# --- the lock -----------------------------------------------------------------------------------


def _holder() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process (it has not said which yet)"
    return f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('started')}"


class RunLock:
    """An exclusive advisory lock on ``<run>/.lock`` (flock): held while a process writes the
    run. The kernel releases it when the holder dies, so a lock left by a killed process is
    simply taken over; the file's content names the holder for whoever is refused."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _read(self, fd: int) -> dict[str, Any] | None:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 1 << 16).decode("utf-8", "replace").strip()
        try:
            holder = json.loads(text) if text else None
        except json.JSONDecodeError:
            return None
        return holder if isinstance(holder, dict) else None

    def acquire(self) -> dict[str, Any] | None:
        """Take the lock; return the previous (dead) holder's record if it left one. Raise
        UsageError naming the holder when a live process holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(
                f"cannot write to run directory {self.path.parent} ({exc.strerror}); choose another --out"
            ) from None
        try:
            _lock(fd)
        except OSError:
            holder = self._read(fd)
            for _ in range(20):  # the holder writes its name right after it takes the lock
                if holder:
                    break
                time.sleep(0.1)
                holder = self._read(fd)
            os.close(fd)
            raise UsageError(
                f"run directory {self.path.parent} is in use by {describe_holder(holder)}; "
                "wait for that run to finish, or choose another --out"
            ) from None
        previous = self._read(fd)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(_holder()) + "\n").encode())
        os.fsync(fd)
        self._fd = fd
        return previous

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # no stale name for the next reader; the file itself stays
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # pragma: no cover - Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


@contextmanager
def opened(path: Path, marker: str = CONFIG_JSON) -> Iterator[RunDir]:
    """Create ``path`` if needed and hold its lock. A directory this call created is removed
    again if the run stops before it writes its ``marker`` file (config.json), so a failed
    start leaves nothing."""
    rundir = RunDir(path)
    created = False
    new_parents = []  # folders above path this call creates (results/ on a first run), innermost first
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        new_parents.append(parent)
        parent = parent.parent
    try:
        path.mkdir(parents=True)
        created = True
    except FileExistsError:
        if not path.is_dir():
            raise UsageError(f"--out {path} is a file, not a directory; {ACCEPTED_OUT}") from None
    except OSError as exc:
        raise UsageError(f"cannot create run directory {path} ({exc.strerror}); choose a writable --out") from None
    lock = RunLock(path / LOCK_FILE)
    try:
        previous = lock.acquire()
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
            _remove_empty(new_parents)
        raise
    try:
        if previous and previous.get("pid") != os.getpid():
            log.warning("took over the lock of %s, which no longer holds it", describe_holder(previous))
        for stale in rundir.remove_stale_temporaries():
            log.info("removed %s, left half-written by a stopped run", stale)
        yield rundir
    finally:
        if created and not (path / marker).exists():
            (path / LOCK_FILE).unlink(missing_ok=True)
            shutil.rmtree(path, ignore_errors=True)
            _remove_empty(new_parents)
        lock.release()


def _remove_empty(folders: list[Path]) -> None:
    """Remove these folders, innermost first, each only while it is empty (another run may
    have started in one meanwhile)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


# --- tables.json: what the writer wrote -----------------------------------------------------------

TABLES_JSON = "tables.json"
TABLES_FORMAT = "ganbench-tables/1"
_SHA256_HEX = frozenset("0123456789abcdef")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _valid_version(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("sha256"), str)
        and len(value["sha256"]) == 64
        and set(value["sha256"]) <= _SHA256_HEX
        and isinstance(value.get("rows"), int)
        and not isinstance(value.get("rows"), bool)
        and value["rows"] >= 0
    )


def read_manifest(run_dir: Path | str) -> dict[str, dict[str, Any]] | None:
    """``tables.json`` of a run: ``{table file name: entry}``, or None when the run has none (it was
    written before ganbench recorded its tables). An entry is ``{"sha256", "rows"}`` of the table's
    content, plus ``"previous"`` while a new version is being written: the version it replaces
    (``null``: the table did not exist yet). Either version is the table, whole.

    Raises ValueError (one line) when the file exists but is not such a record."""
    path = Path(run_dir) / TABLES_JSON
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or describe(exc)})") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"is not JSON ({type(exc).__name__})") from None
    tables = record.get("tables") if isinstance(record, dict) else None
    if not isinstance(tables, dict) or record.get("format") != TABLES_FORMAT:
        raise ValueError(f"is not a {TABLES_FORMAT} record")
    for name, entry in record["tables"].items():
        previous = entry.get("previous") if isinstance(entry, dict) else None
        if not _valid_version(entry) or not (previous is None or _valid_version(previous)):
            raise ValueError(f"has a malformed entry for {name!r}")
    return record["tables"]


def manifest_accepts(entry: dict[str, Any], data: bytes | None) -> dict[str, Any] | None:
    """The version of ``entry`` that ``data`` is (None: neither). ``data`` None is an absent file,
    accepted only while the table's first version is being written (``"previous": null``)."""
    if data is None:
        return {"sha256": None, "rows": 0} if "previous" in entry and entry["previous"] is None else None
    digest = sha256_hex(data)
    for version in (entry, entry.get("previous") or {}):
        if version.get("sha256") == digest:
            return {"sha256": digest, "rows": version["rows"]}
    return None


def write_manifest(run_dir: Path | str, tables: dict[str, dict[str, Any]]) -> None:
    record = {"format": TABLES_FORMAT, "tables": {name: tables[name] for name in sorted(tables)}}
    atomic_write_text(Path(run_dir) / TABLES_JSON, json.dumps(record, indent=1) + "\n")
