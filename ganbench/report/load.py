"""A run directory as the report reads it: config.json, the tables and the pictures."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench import columns as C
from ganbench.errors import UsageError
from ganbench.harness.rundir import (
    CONFIG_JSON,
    JOBS_CSV,
    METRICS_CSV,
    PER_CLASS_CSV,
    PROBES_DIR,
    RUN_FORMAT,
    SAMPLES_DIR,
    TRAIN_LOG_CSV,
)
from ganbench.harness.writer import final_rows, read_table

KNOWN_TABLES = {METRICS_CSV, PER_CLASS_CSV, TRAIN_LOG_CSV, JOBS_CSV, "summary.csv"}


@dataclass
class RunData:
    """Everything a report shows of one run.

    Attributes:
        path: the run directory.
        record: config.json.
        metrics: metrics.csv (one row per variant x seed x evaluation, references included).
        per_class, train_log, jobs: the other tables (empty frames when absent).
        tables: the probes' tables by name (``steering``, ``label_swap``, ...).
        pictures: sample grids and probe pictures, by path relative to the run directory.
    """

    path: Path
    record: dict[str, Any]
    metrics: pd.DataFrame
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    train_log: pd.DataFrame = field(default_factory=pd.DataFrame)
    jobs: pd.DataFrame = field(default_factory=pd.DataFrame)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    pictures: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def dataset(self) -> str:
        return str(self.record.get("dataset", {}).get("name", ""))

    @property
    def classifier(self) -> dict[str, Any]:
        return self.record.get("classifier") or {}

    @property
    def finals(self) -> pd.DataFrame:
        """One row per (variant, seed) of the trained variants: its last evaluation, with the
        status of where its job stopped."""
        trained = self.metrics[self.metrics[C.STATUS] != C.STATUS_REFERENCE]
        return final_rows(trained)

    @property
    def references(self) -> pd.DataFrame:
        """The reference rows (real data, the bicubic baseline)."""
        return self.metrics[self.metrics[C.STATUS] == C.STATUS_REFERENCE]

    @property
    def variants(self) -> list[str]:
        """Trained variants, in the run's order."""
        return list(dict.fromkeys(self.metrics.loc[self.metrics[C.STATUS] != C.STATUS_REFERENCE, C.VARIANT]))


def _csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame()
    try:
        return read_table(path)
    except Exception as exc:
        raise UsageError(
            f"{path} is unreadable ({type(exc).__name__}: {exc}); a report needs the run's tables"
        ) from None


def load_run(path: Path | str) -> RunData:
    """Read a run directory; a folder that is not a ganbench run is a one-line UsageError."""
    path = Path(path)
    try:
        record = json.loads((path / CONFIG_JSON).read_text())
    except FileNotFoundError:
        raise UsageError(
            f"{path} is not a ganbench run (no {CONFIG_JSON}); give a directory `ganbench run` wrote"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"{path / CONFIG_JSON} is unreadable ({type(exc).__name__}); give a ganbench run directory"
        ) from None
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise UsageError(f"{path} is not a ganbench run ({CONFIG_JSON} is not a {RUN_FORMAT} record)")
    metrics = _csv(path / METRICS_CSV)
    if metrics.empty:
        raise UsageError(f"{path} has no results yet ({METRICS_CSV} is missing or empty); nothing to report")
    tables = {p.stem: _csv(p) for p in sorted(path.glob("*.csv")) if p.name not in KNOWN_TABLES}
    pictures = {
        p.relative_to(path).as_posix(): p
        for folder in (SAMPLES_DIR, PROBES_DIR)
        for p in sorted((path / folder).rglob("*.png"))
        if not p.name.startswith(".")
    }
    return RunData(
        path=path,
        record=record,
        metrics=metrics,
        per_class=_csv(path / PER_CLASS_CSV),
        train_log=_csv(path / TRAIN_LOG_CSV),
        jobs=_csv(path / JOBS_CSV),
        tables=tables,
        pictures=pictures,
    )
