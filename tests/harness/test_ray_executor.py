"""The Ray executor: the same tables as the local one, a dead worker fails its job only, and a
missing Ray is one line of bad input."""

import os
import signal
import sys
import time

import pandas as pd
import pytest
import torch

import ganbench
from ganbench import columns as C
from ganbench.errors import UsageError
from ganbench.harness.rundir import JOBS_CSV, METRICS_CSV, TRAIN_LOG_CSV


@pytest.fixture
def one_thread():
    """This process's torch with the thread count of a Ray job with one CPU: CPU results may
    depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tables(out):
    metrics = pd.read_csv(out / METRICS_CSV)
    metrics = metrics.drop(columns=[c for c in C.TIMING_COLUMNS if c in metrics])
    log = pd.read_csv(out / TRAIN_LOG_CSV).drop(columns=[C.TRAIN_SECONDS])
    return metrics, log, pd.read_csv(out / JOBS_CSV)


@pytest.mark.slow
def test_a_ray_run_writes_the_same_tables_as_a_local_run(ray_instance, one_thread, run_kwargs, tmp_path):
    jobs = dict(run_kwargs, variants="dcgan,cgan", seeds=(0, 1), log_every=5)
    ray_run = ganbench.run(**{**jobs, "out": tmp_path / "ray"}, executor="ray", cpus_per_job=1)
    local_run = ganbench.run(**{**jobs, "out": tmp_path / "local"}, executor="local")
    assert (local_run.jobs[C.STATUS] == C.STATUS_OK).all() and len(local_run.jobs) == 4
    for ours, theirs in zip(tables(ray_run.run_dir), tables(local_run.run_dir)):
        pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    checkpoints = sorted(p.name for p in (ray_run.run_dir / "checkpoints").iterdir())
    assert checkpoints == ["cgan-seed0.pt", "cgan-seed1.pt", "dcgan-seed0.pt", "dcgan-seed1.pt"]


@pytest.mark.slow
@pytest.mark.parametrize("resume_with", ["local", "ray"])
def test_a_killed_worker_fails_its_job_only_and_resume_completes_it(
    ray_instance, run_kwargs, fixtures_dir, tmp_path, resume_with
):
    marker = tmp_path / "die"
    marker.touch()
    kwargs = dict(
        run_kwargs,
        variants="dying-gan,dcgan",
        seeds=(0, 1),
        plugin=[fixtures_dir / "plugin_dying.py"],
        log_every=5,
        set={"dying-gan": {"die_at": 15, "marker": str(marker)}},  # after the checkpoint at step 10
    )
    first = ganbench.run(**kwargs, executor="ray")
    jobs = first.jobs.set_index([C.VARIANT, C.SEED])
    failed = jobs[jobs[C.STATUS] != C.STATUS_OK]
    assert not marker.exists() and len(failed) == 1 and failed.index[0][0] == "dying-gan"
    assert failed[C.STATUS].iloc[0] == C.STATUS_FAILED and failed[C.NOTE].iloc[0].startswith("worker died")
    assert "\n" not in failed[C.NOTE].iloc[0]
    variant, seed = failed.index[0]
    rows = first.metrics[(first.metrics[C.VARIANT] == variant) & (first.metrics[C.SEED] == seed)]
    assert rows[C.STATUS].tolist() == [C.STATUS_OK, C.STATUS_FAILED] and rows[C.STEP].tolist() == [10, 10]
    resumed = ganbench.run(resume=first.run_dir, executor=resume_with)
    assert (resumed.jobs[C.STATUS] == C.STATUS_OK).all() and len(resumed.jobs) == 4
    rows = resumed.metrics[(resumed.metrics[C.VARIANT] == variant) & (resumed.metrics[C.SEED] == seed)]
    assert rows[C.STEP].tolist() == [10, 20] and rows[C.FID_DOMAIN].notna().all()


@pytest.mark.slow
def test_ctrl_c_cancels_the_ray_tasks_and_records_the_running_jobs_interrupted(
    tmp_path, cache_dir, start_interruptible
):
    out = tmp_path / "run"
    args = ["run", "--variants", "dcgan,cgan", "--budget", "2000steps", "--evals", "200", "--eval-samples", "100",
            "--metrics", "class-consistency", "--device", "cpu", "--no-download", "--cache-dir", str(cache_dir),
            "--executor", "ray", "--out", str(out)]  # fmt: skip
    process = start_interruptible(*args)
    try:  # interrupted once both jobs have written a row (an evaluation every 10 steps)
        deadline = time.monotonic() + 300
        while not (out / METRICS_CSV).exists() or not {"dcgan", "cgan"} <= set(pd.read_csv(out / METRICS_CSV).variant):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    jobs = pd.read_csv(out / JOBS_CSV)
    assert jobs[C.STATUS].tolist() == ["interrupted", "interrupted"] and (jobs[C.STEP] > 0).all()
    last = pd.read_csv(out / METRICS_CSV).groupby(C.VARIANT).tail(1).set_index(C.VARIANT)
    assert last.loc[["dcgan", "cgan"], C.STATUS].tolist() == ["interrupted", "interrupted"]


def test_without_ray_the_ray_executor_is_one_line_naming_the_extra(monkeypatch, run_kwargs):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    with pytest.raises(UsageError, match=r"pip install 'ganbench\[ray\]'") as caught:
        ganbench.run(variants="dcgan", executor="ray", **run_kwargs)
    assert "\n" not in str(caught.value)
    assert not run_kwargs["out"].exists()  # refused before anything was written


@pytest.mark.parametrize(
    "option, value, accepted",
    [("executor", "dask", "local, ray"), ("cpus_per_job", 0, "> 0"), ("gpus_per_job", -1, ">= 0")],
)
def test_bad_executor_options_are_refused(option, value, accepted, run_kwargs):
    with pytest.raises(UsageError, match=accepted):
        ganbench.run(variants="dcgan", **{option: value}, **run_kwargs)
