"""Live tracking (``--track tensorboard,mlflow``): the jobs' events, as they reach the writer,
also go to TensorBoard event files and an MLflow store, so a run can be watched while it trains.

Trackers are fed in the process that owns the writer, from the same events
(:mod:`ganbench.harness.events`), so a Ray run is tracked like a local one. What each gets:
the losses at every log point (``loss/<name>``), every metric column at each evaluation
(``metrics/<column>``, at its training step), the sample grid at each evaluation, and the
resolved options as hyperparameters.

Resume continues the same tracked runs without duplicated points: TensorBoard's writer
reopens a job's folder with ``purge_step`` just after its checkpoint's step (TensorBoard hides
what an interrupted attempt logged after it); MLflow's runs are found again by their ids in
``tracking.json`` and a point at or before a metric's last logged step is not logged again.

Tracking never fails a job: a tracker that raises is warned about once and stops tracking;
the run and its tables go on as without it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ganbench import columns as C
from ganbench.errors import UsageError, describe
from ganbench.files import atomic_write_text
from ganbench.harness import events as E
from ganbench.harness.rundir import job_name

log = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"
TRACKING_JSON = "tracking.json"
MLFLOW_DB = "mlruns.db"
MLFLOW_ARTIFACTS = "mlartifacts"
EXPERIMENT = "ganbench"
TRACKING_FORMAT = "ganbench-tracking/1"
# Columns of a log point that say where it is, not what was measured.
LOG_IDS = frozenset({C.VARIANT, C.SEED, C.STEP, C.IMAGES_SEEN, C.TRAIN_SECONDS})
MLFLOW_PARAM_CHARS = 6000  # MLflow refuses longer parameter values
INSTALL = {"tensorboard": "pip install 'ganbench[tensorboard]'", "mlflow": "pip install 'ganbench[mlflow]'"}


def require(track: Sequence[str], local_store: bool = True) -> None:
    """Each named tracker's library is importable, or a UsageError: refused before anything trains.
    MLflow's local store (no ``--track-uri``) is SQLite, through sqlalchemy and alembic."""
    for name in track:
        try:
            if name == "tensorboard":
                import tensorboard  # noqa: F401  (torch.utils.tensorboard's writer needs it)
            elif name == "mlflow":
                import mlflow  # noqa: F401
        except ImportError:
            raise UsageError(f"--track {name} needs {name} installed: {INSTALL[name]}") from None
        if name == "mlflow" and local_store:
            try:
                import sqlalchemy  # noqa: F401  (first: alembic imports it, and would name a submodule)
                import alembic  # noqa: F401
            except ImportError as exc:
                # The distribution to install, not the submodule whose import failed (sqlalchemy.sql).
                missing = (exc.name or "sqlalchemy").partition(".")[0]
                raise UsageError(
                    f"--track mlflow's local store needs {missing} installed: {INSTALL[name]} (or give --track-uri)"
                ) from None


class Tracker(Protocol):
    """One tracking backend. ``job`` is ``<variant>-seed<k>``; ``step`` a training step."""

    name: str

    def start_job(self, job: str, resumed_at: int, params: Mapping[str, Any]) -> None: ...

    def scalars(self, job: str, step: int, values: Mapping[str, float]) -> None: ...

    def image(self, job: str, step: int, png: bytes) -> None: ...

    def flush(self) -> None: ...

    def end_job(self, job: str, status: str) -> None: ...

    def close(self, interrupted: bool) -> None: ...


def flat_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"set": {"cgan": {"lr_g": 1e-4}}}`` -> ``{"set.cgan.lr_g": 1e-4}``; lists and None as text."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_params(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value, default=str)
    return out


class Tracking:
    """The run's trackers behind one ``handle(event)``; each tracker's first error is one
    warning and the end of that tracker, never of a job."""

    def __init__(
        self,
        trackers: Sequence[Tracker],
        metric_columns: Sequence[str],
        job_params: Callable[[str], Mapping[str, Any]],
    ) -> None:
        self.trackers = list(trackers)
        self.metric_columns = list(dict.fromkeys(metric_columns))
        self.job_params = job_params

    def _each(self, call: Callable[[Tracker], None]) -> None:
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as exc:  # never a job's failure: its own, then no more of it
                log.warning("--track %s stopped tracking this run: %s", tracker.name, describe(exc))
                self.trackers.remove(tracker)

    def handle(self, event: E.Event) -> None:
        try:
            self._handle(event)
        except Exception as exc:  # reading the event itself: no tracker can go on reliably
            if self.trackers:
                names = ",".join(t.name for t in self.trackers)
                log.warning("--track %s stopped tracking this run: %s", names, describe(exc))
            self.trackers = []

    def _handle(self, event: E.Event) -> None:
        if isinstance(event, E.JobStarted):
            params = self.job_params(event.variant)
            job = job_name(event.variant, event.seed)
            self._each(lambda t: t.start_job(job, event.resumed_at, {**params, "seed": event.seed}))
        elif isinstance(event, E.Log):
            r = event.record
            values = {f"loss/{k}": float(v) for k, v in r.items() if k not in LOG_IDS and _finite(v)}
            self._scalars(job_name(r[C.VARIANT], r[C.SEED]), int(r[C.STEP]), values)
        elif isinstance(event, E.Row) and event.row.get(C.STATUS) == C.STATUS_OK:
            r = event.row
            values = {f"metrics/{c}": float(r[c]) for c in self.metric_columns if _finite(r.get(c))}
            self._scalars(job_name(r[C.VARIANT], r[C.SEED]), int(r[C.STEP]), values)
        elif isinstance(event, E.Grid):
            job = job_name(event.variant, event.seed)
            self._each(lambda t: t.image(job, event.step, event.png))
        elif isinstance(event, E.Checkpoint):  # what a checkpoint saved is on disk in the trackers too
            self._each(lambda t: t.flush())
        elif isinstance(event, E.JobEnded):
            job = job_name(event.variant, event.seed)
            self._each(lambda t: t.end_job(job, event.status))

    def _scalars(self, job: str, step: int, values: Mapping[str, float]) -> None:
        if values:
            self._each(lambda t: t.scalars(job, step, values))

    def close(self, interrupted: bool = False) -> None:
        self._each(lambda t: t.close(interrupted))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- TensorBoard ---------------------------------------------------------------------------------


class TensorBoardTracker:
    """One ``SummaryWriter`` per job, in ``RUN_DIR/tensorboard/<job>``."""

    name = "tensorboard"

    def __init__(self, run_dir: Path, run_params: Mapping[str, Any]) -> None:
        self.root = Path(run_dir) / TENSORBOARD_DIR
        self.run_params = run_params
        self.writers: dict[str, Any] = {}

    def start_job(self, job: str, resumed_at: int, params: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        folder = self.root / job
        resumed = folder.is_dir() and any(folder.glob("events.out.tfevents.*"))
        if job in self.writers:
            self.writers.pop(job).close()
        # purge_step: TensorBoard hides the points an interrupted attempt logged after the checkpoint
        writer = SummaryWriter(str(folder), purge_step=resumed_at + 1 if resumed else None, flush_secs=30)
        self.writers[job] = writer
        if not resumed:  # once per job: its step-0 events survive every purge
            values = {k: v for k, v in flat_params({**self.run_params, **params}).items()}
            for summary in hparams(values, {}):
                writer.file_writer.add_summary(summary)
            writer.add_text("config", "```\n" + json.dumps(values, indent=2, default=str) + "\n```", 0)

    def scalars(self, job: str, step: int, values: Mapping[str, float]) -> None:
        writer = self.writers[job]
        for tag, value in values.items():
            writer.add_scalar(tag, value, step)

    def image(self, job: str, step: int, png: bytes) -> None:
        import numpy as np
        from PIL import Image

        picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        self.writers[job].add_image("samples", picture, step, dataformats="HWC")

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    def end_job(self, job: str, status: str) -> None:
        writer = self.writers.pop(job, None)
        if writer is not None:
            writer.close()

    def close(self, interrupted: bool = False) -> None:
        for job in list(self.writers):
            self.end_job(job, "")


# --- MLflow ---------------------------------------------------------------------------------------

_MLFLOW_STATUS = {C.STATUS_OK: "FINISHED", C.STATUS_INTERRUPTED: "KILLED"}


class MlflowTracker:
    """One parent MLflow run per ganbench run, one nested child run per job, through
    ``MlflowClient`` (no global active run). Run ids live in ``tracking.json``."""

    name = "mlflow"

    def __init__(self, run_dir: Path, uri: str | None, run_name: str, run_params: Mapping[str, Any]) -> None:
        from mlflow import MlflowClient

        self.run_dir = Path(run_dir)
        self.uri = uri or f"sqlite:///{(self.run_dir / MLFLOW_DB).resolve()}"
        self.client = MlflowClient(tracking_uri=self.uri)
        self.local = uri is None
        saved = read_tracking(self.run_dir).get("mlflow") or {}
        # the local store moves with the run directory (--resume may name it elsewhere)
        same_store = saved.get("uri") == self.uri or (self.local and saved.get("local") is True)
        self.jobs: dict[str, str] = dict(saved.get("jobs") or {}) if same_store else {}
        self.marks: dict[str, dict[str, int]] = {}  # job -> metric key -> last step in the store
        self.no_images: set[str] = set()
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            self.experiment_id = experiment.experiment_id
        else:  # artifacts beside the store, not in the working directory
            artifacts = None if uri else (self.run_dir / MLFLOW_ARTIFACTS).resolve().as_uri()
            self.experiment_id = self.client.create_experiment(EXPERIMENT, artifact_location=artifacts)
        parent = saved.get("parent") if same_store else None
        if parent is not None:
            self.client.update_run(parent, status="RUNNING")
        else:
            run = self.client.create_run(self.experiment_id, run_name=run_name, tags={"ganbench.run_dir": str(run_dir)})
            parent = run.info.run_id
            self._params(parent, run_params)
        self.parent = parent
        self._save()

    def _save(self) -> None:
        record = read_tracking(self.run_dir)
        ids = {"experiment_id": self.experiment_id, "parent": self.parent, "jobs": self.jobs}
        record["mlflow"] = {"uri": self.uri, "local": self.local, **ids}
        write_tracking(self.run_dir, record)

    def _params(self, run_id: str, values: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)[:MLFLOW_PARAM_CHARS]) for k, v in flat_params(values).items()]
        for lo in range(0, len(params), 100):  # MLflow takes at most 100 parameters a batch
            self.client.log_batch(run_id, params=params[lo : lo + 100])

    def start_job(self, job: str, resumed_at: int, params: Mapping[str, Any]) -> None:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        run_id = self.jobs.get(job)
        if run_id is not None:  # resumed: the points it has stay, none is logged twice
            self.client.update_run(run_id, status="RUNNING")
            run = self.client.get_run(run_id)
            metrics = run.data.metrics
            here = (self.run_dir / MLFLOW_ARTIFACTS).resolve().as_uri()
            if self.local and not run.info.artifact_uri.startswith(here):  # a moved run directory:
                self.no_images.add(job)  # never write where it was
                log.info("--track mlflow: %s's sample grids stay where its run directory was", job)
            self.marks[job] = {k: max(m.step for m in self.client.get_metric_history(run_id, k)) for k in metrics}
            return
        run = self.client.create_run(
            self.experiment_id, run_name=job, tags={MLFLOW_PARENT_RUN_ID: self.parent, "ganbench.job": job}
        )
        self.jobs[job] = run.info.run_id
        self.marks[job] = {}
        self._params(run.info.run_id, params)
        self._save()

    def scalars(self, job: str, step: int, values: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        marks = self.marks.setdefault(job, {})
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items() if step > marks.get(k, -1)]
        if metrics:
            self.client.log_batch(self.jobs[job], metrics=metrics)
            marks.update({m.key: step for m in metrics})

    def image(self, job: str, step: int, png: bytes) -> None:
        from PIL import Image

        if job in self.no_images:
            return
        # one file per step: an evaluation logged again on resume replaces its picture
        picture = Image.open(io.BytesIO(png))
        self.client.log_image(self.jobs[job], picture, artifact_file=f"samples/step-{step:08d}.png")

    def flush(self) -> None:
        pass  # the client writes synchronously

    def end_job(self, job: str, status: str) -> None:
        if job in self.jobs:
            self.client.set_terminated(self.jobs[job], status=_MLFLOW_STATUS.get(status, "FAILED"))

    def close(self, interrupted: bool = False) -> None:
        self.client.set_terminated(self.parent, status="KILLED" if interrupted else "FINISHED")


# --- the run's trackers ----------------------------------------------------------------------------


def read_tracking(run_dir: Path) -> dict[str, Any]:
    """``tracking.json``: the tracked runs' ids (an unreadable one starts new tracked runs)."""
    path = Path(run_dir) / TRACKING_JSON
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"format": TRACKING_FORMAT}
    return data if isinstance(data, dict) and data.get("format") == TRACKING_FORMAT else {"format": TRACKING_FORMAT}


def write_tracking(run_dir: Path, record: Mapping[str, Any]) -> None:
    atomic_write_text(Path(run_dir) / TRACKING_JSON, json.dumps(record, indent=2) + "\n")


def open_tracking(plan: Any, run_dir: Path, record: Mapping[str, Any]) -> Tracking | None:
    """The trackers ``--track`` names for this run (None when it names none). ``record`` is
    config.json's: the resolved options, logged as hyperparameters. A tracker that cannot
    start is one warning, and the run goes on without it."""
    config = plan.config
    if not config.track:
        return None
    run_params = {"run": record.get("run", config.to_json())}
    trackers: list[Tracker] = []
    for name in config.track:
        try:
            if name == "tensorboard":
                trackers.append(TensorBoardTracker(run_dir, run_params))
            elif name == "mlflow":
                trackers.append(MlflowTracker(run_dir, config.track_uri, Path(run_dir).name, run_params))
        except Exception as exc:
            log.warning("--track %s could not start, the run goes on without it: %s", name, describe(exc))

    def job_params(variant: str) -> dict[str, Any]:
        planned = plan.variant(variant)
        return {"variant": variant, "hparams": dataclasses.asdict(planned.config)}

    return Tracking(trackers, plan.columns, job_params)
