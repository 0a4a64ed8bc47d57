"""``ganbench run``: every variant x seed under the same budget, evaluated and tabulated.

The order of a run: plan it (every name and option checked; nothing computed), check what
``--out`` holds (new, or this very run to resume), lock the run directory, load and check the
data, load (or once train) the held-out classifier, write config.json, check the checkpoints
of the jobs still to run, then run those jobs and hand their events to the one writer. Bad
input is therefore refused before anything is trained; after that, a job that fails,
diverges or is interrupted keeps every row written before it, and ``--resume`` continues it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ganbench import columns as C
from ganbench.data.attributes import dataset_attributes
from ganbench.config import RunConfig, differences, format_seeds
from ganbench.data import DataRequest, check_splits, hold_out, load_dataset, resolved_spec
from ganbench.errors import RunInterrupted, UsageError
from ganbench.evaluation.classifier import load_or_train
from ganbench.evaluation.judges import load_or_train_judges
from ganbench.harness import rundir as R
from ganbench.harness.executor import Executor, LocalExecutor
from ganbench.harness.job import Job, JobEnv, load_checkpoint, reference_keys, reference_rows, run_fingerprint
from ganbench.harness.plan import Plan, check_batch_sizes, check_image_shapes, plan_run
from ganbench.harness.provenance import classifier_record, config_record, with_step_flops
from ganbench.harness.writer import DONE_STATUSES, ResultsWriter, final_rows, format_summary
from ganbench.registry import Registry, load_registry

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.harness.events import Event
    from ganbench.harness.tracking import Tracking

log = logging.getLogger(__name__)

SUMMARY_METRICS = (
    C.FID_DOMAIN, C.KID_DOMAIN, C.CLASS_CONSISTENCY, C.CLASS_COVERAGE, C.PSNR, C.SSIM, C.FID_INCEPTION, C.FD_DINOV2,
    C.TRAIN_IMG_PER_S,
)  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    """What ``ganbench.run`` returns. ``directions``: ``{column: "higher" | "lower" | "neither"}``
    of every column the run's metrics and probes fill (what config.json's ``columns`` records)."""

    run_dir: Path
    metrics: pd.DataFrame
    summary: pd.DataFrame
    jobs: pd.DataFrame
    directions: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def plugin_columns(self) -> list[str]:
        """The run's metric and probe columns that :mod:`ganbench.columns` does not name: a
        plugin's own, shown after the built-in ones."""
        known = {*C.METRIC_COLUMNS, *C.PROBE_COLUMNS}
        return [c for c in self.directions if c not in known]

    def format_summary(self) -> str:
        """The summary table, then what the seeds decide (the report's first section in words)."""
        table = format_summary(self.summary, [*SUMMARY_METRICS, *self.plugin_columns])
        lines = self.verdict_lines()
        return table + ("\n\n" + "\n".join(lines) if lines else "")

    def verdict_lines(self) -> list[str]:
        """One sentence per compared pair on the main metrics and on the plugin columns with a
        direction (:mod:`ganbench.report.verdicts`), or why nothing can be compared."""
        from ganbench.report.verdicts import MAIN, summary_lines  # torch-free; only for the console

        trained = self.metrics[self.metrics[C.STATUS] != C.STATUS_REFERENCE]
        metrics = [*MAIN, *(c for c in self.plugin_columns if c not in MAIN)]
        return summary_lines(final_rows(trained), metrics, self.run_dir, directions=self.directions)

    @property
    def unfinished(self) -> pd.DataFrame:
        """Jobs that did not end ok: failed, diverged or interrupted."""
        return self.jobs[self.jobs[C.STATUS] != C.STATUS_OK]


def _check_same_run(record: dict[str, Any], plan: Plan) -> list[int]:
    """A run directory is only continued with the options it was started with, except that
    seeds may be added (more seeds on demand): returns the seeds the plan adds to the run."""
    try:
        before = RunConfig.from_mapping(record["run"], source=f"{plan.run_dir / R.CONFIG_JSON}")
    except UsageError as exc:
        raise UsageError(f"--out {plan.run_dir} holds a run that cannot be resumed: {exc}") from None
    seeds = plan.config.seeds
    dropped = [s for s in before.seeds if s not in seeds]
    if dropped:
        them = "it" if len(dropped) == 1 else "them"
        raise UsageError(
            f"--seeds {format_seeds(seeds)} would drop seed{'s' if len(dropped) > 1 else ''} "
            f"{format_seeds(dropped)} of the run in {plan.run_dir}, and a run's seeds are only added to; "
            f"accepted: its seeds {format_seeds(before.seeds)} or a superset of {them}, "
            f"e.g. --seeds {format_seeds([*before.seeds, *(max(before.seeds) + 1 + i for i in range(3))])}"
        )
    _check_same_dinov2(record, plan)
    changed = differences(before, plan.config.replace(seeds=before.seeds))
    options = {
        "variants": {p.spec.name: p.config for p in plan.variants},
        "probes": {p.spec.name: p.config for p in plan.probes},
        "metrics": plan.metric_options,
    }
    for section, configs in options.items():
        saved = record.get(section) or {}
        for name, config in configs.items():
            now = json.loads(json.dumps(dataclasses.asdict(config), default=str))
            was = (saved.get(name) or {}).get("config")
            if was is not None and was != now:
                keys = sorted(k for k in {*now, *was} if was.get(k) != now.get(k))
                changed += [f"{name}.{k}: {was.get(k)} -> {now.get(k)}" for k in keys]
    if changed:
        raise UsageError(
            f"--out {plan.run_dir} holds a run with other options ({'; '.join(changed)}); "
            f"resume it with its own options (ganbench run --resume {plan.run_dir}) or choose another --out"
        )
    return [s for s in seeds if s not in before.seeds]


def _check_same_dinov2(record: dict[str, Any], plan: Plan) -> None:
    """The DINOv2 weights file may move (its path is where it is), not change: its fd_dinov2
    values would not be comparable with the rows already written."""
    before = (record.get("dinov2") or {}).get("sha256")
    now = plan.dinov2.sha256 if plan.dinov2 is not None else None
    if before == now:
        return
    was = f"DINOv2 weights sha256 {before[:12]}..." if before else "no DINOv2 weights"
    given = f"sha256 {now[:12]}..." if now else "none"
    fix = f"--dinov2-weights {(record.get('dinov2') or {}).get('path')}" if before else "no --dinov2-weights"
    raise UsageError(
        f"--out {plan.run_dir} was scored with {was} (now {given}); its fd_dinov2 values would not be "
        f"comparable: resume with {fix} or choose another --out"
    )


def _check_same_classifier(record: dict[str, Any], current: dict[str, Any], run_dir: Path) -> None:
    before = record.get("classifier", {}).get("weights_sha256")
    if before and before != current["weights_sha256"]:
        raise UsageError(
            f"--out {run_dir} was scored with another held-out classifier (weights {before[:12]}..., now "
            f"{current['weights_sha256'][:12]}...); its numbers would not be comparable: choose another --out"
        )


def run(
    config: RunConfig | None = None,
    *,
    registry: Registry | None = None,
    executor: Executor | str | None = None,
    resume: Path | str | None = None,
    report: bool = False,
    stop: threading.Event | None = None,
    **kwargs: Any,
) -> RunResult:
    """Run a benchmark. Takes a :class:`RunConfig`, or its fields as keyword arguments (the
    same names as the CLI flags)::

        ganbench.run(variants="cgan,acgan", dataset="fashion-mnist", budget="500steps")

    ``resume=RUN_DIR`` continues the run there with the options it was started with (any
    other keyword must agree with them). Running again with the same ``out`` does the same.
    ``report=True`` writes the run's report into ``RUN_DIR/report`` at the end (``--report``).
    ``executor`` is the option's name (``"local"``, ``"ray"``) or an :class:`Executor` to use.
    ``stop``: an event that, once set, interrupts a Ray run as Ctrl-C does (``RunInterrupted``);
    for runs in threads of one process (a tune's trials), which no signal reaches.
    """
    if isinstance(executor, str):  # the option, like any other keyword
        kwargs["executor"], executor = executor, None
    if resume is not None:
        config = RunConfig.from_mapping({**R.run_options(resume), **kwargs}, source=f"--resume {resume}")
    elif config is None:
        config = RunConfig.from_mapping(kwargs)
    elif kwargs:
        config = RunConfig.from_mapping({**config.to_json(), **kwargs})
    registry = registry if registry is not None else load_registry(config.plugin)
    plan = plan_run(config, registry)
    if config.executor == "ray":
        from ganbench.harness.ray_executor import require_ray

        require_ray()  # a missing extra is bad input: refused before anything is written
    if config.track:
        from ganbench.harness.tracking import require

        require(config.track, config.track_uri is None)  # the same for a tracker's library
    existing = R.inspect_out(plan.run_dir)  # a foreign folder or other options: refused before any write
    if existing is not None:
        _check_same_run(existing, plan)
    with R.opened(plan.run_dir) as rundir:
        record = R.inspect_out(plan.run_dir)  # again, under the lock: another run may have started it meanwhile
        added = _check_same_run(record, plan) if record is not None else []
        request = DataRequest(config.data_dir, config.download, plan.cache_dir, config.image_size)
        splits = load_dataset(plan.dataset, request)
        dataset = resolved_spec(plan.dataset, splits)
        check_splits(dataset, splits)
        # --holdout: training images stand in for the test split, which this run never reads
        scored = hold_out(splits, config.holdout) if config.holdout else splits
        check_batch_sizes(plan, scored.train_images.shape[0])  # bad input: refused before config.json is written
        check_image_shapes(plan, splits.image_shape)
        classifier = load_or_train(splits, plan.cache_dir, plan.device)
        attributes = dataset_attributes(dataset, splits)
        judges = (
            load_or_train_judges(splits, attributes, classifier, plan.cache_dir, plan.device) if plan.probed else None
        )
        new_record = config_record(plan, splits, classifier, registry, attributes, judges)
        if record is not None:
            _check_same_classifier(record, classifier_record(classifier), plan.run_dir)
            now = dt.datetime.now().isoformat(timespec="seconds")
            new_record = {**new_record, "started": record.get("started"), "resumed": [*record.get("resumed", []), now]}
            extended = [*record.get("extended", []), *([{"at": now, "seeds": added}] if added else [])]
            if extended:  # more seeds on demand: when each was added
                new_record["extended"] = extended
        tables = [t for p in plan.probes for t in p.spec.tables]
        if config.resample and plan.generates:
            tables.append(R.SAMPLING_TABLE)
        writer = ResultsWriter(rundir, plan.columns, [*reference_keys(plan), *plan.jobs()], tables)
        jobs = [Job(v, s, plan.config) for v, s in plan.jobs() if writer.status(v, s) not in DONE_STATUSES]
        fingerprint = run_fingerprint(plan)
        for job in jobs:  # a corrupted or foreign checkpoint stops the run before anything is written or trained
            path = rundir.checkpoint(job.variant, job.seed)
            if path.exists():
                load_checkpoint(path, job.variant, job.seed, fingerprint)
        env = JobEnv(plan, scored, classifier, rundir, attributes, judges)
        new_record = with_step_flops(new_record, {p.spec.name: env.step_flops(p.spec.name) for p in plan.variants})
        R.atomic_write_text(rundir.config, json.dumps(new_record, indent=2, default=str) + "\n")
        log.info("run directory: %s", plan.run_dir)
        if record is not None:
            done = len(plan.jobs()) - len(jobs)
            log.info("resuming %s: %d of %d jobs done, %d to run", plan.run_dir, done, len(plan.jobs()), len(jobs))
            if added:
                log.info("seeds added to the run: %s", format_seeds(added))
        tracking = None
        if config.track:
            from ganbench.harness.tracking import open_tracking

            tracking = open_tracking(plan, plan.run_dir, new_record)
        result = _run_jobs(plan, writer, env, jobs, executor or _executor(env, stop), tracking)
    if report:
        from ganbench.report.render import build_report

        build_report(result.run_dir)
    return result


def _executor(env: JobEnv, stop: threading.Event | None = None) -> Executor:
    if env.plan.config.executor == "ray":
        from ganbench.harness.ray_executor import RayExecutor  # ray is imported only for a Ray run

        return RayExecutor(env, stop)
    return LocalExecutor(env)


def _run_jobs(
    plan: Plan,
    writer: ResultsWriter,
    env: JobEnv,
    jobs: list[Job],
    executor: Executor,
    tracking: Tracking | None = None,
) -> RunResult:
    handle = writer.handle if tracking is None else _tracked(writer.handle, tracking)
    try:
        for key in reference_keys(plan):
            if not writer.has_row(*key, 0):
                for event in reference_rows(env):
                    writer.handle(event)
                break
        executor.run(jobs, handle)
    except KeyboardInterrupt as exc:
        if tracking is not None:
            tracking.close(interrupted=True)
            tracking = None
        raise RunInterrupted(plan.run_dir) from exc
    finally:
        metrics, summary = writer.finish()
        if tracking is not None:
            tracking.close()
    return RunResult(plan.run_dir, metrics, summary, writer.jobs_frame(), plan.directions)


def _tracked(write: Callable[[Event], None], tracking: Tracking) -> Callable[[Event], None]:
    def handle(event: Event) -> None:
        write(event)  # the tables first: a tracker never shows what they do not hold
        tracking.handle(event)

    return handle
