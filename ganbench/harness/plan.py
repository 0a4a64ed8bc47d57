"""A validated run: every name resolved against the registry, every override typed, the jobs
listed. Planning computes nothing and writes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganbench.config import RunConfig, default_cache_dir, search_range, variant_config
from ganbench.devices import resolve_device
from ganbench.errors import UsageError
from ganbench.evaluation.dinov2 import Dinov2Weights
from ganbench.fastpath import check_precision
from ganbench.registry import Registry
from ganbench.specs import (
    TASK_GENERATION,
    TASK_SUPER_RESOLUTION,
    DatasetSpec,
    MetricSpec,
    ProbeSpec,
    VariantSpec,
    column_directions,
)


@dataclass(frozen=True)
class PlannedVariant:
    spec: VariantSpec
    config: Any
    plugin: str
    # The search space of a hyperparameter search: the spec's declared ranges, less the fields
    # --set fixes, with the --search ranges of the run in place or added.
    search: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedProbe:
    spec: ProbeSpec
    config: Any
    plugin: str


@dataclass(frozen=True)
class Plan:
    """A validated run. ``config`` is resolved: ``out`` is the run directory, plugin files and
    the DINOv2 weights file are absolute, so the run can be re-made or resumed from any working
    directory."""

    config: RunConfig
    dataset: DatasetSpec
    variants: tuple[PlannedVariant, ...]
    metrics: tuple[MetricSpec, ...]
    device: torch.device
    cache_dir: Path
    probes: tuple[PlannedProbe, ...] = ()
    # Each metric's options, by name: its MetricSpec.config with the run's --set applied.
    metric_options: Mapping[str, Any] = field(default_factory=dict)
    # --dinov2-weights, checked (architecture, SHA-256); None when not given
    dinov2: Dinov2Weights | None = None

    @property
    def run_dir(self) -> Path:
        assert self.config.out is not None
        return Path(self.config.out)

    def variant(self, name: str) -> PlannedVariant:
        return next(p for p in self.variants if p.spec.name == name)

    def jobs(self) -> list[tuple[str, int]]:
        """(variant, seed) pairs in the order they run and their rows are tabulated."""
        return [(p.spec.name, seed) for p in self.variants for seed in self.config.seeds]

    def probes_for(self, name: str) -> list[PlannedProbe]:
        """The probes that apply to variant ``name``, in registration order."""
        variant = self.variant(name).spec
        return [p for p in self.probes if p.spec.applies_to(variant)]

    def probe_runs(self, probe: PlannedProbe) -> bool:
        """Whether ``probe`` applies to one of the plan's variants."""
        return any(probe.spec.applies_to(p.spec) for p in self.variants)

    @property
    def probed(self) -> bool:
        """Whether any probe runs in this plan (then the judges are needed)."""
        return any(self.probe_runs(p) for p in self.probes)

    @property
    def columns(self) -> list[str]:
        """Every column the run's metrics and probes fill."""
        return [c for spec in (*self.metrics, *(p.spec for p in self.probes)) for c in spec.columns]

    @property
    def directions(self) -> dict[str, str]:
        """``{column: "higher" | "lower" | "neither"}`` for every column of :attr:`columns`, as
        its metric or probe declares it."""
        return {c: d for spec in (*self.metrics, *(p.spec for p in self.probes)) for c, d in column_directions(spec).items()}

    @property
    def generates(self) -> bool:
        return any(p.spec.task == TASK_GENERATION for p in self.variants)

    @property
    def sr_scales(self) -> list[int]:
        return sorted({getattr(p.config, "scale", 2) for p in self.variants if p.spec.task == TASK_SUPER_RESOLUTION})


def default_run_dir(config: RunConfig, now: dt.datetime | None = None) -> Path:
    """results/<time>-<variants>-<dataset>, with a suffix if that name is taken already."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    short = "-".join(config.variants)
    if len(short) > 40:
        short = f"{short[:37]}-{len(config.variants)}v"
    base = Path("results") / f"{stamp}-{short}-{config.dataset}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def plan_run(config: RunConfig, registry: Registry) -> Plan:
    """Check every name and override against the registry; compute nothing."""
    config.check()
    if not config.variants:
        raise UsageError(
            f"no variants given; use --variants NAME[,NAME...] (accepted: {', '.join(sorted(registry.variants)) or 'none registered'})"
        )
    dataset = registry.dataset(config.dataset)
    if config.metrics:
        metrics = tuple(registry.metric(name) for name in config.metrics)
    else:
        metrics = tuple(r.spec for r in registry.metrics.values())
    variant_names, probe_names = list(config.variants), _probe_names(config, registry)
    metric_names = [m.name for m in metrics]
    kinds = {"variant": variant_names, "probe": probe_names, "metric": metric_names}
    for name in config.set:
        owners = [kind for kind, names in kinds.items() if name in names]
        if len(owners) > 1:
            raise UsageError(f"--set {name}.KEY is ambiguous: {name} names both a {owners[0]} and a {owners[1]}")
    unknown_sets = set(config.set) - set(variant_names) - set(probe_names) - set(metric_names)
    if unknown_sets:
        raise UsageError(
            f"--set names {', '.join(sorted(unknown_sets))}, which is neither a variant in --variants "
            f"({', '.join(variant_names)}) nor a probe that runs ({', '.join(probe_names) or 'none'}) nor a metric "
            f"that runs ({', '.join(metric_names) or 'none'})"
        )
    unknown_searches = set(config.search) - set(variant_names)
    if unknown_searches:
        raise UsageError(
            f"--search names {', '.join(sorted(unknown_searches))}, which is not a variant in --variants "
            f"({', '.join(variant_names)})"
        )
    planned = []
    for name in config.variants:
        spec = registry.variant(name)
        overrides = config.set.get(name, {})
        vconfig = variant_config(name, spec.config, overrides)
        planned.append(
            PlannedVariant(spec, vconfig, registry.variants[name].plugin, _search(name, spec, overrides, config))
        )
    probes = tuple(
        PlannedProbe(
            registry.probes[name].spec,
            variant_config(name, registry.probes[name].spec.config, config.set.get(name, {})),
            registry.probes[name].plugin,
        )
        for name in probe_names
    )
    metric_options = {m.name: variant_config(m.name, m.config, config.set.get(m.name, {})) for m in metrics}
    dinov2 = _dinov2_weights(config)
    device = resolve_device(config.device)
    check_precision(config.precision, device)
    run_dir = Path(config.out) if config.out is not None else default_run_dir(config)
    cache_dir = Path(config.cache_dir) if config.cache_dir is not None else default_cache_dir()
    resolved = config.replace(out=run_dir.absolute(), plugin=tuple(Path(p).resolve() for p in config.plugin))
    if dinov2 is not None:  # absolute, as the plugins: a resume or a Ray worker may start elsewhere
        resolved = resolved.replace(dinov2_weights=dinov2.path)
    return Plan(resolved, dataset, tuple(planned), metrics, device, cache_dir, probes, metric_options, dinov2)


def _dinov2_weights(config: RunConfig) -> Dinov2Weights | None:
    """``--dinov2-weights`` read (never unpickled) and matched against timm's DINOv2 models:
    a missing, damaged, crafted or foreign file is bad input, refused before anything runs."""
    if config.dinov2_weights is None:
        return None
    from ganbench.evaluation.dinov2 import WeightsRefused, check_weights

    try:
        return check_weights(Path(config.dinov2_weights).absolute())
    except WeightsRefused as exc:
        raise UsageError(str(exc)) from None


def _search(name: str, spec: VariantSpec, overrides: Mapping[str, Any], config: RunConfig) -> dict[str, Any]:
    ranges = {key: search_range(name, spec.config, key, text) for key, text in config.search.get(name, {}).items()}
    both = sorted(set(ranges) & set(overrides))
    if both:
        raise UsageError(
            f"{name}.{both[0]} is both fixed by --set and searched by --search; give one "
            f"(--set fixes a value, --search gives the range a search draws it from)"
        )
    space = {key: r for key, r in spec.search_space.items() if key not in overrides}
    return {**space, **ranges}


def check_batch_sizes(plan: Plan, train_size: int) -> None:
    """Every variant's batch size fits in the training split (known once the data is loaded):
    UsageError otherwise, naming the variant and what is accepted."""
    for p in plan.variants:
        batch = int(getattr(p.config, "batch_size", 64))  # as Variant.batch_size reads it
        if batch > train_size:
            raise UsageError(
                f"{p.spec.name}.batch_size = {batch} is more than the {train_size} images of "
                f"{plan.dataset.name}'s training split; accepted: 1 to {train_size} (--set {p.spec.name}.batch_size=N)"
            )


def check_image_shapes(plan: Plan, image_shape: tuple[int, int, int]) -> None:
    """Every variant's config that declares ``check_image_shape`` (e.g. an ``arch`` that
    supports some image sizes only) accepts the dataset's images: UsageError otherwise."""
    for p in plan.variants:
        check = getattr(p.config, "check_image_shape", None)
        if check is None:
            continue
        try:
            check(tuple(image_shape))
        except ValueError as exc:
            raise UsageError(f"{p.spec.name} on {plan.dataset.name}: {exc}") from None


def _probe_names(config: RunConfig, registry: Registry) -> list[str]:
    if config.probes is None:
        return list(registry.probes)
    return [registry.probe(name).name for name in config.probes]
