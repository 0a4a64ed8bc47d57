"""ganbench.files: atomic writes, and one build of a cached file when two processes want it."""

import subprocess
import sys
import textwrap

import pytest

from ganbench.files import atomic_write_text, build_lock

BUILD = textwrap.dedent(
    """
    import sys, time, torch
    from pathlib import Path
    from ganbench.evaluation import cache

    target, log = Path(sys.argv[1]), Path(sys.argv[2])

    def build():
        with open(log, "a") as f:
            f.write("built\\n")
        time.sleep(1.0)  # long enough for the other process to arrive while this one builds
        return {"x": torch.arange(3)}

    tensors = cache.load_or_build(target, {"kind": "test"}, build)
    print(tensors["x"].tolist())
    """
)


def test_two_processes_build_a_missing_cache_file_once(tmp_path):
    script = tmp_path / "build.py"
    script.write_text(BUILD)
    target, log = tmp_path / "cache" / "x.pt", tmp_path / "log.txt"
    processes = [
        subprocess.Popen([sys.executable, script, target, log], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    assert outputs == ["[0, 1, 2]", "[0, 1, 2]"]
    assert log.read_text() == "built\n"  # the second waited for the first and loaded its file


def test_a_lock_in_an_unwritable_place_does_not_stop_the_build(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with build_lock(blocker / "inside" / "x.pt"):  # its folder cannot be made: the build goes on unlocked
        pass


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "table.csv"
    atomic_write_text(target, "old")

    def failing(path):
        path.write_text("half")
        raise RuntimeError("killed")

    from ganbench.files import atomic_write

    with pytest.raises(RuntimeError):
        atomic_write(target, failing)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
