"""Metric values do not depend on the thread counts of torch and the BLAS: the metric arithmetic
runs on a fixed count (ganbench.evaluation.threads), and the held-out classifier's features are
the same on any count. Checked here, and again under OpenBLAS's Haswell kernels (what it runs
on AMD Zen 2/3 and Intel AVX2 CPUs), where 1 and 2 threads round float32 products differently."""

import itertools
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from ganbench.evaluation.fidelity import domain_metrics
from ganbench.evaluation.threads import METRIC_THREADS, in_parallel, metric_threads, thread_record

COMBINATIONS = list(itertools.product((1, 2), (1, 2)))  # (BLAS threads, torch threads)


@pytest.fixture
def torch_threads():
    """Sets this process's torch threads for a test; restores them after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def generated(classifier, fashion):
    """Features of noisy training images: near the test split, not on it."""
    noise = torch.randn(1000, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 40
    return classifier.features((fashion.train_images[:1000].float() + noise).clamp(0, 255).round().to(torch.uint8))


def blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_metric_threads_pins_torch_and_the_blas_and_restores_them(torch_threads):
    import scipy.linalg  # noqa: F401  (its own BLAS, loaded as in an evaluation)

    torch_threads(2)
    with threadpool_limits(2):
        with metric_threads():
            assert torch.get_num_threads() == METRIC_THREADS and blas_threads() == {METRIC_THREADS}
            with metric_threads():  # nested: still pinned, and leaving it does not unpin
                pass
            assert torch.get_num_threads() == METRIC_THREADS and blas_threads() == {METRIC_THREADS}
        assert torch.get_num_threads() == 2 and blas_threads() == {2}


def test_metric_threads_restores_them_when_the_body_raises(torch_threads):
    torch_threads(2)
    with pytest.raises(ZeroDivisionError), metric_threads():
        1 / 0
    assert torch.get_num_threads() == 2


def test_in_parallel_uses_the_cores_the_pinned_count_leaves_and_keeps_order_and_grad_mode(torch_threads):
    import threading

    def probe(i):
        def call():
            with metric_threads():  # nested in a worker: already pinned, must not wait for the lock
                return i, threading.current_thread().name, torch.is_grad_enabled(), torch.get_num_threads()

        return call

    torch_threads(2)
    outside = in_parallel([probe(i) for i in range(4)])  # not pinned: one after another, here
    assert {name for _, name, _, _ in outside} == {threading.current_thread().name}
    with metric_threads(), torch.no_grad():
        inside = in_parallel([probe(i) for i in range(4)])
    assert [i for i, *_ in inside] == [0, 1, 2, 3]
    assert all(name.startswith("ganbench-metric") for _, name, _, _ in inside)
    assert not any(grad for *_, grad, _ in inside) and {n for *_, n in inside} == {METRIC_THREADS}
    torch_threads(1)
    with metric_threads():  # a process on one thread gets no second one
        assert {name for _, name, _, _ in in_parallel([probe(i) for i in range(2)])} == {threading.current_thread().name}


def test_in_parallel_raises_what_a_call_raises(torch_threads):
    torch_threads(2)

    def fails():
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"), metric_threads():
        in_parallel([lambda: 1, fails])


def test_the_thread_record_names_each_blas_and_the_fixed_count():
    record = thread_record()
    assert record["torch_threads"] == torch.get_num_threads() and record["torch_interop_threads"] >= 1
    assert record["metric_threads"] == METRIC_THREADS
    assert record["blas"] and all(b["library"] and b["threads"] >= 1 for b in record["blas"])
    json.dumps(record)  # config.json can hold it


def test_features_do_not_depend_on_torch_threads(classifier, fashion, torch_threads):
    images = fashion.test_images[:2500]  # several chunks of the classifier's batch
    passes = []
    for threads in (1, 2):
        torch_threads(threads)
        passes.append(classifier.features_and_logits(images))
    assert torch.equal(passes[0][0], passes[1][0]) and torch.equal(passes[0][1], passes[1][1])


def test_domain_metrics_do_not_depend_on_blas_or_torch_threads(classifier, fashion, generated, tmp_path, torch_threads):
    """Every combination from an empty cache: the real split's side is computed under it too."""
    real = fashion.test_images[:2000]
    values = {}
    for blas, threads in COMBINATIONS:
        torch_threads(threads)
        with threadpool_limits(blas):
            values[blas, threads] = domain_metrics(classifier, generated, real, "t", tmp_path / f"{blas}-{threads}")
    assert all(v == values[1, 1] for v in values.values()), values
    assert 0 < values[1, 1]["precision_domain"] < 1  # not a trivial agreement


# The same check in a child process on OpenBLAS's Haswell kernels: there, unpinned KID arithmetic
# does change between 1 and 2 BLAS threads (the child shows it), so the check has teeth here too.
CHILD = textwrap.dedent(
    """
    import json, math, sys
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits
    from torch_fidelity.metric_kid import kid_features_to_metric
    from ganbench.evaluation.classifier import HeldOutClassifier, load_weights_file
    from ganbench.evaluation.fidelity import domain_metrics

    weights, inputs, fingerprint, cache = sys.argv[1:]
    saved = torch.load(inputs)
    generated, real = saved["generated"], saved["real"]
    net, _ = load_weights_file(weights)
    classifier = HeldOutClassifier(net, weights, math.nan, "fashion-mnist", fingerprint)
    out = {"architectures": sorted({i.get("architecture", "") for i in threadpool_info() if i["user_api"] == "blas"})}
    for blas, threads in [(1, 1), (1, 2), (2, 1), (2, 2)]:
        torch.set_num_threads(threads)
        with threadpool_limits(blas):
            m = domain_metrics(classifier, generated, real, "t", f"{cache}/{blas}-{threads}")
            unpinned = kid_features_to_metric(generated[:800], generated, kid_subset_size=800, verbose=False)
        out[f"{blas}-{threads}"] = {"pinned": m, "unpinned_kid": unpinned["kernel_inception_distance_mean"]}
    print(json.dumps(out))
    """
)


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _has_avx2(), reason="OpenBLAS's Haswell kernels need AVX2")
def test_domain_metrics_do_not_depend_on_threads_on_openblas_haswell_kernels(
    classifier, fashion, generated, tmp_path
):
    torch.save({"generated": generated, "real": fashion.test_images[:2000]}, tmp_path / "inputs.pt")
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}
    env.pop("OPENBLAS_NUM_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    args = [str(classifier.path), str(tmp_path / "inputs.pt"), classifier.fingerprint, str(tmp_path / "cache")]
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["architectures"] != ["Haswell"]:
        pytest.skip(f"this OpenBLAS ignores OPENBLAS_CORETYPE (runs {out['architectures']})")
    pinned = [out[f"{b}-{t}"]["pinned"] for b, t in COMBINATIONS]
    assert all(v == pinned[0] for v in pinned), pinned
    if os.cpu_count() >= 2:  # the teeth: the same arithmetic unpinned changes with the BLAS threads
        assert out["1-1"]["unpinned_kid"] != out["2-1"]["unpinned_kid"]
