"""Density and coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics for
generative models", k = 5) in the held-out classifier's feature space, computed in the pass over
the sample-to-real distances that gives precision.

With real points x_1..x_N, their k-NN radii r_i (distance to the k-th nearest other real
point) and samples y_1..y_M:

- density = 1/(kM) Σ_j Σ_i 1[‖y_j − x_i‖ < r_i]: how many real balls a sample falls in, on
  average, over k (≈ 1 for samples distributed like the real points; above 1 where samples
  crowd dense regions of the real data);
- coverage = 1/N Σ_i 1[min_j ‖y_j − x_i‖ < r_i]: the fraction of real balls that hold at
  least one sample.

The arithmetic is the authors' (``prdc.compute_prdc``: strict ``<``, the radius is the k+1-th
smallest distance with the point itself counted). The real points are precision/recall's: the
fixed random subset of the evaluation split of the samples' size
(:func:`~ganbench.evaluation.fidelity.prc_subset`), their features from the same cache, so
N = M as the paper recommends. Their k = 5 radii are cached per sample count beside
precision/recall's k = 3 ones.

Precision compares the same distances (samples to that subset) with the k = 3 radii, so one
pass serves all three (:func:`neighbourhoods`): the distance blocks are torch-fidelity's
(``torch.cdist`` of PRC_BATCH samples against the subset, as in :mod:`.fast_fidelity`) and
precision is its value bit for bit. Each block (400 MB at 10k x 10k) is reduced a few rows at a
time, so that the three reductions read the rows from the CPU's cache, not from memory.

The distances are float32; prdc takes scikit-learn's (accumulated in float64), so the two can
disagree on a comparison within float32 rounding of a tie: a pair of density's kM, a ball of
coverage's N (tests/evaluation/float32_tolerance.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ganbench.evaluation import cache
from ganbench.evaluation import fast_fidelity as fast
from ganbench.evaluation.classifier import HeldOutClassifier
from ganbench.evaluation.fidelity import PRC_SUBSET_SEED, classifier_reference, prc_subset, real_side
from ganbench.evaluation.threads import METRIC_THREADS, metric_threads

DC_NEIGHBORHOOD = 5  # Naeem et al. 2020's k (their recommendation for N = M = 10,000)
# Rows of a distance block reduced at a time: 16 x 10,000 float32 = 640 KB, within a core's
# L2 cache, so the second and third reductions do not read the block from memory again.
REDUCE_ROWS = 16


@dataclass(frozen=True)
class Neighbourhoods:
    """What one pass over the samples' distances to the real subset gives."""

    precision: float  # torch-fidelity's precision (k = 3, ``<=``), bit for bit
    density: float
    coverage: float


def real_radii(
    classifier: HeldOutClassifier,
    real_features: torch.Tensor,
    real_name: str,
    n: int,
    cache_dir: Path,
    device: torch.device,
) -> torch.Tensor:
    """The k = 5 NN radii of precision/recall's real subset against ``n`` samples, cached under
    ``<cache_dir>/features/`` (computed on ``device``'s kind, on the CPU afterwards)."""
    identity = {
        "kind": "classifier-real-radii",
        "extractor": classifier.name,
        "features_sha256": cache.digest({"features": real_features}),
        "dataset": real_name,
        "samples": n,
        "neighborhood": DC_NEIGHBORHOOD,
        "prc_subset_seed": PRC_SUBSET_SEED,
        "device_type": device.type,
        "metric_threads": METRIC_THREADS,
    }

    def build() -> dict[str, torch.Tensor]:
        subset = prc_subset(len(real_features), n)
        points = real_features if subset is None else real_features[subset]
        return {"radii": fast.knn_radii(points, device, DC_NEIGHBORHOOD).cpu()}

    path = cache.cache_path(cache_dir, f"{real_name}-{classifier.name}-n{n}-k{DC_NEIGHBORHOOD}")
    return cache.load_or_build(path, identity, build)["radii"]


def one_pass(
    generated: torch.Tensor,
    real: torch.Tensor,
    prc_radii: torch.Tensor,
    dc_radii: torch.Tensor,
    device: torch.device,
) -> Neighbourhoods:
    """Precision (``prc_radii``, k = 3), density and coverage (``dc_radii``, k = 5) of
    ``generated`` against ``real``, from one set of distance blocks."""
    generated, real = generated.to(device), real.to(device)
    prc_radii, dc_radii = prc_radii.to(device), dc_radii.to(device)
    hits = []
    inside = torch.zeros((), dtype=torch.int64, device=device)  # (sample, real ball) pairs, counted exactly
    nearest = torch.full((len(real),), torch.inf, device=device)  # each real point's nearest sample
    for rows in generated.split(fast.PRC_BATCH):
        block = fast._cdist(rows, real)
        for part in block.split(REDUCE_ROWS):
            hits.append((part <= prc_radii).any(dim=1))
            inside += torch.count_nonzero(part < dc_radii)
            nearest = torch.minimum(nearest, part.amin(dim=0))
    return Neighbourhoods(
        precision=torch.cat(hits).float().mean().item(),  # as fast_fidelity._coverage reduces it
        density=inside.item() / (DC_NEIGHBORHOOD * len(generated)),
        coverage=(nearest < dc_radii).double().mean().item(),
    )


@metric_threads()
def neighbourhoods(
    classifier: HeldOutClassifier,
    generated_features: torch.Tensor,
    real: torch.Tensor,
    real_name: str,
    cache_dir: Path,
    device: torch.device = torch.device("cpu"),
) -> Neighbourhoods:
    """Precision, density and coverage of the samples' features (``Evaluation.features``)
    against precision/recall's subset of ``real`` (whose features are cached as ``real_name``),
    on :data:`~.threads.METRIC_THREADS` threads; the real side's radii from their caches."""
    generated = generated_features.float().cpu()
    reference = classifier_reference(classifier, real, real_name, cache_dir)
    real_features = reference["features"]
    n = len(generated)
    subset = prc_subset(len(real_features), n)
    points = real_features if subset is None else real_features[subset]
    with fast.device_context(device):
        prc_radii = real_side(classifier, reference, real_name, n, cache_dir, device)["prc_radii"]
        dc_radii = real_radii(classifier, real_features, real_name, n, cache_dir, device)
        return one_pass(generated, points, prc_radii, dc_radii, device)
