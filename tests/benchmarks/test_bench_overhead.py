"""Harness overhead: the share of a job's wall-clock spent outside training steps and evaluation
(building the variant, progress, logging, checkpoints, writing rows). Training steps and
evaluation calls are timed from the outside; the rest of ``Job.run`` is overhead. Reported in
the benchmark's extra_info and on stdout (``-s``):

    python -m pytest tests/benchmarks/test_bench_overhead.py --benchmark-enable -s
"""

import time
from collections import defaultdict

import pytest

import ganbench
from ganbench.adversarial import AdversarialVariant
from ganbench.harness.job import Job, JobEnv

STEPS = 100


class Stopwatch:
    """Seconds spent inside wrapped callables, by key, counted only inside ``Job.run`` (the run's
    reference rows are evaluated outside any job)."""

    def __init__(self, monkeypatch) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.in_job = False
        self.monkeypatch = monkeypatch

    def wrap(self, owner, name: str, key: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            outer = key == "job"
            self.in_job |= outer
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if self.in_job:
                    self.seconds[key] += time.perf_counter() - start
                self.in_job &= not outer

        self.monkeypatch.setattr(owner, name, timed)


@pytest.mark.slow
def test_harness_overhead(benchmark, run_kwargs, tmp_path, monkeypatch):
    """One round = a dcgan job of 100 steps, 2 evaluations of 200 samples, checkpoints, log every 25 steps."""
    watch = Stopwatch(monkeypatch)
    watch.wrap(Job, "run", "job")
    watch.wrap(AdversarialVariant, "train_step", "train")
    for owner, name in ((JobEnv, "evaluate"), (JobEnv, "probe"), (Job, "_produce"), (Job, "_grid")):
        watch.wrap(owner, name, "eval")
    rounds = []

    def one_run():
        watch.seconds.clear()
        out = tmp_path / f"run{len(rounds)}"
        ganbench.run(**{**run_kwargs, "out": out, "budget": f"{STEPS}steps", "log_every": 25}, variants="dcgan")
        rounds.append(dict(watch.seconds))

    benchmark.pedantic(one_run, rounds=2)  # once under --benchmark-disable
    last = rounds[-1]
    overhead = last["job"] - last["train"] - last["eval"]
    assert 0 < last["train"] and 0 < last["eval"] and overhead >= 0
    benchmark.extra_info.update(
        overhead_s=overhead, train_s=last["train"], eval_s=last["eval"], overhead_of_train=overhead / last["train"]
    )
    print(
        f"\njob {last['job']:.2f} s: train_step {last['train']:.2f} s, evaluation {last['eval']:.2f} s, "
        f"overhead {overhead:.2f} s = {100 * overhead / last['train']:.1f}% of training, "
        f"{100 * overhead / last['job']:.1f}% of the job"
    )
