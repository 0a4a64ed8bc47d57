"""What a job tells the writer: plain, picklable records (they may cross a process boundary).

A job emits :class:`JobStarted` first (with the rows and log points it restored from its
checkpoint, which replace whatever the tables hold for it), then rows, log points and
artefacts as it trains (with ``--track``, a :class:`Grid` at each evaluation), a :class:`Checkpoint` after each evaluation's rows, and
:class:`JobEnded` last. Rows are keyed by (variant, seed, eval_index) and log points by
(variant, seed, step), so receiving one twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]  # column -> value: Python scalars only (checkpoints load with weights_only=True)


@dataclass(frozen=True)
class JobStarted:
    variant: str
    seed: int
    rows: list[Record] = field(default_factory=list)
    per_class: list[Record] = field(default_factory=list)
    logs: list[Record] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    resumed_at: int = 0  # the step its checkpoint was saved at; 0 for a fresh start


@dataclass(frozen=True)
class Row:
    """One row of metrics.csv (an evaluation, a reference, or where a job stopped) and its
    rows of per_class.csv."""

    row: Record
    per_class: list[Record] = field(default_factory=list)


@dataclass(frozen=True)
class Log:
    """One row of train_log.csv."""

    record: Record


@dataclass(frozen=True)
class Table:
    """A probe's rows for ``<name>.csv`` at one evaluation (or the resample's, sampling.csv);
    they replace that evaluation's earlier rows of the table."""

    name: str
    variant: str
    seed: int
    eval_index: int
    rows: list[Record] = field(default_factory=list)


@dataclass(frozen=True)
class Artefact:
    """A file for the run directory, by its path relative to it (a sample grid)."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Grid:
    """The sample grid (PNG) at one evaluation, for live tracking only (``--track``): the
    writer keeps no file of it."""

    variant: str
    seed: int
    step: int
    eval_index: int
    png: bytes


@dataclass(frozen=True)
class Checkpoint:
    """A job's full state after an evaluation (``torch.save`` bytes), emitted after that
    evaluation's rows: the writer saves it as the job's checkpoint file, so a job running on
    another machine checkpoints into the run directory all the same."""

    variant: str
    seed: int
    data: bytes


@dataclass(frozen=True)
class JobEnded:
    variant: str
    seed: int
    status: str
    note: str = ""
    step: int = 0
    eval_index: int = 0


Event = JobStarted | Row | Log | Table | Artefact | Grid | Checkpoint | JobEnded
