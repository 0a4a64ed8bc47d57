"""A real ``ganbench run`` killed with SIGKILL at many moments and resumed writes the same
metrics.csv, timing columns aside, as a run that was never interrupted (steps budget, CPU)."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from ganbench import columns as C
from ganbench.harness.rundir import TMP_MARKER

# On one xdist worker: the module fixture (one whole run) is built once, not once per worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("resume")]


@pytest.fixture(scope="module")
def run_args(cache_dir):
    """Two jobs, three evaluations each, small evaluations: every moment below happens in it."""
    return [
        "run", "--variants", "cgan,acgan", "--budget", "6steps", "--evals", "3", "--eval-samples", "100",
        "--log-every", "2", "--device", "cpu", "--no-download", "--cache-dir", cache_dir, "--resample",
        # every probe, small: its columns, tables and pictures are part of what must come out the same
        "--set", "steering.latents=4", "--set", "path-length.samples=50", "--set", "label-swap.latents=5",
        "--set", "cas.samples=200", "--set", "cas.epochs=1", "--set", "memorisation.samples=100",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(run_args, tmp_path_factory, ganbench_command):
    out = tmp_path_factory.mktemp("whole") / "run"
    done = subprocess.run([*ganbench_command, *map(str, run_args), "--out", out], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def tables(out):
    metrics = pd.read_csv(out / "metrics.csv").drop(columns=list(C.TIMING_COLUMNS))
    log = pd.read_csv(out / "train_log.csv").drop(columns=[C.TRAIN_SECONDS])
    probes = [pd.read_csv(out / name) for name in ("steering.csv", "label_swap.csv")]
    # the final evaluation scored again on an independent draw of latents (--resample)
    sampling = pd.read_csv(out / "sampling.csv").drop(columns=[C.EVAL_SECONDS])
    assert sampling.draw.tolist() == [0, 1, 0, 1]
    return metrics, pd.read_csv(out / "per_class.csv"), log, pd.read_csv(out / "jobs.csv"), *probes, sampling


def assert_same_run(out, uninterrupted):
    for ours, theirs in zip(tables(out), tables(uninterrupted)):
        pd.testing.assert_frame_equal(ours, theirs)
    assert not [p for p in out.rglob("*") if TMP_MARKER in p.name]  # no half-written file survives
    for path in (out / "checkpoints").iterdir():  # every checkpoint is whole
        assert torch.load(path, weights_only=True)["trainer"]["state"]["finished"]
    for picture in (
        "samples/cgan-seed0.png",
        "samples/acgan-seed0.png",
        "probes/acgan-seed0/steering/steering-ink.png",
    ):
        assert (out / picture).read_bytes() == (uninterrupted / picture).read_bytes()


MOMENTS = {
    "mid-training, before the first checkpoint": "batch:5",
    "mid-way through writing a checkpoint": "replace:cgan-seed0.pt:2",
    "mid-way through writing metrics.csv": "replace:metrics.csv:4",
    "after an evaluation, before its row is written": "evaluation:4",
    "mid-way through writing a sample grid": "replace:cgan-seed0.png:1",
    "between a job's last checkpoint and its end": "replace:jobs.csv:3",
    "in the second job's training": "batch:9",
}


@pytest.mark.parametrize("moment", MOMENTS.values(), ids=MOMENTS.keys())
def test_killed_and_resumed_equals_uninterrupted(moment, run_args, uninterrupted, tmp_path, fixtures_dir, ganbench_cli):
    out = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, fixtures_dir / "kill_at.py", moment, "--", *map(str, run_args), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = ganbench_cli("run", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(out, uninterrupted)


def test_killed_before_it_wrote_anything_and_run_again(run_args, uninterrupted, tmp_path, fixtures_dir, ganbench_cli):
    out = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, fixtures_dir / "kill_at.py", "replace:config.json:1", "--", *map(str, run_args), "--out", out],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL
    assert sorted(p.name for p in out.iterdir() if TMP_MARKER not in p.name) == [".lock"]
    again = ganbench_cli(*run_args, "--out", out)  # the same command again, not --resume
    assert again.returncode == 0, again.stderr
    assert_same_run(out, uninterrupted)


def test_killed_from_outside_and_the_same_command_run_again(
    run_args, uninterrupted, tmp_path, ganbench_cli, ganbench_command
):
    out = tmp_path / "run"
    process = subprocess.Popen([*ganbench_command, *map(str, run_args), "--out", str(out)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "train_log.csv").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    again = ganbench_cli(*run_args, "--out", out)
    assert again.returncode == 0, again.stderr
    assert_same_run(out, uninterrupted)
