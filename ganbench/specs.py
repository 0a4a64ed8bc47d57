"""What plugins register: frozen dataclasses, validated by the host when registered."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ganbench.hparams import Range, check_declarations, search_space

TASK_GENERATION = "generation"
TASK_SUPER_RESOLUTION = "super-resolution"
TASKS = (TASK_GENERATION, TASK_SUPER_RESOLUTION)

# Lowercase words joined by single hyphens: "dcgan", "wgan-gp", "fashion-mnist".
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
# Metric columns double as table column names and Python identifiers.
COLUMN_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# The run directory's own tables: no probe may write one of these.
RESERVED_TABLES = ("metrics", "summary", "per_class", "train_log", "jobs", "config")
# Which way a metric's or probe's column is better (its ``directions``): a report marks the best
# value, compares variants and decides between them only on a column with a direction.
HIGHER = "higher"
LOWER = "lower"
NEITHER = "neither"
DIRECTIONS = (HIGHER, LOWER, NEITHER)


@dataclass(frozen=True)
class NoConfig:
    """The hyperparameters (or options) of a variant, metric or probe that has none to set."""


@dataclass(frozen=True)
class VariantSpec:
    """A GAN variant.

    Attributes:
        name: lowercase, hyphen-separated (``wgan-gp``); what ``--variants`` takes.
        build: ``build(context, config) -> Variant``; usually the Variant subclass itself.
        config: a dataclass type whose fields are the variant's hyperparameters with the
            defaults of its paper; ``--set NAME.FIELD=VALUE`` overrides a field. Fields
            declared with :func:`ganbench.hparams.hparam` carry their search range and valid
            values (see :attr:`search_space`).
        task: ``"generation"`` or ``"super-resolution"``; picks the metrics and evaluation.
        conditional: whether the generator takes class labels (class_consistency is NaN
            for unconditional variants).
        description: one line for ``ganbench list``.
        reference: the paper or source the defaults come from.
    """

    name: str
    build: Callable[..., Any]
    config: type = NoConfig
    task: str = TASK_GENERATION
    conditional: bool = False
    description: str = ""
    reference: str = ""

    def make_config(self, overrides: dict[str, Any] | None = None) -> Any:
        """The config dataclass with ``overrides`` (already typed) applied."""
        return self.config(**(overrides or {}))

    @property
    def search_space(self) -> dict[str, Range]:
        """``{field: Range}``: the search range each hyperparameter of ``config`` declares
        (``--search NAME.FIELD=RANGE`` narrows or widens one for a run)."""
        return search_space(self.config)


@dataclass(frozen=True)
class DatasetSpec:
    """A labelled image dataset with a train and a test split.

    Attributes:
        name: lowercase, hyphen-separated (``fashion-mnist``); what ``--dataset`` takes.
        load: ``load(request: DataRequest) -> DatasetSplits``; raise
            :class:`ganbench.UsageError` with a one-line message when the data cannot be found.
        image_shape: (channels, height, width) of every image.
        class_names: one name per class, in label order.
        description: one line for ``ganbench list``.
        attributes: names of binary attributes an image can have besides its class (what
            steering probes steer toward); empty when the dataset has none.
        measure_attributes: ``measure(images: uint8 (N, C, H, W)) -> float (N, A)``: the
            attributes measured exactly from the pixels (e.g. ink, area), one column per name
            in ``attributes``; an attribute is present when its value is above the train
            split's median. None when the attributes are annotations that ``load`` returns
            (``DatasetSplits.train_attributes``/``test_attributes``).
        from_data: ``image_shape`` and ``class_names`` are defaults that the loaded splits
            may change (a folder of the user's images, whose classes and size only the folder
            knows; ``--image-size``): the harness takes them from the splits.
    """

    name: str
    load: Callable[..., Any]
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    description: str = ""
    attributes: tuple[str, ...] = ()
    measure_attributes: Callable[..., Any] | None = None
    from_data: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class MetricSpec:
    """A metric computed at every evaluation point.

    Attributes:
        name: lowercase, hyphen-separated (``domain-fidelity``); what ``--metrics`` takes.
        columns: the table columns it fills (lowercase snake_case); a column has one owner.
        compute: ``compute(evaluation) -> Mapping[str, float] | MetricValues``; what breaks
            that contract (a missing or undeclared column, a value that is not a float, NaN
            without a reason) is NaN with a note naming the metric, as when it raises.
        tasks: the variant tasks it applies to.
        final_only: compute it at the final evaluation point only (for expensive metrics);
            earlier rows hold NaN.
        description: one line for ``ganbench list``.
        directions: ``{column: "higher" | "lower" | "neither"}``: which way each column is
            better (:data:`HIGHER`, :data:`LOWER`, :data:`NEITHER`); a column left out has none.
            Recorded in the run's config.json; the report's arrows, bold best, comparisons and
            verdicts follow it.
        config: a dataclass type whose fields are its options, overridden by ``--set
            NAME.FIELD=VALUE`` exactly as a probe's are; ``compute`` reads them as
            ``evaluation.options``.
    """

    name: str
    columns: tuple[str, ...]
    compute: Callable[..., Any]
    tasks: frozenset[str] = field(default_factory=lambda: frozenset({TASK_GENERATION}))
    final_only: bool = False
    description: str = ""
    directions: Mapping[str, str] = field(default_factory=dict, hash=False)
    config: type = NoConfig

    def direction(self, column: str) -> str:
        """``"higher"``, ``"lower"`` or ``"neither"`` (a column ``directions`` leaves out)."""
        return _direction(self, column)


@dataclass(frozen=True)
class ProbeSpec:
    """An analysis of a trained variant, run at its final evaluation: unlike a metric, which
    sees a batch of uint8 samples, a probe gets the frozen variant itself (its generator is
    differentiable in z), the data, two classifiers and a seeded random generator.

    Attributes:
        name: lowercase, hyphen-separated (``steering``); what ``--probes`` takes, and the
            prefix of its options (``--set steering.steps=20``).
        columns: the metrics.csv columns it fills (lowercase snake_case); a column has one
            owner, among metrics and probes alike.
        compute: ``compute(probe: ganbench.ProbeContext) -> ProbeResult | Mapping[str, float]``.
        tasks: the variant tasks it applies to.
        applies: ``applies(variant_spec) -> bool``, for probes that need more than a task
            (label swap needs a conditional variant); None: every variant of its tasks.
        config: a dataclass type whose fields are its options (defaults of the method it
            implements), overridden by ``--set NAME.FIELD=VALUE``.
        tables: names of the tables it writes besides its columns (``steering`` becomes
            ``steering.csv`` in the run directory); lowercase snake_case, one owner each.
        description: one line for ``ganbench list``.
        directions: ``{column: "higher" | "lower" | "neither"}``, as for :class:`MetricSpec`.
        reference: ``reference(ref: ganbench.ReferenceContext) -> ProbeResult | Mapping[str,
            float]``: the probe's value on real data, for the run's ``real-data`` row (CAS:
            the classifier trained on real training images); run once per run when the probe
            applies to one of its variants. None: its columns are NaN in that row.
    """

    name: str
    columns: tuple[str, ...]
    compute: Callable[..., Any]
    tasks: frozenset[str] = field(default_factory=lambda: frozenset({TASK_GENERATION}))
    applies: Callable[[VariantSpec], bool] | None = None
    config: type = NoConfig
    tables: tuple[str, ...] = ()
    description: str = ""
    directions: Mapping[str, str] = field(default_factory=dict, hash=False)
    reference: Callable[..., Any] | None = None

    def direction(self, column: str) -> str:
        """``"higher"``, ``"lower"`` or ``"neither"`` (a column ``directions`` leaves out)."""
        return _direction(self, column)

    def applies_to(self, variant: VariantSpec) -> bool:
        return variant.task in self.tasks and (self.applies is None or bool(self.applies(variant)))


def _direction(spec: MetricSpec | ProbeSpec, column: str) -> str:
    if column not in spec.columns:
        raise KeyError(f"{column!r} is not a column of {spec.name!r}")
    return spec.directions.get(column, NEITHER)


def column_directions(spec: MetricSpec | ProbeSpec) -> dict[str, str]:
    """``{column: direction}`` for every column of a metric or probe, in its order."""
    return {c: spec.direction(c) for c in spec.columns}


def _directions_problem(spec: MetricSpec | ProbeSpec) -> str | None:
    if not isinstance(spec.directions, Mapping):
        return f"directions of {spec.name!r} must map columns to {'/'.join(DIRECTIONS)}, got {type(spec.directions).__name__}"
    for column, word in spec.directions.items():
        if column not in spec.columns:
            return f"directions of {spec.name!r}: {column!r} is not one of its columns ({', '.join(spec.columns)})"
        if word not in DIRECTIONS:
            return f"directions of {spec.name!r}: {word!r} for column {column!r} is unknown; accepted: {', '.join(DIRECTIONS)}"
    return None


def spec_problem(spec: Any, expected: type) -> str | None:
    """Why ``spec`` is not a valid ``expected`` spec, or None when it is."""
    if not isinstance(spec, expected):
        return f"expected a {expected.__name__}, got {type(spec).__name__}"
    if not isinstance(spec.name, str) or not NAME_PATTERN.match(spec.name):
        return (
            f"name {spec.name!r} is not allowed: use lowercase letters and digits, "
            "words joined by single hyphens (e.g. 'wgan-gp')"
        )
    if isinstance(spec, VariantSpec):
        if not callable(spec.build):
            return f"build must be callable, got {type(spec.build).__name__}"
        if not (isinstance(spec.config, type) and dataclasses.is_dataclass(spec.config)):
            return "config must be a dataclass type (its fields are the hyperparameters)"
        try:
            check_declarations(spec.config)
        except ValueError as exc:
            return f"config {spec.config.__name__}: {exc}"
        if spec.task not in TASKS:
            return f"task {spec.task!r} is unknown; accepted: {', '.join(TASKS)}"
    elif isinstance(spec, DatasetSpec):
        if not callable(spec.load):
            return f"load must be callable, got {type(spec.load).__name__}"
        shape = spec.image_shape
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)):
            return f"image_shape must be (channels, height, width) of positive ints, got {shape!r}"
        if not spec.class_names or not all(isinstance(c, str) for c in spec.class_names):
            return "class_names must be a non-empty tuple of strings"
        if len(spec.attributes) != len(set(spec.attributes)) or not all(
            isinstance(a, str) and COLUMN_PATTERN.match(a) for a in spec.attributes
        ):
            return f"attributes must be distinct lowercase snake_case names, got {spec.attributes!r}"
        if spec.measure_attributes is not None and not (spec.attributes and callable(spec.measure_attributes)):
            return "measure_attributes must be callable and needs the attribute names in attributes"
    elif isinstance(spec, (MetricSpec, ProbeSpec)):
        if not callable(spec.compute):
            return f"compute must be callable, got {type(spec.compute).__name__}"
        if not spec.columns or not all(isinstance(c, str) and COLUMN_PATTERN.match(c) for c in spec.columns):
            return f"columns must be lowercase snake_case names, got {spec.columns!r}"
        unknown = set(spec.tasks) - set(TASKS)
        if unknown:
            return f"tasks {sorted(unknown)} are unknown; accepted: {', '.join(TASKS)}"
        problem = _directions_problem(spec)
        if problem:
            return problem
        kind = "probe" if isinstance(spec, ProbeSpec) else "metric"
        if not (isinstance(spec.config, type) and dataclasses.is_dataclass(spec.config)):
            return f"config must be a dataclass type (its fields are the {kind}'s options)"
        try:
            check_declarations(spec.config)
        except ValueError as exc:
            return f"config {spec.config.__name__}: {exc}"
        if isinstance(spec, ProbeSpec):
            if spec.applies is not None and not callable(spec.applies):
                return f"applies must be callable or None, got {type(spec.applies).__name__}"
            if spec.reference is not None and not callable(spec.reference):
                return f"reference must be callable or None, got {type(spec.reference).__name__}"
            if not all(
                isinstance(t, str) and COLUMN_PATTERN.match(t) and t not in RESERVED_TABLES for t in spec.tables
            ):
                return f"tables must be lowercase snake_case names other than {', '.join(RESERVED_TABLES)}, got {spec.tables!r}"
    return None
