import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ganbench.errors import UsageError
from ganbench.harness import rundir as R


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("old")
    R.atomic_write_text(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("old")

    def half_then_fail(tmp):
        tmp.write_text("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        R.atomic_write(path, half_then_fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    stale = tmp_path / "checkpoints" / f".a-seed0.pt{R.TMP_MARKER}123-abcd"
    stale.write_bytes(b"half")
    keep = tmp_path / "checkpoints" / "a-seed0.pt"
    keep.write_bytes(b"whole")
    assert R.RunDir(tmp_path).remove_stale_temporaries() == [stale]
    assert not stale.exists() and keep.exists()


def test_an_absent_or_empty_out_is_a_new_run(tmp_path):
    assert R.inspect_out(tmp_path / "absent") is None
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / R.LOCK_FILE).write_text("")  # left by a run killed before it wrote anything
    assert R.inspect_out(tmp_path / "empty") is None


def test_a_run_directory_is_recognised_by_its_config_format(tmp_path):
    record = {"format": R.RUN_FORMAT, "run": {"variants": ["cgan"]}}
    (tmp_path / R.CONFIG_JSON).write_text(json.dumps(record))
    assert R.inspect_out(tmp_path) == record


@pytest.mark.parametrize(
    "files, message",
    [
        ({"config.json": '{"lr": 1}'}, "already holds files that are not a ganbench run (config.json)"),
        ({"notes.txt": "mine"}, "already holds files that are not a ganbench run (notes.txt)"),
        ({"config.json": "{not json"}, "already holds files that are not a ganbench run (config.json)"),
    ],
)
def test_a_folder_that_is_not_a_run_is_refused(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UsageError, match="accepted: a new or empty directory, or a ganbench run to resume") as err:
        R.inspect_out(tmp_path)
    assert message in str(err.value)


def test_a_file_is_not_a_run_directory(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        R.inspect_out(path)


def test_a_second_lock_is_refused_naming_the_holder(tmp_path):
    first = R.RunLock(tmp_path / R.LOCK_FILE)
    first.acquire()
    try:
        with pytest.raises(UsageError) as err:
            R.RunLock(tmp_path / R.LOCK_FILE).acquire()
        assert f"is in use by pid {os.getpid()} on host " in str(err.value) and "\n" not in str(err.value)
    finally:
        first.release()
    second = R.RunLock(tmp_path / R.LOCK_FILE)
    assert second.acquire() is None  # released: free, and no stale holder named
    second.release()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from ganbench.harness.rundir import RunLock
        RunLock(Path({str(tmp_path / R.LOCK_FILE)!r})).acquire()
        print(os.getpid(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == -signal.SIGKILL
    dead = int(out.stdout)
    lock = R.RunLock(tmp_path / R.LOCK_FILE)
    previous = lock.acquire()
    assert previous["pid"] == dead
    lock.release()


def test_opened_creates_locks_and_removes_a_directory_that_never_got_its_config(tmp_path):
    path = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with R.opened(path) as rundir:
            assert (path / R.LOCK_FILE).exists() and rundir.path == path
            raise RuntimeError("failed before config.json")
    assert not path.exists()


def test_opened_keeps_a_directory_it_did_not_create(tmp_path):
    with pytest.raises(RuntimeError):
        with R.opened(tmp_path):
            raise RuntimeError("failed")
    assert tmp_path.is_dir()


def test_opened_refuses_a_path_it_cannot_create(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="cannot create run directory .*; choose a writable --out"):
        with R.opened(tmp_path / "file" / "run"):
            pass
