"""Running probes on a trained variant: each one on its own seeded generator, a probe that
raises gives NaN and a note (not a crash), and the variant is frozen throughout. The probes'
references (their values on real data, for the ``real-data`` row) run the same way."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ganbench.probes import ProbeContext, ProbeResult, ReferenceContext
from ganbench.specs import ProbeSpec

log = logging.getLogger(__name__)


@dataclass
class ProbeOutcome:
    values: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pictures: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0


def run_probes(
    probes: Sequence[tuple[ProbeSpec, Any]], context: Callable[[ProbeSpec, Any], ProbeContext]
) -> ProbeOutcome:
    """Every probe with its options; ``context(spec, config)`` builds what it gets (with a
    freshly seeded generator, so adding a probe does not change another's latents)."""
    outcome = ProbeOutcome()
    start = time.perf_counter()
    for spec, config in probes:
        probe = context(spec, config)
        try:
            with probe.variant.frozen():
                out = spec.compute(probe)
        except Exception as exc:
            out = _failed(spec, probe.name, exc)
        _collect(outcome, spec, out)
    outcome.seconds = time.perf_counter() - start
    return outcome


def run_references(
    probes: Sequence[tuple[ProbeSpec, Any]], context: Callable[[ProbeSpec, Any], ReferenceContext]
) -> ProbeOutcome:
    """The ``reference`` of every probe that has one, with its options: the values of the
    ``real-data`` row (a probe without one leaves its columns out: NaN there). Pictures are
    not kept: the row has no probe folder."""
    outcome = ProbeOutcome()
    start = time.perf_counter()
    for spec, config in probes:
        if spec.reference is None:
            continue
        try:
            out = spec.reference(context(spec, config))
        except Exception as exc:
            out = _failed(spec, "real data", exc)
        _collect(outcome, spec, out)
    outcome.pictures.clear()
    outcome.seconds = time.perf_counter() - start
    return outcome


def _failed(spec: ProbeSpec, name: str, exc: Exception) -> ProbeResult:
    log.warning("probe %s failed on %s: %s: %s", spec.name, name, type(exc).__name__, exc)
    return ProbeResult({}, notes={c: f"{spec.name} failed: {type(exc).__name__}: {exc}" for c in spec.columns})


def _collect(outcome: ProbeOutcome, spec: ProbeSpec, out: Any) -> None:
    """One probe's result into the outcome: its declared columns (NaN where it gave none),
    notes and tables; what it did not declare is dropped with a warning."""
    if not isinstance(out, ProbeResult):
        out = ProbeResult(dict(out))
    for column in spec.columns:
        outcome.values[column] = float(out.values.get(column, math.nan))
    unknown = set(out.values) - set(spec.columns)
    if unknown:
        log.warning("probe %s returned undeclared columns %s; ignored", spec.name, sorted(unknown))
    outcome.notes.update({k: v for k, v in out.notes.items() if k in spec.columns})
    for name, rows in out.tables.items():
        if name not in spec.tables:
            log.warning("probe %s returned undeclared table %r; ignored", spec.name, name)
            continue
        outcome.tables.setdefault(name, []).extend(dict(r) for r in rows)
    outcome.pictures.update(out.pictures)
