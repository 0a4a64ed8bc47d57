"""A run directory as the report reads it: config.json, the tables and the pictures.

Nothing is published from a damaged table: each table is checked against the SHA-256 the run's
writer recorded in ``tables.json``. A damaged ``metrics.csv`` is replaced by its intact copy
``metrics.parquet`` (and the report says so); any other damaged table is refused in one line.
A run written before ``tables.json`` existed has its ``metrics.csv`` cross-checked against
``metrics.parquet`` instead. config.json is checked for the shape of what the report reads.
"""

from __future__ import annotations

import io
import json
import math
import time
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
    METRICS_PARQUET,
    PER_CLASS_CSV,
    PROBES_DIR,
    RUN_FORMAT,
    SAMPLES_DIR,
    TABLES_JSON,
    TRAIN_LOG_CSV,
    manifest_accepts,
    read_manifest,
)
from ganbench.harness.writer import final_rows, read_table
from ganbench.specs import DIRECTIONS

KNOWN_TABLES = {METRICS_CSV, PER_CLASS_CSV, TRAIN_LOG_CSV, JOBS_CSV, "summary.csv"}
# What a report writes beside its pages (render.Decisions): in a published folder that also holds
# the run's tables (results/reference), they are the report's output, not a table of the run.
REPORT_TABLES = {"verdicts.csv", "seeds_needed.csv", "noise.csv"}


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
        notices: what a reader of the report must be told about how the tables were read (a
            damaged metrics.csv replaced by metrics.parquet; tables that could not be checked).
    """

    path: Path
    record: dict[str, Any]
    metrics: pd.DataFrame
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    train_log: pd.DataFrame = field(default_factory=pd.DataFrame)
    jobs: pd.DataFrame = field(default_factory=pd.DataFrame)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    pictures: dict[str, Path] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def dataset(self) -> str:
        return str((self.record.get("dataset") or {}).get("name") or "")

    @property
    def classifier(self) -> dict[str, Any]:
        return self.record.get("classifier") or {}

    @property
    def directions(self) -> dict[str, str]:
        """``{column: "higher" | "lower" | "neither"}`` of the run's metric and probe columns, as
        config.json's ``columns`` records them (from each spec's ``directions``). Empty for a run
        written before that record: the report then falls back to :mod:`ganbench.columns`."""
        return {
            column: entry["direction"]
            for column, entry in (self.record.get("columns") or {}).items()
            if isinstance(entry, dict) and entry.get("direction") is not None
        }

    @property
    def owners(self) -> dict[str, tuple[str, str]]:
        """``{column: (kind, name)}``: the metric or probe that filled each column, as config.json's
        ``columns`` records it (empty for a run written before that record)."""
        return {
            column: (str(entry.get("kind") or ""), str(entry.get("source") or ""))
            for column, entry in (self.record.get("columns") or {}).items()
            if isinstance(entry, dict) and entry.get("source")
        }

    @property
    def probe_names(self) -> list[str]:
        """The probes the run ran, in its order."""
        return list(self.record.get("probes") or {})

    def probe_tables(self, probe: str) -> list[str]:
        """The tables probe ``probe`` wrote that the run has, by name: as config.json records them,
        or (a run written before that record) the table named like the probe (``label-swap``:
        ``label_swap``)."""
        entry = (self.record.get("probes") or {}).get(probe) or {}
        declared = entry.get("tables")
        names = declared if declared is not None else [probe.replace("-", "_")]
        return [n for n in names if n in self.tables]

    def probe_pictures(self, probe: str) -> dict[str, Path]:
        """The probe's pictures by path relative to the run: ``probes/<job>/<probe>/<file>``, or
        in a run written before probes had a folder each, ``probes/<job>/<file>`` whose file name
        starts with the probe's name (the longest such name among the run's probes)."""
        own = {}
        for name, path in self.pictures.items():
            parts = name.split("/")
            if parts[0] != PROBES_DIR:
                continue
            if len(parts) == 4:
                owner = parts[2]
            else:
                starts = [p for p in self.probe_names if parts[-1].startswith(p)]
                owner = max(starts, key=len) if starts else ""
            if owner == probe:
                own[name] = path
        return own

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


# --- config.json: the shape of what the report reads ---------------------------------------------

TEXT, NUMBER, INT, BOOL, SCALAR = "text", "a number", "an integer", "true or false", "a value"
_PLURAL = {TEXT: "texts", NUMBER: "numbers", INT: "integers", BOOL: "true/false values", SCALAR: "values"}
_ACCURACIES = {"class_accuracy": NUMBER, "mean_attribute_accuracy": NUMBER}
# Every section is optional (an absent or null one reads as unknown); one that is there must
# have this shape. [kind]: a list of kind; ("each", shape): an object of named objects.
RECORD_SHAPE: dict[str, Any] = {
    "run": {
        "variants": [TEXT], "dataset": TEXT, "budget": SCALAR, "seeds": [INT], "evals": INT, "eval_samples": INT,
    },
    "environment": {
        "device": TEXT, "gpu": TEXT, "cpu": TEXT, "torch_threads": INT, "ganbench": TEXT, "torch": TEXT,
        "torchvision": TEXT, "torch_fidelity": TEXT, "python": TEXT, "platform": TEXT,
    },
    "dataset": {
        "name": TEXT, "source": TEXT, "train_size": INT, "test_size": INT, "class_names": [TEXT],
        "image_shape": [INT],
    },
    "classifier": {"name": TEXT, "test_accuracy": NUMBER, "weights_sha256": TEXT},
    "variants": ("each", {"plugin": TEXT, "task": TEXT, "conditional": BOOL, "reference": TEXT}),
    "judges": {"judge": _ACCURACIES, "steering": _ACCURACIES},
    "probes": ("each", {"plugin": TEXT, "columns": [TEXT], "tables": [TEXT], "description": TEXT, "config": {}}),
    "metrics": ("each", {"plugin": TEXT, "columns": [TEXT], "description": TEXT, "config": {}}),
    "columns": ("each", {"direction": TEXT, "kind": TEXT, "source": TEXT, "plugin": TEXT}),
    "plugins": ("each", {"distribution": TEXT, "version": TEXT, "file": TEXT, "sha256": TEXT}),
    "started": TEXT,
    "resumed": [TEXT],
}  # fmt: skip


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {json.dumps(value)[:40]}"


def _fits(value: Any, kind: str) -> bool:
    if kind == TEXT:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, (str, int, float, bool))  # SCALAR


def _shape_error(value: Any, shape: Any, key: str) -> str | None:
    """Where ``value`` departs from ``shape``: ``key should be ..., not ...``; None when it fits.
    None (JSON null) fits anything: the value is unknown."""
    if value is None:
        return None
    if isinstance(shape, dict) or isinstance(shape, tuple):
        if not isinstance(value, dict):
            return f'"{key}" should be an object, not {_kind_of(value)}'
        if isinstance(shape, tuple):  # ("each", shape): every value an object of that shape
            items = [(f"{key}.{name}", item, shape[1]) for name, item in value.items()]
        else:
            items = [(f"{key}.{name}", value[name], inner) for name, inner in shape.items() if name in value]
        for inner_key, item, inner in items:
            error = _shape_error(item, inner, inner_key)
            if error:
                return error
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f'"{key}" should be a list of {_PLURAL[shape[0]]}, not {_kind_of(value)}'
        for i, item in enumerate(value):
            if item is None or not _fits(item, shape[0]):
                return f'"{key}[{i}]" should be {shape[0]}, not {_kind_of(item)}'
        return None
    if not _fits(value, shape):
        return f'"{key}" should be {shape}, not {_kind_of(value)}'
    return None


def check_record(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """config.json as the report may read it: every section it reads of the expected shape (one
    line naming the first key that is not), null sections dropped (read as unknown)."""
    for key, shape in RECORD_SHAPE.items():
        error = _shape_error(record.get(key), shape, key)
        if error:
            raise UsageError(
                f"{path / CONFIG_JSON} is damaged: {error}; restore config.json from a copy of the run "
                "(a report reads its sections run, environment, dataset, classifier, variants and judges)"
            )
    for column, entry in (record.get("columns") or {}).items():
        word = (entry or {}).get("direction")
        if word is not None and word not in DIRECTIONS:
            raise UsageError(
                f'{path / CONFIG_JSON} is damaged: "columns.{column}.direction" should be one of '
                f"{', '.join(DIRECTIONS)}, not {json.dumps(word)[:40]}; restore config.json from a copy of the run"
            )
    return {k: v for k, v in record.items() if not (k in RECORD_SHAPE and v is None)}


# --- the tables, checked ------------------------------------------------------------------------

FIX = "restore it from a copy of the run, or run the benchmark again"


class _Tables:
    """Reads a run's tables as bytes and checks each against tables.json before parsing it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest = self._manifest()
        self.notices: list[str] = []

    def _manifest(self) -> dict[str, dict[str, Any]] | None:
        try:
            return read_manifest(self.path)
        except ValueError as exc:
            raise UsageError(
                f"{self.path / TABLES_JSON} {exc}, so the run's tables cannot be checked; {FIX}"
            ) from None

    def _bytes(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(
                f"{self.path / name} cannot be read ({exc.strerror}); a report needs the run's tables"
            ) from None

    def read(self, name: str) -> tuple[bytes | None, str | None]:
        """The file's bytes (None: absent) and, when tables.json does not accept them, why. A
        mismatch is read again (twice, a moment apart): a run writing meanwhile records each new
        version in tables.json before it renames it into place."""
        for attempt in range(3):
            data = self._bytes(name)
            problem = self._problem(name, data)
            if problem is None or self.manifest is None:
                return data, problem
            if attempt < 2:
                time.sleep(0.1 * (attempt + 1))
                self.manifest = self._manifest()
        return data, problem

    def _problem(self, name: str, data: bytes | None) -> str | None:
        if self.manifest is None:
            return None
        entry = self.manifest.get(name)
        if entry is None:
            return None if data is None else "unrecorded"
        if manifest_accepts(entry, data) is not None:
            return None
        if data is None:
            return f"is missing, though the run wrote it ({entry['rows']} rows, recorded in {TABLES_JSON})"
        rows = _rows(name, data)
        counted = f"{rows} rows read, {entry['rows']} written" if rows is not None else f"{entry['rows']} rows written"
        return (
            f"is damaged: it does not match the SHA-256 the run recorded in {TABLES_JSON} ({counted}); "
            "it was cut short or edited after the run wrote it"
        )

    def frame(self, name: str) -> pd.DataFrame | None:
        """A table, checked (None: absent, or not one the run wrote). A damaged one is refused."""
        data, problem = self.read(name)
        if problem == "unrecorded":  # not written by the run's writer (a file put there later)
            self.notices.append(f"{name} is not one of the tables this run wrote ({TABLES_JSON}); it is not shown.")
            return None
        if problem:
            raise UsageError(
                f"{self.path / name} {problem}; a report never publishes numbers from a damaged table: {FIX}"
            )
        return None if data is None else _parse(self.path / name, data)

    def metrics(self) -> pd.DataFrame:
        """metrics.csv; when it is damaged, its intact copy metrics.parquet, with a notice saying so."""
        data, problem = self.read(METRICS_CSV)
        if problem and problem != "unrecorded":
            copy, copy_problem = self.read(METRICS_PARQUET)
            if copy is None or copy_problem:
                why = "is missing" if copy is None else "is damaged too"
                raise UsageError(
                    f"{self.path / METRICS_CSV} {problem}, and its copy {METRICS_PARQUET} {why}; "
                    f"a report never publishes numbers from a damaged table: {FIX}"
                )
            if data is None:
                state = "missing"
            else:
                state = f"damaged (it does not match the checksum the run recorded in {TABLES_JSON})"
            self.notices.append(
                f"{METRICS_CSV} of this run is {state}: this report reads its intact copy, {METRICS_PARQUET}. "
                f"Restore {METRICS_CSV} from a copy of the run, or write it again from {METRICS_PARQUET}."
            )
            return _parse(self.path / METRICS_PARQUET, copy)
        if problem == "unrecorded":
            raise UsageError(f"{self.path / METRICS_CSV} is not recorded in {TABLES_JSON}; {FIX}")
        frame = pd.DataFrame() if data is None else _parse(self.path / METRICS_CSV, data)
        if self.manifest is None:
            self._cross_check(frame)
        return frame

    def _cross_check(self, frame: pd.DataFrame) -> None:
        """A run from before tables.json: metrics.csv must hold what metrics.parquet holds."""
        copy = self._bytes(METRICS_PARQUET)
        if copy is None or frame.empty:
            self.notices.append(
                f"This run has no {TABLES_JSON} (it was written by an older ganbench or by hand): its tables could not "
                "be checked for damage."
            )
            return
        difference = _difference(frame, _parse(self.path / METRICS_PARQUET, copy))
        if difference:
            raise UsageError(
                f"{self.path / METRICS_CSV} and its copy {METRICS_PARQUET} disagree ({difference}): one of them is "
                f"damaged, and this run is older than {TABLES_JSON}, so neither can be trusted; {FIX}"
            )
        self.notices.append(
            f"This run has no {TABLES_JSON} (written by an older ganbench): {METRICS_CSV} was checked against "
            f"{METRICS_PARQUET}; its other tables could not be checked for damage."
        )


def _parse(path: Path, data: bytes) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(io.BytesIO(data))
        return read_table(io.BytesIO(data))
    except Exception as exc:
        raise UsageError(
            f"{path} is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "a report needs the run's tables"
        ) from None


def _rows(name: str, data: bytes) -> int | None:
    try:
        return len(pd.read_parquet(io.BytesIO(data)) if name.endswith(".parquet") else read_table(io.BytesIO(data)))
    except Exception:
        return None


def _difference(csv: pd.DataFrame, parquet: pd.DataFrame) -> str | None:
    """How metrics.csv departs from metrics.parquet (None: the same rows and values)."""
    if len(csv) != len(parquet):
        return f"{len(csv)} rows against {len(parquet)}"
    if list(csv.columns) != list(parquet.columns):
        return "their columns differ"
    for column in csv.columns:
        a, b = csv[column].reset_index(drop=True), parquet[column].reset_index(drop=True)
        an, bn = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
        numeric = an.notna() | bn.notna()
        for i in range(len(a)):
            if numeric[i]:
                x, y = float(an[i]), float(bn[i])
                same = (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-12, abs_tol=0.0)
            else:
                same = ("" if pd.isna(a[i]) else str(a[i])) == ("" if pd.isna(b[i]) else str(b[i]))
            if not same:
                return f"row {i + 1}, {column}: {a[i]!r} against {b[i]!r}"
    return None


def load_run(path: Path | str) -> RunData:
    """Read a run directory; a folder that is not a ganbench run, a damaged config.json and a
    damaged table are each a one-line UsageError."""
    path = Path(path)
    try:
        record = json.loads((path / CONFIG_JSON).read_text())
    except FileNotFoundError:
        raise UsageError(
            f"{path} is not a ganbench run (no {CONFIG_JSON}); give a directory `ganbench run` wrote"
        ) from None
    except NotADirectoryError:
        raise UsageError(
            f"{path} is not a ganbench run (not a directory); give a directory `ganbench run` wrote"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"{path / CONFIG_JSON} is unreadable ({type(exc).__name__}); give a ganbench run directory"
        ) from None
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise UsageError(f"{path} is not a ganbench run ({CONFIG_JSON} is not a {RUN_FORMAT} record)")
    record = check_record(record, path)
    read = _Tables(path)
    metrics = read.metrics()
    if metrics.empty:
        raise UsageError(f"{path} has no results yet ({METRICS_CSV} is missing or empty); nothing to report")
    missing = [c for c in (C.VARIANT, C.SEED, C.EVAL_INDEX, C.STATUS) if c not in metrics]
    if missing:
        raise UsageError(f"{path / METRICS_CSV} lacks the column {missing[0]}; {FIX}")
    per_class, train_log, jobs = (
        pd.DataFrame() if (frame := read.frame(name)) is None else frame
        for name in (PER_CLASS_CSV, TRAIN_LOG_CSV, JOBS_CSV)
    )
    names = {p.name for p in path.glob("*.csv")} | {n for n in read.manifest or {} if n.endswith(".csv")}
    tables = {
        Path(n).stem: frame
        for n in sorted(names - KNOWN_TABLES - REPORT_TABLES)
        if (frame := read.frame(n)) is not None
    }
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
        per_class=per_class,
        train_log=train_log,
        jobs=jobs,
        tables=tables,
        pictures=pictures,
        notices=read.notices,
    )
