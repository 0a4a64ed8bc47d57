"""A fixed thread count for the arithmetic that turns features into metric values.

How a BLAS splits a matrix product over threads can change its float32 result: with
OpenBLAS's Haswell kernels (what it runs on x86-64 CPUs with AVX2 but no AVX-512, AMD Zen 1-3
among them) ``x @ x.T`` on 1 and on 2 threads differs in the last bits, and KID (a small
difference of large kernel sums) moved in its 6th significant digit. torch's matrix products
(``torch.cdist`` of precision/recall) are split by torch's thread count, which may do the same.
Ray sets ``OMP_NUM_THREADS`` (so OpenBLAS's count) from a task's CPUs: a local run and a Ray run
on the same machine computed the metrics on different thread counts. :func:`metric_threads`
runs the metric arithmetic on :data:`METRIC_THREADS` threads, whatever the process has, so its
values depend on the CPU's kernels only. (``threadpoolctl``, a runtime dependency for this,
limits every BLAS loaded, numpy and scipy each load their own OpenBLAS, and OpenMP; torch's
intra-op threads are set by torch.)

The held-out classifier's forward passes (the features every domain metric starts from) run
under :func:`metric_threads` too: on a 2-core Intel Xeon with AVX-512 (torch 2.14.1) its float32
features differed in their last bits on 1 and 2 torch threads, which the AMD EPYC machines
before it had not shown (``tests/evaluation/test_threads.py`` checks both). Inception's forward pass keeps the process's
threads: it is several times slower on one, and ``fid_inception`` is compared at equal thread
counts only.

The fixed count would leave the other cores idle: :func:`in_parallel` runs independent pieces
(the classifier's chunks, the domain metrics' parts) on as many Python threads as the process
had torch threads, each on the one pinned thread, with the same values as one after another.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import torch
from threadpoolctl import threadpool_info, threadpool_limits

METRIC_THREADS = 1  # deterministic, and no slower on 2 cores (docs/performance.md)

T = TypeVar("T")

# BLAS limits are process-wide: two evaluations in threads of one process take turns.
_LOCK = threading.RLock()
_inside = threading.local()


@contextlib.contextmanager
def metric_threads() -> Iterator[None]:
    """Run the body with :data:`METRIC_THREADS` BLAS, OpenMP and torch threads; restore
    the previous counts afterwards. Also a decorator; nested uses cost nothing."""
    if getattr(_inside, "pinned", False):
        yield
        return
    with _LOCK:
        # Read before threadpool_limits: torch's count is OpenMP's, which threadpool_limits is
        # about to set to 1. Restoring the count read inside would leave torch's MKL (linked into
        # torch, invisible to threadpoolctl) on 1 thread after the body, and MKL's float32 products
        # on 1 and 2 threads differ: the training after an evaluation would not be the training
        # of a fresh process (a resumed run's).
        before = torch.get_num_threads()
        with threadpool_limits(limits=METRIC_THREADS):
            torch.set_num_threads(METRIC_THREADS)
            _inside.pinned, _inside.workers = True, before
            try:
                yield
            finally:
                _inside.pinned, _inside.workers = False, 1
                torch.set_num_threads(before)


def in_parallel(calls: Sequence[Callable[[], T]]) -> list[T]:
    """The results of ``calls``, in order. Inside :func:`metric_threads` on a process that had
    more than one torch thread, they run in that many Python threads at once, each on the one
    pinned BLAS/torch thread: every operation is the single-threaded one whichever thread runs
    it, so the values are those of running ``calls`` one after another, bit for bit, and the
    fixed thread count costs the cores it leaves idle only where a computation cannot be split
    this way. Elsewhere they run one after another. Grad mode is the caller's in each thread."""
    workers = min(getattr(_inside, "workers", 1), len(calls)) if getattr(_inside, "pinned", False) else 1
    if workers <= 1:
        return [call() for call in calls]
    grad = torch.is_grad_enabled()

    def run(call: Callable[[], T]) -> T:
        _inside.pinned, _inside.workers = True, 1  # a nested metric_threads() must not wait for the lock
        with torch.set_grad_enabled(grad):
            return call()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ganbench-metric") as pool:
        return list(pool.map(run, calls))


def _short(path: str) -> str:
    """A library's path from its package on (``numpy.libs/libscipy_openblas64_-....so``)."""
    parts = Path(path).parts
    inside = [i for i, p in enumerate(parts) if p in ("site-packages", "dist-packages")]
    return "/".join(parts[inside[-1] + 1 :]) if inside else path


def thread_record() -> dict[str, Any]:
    """The process's thread counts, as config.json records them: torch's, and each BLAS and
    OpenMP library loaded, as threadpoolctl sees it (numpy's OpenBLAS, torch's OpenMP; scipy's
    OpenBLAS once something has imported scipy.linalg)."""

    def library(info: dict[str, Any]) -> dict[str, Any]:
        return {
            "library": info.get("internal_api"),
            "file": _short(info.get("filepath") or ""),
            "version": info.get("version"),
            "threads": info.get("num_threads"),
            **({"threading_layer": info["threading_layer"]} if "threading_layer" in info else {}),
            **({"architecture": info["architecture"]} if "architecture" in info else {}),
        }

    pools = sorted(threadpool_info(), key=lambda i: str(i.get("filepath")))
    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "blas": [library(i) for i in pools if i.get("user_api") == "blas"],
        "openmp": [library(i) for i in pools if i.get("user_api") == "openmp"],
        "metric_threads": METRIC_THREADS,
    }
