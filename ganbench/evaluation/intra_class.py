"""Intra-class FID of a conditional generator, as PyTorch-StudioGAN reports it: for each class,
the FID between the samples requested with that class and that class's images of the evaluation
split, in the held-out classifier's features; the score is the mean over classes.

FID over the whole split cannot see a generator that draws the right images for the wrong
labels (every class's images, each under some other class's label); per class it does. Each
class's FID is torch-fidelity's arithmetic (:func:`~ganbench.evaluation.fidelity._fid`, as for
``fid_domain``), on :data:`~.threads.METRIC_THREADS` threads. The per-class real statistics
(mean, covariance) are computed from the split's cached features and cached beside them.

Per class it compares about N/K samples with about as many real images, so it is biased upward
like any FID at a small sample size (128-d covariances from ~1,000 points at N = 10,000);
compare with the ``real-data`` row, the train split's images of each class scored the same way.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ganbench.evaluation import cache
from ganbench.evaluation.classifier import HeldOutClassifier
from ganbench.evaluation.fidelity import _fid, _statistics, classifier_reference
from ganbench.evaluation.threads import METRIC_THREADS, metric_threads

MIN_PER_CLASS = 2  # a covariance needs two points; a class with fewer has no FID (NaN)


def class_statistics(
    classifier: HeldOutClassifier,
    real_features: torch.Tensor,
    real_labels: torch.Tensor,
    num_classes: int,
    real_name: str,
    cache_dir: Path,
) -> dict[str, torch.Tensor]:
    """Per class of the evaluation split: ``count`` (K,), ``mu`` (K, D) and ``sigma`` (K, D, D),
    torch-fidelity's FID statistics of its images' features (NaN for a class with fewer than
    :data:`MIN_PER_CLASS` images), cached under ``<cache_dir>/features/``."""
    real_labels = real_labels.cpu()
    identity = {
        "kind": "classifier-class-statistics",
        "extractor": classifier.name,
        "features_sha256": cache.digest({"features": real_features}),
        "labels_sha256": cache.digest({"labels": real_labels}),
        "dataset": real_name,
        "classes": num_classes,
        "metric_threads": METRIC_THREADS,
    }

    def build() -> dict[str, torch.Tensor]:
        d = real_features.shape[1]
        count = torch.bincount(real_labels, minlength=num_classes)[:num_classes]
        mu = torch.full((num_classes, d), math.nan, dtype=torch.float32)
        sigma = torch.full((num_classes, d, d), math.nan, dtype=torch.float64)
        for k in range(num_classes):
            if count[k] >= MIN_PER_CLASS:
                stats = _statistics(real_features[real_labels == k])
                mu[k], sigma[k] = stats["mu"], stats["sigma"]
        return {"count": count, "mu": mu, "sigma": sigma}

    path = cache.cache_path(cache_dir, f"{real_name}-{classifier.name}-classes")
    return cache.load_or_build(path, identity, build)


@metric_threads()
def intra_class_fid(
    classifier: HeldOutClassifier,
    generated_features: torch.Tensor,
    labels: torch.Tensor,
    real: torch.Tensor,
    real_labels: torch.Tensor,
    num_classes: int,
    real_name: str,
    cache_dir: Path,
) -> tuple[float, list[float]]:
    """The mean over classes of the per-class FIDs, and the per-class FIDs (NaN for a class
    with fewer than :data:`MIN_PER_CLASS` samples or real images; the mean is over the others,
    NaN when none is left). ``labels``: the labels the samples were requested with;
    ``real``/``real_labels``: the evaluation split (its features cached as ``real_name``)."""
    generated, labels = generated_features.float().cpu(), labels.cpu()
    if len(labels) != len(generated):
        raise ValueError(f"{len(labels)} labels for {len(generated)} samples")
    real_features = classifier_reference(classifier, real, real_name, cache_dir)["features"]
    stats = class_statistics(classifier, real_features, real_labels, num_classes, real_name, cache_dir)
    counts = torch.bincount(labels, minlength=num_classes)
    per_class = []
    for k in range(num_classes):
        if counts[k] < MIN_PER_CLASS or stats["count"][k] < MIN_PER_CLASS:
            per_class.append(math.nan)
            continue
        reference = {"mu": stats["mu"][k], "sigma": stats["sigma"][k]}
        per_class.append(_fid(generated[labels == k], reference))
    scored = [v for v in per_class if math.isfinite(v)]
    return (sum(scored) / len(scored) if scored else math.nan), per_class
