"""One evaluation point: what a metric receives, and running every applicable metric on it."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ganbench.data import DatasetSplits
from ganbench.evaluation.classifier import HeldOutClassifier
from ganbench.specs import TASK_GENERATION, MetricSpec

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.evaluation.dinov2 import Dinov2Weights
    from ganbench.evaluation.fidelity import InceptionWeights

log = logging.getLogger(__name__)

GENERATE_CHUNK = 1000


@dataclass(frozen=True)
class MetricValues:
    """What a metric returns when a mapping of column to float is not enough.

    Attributes:
        values: column -> value (NaN allowed).
        per_class: column -> one value per class (the per-class table).
        notes: column -> why its value is NaN.
    """

    values: Mapping[str, float]
    per_class: Mapping[str, Sequence[float]] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)


def no_dinov2_weights() -> Dinov2Weights:
    """No ``--dinov2-weights`` given: ``fd_dinov2`` is NaN, with this reason."""
    from ganbench.evaluation.dinov2 import NOT_GIVEN, Dinov2Weights

    return Dinov2Weights(None, NOT_GIVEN)


@dataclass
class Evaluation:
    """What a metric's ``compute`` receives at one evaluation point.

    Attributes:
        variant: the variant's name (or ``real-data`` for the reference row).
        task: the variant's task.
        samples: uint8 (N, C, H, W) on the CPU: generated images (or super-resolved ones).
        labels: int64 (N,) the labels the samples were requested with; None when unconditional.
        data: the dataset, both splits.
        classifier: the held-out classifier.
        device: where to compute.
        cache_dir: where a metric may cache what does not change between evaluations.
        final: whether this is the run's last evaluation point.
        inception_weights: the Inception weights, resolved on first use.
        reference: for super-resolution, the high-resolution targets of ``samples`` (uint8).
        dinov2_weights: the run's checked DINOv2 weights (``--dinov2-weights``), or why
            there are none; by default none were given.

    ``features`` and ``predicted`` (the held-out classifier on the samples) are computed on
    first use and shared by every metric.
    """

    variant: str
    task: str
    samples: torch.Tensor
    labels: torch.Tensor | None
    data: DatasetSplits
    classifier: HeldOutClassifier
    device: torch.device
    cache_dir: Path
    final: bool
    inception_weights: Callable[[], InceptionWeights]
    reference: torch.Tensor | None = None
    dinov2_weights: Callable[[], Dinov2Weights] = no_dinov2_weights
    _predicted: torch.Tensor | None = field(default=None, repr=False)
    _features: torch.Tensor | None = field(default=None, repr=False)

    @property
    def predicted(self) -> torch.Tensor:
        """The held-out classifier's predicted class per sample (computed once, shared)."""
        if self._predicted is None:
            self._predicted = self.classifier.predict(self.samples)
        return self._predicted

    @property
    def features(self) -> torch.Tensor:
        """The held-out classifier's features of the samples, float32 (N, 128) on the CPU
        (computed once, shared). The same pass gives ``predicted`` if it is not known yet."""
        if self._features is None:
            self._features, logits = self.classifier.features_and_logits(self.samples)
            if self._predicted is None:
                self._predicted = logits.argmax(1)
        return self._features


@dataclass(frozen=True)
class EvalResult:
    values: dict[str, float]
    per_class: dict[str, list[float]]
    notes: dict[str, str]
    seconds: float


def run_metrics(evaluation: Evaluation, metrics: Sequence[MetricSpec]) -> EvalResult:
    """Every metric on one evaluation; a metric that raises gives NaN and a note, not a crash."""
    start = time.perf_counter()
    values: dict[str, float] = {}
    per_class: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    for spec in metrics:
        if spec.final_only and not evaluation.final:
            values.update({c: math.nan for c in spec.columns})
            continue
        try:
            out = spec.compute(evaluation)
        except Exception as exc:
            log.warning("metric %s failed on %s: %s: %s", spec.name, evaluation.variant, type(exc).__name__, exc)
            out = MetricValues({}, notes={c: f"{spec.name} failed: {type(exc).__name__}: {exc}" for c in spec.columns})
        if not isinstance(out, MetricValues):
            out = MetricValues(dict(out))
        for column in spec.columns:
            values[column] = float(out.values.get(column, math.nan))
        unknown = set(out.values) - set(spec.columns)
        if unknown:
            log.warning("metric %s returned undeclared columns %s; ignored", spec.name, sorted(unknown))
        per_class.update({k: list(map(float, v)) for k, v in out.per_class.items() if k in spec.columns})
        notes.update({k: v for k, v in out.notes.items() if k in spec.columns})
    return EvalResult(values, per_class, notes, time.perf_counter() - start)


def applicable(metrics: Sequence[MetricSpec], task: str = TASK_GENERATION) -> list[MetricSpec]:
    return [m for m in metrics if task in m.tasks]
