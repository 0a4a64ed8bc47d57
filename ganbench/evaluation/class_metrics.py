"""Class-level judgements of samples by the held-out classifier."""

from __future__ import annotations

import math

import torch


def class_consistency(predicted: torch.Tensor, requested: torch.Tensor, num_classes: int) -> tuple[float, list[float]]:
    """Accuracy of the classifier's predictions against the requested labels: overall, and
    per requested class (NaN for a class that was not requested)."""
    predicted, requested = predicted.cpu(), requested.cpu()
    hits = (predicted == requested).double()
    counts = torch.bincount(requested, minlength=num_classes).double()
    correct = torch.bincount(requested, weights=hits, minlength=num_classes)
    per_class = torch.where(counts > 0, correct / counts.clamp(min=1), torch.full_like(counts, math.nan))
    return hits.mean().item(), per_class.tolist()


def class_coverage(predicted: torch.Tensor, num_classes: int) -> float:
    """How evenly samples spread over the classes: entropy of the predicted-class histogram
    divided by log(num_classes). 1 = uniform; 0 = every sample in one class."""
    p = torch.bincount(predicted.cpu(), minlength=num_classes).double()
    p = p / p.sum()
    nz = p[p > 0]
    return max(0.0, float(-(nz * nz.log()).sum() / math.log(num_classes)))  # 0, not -0, for one class
