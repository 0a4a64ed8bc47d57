"""The one writer of a run's tables: metrics, per-class, training log, jobs and summary.

It receives the jobs' events (:mod:`ganbench.harness.events`) and keeps every table keyed:
metric rows by (variant, seed, eval_index), per-class rows by that and the class, log points
by (variant, seed, step), jobs by (variant, seed). Writing a row twice is harmless, and a
resumed job's restored history replaces what the tables held for it. Rows are written in the
plan's order whatever order they arrive in, so a resumed or parallel run writes the same
tables as an uninterrupted one. Every table is rewritten atomically (:mod:`.rundir`) after
each row and at each job's start and end.

``tables.json`` records each table's SHA-256 and row count, so a reader can tell a damaged
table from the one written. It is written before the tables it describes, naming both the new
and the replaced version of each, and settled (the new versions only) at the end: a process
killed between the two writes leaves tables that ``tables.json`` still accepts.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench import columns as C
from ganbench.errors import UsageError, describe
from ganbench.harness import events as E
from ganbench.harness.rundir import (
    JOBS_CSV,
    METRICS_CSV,
    METRICS_PARQUET,
    PER_CLASS_CSV,
    SUMMARY_CSV,
    TABLES_JSON,
    TRAIN_LOG_CSV,
    RunDir,
    atomic_write_bytes,
    manifest_accepts,
    read_manifest,
    sha256_hex,
    write_manifest,
)

# Status of a job that started and has not ended (in jobs.csv only).
STATUS_RUNNING = "running"
JOB_COLUMNS = (C.VARIANT, C.SEED, C.STATUS, C.STEP, C.EVAL_INDEX, C.NOTE)
# A job with one of these statuses is done: a resumed run skips it (failed and interrupted
# jobs continue from their last checkpoint).
DONE_STATUSES = frozenset({C.STATUS_OK, C.STATUS_DIVERGED})
# Tables a resume may find edited or damaged and still go on: the writer makes them again whole
# (metrics.csv from metrics.parquet; jobs.csv from its jobs). A damaged table of any other kind
# holds rows the resume keeps, so it is refused rather than written again as if it were whole.
REWRITTEN_ON_RESUME = frozenset({METRICS_CSV, JOBS_CSV, SUMMARY_CSV})
INT_COLUMNS = (C.SEED, C.EVAL_INDEX, C.STEP, C.IMAGES_SEEN)
ROW = "row"  # a probe table's row number within one evaluation

Key = tuple


class ResultsWriter:
    """Holds the run's tables in memory, keyed, and rewrites their files.

    Args:
        rundir: the run directory (locked by the caller).
        metric_columns: every column the run's metrics fill (plugins may add their own).
        order: (variant, seed) pairs in the order their rows appear: references first, then
            the plan's jobs.
    """

    def __init__(
        self,
        rundir: RunDir,
        metric_columns: Sequence[str],
        order: Sequence[tuple[str, int]],
        tables: Sequence[str] = (),
    ) -> None:
        self.rundir = rundir
        extra = [c for c in dict.fromkeys(metric_columns) if c not in C.METRIC_COLUMNS]
        self.columns = [*C.ID_COLUMNS, *C.METRIC_COLUMNS, *extra, *C.COST_COLUMNS, C.NOTE]
        self.rank = {key: i for i, key in enumerate(order)}
        self.rows: dict[Key, dict[str, Any]] = {}
        self.per_class: dict[Key, dict[str, Any]] = {}
        self.train_log: dict[Key, dict[str, Any]] = {}
        self.jobs: dict[Key, dict[str, Any]] = {}
        # probes' tables, by name: rows keyed by (variant, seed, eval_index, position)
        self.tables: dict[str, dict[Key, dict[str, Any]]] = {name: {} for name in tables}
        self._dirty: set[str] = set()
        # tables.json: each table's current version as recorded, and (until it is renamed into
        # place) the version a pending write replaces (None: the file did not exist)
        self._recorded: dict[str, dict[str, Any]] = {}
        self._replaced: dict[str, dict[str, Any] | None] = {}
        self._foreign: dict[str, dict[str, Any]] = {}  # entries of tables this writer does not keep
        self._load()

    # --- state ----------------------------------------------------------------------------------

    def _load(self) -> None:
        """The tables of a run being resumed (metrics from Parquet: exact types), each checked
        against tables.json; a table it does not record (an older run) is written again."""
        try:
            manifest = read_manifest(self.rundir.path)
        except ValueError as exc:
            raise UsageError(
                f"{self.rundir.path / TABLES_JSON} {exc}; this run cannot be resumed: restore it from a copy of the run"
            ) from None
        loaded = [
            (METRICS_PARQUET, self.rows, (C.VARIANT, C.SEED, C.EVAL_INDEX)),
            (PER_CLASS_CSV, self.per_class, (C.VARIANT, C.SEED, C.EVAL_INDEX, C.CLASS_INDEX)),
            (TRAIN_LOG_CSV, self.train_log, (C.VARIANT, C.SEED, C.STEP)),
            (JOBS_CSV, self.jobs, (C.VARIANT, C.SEED)),
            *((f"{name}.csv", table, (C.VARIANT, C.SEED, C.EVAL_INDEX, ROW)) for name, table in self.tables.items()),
        ]
        for name, table, key in [*loaded, (METRICS_CSV, None, ()), (SUMMARY_CSV, None, ())]:
            path = self.rundir.table(name)
            if not path.exists():
                continue
            try:
                data = path.read_bytes()
                frame = _parse(name, data) if table is not None else None
            except Exception as exc:
                raise UsageError(f"{path} is unreadable ({describe(exc)}); this run cannot be resumed") from None
            self._check(name, data, frame, manifest)
            for record in frame.to_dict("records") if frame is not None else ():
                record = {k: _from_table(v) for k, v in record.items()}
                table[tuple(record[k] for k in key)] = record
        self._foreign = {k: v for k, v in (manifest or {}).items() if k not in self._recorded}

    def _check(self, name: str, data: bytes, frame: pd.DataFrame | None, manifest: dict | None) -> None:
        """Record what the file holds; a file tables.json does not accept is made again at the
        next flush, or refused when the resume would keep its rows."""
        entry = (manifest or {}).get(name)
        version = manifest_accepts(entry, data) if entry is not None else None
        if version is not None:
            self._recorded[name] = version
            return
        if entry is not None and name not in REWRITTEN_ON_RESUME:
            raise UsageError(
                f"{self.rundir.table(name)} does not match what this run wrote ({TABLES_JSON} records its checksum): "
                "it was damaged or edited; this run cannot be resumed: restore the file from a copy of the run, "
                "or start the run again in a new --out"
            )
        if frame is None:
            try:
                frame = _parse(name, data)
            except Exception:  # a damaged metrics.csv: written again from metrics.parquet
                frame = pd.DataFrame()
        self._recorded[name] = {"sha256": sha256_hex(data), "rows": len(frame)}
        if name != SUMMARY_CSV:  # summary.csv is written at every finish anyway
            self._dirty.add(METRICS_CSV if name == METRICS_PARQUET else name)

    def status(self, variant: str, seed: int) -> str | None:
        job = self.jobs.get((variant, seed))
        return None if job is None else str(job[C.STATUS])

    def has_row(self, variant: str, seed: int, eval_index: int) -> bool:
        return (variant, seed, eval_index) in self.rows

    # --- events ---------------------------------------------------------------------------------

    def handle(self, event: E.Event) -> None:
        if isinstance(event, E.Log):
            r = event.record
            self.train_log[(r[C.VARIANT], r[C.SEED], r[C.STEP])] = r
            self._dirty.add(TRAIN_LOG_CSV)  # written with the next row: a log point alone is not worth a write
            return
        if isinstance(event, E.Row):
            self.add_row(event.row, event.per_class)
        elif isinstance(event, E.JobStarted):
            self._restart(event)
        elif isinstance(event, E.JobEnded):
            self._set_job(event.variant, event.seed, event.status, event.step, event.eval_index, event.note)
        elif isinstance(event, E.Table):
            self._set_table(event)
            return  # written with the row of the same evaluation, which comes next
        elif isinstance(event, E.Artefact):
            atomic_write_bytes(self.rundir.path / event.path, event.data)
            return
        elif isinstance(event, E.Grid):  # the trackers' (ganbench.harness.tracking)
            return
        elif isinstance(event, E.Checkpoint):  # after its evaluation's rows, which are flushed already
            atomic_write_bytes(self.rundir.checkpoint(event.variant, event.seed), event.data)
            return
        self.flush()

    def _set_table(self, event: E.Table) -> None:
        table = self.tables.setdefault(event.name, {})
        evaluation = (event.variant, event.seed, event.eval_index)
        for key in [k for k in table if k[:3] == evaluation]:
            del table[key]
        for i, row in enumerate(event.rows):
            table[(*evaluation, i)] = {
                C.VARIANT: event.variant,
                C.SEED: event.seed,
                C.EVAL_INDEX: event.eval_index,
                ROW: i,
                **row,
            }
        self._dirty.add(f"{event.name}.csv")

    def add_row(self, row: dict[str, Any], per_class: Iterable[dict[str, Any]] = ()) -> None:
        key = (row[C.VARIANT], row[C.SEED], row[C.EVAL_INDEX])
        self.rows[key] = row
        for record in per_class:
            self.per_class[(*key, record[C.CLASS_INDEX])] = record
        self._dirty.update({METRICS_CSV, PER_CLASS_CSV})

    def _restart(self, event: E.JobStarted) -> None:
        """A job (re)starts: its rows are exactly what its checkpoint restored, nothing later."""
        job = (event.variant, event.seed)
        for table in (self.rows, self.per_class, self.train_log, *self.tables.values()):
            for key in [k for k in table if k[:2] == job]:
                del table[key]
        self._dirty.update(f"{name}.csv" for name in self.tables)
        for restored in event.tables:
            self._set_table(restored)
        for row in event.rows:
            self.add_row(row, [r for r in event.per_class if r[C.EVAL_INDEX] == row[C.EVAL_INDEX]])
        for record in event.logs:
            self.train_log[(event.variant, event.seed, record[C.STEP])] = record
        last = event.rows[-1] if event.rows else {}
        self._set_job(event.variant, event.seed, STATUS_RUNNING, last.get(C.STEP, 0), last.get(C.EVAL_INDEX, 0), "")
        self._dirty.update({METRICS_CSV, PER_CLASS_CSV, TRAIN_LOG_CSV})

    def _set_job(self, variant: str, seed: int, status: str, step: int, eval_index: int, note: str) -> None:
        self.jobs[(variant, seed)] = dict(zip(JOB_COLUMNS, (variant, seed, status, step, eval_index, note)))
        self._dirty.add(JOBS_CSV)

    # --- files ----------------------------------------------------------------------------------

    def _sorted(self, table: dict[Key, dict[str, Any]]) -> list[dict[str, Any]]:
        last = len(self.rank)
        return [table[k] for k in sorted(table, key=lambda k: (self.rank.get(k[:2], last), *k[2:]))]

    def metrics_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self._sorted(self.rows), columns=self.columns)
        return frame.astype({c: "int64" for c in INT_COLUMNS})

    def jobs_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self._sorted(self.jobs), columns=list(JOB_COLUMNS))

    def flush(self) -> None:
        """Rewrite every table that changed since the last flush."""
        dirty, self._dirty = self._dirty, set()
        writes: dict[str, tuple[bytes, int]] = {}
        if METRICS_CSV in dirty:
            frame = self.metrics_frame()
            writes[METRICS_CSV] = (_csv_bytes(frame), len(frame))
            writes[METRICS_PARQUET] = (frame.to_parquet(None, index=False), len(frame))
        extra = [(f"{name}.csv", table) for name, table in self.tables.items()]
        for name, table in ((PER_CLASS_CSV, self.per_class), (TRAIN_LOG_CSV, self.train_log), *extra):
            if name in dirty and (table or self.rundir.table(name).exists()):
                frame = pd.DataFrame(self._sorted(table))
                writes[name] = (_csv_bytes(frame), len(frame))
        if JOBS_CSV in dirty:
            jobs = self.jobs_frame()
            writes[JOBS_CSV] = (_csv_bytes(jobs), len(jobs))
        self._write_tables(writes)

    def finish(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        self.flush()
        frame = self.metrics_frame()
        summary = summarize(frame)
        self._write_tables({SUMMARY_CSV: (_csv_bytes(summary), len(summary))})
        self._write_manifest()  # settled: each table's current version only
        return frame, summary

    def _write_tables(self, writes: dict[str, tuple[bytes, int]]) -> None:
        """tables.json first (naming the new and the replaced version of each table), then the
        tables, each atomically: whenever the process stops, tables.json accepts what is on disk."""
        if not writes:
            return
        for name, (data, rows) in writes.items():
            if name not in self._replaced:  # else an earlier write of it failed: that version is still on disk
                self._replaced[name] = self._recorded.get(name)
            self._recorded[name] = {"sha256": sha256_hex(data), "rows": rows}
        self._write_manifest()
        for name, (data, _) in writes.items():
            atomic_write_bytes(self.rundir.table(name), data)
            del self._replaced[name]

    def _write_manifest(self) -> None:
        tables = dict(self._foreign)
        for name, version in self._recorded.items():
            tables[name] = dict(version)
            if name in self._replaced and self._replaced[name] != version:
                tables[name]["previous"] = self._replaced[name]
        write_manifest(self.rundir.path, tables)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _parse(name: str, data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data)) if name.endswith(".parquet") else read_table(io.BytesIO(data))


def record_tables(run_dir: Path | str) -> None:
    """Record a run's tables as they are now in tables.json: for a tool (or a test) that rewrites a
    run's tables on purpose and keeps metrics.csv and metrics.parquet the same. Never called by a run."""
    path = Path(run_dir)
    tables = {}
    for table in sorted([*path.glob("*.csv"), path / METRICS_PARQUET]):
        if table.is_file():
            data = table.read_bytes()
            tables[table.name] = {"sha256": sha256_hex(data), "rows": len(_parse(table.name, data))}
    write_manifest(path, tables)


STRING_COLUMNS = (C.VARIANT, C.DATASET, C.STATUS, C.NOTE, C.CLASS_NAME, C.PRECISION)


def read_table(path) -> pd.DataFrame:
    """A table as written: only empty cells are missing values; text columns stay text ("NA" is a name).
    ``path`` may be a file object (the bytes a reader checked)."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={c: str for c in STRING_COLUMNS})
    present = [c for c in STRING_COLUMNS if c in frame]
    frame[present] = frame[present].fillna("")
    return frame


def _from_table(value: Any) -> Any:
    """numpy scalars from pandas -> Python scalars (rows go into checkpoints loaded with weights_only)."""
    return value.item() if hasattr(value, "item") else value


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, seed): its last evaluation (the row with metrics), carrying the
    status and note of where the job stopped. A job stopped before its first evaluation keeps
    its stop row (no metrics)."""
    if frame.empty:
        return frame
    order = frame.reset_index(drop=True)
    groups = [C.VARIANT, C.SEED]
    last = order.loc[order.groupby(groups, sort=False)[C.EVAL_INDEX].idxmax()]
    evaluated = order[order[C.STATUS].isin([C.STATUS_OK, C.STATUS_REFERENCE])]
    best = evaluated.loc[evaluated.groupby(groups, sort=False)[C.EVAL_INDEX].idxmax()] if len(evaluated) else evaluated
    best = best.set_index(groups)
    rows = []
    for _, stop in last.iterrows():
        key = (stop[C.VARIANT], stop[C.SEED])
        if key in best.index:
            row = best.loc[key].copy()
            row[C.VARIANT], row[C.SEED] = key
            row[C.STATUS], row[C.NOTE] = stop[C.STATUS], stop[C.NOTE]
        else:
            row = stop
        rows.append(row)
    return pd.DataFrame(rows, columns=frame.columns).reset_index(drop=True)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each variant's last evaluation."""
    labels = (C.VARIANT, C.DATASET, C.SEED, C.EVAL_INDEX, C.STATUS, C.NOTE, *C.SETTING_COLUMNS)
    numeric = [c for c in frame.columns if c not in labels]
    rows = []
    for variant, group in final_rows(frame).groupby(C.VARIANT, sort=False):
        counts = group[C.STATUS].value_counts()
        status = counts.index[0] if len(counts) == 1 else ", ".join(f"{n} {s}" for s, n in counts.items())
        row: dict[str, Any] = {
            C.VARIANT: variant,
            C.DATASET: group[C.DATASET].iloc[0],
            "seeds": len(group),
            C.STATUS: status,
            **{c: group[c].iloc[0] for c in C.SETTING_COLUMNS if c in group},  # one run: one setting
        }
        for column in numeric:
            values = pd.to_numeric(group[column], errors="coerce")
            row[f"{column}_mean"] = values.mean()
            row[f"{column}_std"] = values.std(ddof=1) if values.notna().sum() > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame, metrics: Iterable[str]) -> str:
    """A plain-text table of the summary: metric means ± std over seeds."""
    shown = [m for m in metrics if f"{m}_mean" in summary and summary[f"{m}_mean"].notna().any()]
    header = [C.VARIANT, "seeds", *shown, C.STATUS]
    lines = [header]
    for _, row in summary.iterrows():
        cells = [str(row[C.VARIANT]), str(row["seeds"])]
        for m in shown:
            mean, std = row[f"{m}_mean"], row[f"{m}_std"]
            cell = "nan" if pd.isna(mean) else f"{mean:.4g}"
            if not pd.isna(std):
                cell += f" ± {std:.2g}"
            cells.append(cell)
        cells.append(str(row[C.STATUS]))
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)
