"""KID and precision/recall with torch-fidelity's arithmetic, op for op, minus the work that
does not change between evaluations.

``kid_features_to_metric`` and ``prc_features_to_metric`` (torch-fidelity 0.4) spend most of an
evaluation on the real split's side: its KID kernel sums per subset and its k-NN radii. Here
they are computed once per (real features, sample count) and cached. What depends on the
samples is computed by the same calls on the same shapes:

- KID draws its subsets from the same ``RandomState`` in the same order and applies the ufuncs
  of torch-fidelity's ``kernel_poly`` and ``mmd2`` in the same order (in place); only the
  real-real kernel's off-diagonal sum is cached. Each kernel is the same BLAS call as there:
  ``x @ x.T`` of one array (numpy's syrk) for the same-set kernels, a gemm for the cross one;
  a syrk and a gemm of the same product round differently on some CPUs.
- precision/recall call ``torch.cdist`` on the same row batches and column splits, and take
  the k-th nearest distance with ``topk`` (the same element as ``kthvalue``, ~10x faster).

What is promised: under the same thread counts (:func:`~ganbench.evaluation.threads.metric_threads`
fixes them for ganbench's own evaluation) the values equal torch-fidelity's functions on the
same features, bit for bit, on the kernels we could test (OpenBLAS's SkylakeX and Haswell,
2026-12-02). Against torch-fidelity run on other thread counts, or on features computed by
another float32 path, the promise is what float32 allows: FID to 1e-6 relative; KID to 1e-7
of the mean kernel value (KID is a small difference of ~10^6 kernel values, so its float32
resolution is a fraction of theirs, not of KID: about 1e-4 of a KID near 0.002); precision and
recall to one sample on a near tie. The measurements behind these are in
``tests/evaluation/float32_tolerance.py``, which the cross-checks use.

``device_context`` makes CUDA work land on device N of ``cuda:N`` (see there).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch_fidelity.defaults import DEFAULTS
from torch_fidelity.metric_kid import kernel_poly

KID_SUBSETS = DEFAULTS["kid_subsets"]
KID_SEED = DEFAULTS["rng_seed"]
PRC_NEIGHBORHOOD = DEFAULTS["prc_neighborhood"]
PRC_BATCH = DEFAULTS["prc_batch_size"]


def device_context(device: torch.device) -> contextlib.AbstractContextManager:
    """Make ``cuda:N`` the current CUDA device while metrics run on it.

    Tensors are moved with ``.to(device)``, which honours N; anything that allocates on plain
    "cuda" (torch-fidelity's ``cuda=True`` means ``.cuda()``, the *current* device) would land
    on device 0 instead. A CPU device or an index-less "cuda" (the current device by definition)
    needs nothing.
    """
    if device.type == "cuda" and device.index is not None:
        return torch.cuda.device(device.index)
    return contextlib.nullcontext()


def _kid_subsets(n1: int, n2: int, size: int):
    """torch-fidelity's KID subset indices: (samples, real) per subset, in its draw order."""
    rng = np.random.RandomState(KID_SEED)
    for _ in range(KID_SUBSETS):
        yield rng.choice(n1, size, replace=False), rng.choice(n2, size, replace=False)


def _kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """torch-fidelity's ``kernel_poly`` (degree 3, gamma 1/d, coef0 1), the same ufuncs in place:
    no 4 MB temporaries per step. ``np.matmul(x, x.T)`` keeps numpy's syrk path for ``x is y``."""
    k = np.matmul(x, y.T)
    np.multiply(k, 1.0 / x.shape[1], out=k)
    np.add(k, 1, out=k)
    return np.power(k, 3, out=k)


def _offdiag_sum(k: np.ndarray) -> np.float32:
    """mmd2's ``Kt_XX_sum``: row sums less the diagonal, summed (float32, in its order)."""
    return (k.sum(axis=1) - np.diagonal(k)).sum()


def kid_real_sums(real: torch.Tensor, n_samples: int, size: int) -> torch.Tensor:
    """Per KID subset, the off-diagonal sum of the real-real kernel (float32)."""
    f2 = real.cpu().numpy()
    sums = []
    for _, i2 in _kid_subsets(n_samples, len(f2), size):
        y = f2[i2]
        sums.append(_offdiag_sum(kernel_poly(y, y)))  # one array, as torch-fidelity passes it: numpy's syrk
    return torch.from_numpy(np.array(sums, dtype=np.float32))


def kid_mean(generated: torch.Tensor, real: torch.Tensor, size: int, real_sums: torch.Tensor) -> float:
    """``kid_features_to_metric(...)[KEY_METRIC_KID_MEAN]`` with the real-real sums given."""
    f1, f2 = generated.cpu().numpy(), real.cpu().numpy()
    yy = real_sums.numpy()
    m = size
    mmds = np.zeros(KID_SUBSETS)
    for i, (i1, i2) in enumerate(_kid_subsets(len(f1), len(f2), size)):
        x, y = f1[i1], f2[i2]
        k_xy_sum = _kernel(x, y).sum(axis=0).sum()
        mmd2 = (_offdiag_sum(_kernel(x, x)) + yy[i]) / (m * (m - 1))  # mmd2(..., mmd_est="unbiased"), term by term
        mmd2 -= 2 * k_xy_sum / (m * m)
        mmds[i] = mmd2
    return float(np.mean(mmds))


def _cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch-fidelity's ``calc_cdist_part``: the same cdist calls, without copying a single piece."""
    pieces = [torch.cdist(a, part) for part in b.split(PRC_BATCH)]
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)


def knn_radii(features: torch.Tensor, device: torch.device, neighborhood: int = PRC_NEIGHBORHOOD) -> torch.Tensor:
    """Each point's distance to its k-th nearest neighbour (itself excluded; k = ``neighborhood``),
    on ``device``."""
    features = features.to(device)
    k = neighborhood + 1  # the nearest is the point itself
    return torch.cat(
        [_cdist(rows, features).topk(k, largest=False).values[:, -1] for rows in features.split(PRC_BATCH)]
    )


def _coverage(queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor) -> float:
    """The fraction of ``queries`` within some point's k-NN radius (as ``.float().mean()``)."""
    hits = [(_cdist(rows, points) <= radii).any(dim=1) for rows in queries.split(PRC_BATCH)]
    return torch.cat(hits).float().mean().item()


def recall(generated: torch.Tensor, real: torch.Tensor, device: torch.device) -> float:
    """``prc_features_to_metric``'s recall (``save_cpu_ram=True``)."""
    generated, real = generated.to(device), real.to(device)
    return _coverage(real, generated, knn_radii(generated, device))


def precision(generated: torch.Tensor, real: torch.Tensor, real_radii: torch.Tensor, device: torch.device) -> float:
    """``prc_features_to_metric``'s precision (``save_cpu_ram=True``), with the real points' k-NN
    radii given (computed by :func:`knn_radii` on the same device)."""
    return _coverage(generated.to(device), real.to(device), real_radii.to(device))


def precision_recall(
    generated: torch.Tensor, real: torch.Tensor, real_radii: torch.Tensor, device: torch.device
) -> tuple[float, float]:
    """``prc_features_to_metric``'s precision and recall (``save_cpu_ram=True``), with the real
    points' k-NN radii given (computed by :func:`knn_radii` on the same device)."""
    generated, real, real_radii = generated.to(device), real.to(device), real_radii.to(device)
    return _coverage(generated, real, real_radii), recall(generated, real, device)
