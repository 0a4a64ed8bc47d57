"""Orchestration overhead of ``ganbench tune``: the share of its training time spent planning
(drawing and checking every setting), bookkeeping (tune.json, trials.csv) and selecting, i.e.
everything outside the ordinary runs it starts; and, separately, the set-up each of those runs
repeats (loading the data and the held-out classifier, the real-data reference row, config.json).
Reported in the benchmark's extra_info and on stdout (``-s``):

    python -m pytest tests/benchmarks/test_bench_tune.py --benchmark-enable -s
"""

import time
from collections import defaultdict

import pytest

import ganbench
from ganbench.adversarial import AdversarialVariant
from ganbench.harness import runner
from ganbench.harness.job import Job

STEPS = 40


@pytest.mark.slow
def test_tune_overhead(benchmark, run_kwargs, tmp_path, monkeypatch):
    """One round = a tune of dcgan and cgan, 4 trials and 2 final seeds of 40 steps each."""
    seconds: dict[str, float] = defaultdict(float)

    def timed(owner, name, key):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[key] += time.perf_counter() - start

        monkeypatch.setattr(owner, name, wrapper)

    timed(runner, "run", "runs")
    timed(Job, "run", "jobs")
    timed(AdversarialVariant, "train_step", "train")
    rounds = []

    def one_tune():
        seconds.clear()
        kwargs = {k: v for k, v in run_kwargs.items() if k not in ("seeds", "out", "evals", "budget")}
        start = time.perf_counter()
        # Under --benchmark-disable (the test suite) a smaller tune checks the same accounting; the
        # numbers docs/performance.md quotes are of the full size, measured with --benchmark-enable.
        steps = STEPS if not benchmark.disabled else 5
        ganbench.tune(
            **kwargs, variants="dcgan,cgan", trials=4, final_seeds="0,1", budget=f"{steps}steps", holdout=1000,
            out=tmp_path / f"tune{len(rounds)}",
        )  # fmt: skip
        rounds.append({**seconds, "total": time.perf_counter() - start})

    benchmark.pedantic(one_tune, rounds=1)  # once under --benchmark-disable
    last = rounds[-1]
    tune_overhead = last["total"] - last["runs"]  # planning, bookkeeping, selection
    run_setup = last["runs"] - last["jobs"]  # each run's data, classifier, reference row, config
    assert last["train"] > 0 and tune_overhead > 0 and run_setup > 0
    benchmark.extra_info.update(
        total_s=last["total"], train_s=last["train"], tune_overhead_s=tune_overhead, run_setup_s=run_setup,
        tune_overhead_of_train=tune_overhead / last["train"], run_setup_of_train=run_setup / last["train"],
    )  # fmt: skip
    print(
        f"\ntune {last['total']:.2f} s, train_step {last['train']:.2f} s: tune orchestration {tune_overhead:.2f} s = "
        f"{100 * tune_overhead / last['train']:.1f}% of training; the 5 runs' set-up {run_setup:.2f} s = "
        f"{100 * run_setup / last['train']:.1f}% of training"
    )
