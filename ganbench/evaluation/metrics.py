"""One evaluation point: what a metric receives, and running every applicable metric on it."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from ganbench.data import DatasetSplits
from ganbench.evaluation.classifier import HeldOutClassifier
from ganbench.evaluation.outputs import add_note, checked_values, number_problem
from ganbench.specs import TASK_GENERATION, MetricSpec

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.evaluation.dinov2 import Dinov2Weights
    from ganbench.evaluation.fidelity import InceptionWeights

log = logging.getLogger(__name__)

GENERATE_CHUNK = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class MetricValues:
    """What a metric returns when a mapping of column to float is not enough.

    Attributes:
        values: column -> float (NaN allowed, with a note).
        per_class: column -> one float per class, in label order (``data.class_names``): the
            column of per_class.csv, one row per class.
        notes: column -> why its value is NaN (or anything the row's note should say of it).
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
        options: the options of the metric being computed: an instance of its
            ``MetricSpec.config`` with the run's ``--set METRIC.KEY=VALUE`` applied (set by
            :func:`run_metrics` for each metric in turn).
        dinov2_weights: the run's checked DINOv2 weights (``--dinov2-weights``), or why
            there are none; by default none were given.

    ``features`` and ``predicted`` (the held-out classifier on the samples) are computed on
    first use and shared by every metric; :meth:`shared` does the same for anything else
    metrics have in common.
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
    options: Any = None
    dinov2_weights: Callable[[], Dinov2Weights] = no_dinov2_weights
    _predicted: torch.Tensor | None = field(default=None, repr=False)
    _features: torch.Tensor | None = field(default=None, repr=False)
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

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

    def shared(self, key: str, build: Callable[[], T]) -> T:
        """``build()``, computed once per evaluation point and handed to every metric that asks
        for the same ``key`` (a module-qualified name): what several metrics derive from, such
        as the one pass over the sample-to-real distances that gives precision, density and
        coverage. A ``build`` that raises is tried again by the next metric that asks."""
        if key not in self._shared:
            self._shared[key] = build()
        return self._shared[key]


@dataclass(frozen=True)
class EvalResult:
    values: dict[str, float]
    per_class: dict[str, list[float]]
    notes: dict[str, str]
    seconds: float


@dataclass(frozen=True)
class CheckedValues:
    """What one metric returned, checked (:func:`check_metric_output`).

    Attributes:
        values: every declared column -> float (NaN where it gave none or something else).
        per_class: its per-class values that are one float per class of a declared column.
        notes: column (or ``metric NAME``) -> what the row's note says: the metric's own
            reasons and its mistakes.
        problems: the mistakes alone (what the contract does not accept), by the same keys.
    """

    values: dict[str, float]
    per_class: dict[str, list[float]]
    notes: dict[str, str]
    problems: dict[str, str]


def check_metric_output(spec: MetricSpec, out: Any, num_classes: int) -> CheckedValues:
    """``out``, what ``spec.compute`` returned, as a row takes it: a float for each declared
    column and a reason for each departure from the contract (undeclared or missing columns,
    NaN without a reason, a value that is not a float, per-class values not one per class)."""
    owner = f"metric {spec.name}"
    if isinstance(out, MetricValues):
        returned, given, classes = out.values, out.notes, out.per_class
    else:
        returned, given, classes = out, {}, {}
    given = {k: str(v) for k, v in given.items()} if isinstance(given, Mapping) else {}
    values, reasons = checked_values(owner, spec.columns, returned, given)
    per_class: dict[str, list[float]] = {}
    for column, rows in classes.items() if isinstance(classes, Mapping) else ():
        problem = _per_class_problem(spec, column, rows, num_classes)
        if problem:
            add_note(reasons, owner, problem)
        else:
            per_class[column] = [float(v) for v in rows]
    problems = {k: r for k, r in reasons.items() if r != given.get(k)}  # not the metric's own explanation
    return CheckedValues(values, per_class, reasons, problems)


def run_metrics(
    evaluation: Evaluation, metrics: Sequence[MetricSpec], options: Mapping[str, Any] | None = None
) -> EvalResult:
    """Every metric on one evaluation, each with its options (``options[name]``: an instance of
    its ``config``; its defaults when absent). A metric that raises, or returns what the
    contract does not accept, gives NaN in the columns concerned and a note naming it; the
    other metrics' values are unaffected."""
    start = time.perf_counter()
    values: dict[str, float] = {}
    per_class: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    for spec in metrics:
        if spec.final_only and not evaluation.final:
            values.update({c: math.nan for c in spec.columns})
            continue
        try:
            evaluation.options = (options or {}).get(spec.name) or spec.config()
            out = spec.compute(evaluation)
        except Exception as exc:
            log.warning("metric %s failed on %s: %s: %s", spec.name, evaluation.variant, type(exc).__name__, exc)
            out = MetricValues({}, notes={c: f"{spec.name} failed: {type(exc).__name__}: {exc}" for c in spec.columns})
        finally:
            evaluation.options = None
        checked = check_metric_output(spec, out, evaluation.data.num_classes)
        values.update(checked.values)
        per_class.update(checked.per_class)
        for key, reason in checked.problems.items():
            log.warning("metric %s on %s: %s: %s", spec.name, evaluation.variant, key, reason)
        for key, reason in checked.notes.items():
            add_note(notes, key, reason)
    return EvalResult(values, per_class, notes, time.perf_counter() - start)


def _per_class_problem(spec: MetricSpec, column: str, rows: Any, num_classes: int) -> str | None:
    """Why ``per_class[column]`` is not one float per class of one of the metric's columns."""
    if column not in spec.columns:
        return f"per_class {column!r} is not one of its columns ({', '.join(spec.columns)}); ignored"
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        return f"per_class {column!r} is a {type(rows).__name__}, not a sequence of floats; ignored"
    if len(rows) != num_classes:
        return f"per_class {column!r} has {len(rows)} values, not one per class ({num_classes}); ignored"
    wrong = next((p for v in rows if (p := number_problem(v))), None)
    return f"per_class {column!r} holds {wrong}; ignored" if wrong else None


def applicable(metrics: Sequence[MetricSpec], task: str = TASK_GENERATION) -> list[MetricSpec]:
    return [m for m in metrics if task in m.tasks]
