"""The cas and memorisation probes at their default options on an untrained cgan (generation
included), as a job's final evaluation runs them; memorisation with its per-dataset distances
already cached (the first build is timed once, in extra_info). docs/performance.md quotes them:

    python -m pytest tests/benchmarks/test_bench_probes.py --benchmark-enable -s
"""

import dataclasses
import time

import pytest
import torch
from ganbench_plugins import probes as P
from torch import nn

from ganbench import columns as C
from ganbench.evaluation.judges import HeldOutJudge
from ganbench.probes import ProbeContext
from ganbench.testing import build_variant


def context(fashion, registry, judge, config, cache_dir):
    return ProbeContext(
        "cgan", 0, build_variant("cgan", fashion), registry.variant("cgan"), config, fashion, None, judge, judge,
        torch.Generator().manual_seed(0), torch.device("cpu"), cache_dir,
    )  # fmt: skip


@pytest.fixture(scope="module")
def judge(classifier, fashion, tmp_path_factory):
    return HeldOutJudge(classifier, nn.Linear(128, 0), fashion.class_names, (), tmp_path_factory.mktemp("judge"))


def timed(benchmark, compute, probe):
    """One round, CPU seconds beside the wall-clock ones (the machine is shared)."""
    cpu = []

    def once():
        start = time.process_time()
        out = compute(probe)
        cpu.append(time.process_time() - start)
        return out

    result = benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info["cpu_seconds"] = cpu[-1]
    benchmark.extra_info["threads"] = torch.get_num_threads()
    print(f"\n{compute.__name__}: cpu {cpu[-1]:.1f} s on {torch.get_num_threads()} thread(s)")
    return result


def sized(benchmark, config_class, **small):
    """The probe's defaults when benchmarking; under --benchmark-disable (the test suite, which
    runs each benchmark once as a test) a small config through the same code."""
    return config_class() if not benchmark.disabled else config_class(**small)


@pytest.mark.slow
def test_cas_default(benchmark, fashion, registry, judge):
    config = sized(benchmark, P.CASConfig, samples=500, epochs=1)
    result = timed(benchmark, P.compute_cas, context(fashion, registry, judge, config, None))
    assert 0 <= result.values[C.CAS] <= 1


@pytest.mark.slow
def test_memorisation_default_cached(benchmark, fashion, registry, judge, tmp_path):
    start = time.perf_counter()
    config = sized(benchmark, P.MemorisationConfig, samples=500)
    P.compute_memorisation(context(fashion, registry, judge, dataclasses.replace(config, pairs=0), tmp_path))
    benchmark.extra_info["first_seconds"] = first = time.perf_counter() - start
    print(f"\nmemorisation, building the cache: {first:.1f} s")
    result = timed(
        benchmark, P.compute_memorisation, context(fashion, registry, judge, config, tmp_path)
    )
    assert 0 <= result.values[C.MEMORISED_SHARE_PIXEL] <= 1
