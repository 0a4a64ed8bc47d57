"""A validated run: every name resolved against the registry, every override typed, the jobs
listed. Planning computes nothing and writes nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganbench.config import RunConfig, default_cache_dir, variant_config
from ganbench.devices import resolve_device
from ganbench.errors import UsageError
from ganbench.registry import Registry
from ganbench.specs import TASK_GENERATION, TASK_SUPER_RESOLUTION, DatasetSpec, MetricSpec, VariantSpec


@dataclass(frozen=True)
class PlannedVariant:
    spec: VariantSpec
    config: Any
    plugin: str


@dataclass(frozen=True)
class Plan:
    """A validated run. ``config`` is resolved: ``out`` is the run directory and plugin files
    are absolute, so the run can be re-made or resumed from any working directory."""

    config: RunConfig
    dataset: DatasetSpec
    variants: tuple[PlannedVariant, ...]
    metrics: tuple[MetricSpec, ...]
    device: torch.device
    cache_dir: Path

    @property
    def run_dir(self) -> Path:
        assert self.config.out is not None
        return Path(self.config.out)

    def variant(self, name: str) -> PlannedVariant:
        return next(p for p in self.variants if p.spec.name == name)

    def jobs(self) -> list[tuple[str, int]]:
        """(variant, seed) pairs in the order they run and their rows are tabulated."""
        return [(p.spec.name, seed) for p in self.variants for seed in self.config.seeds]

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
    unknown_sets = set(config.set) - set(config.variants)
    if unknown_sets:
        raise UsageError(
            f"--set names variant(s) {', '.join(sorted(unknown_sets))} that are not in --variants ({', '.join(config.variants)})"
        )
    planned = []
    for name in config.variants:
        spec = registry.variant(name)
        overrides = config.set.get(name, {})
        planned.append(
            PlannedVariant(spec, variant_config(name, spec.config, overrides), registry.variants[name].plugin)
        )
    if config.metrics:
        metrics = tuple(registry.metric(name) for name in config.metrics)
    else:
        metrics = tuple(r.spec for r in registry.metrics.values())
    device = resolve_device(config.device)
    run_dir = Path(config.out) if config.out is not None else default_run_dir(config)
    cache_dir = Path(config.cache_dir) if config.cache_dir is not None else default_cache_dir()
    resolved = config.replace(out=run_dir.absolute(), plugin=tuple(Path(p).resolve() for p in config.plugin))
    return Plan(resolved, dataset, tuple(planned), metrics, device, cache_dir)
