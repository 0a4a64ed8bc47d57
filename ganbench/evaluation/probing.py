"""Running probes on a trained variant: each one on its own seeded generator, a probe that
raises or returns what the contract does not accept gives NaN and a note naming it (not a
crash, and the other probes' values are unaffected), and the variant is frozen throughout. The
probes' references (their values on real data, for the ``real-data`` row) run the same way."""

from __future__ import annotations

import logging
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganbench.evaluation.outputs import add_note, checked_values, picture_problem
from ganbench.probes import ProbeContext, ProbeResult, ReferenceContext
from ganbench.specs import ProbeSpec

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.data.attributes import Attributes
    from ganbench.data import DatasetSplits
    from ganbench.evaluation.judges import Judges
    from ganbench.specs import VariantSpec
    from ganbench.variant import GenerativeVariant

log = logging.getLogger(__name__)

# Probes' latents: the same for every variant of a run with one seed, and apart from the
# evaluation's and training's (the harness and ganbench.testing seed them alike).
PROBE_SEED_OFFSET = 2_000_003
TABLE_VALUE_TYPES = (str, bool, numbers.Real, type(None))  # NumPy scalars are numbers.Real; a tensor is not


@dataclass
class ProbeOutcome:
    """What the probes of one job gave: values and notes for its row, tables by name (rows
    for ``<name>.csv``), and pictures by probe, then file name (``probes/<job>/<probe>/<file>``)."""

    values: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pictures: dict[str, dict[str, bytes]] = field(default_factory=dict)
    seconds: float = 0.0


def probe_context(
    name: str,
    seed: int,
    variant: GenerativeVariant,
    spec: VariantSpec,
    config: Any,
    data: DatasetSplits,
    attributes: Attributes | None,
    judges: Judges,
    device: torch.device,
    cache_dir: Path | None = None,
) -> ProbeContext:
    """What a probe of variant ``name`` gets in a run with ``seed``: a fresh generator seeded
    with ``seed + PROBE_SEED_OFFSET`` (so that adding a probe does not change another's latents)."""
    generator = torch.Generator(device=device).manual_seed(seed + PROBE_SEED_OFFSET)
    return ProbeContext(
        name, seed, variant, spec, config, data, attributes, judges.judge, judges.steering, generator, device, cache_dir
    )


@dataclass(frozen=True)
class CheckedProbe:
    """What one probe returned, checked (:func:`check_probe_output`): its values, the tables and
    pictures the contract accepts, the row's notes (its own reasons and its mistakes) and the
    mistakes alone (``problems``), keyed by column or ``probe NAME``."""

    values: dict[str, float]
    tables: dict[str, list[dict[str, Any]]]
    pictures: dict[str, bytes]
    notes: dict[str, str]
    problems: dict[str, str]


def check_probe_output(spec: ProbeSpec, out: Any) -> CheckedProbe:
    """``out``, what ``spec.compute`` returned, as a run keeps it: a float for each declared
    column, the rows of its declared tables, its PNG pictures, and a reason for each departure
    from the contract (undeclared or missing columns or tables, NaN without a reason, a value
    that is not a float, rows that are not mappings of plain values, pictures that are not PNG)."""
    owner = f"probe {spec.name}"
    if isinstance(out, ProbeResult):
        returned, given, tables, pictures = out.values, out.notes, out.tables, out.pictures
    else:
        returned, given, tables, pictures = out, {}, {}, {}
    given = {k: str(v) for k, v in given.items()} if isinstance(given, Mapping) else {}
    values, reasons = checked_values(owner, spec.columns, returned, given)
    kept_tables: dict[str, list[dict[str, Any]]] = {}
    for name, rows in tables.items() if isinstance(tables, Mapping) else ():
        problem = _table_problem(spec, name, rows)
        if problem:
            add_note(reasons, owner, problem)
        else:
            kept_tables[name] = [dict(r) for r in rows]
    kept_pictures: dict[str, bytes] = {}
    for file, data in pictures.items() if isinstance(pictures, Mapping) else ():
        problem = picture_problem(file, data)
        if problem:
            add_note(reasons, owner, f"{problem}; not saved")
        else:
            kept_pictures[file] = bytes(data)
    problems = {k: r for k, r in reasons.items() if r != given.get(k)}  # not the probe's own explanation
    return CheckedProbe(values, kept_tables, kept_pictures, reasons, problems)


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
        _collect(outcome, spec, probe.name, out)
    outcome.seconds = time.perf_counter() - start
    return outcome


def run_references(
    probes: Sequence[tuple[ProbeSpec, Any]], context: Callable[[ProbeSpec, Any], ReferenceContext]
) -> ProbeOutcome:
    """The ``reference`` of every probe that has one, with its options: the values of the
    ``real-data`` row (a probe without one leaves its columns out: NaN there), checked as a
    variant's probe output is. Pictures are not kept: the row has no probe folder."""
    outcome = ProbeOutcome()
    start = time.perf_counter()
    for spec, config in probes:
        if spec.reference is None:
            continue
        try:
            out = spec.reference(context(spec, config))
        except Exception as exc:
            out = _failed(spec, "real data", exc)
        _collect(outcome, spec, "real data", out)
    outcome.pictures.clear()
    outcome.seconds = time.perf_counter() - start
    return outcome


def _failed(spec: ProbeSpec, name: str, exc: Exception) -> ProbeResult:
    log.warning("probe %s failed on %s: %s: %s", spec.name, name, type(exc).__name__, exc)
    return ProbeResult({}, notes={c: f"{spec.name} failed: {type(exc).__name__}: {exc}" for c in spec.columns})


def _collect(outcome: ProbeOutcome, spec: ProbeSpec, name: str, out: Any) -> None:
    """One probe's result, checked (:func:`check_probe_output`), into the outcome; each
    departure from the contract is logged and noted in the row."""
    checked = check_probe_output(spec, out)
    outcome.values.update(checked.values)
    for table, rows in checked.tables.items():
        outcome.tables.setdefault(table, []).extend(rows)
    if checked.pictures:
        outcome.pictures[spec.name] = checked.pictures
    for key, reason in checked.problems.items():
        log.warning("probe %s on %s: %s: %s", spec.name, name, key, reason)
    for key, reason in checked.notes.items():
        add_note(outcome.notes, key, reason)


def _table_problem(spec: ProbeSpec, name: Any, rows: Any) -> str | None:
    """Why ``tables[name]`` is not rows of one of the probe's declared tables: a sequence of
    mappings from column name to a plain value (text, number, true/false or None)."""
    if name not in spec.tables:
        declared = ", ".join(spec.tables) or "none"
        return f"returned undeclared table {name!r}, not saved (declared tables: {declared})"
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        return f"table {name!r} is a {type(rows).__name__}, not a sequence of rows; not saved"
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            return f"table {name!r} row {i} is a {type(row).__name__}, not a mapping of column to value; not saved"
        wrong = next(
            ((k, v) for k, v in row.items() if not isinstance(k, str) or not isinstance(v, TABLE_VALUE_TYPES)), None
        )
        if wrong is not None:
            k, v = wrong
            return (
                f"table {name!r} row {i}, column {k!r}: a {type(v).__name__} is not a table value "
                "(text, number, true/false or None); not saved"
            )
    return None
