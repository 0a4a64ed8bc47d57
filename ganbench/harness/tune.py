"""``ganbench tune``: every variant gets the same hyperparameter search, then its winner is
re-trained on fresh seeds (Lucic et al. 2018's protocol; docs/tuning.md).

A tune is a directory of ordinary runs::

    TUNE_DIR/tune.json            what was asked, the search space and every trial's setting
    TUNE_DIR/trials/trial-000/    phase 1: trial k of every variant, one run (all variants at
    ...                           the same quasi-random position k, one search seed)
    TUNE_DIR/final/               phase 2: each variant's chosen setting on the final seeds
    TUNE_DIR/trials.csv           one row per variant and trial: setting, score, status
    TUNE_DIR/metrics.csv          every job of both phases: the runs' metrics.csv stacked

Phase 1 scores against training images held out of training (``--holdout``), never the
test split; phase 2 is scored on the test split and is the only phase a report ranks. Each
run resumes like any run, so a killed tune continues where it stopped: finished trials are
not trained again and the tables equal an uninterrupted tune's.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import json
import logging
import math
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganbench import columns as C
from ganbench.config import RESUME_MAY_CHANGE, RunConfig, _int, format_seeds
from ganbench.errors import RunInterrupted, UsageError
from ganbench.harness import rundir as R
from ganbench.harness.plan import Plan, plan_run
from ganbench.hparams import Range, format_number
from ganbench.registry import Registry, load_registry
from ganbench.specs import HIGHER, LOWER

log = logging.getLogger(__name__)

TUNE_JSON = "tune.json"
TRIALS_CSV = "trials.csv"
METRICS_CSV = "metrics.csv"  # every job of the tune, both phases: the runs' metrics.csv stacked
PHASE = "phase"
TRIALS_DIR = "trials"
FINAL_DIR = "final"
TUNE_FORMAT = "ganbench-tune/1"
# Trial k trains with seed TRIAL_SEED_BASE + k: search seeds never double as final seeds.
TRIAL_SEED_BASE = 100_000
MAX_TRIALS = 4096
ACCEPTED_OUT = "accepted: a new or empty directory, or a ganbench tune to resume"

# trials.csv: these columns, then one column per searched hyperparameter (``VARIANT``'s own
# are empty where another variant has a parameter it has not).
TRIAL = "trial"
SCORE = "score"
SELECTED = "selected"
TRIAL_COLUMNS = (C.VARIANT, TRIAL, C.SEED, C.STATUS, SCORE, SELECTED, C.STEP, C.TRAIN_SECONDS, "run")


@dataclass(frozen=True)
class TuneConfig:
    """Everything that defines a ``ganbench tune``; field names are the CLI flags.

    Attributes:
        run: the options every trial and final run shares (budget, dataset, variants,
            ``--set``, ``--search`` ...); its ``seeds`` are the final seeds.
        trials: settings tried per variant (phase 1), the same quasi-random positions for all.
        select: the column that chooses each variant's setting; its metric's direction
            (lower or higher is better) decides which end wins.
        holdout: training images held out of phase 1's training and scored instead of the
            test split: selection never reads the test split.
        sobol_seed: the seed of the scrambled Sobol sequence the settings come from.
    """

    run: RunConfig
    trials: int = 16
    select: str = C.FID_DOMAIN
    holdout: int = 10000
    sobol_seed: int = 0

    OWN = ("trials", "select", "holdout", "sobol_seed")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "arguments") -> TuneConfig:
        """The tune's own keys (``trials``, ``select``, ``holdout``, ``sobol_seed``, and
        ``final_seeds`` for the run's seeds); every other key is a :class:`RunConfig` key."""
        values = {k.replace("-", "_"): v for k, v in values.items() if v is not None}
        own: dict[str, Any] = {}
        for key in cls.OWN:
            if key in values:
                raw = values.pop(key)
                try:
                    own[key] = str(raw).strip() if key == "select" else _int(raw)
                except (TypeError, ValueError) as exc:
                    raise UsageError(f"{key} in {source}: {exc}") from None
        if "final_seeds" in values:
            if "seeds" in values:
                raise UsageError(
                    f"{source} gives both seeds and final_seeds; a tune's seeds are its final seeds: give one"
                )
            values["seeds"] = values.pop("final_seeds")
        values.setdefault("seeds", "0-7")
        config = cls(RunConfig.from_mapping(values, source=source), **own)
        config.check()
        return config

    def check(self) -> None:
        if not 1 <= self.trials <= MAX_TRIALS:
            raise UsageError(f"--trials {self.trials}: accepted: 1 to {MAX_TRIALS} settings per variant")
        if self.holdout < 1:
            raise UsageError(
                f"--holdout {self.holdout}: a tune selects on training images held out of training; accepted: 1 or more"
            )
        if self.run.holdout:
            raise UsageError("a tune's trials use --holdout; its final runs score on the test split (holdout 0)")
        seeds = self.trial_seeds()
        clash = sorted(set(self.run.seeds) & set(seeds))
        if clash:
            raise UsageError(
                f"--final-seeds {format_seeds(self.run.seeds)} include search seeds ({format_seeds(clash)}): "
                f"phase 2 trains on fresh seeds; accepted: seeds below {TRIAL_SEED_BASE}"
            )

    def trial_seeds(self) -> list[int]:
        return [TRIAL_SEED_BASE + k for k in range(self.trials)]

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run.to_json(), **{k: getattr(self, k) for k in self.OWN}}


@dataclass(frozen=True)
class TuneResult:
    """What ``ganbench.tune`` returns: the trials table, the final run's result and the
    seconds each phase took (``overhead_seconds``: planning, bookkeeping and selection, outside
    the runs)."""

    tune_dir: Path
    trials: pd.DataFrame
    final: Any  # RunResult
    chosen: dict[str, dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)

    def format_summary(self) -> str:
        """What each variant chose, then the final run's summary and verdicts."""
        lines = []
        for variant, setting in self.chosen.items():
            mine = self.trials[self.trials[C.VARIANT] == variant]
            best = mine[mine[SELECTED]]
            score = f"{best[SCORE].iloc[0]:.4g}" if len(best) else "none"
            ok = int((mine[C.STATUS] == C.STATUS_OK).sum())
            lines.append(f"{variant}: best of {len(mine)} trials ({ok} ok) scored {score}; chose {_describe(setting)}")
        return "\n".join(lines) + "\n\n" + self.final.format_summary()


# --- the search space and its settings ------------------------------------------------------------


def sobol_points(n: int, dims: int, seed: int) -> np.ndarray:
    """The first ``n`` points of a scrambled Sobol sequence in [0, 1)^dims (scipy.stats.qmc)."""
    from scipy.stats import qmc

    if dims == 0:
        return np.zeros((n, 0))
    sampler = qmc.Sobol(d=dims, scramble=True, seed=seed)
    with warnings.catch_warnings():  # the balance of the first n points of 2^m is what we want
        warnings.simplefilter("ignore", UserWarning)
        return sampler.random(2 ** max(0, math.ceil(math.log2(n))))[:n]


def draw_settings(spaces: Mapping[str, Mapping[str, Range]], n: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """``{variant: [setting of trial k]}``: one Sobol point per trial k, shared by every
    variant. Each hyperparameter name has its own coordinate, so two variants that search
    ``lr_g`` over the same range try the same learning rates at the same positions."""
    names = sorted({key for space in spaces.values() for key in space})
    points = sobol_points(n, len(names), seed)
    column = {name: i for i, name in enumerate(names)}
    return {
        variant: [{key: r.map(float(points[k, column[key]])) for key, r in sorted(space.items())} for k in range(n)]
        for variant, space in spaces.items()
    }


def _selection_direction(config: TuneConfig, plan: Plan, registry: Registry) -> str:
    """The direction of ``--select``'s column; refuses a column no metric fills, one without
    a direction, and one not computed for some variant."""
    owners = {c: r.spec for r in registry.metrics.values() for c in r.spec.columns}
    spec = owners.get(config.select)
    if spec is None:
        raise UsageError(
            f"--select {config.select}: no metric computes that column; accepted: "
            f"{', '.join(sorted(c for c, s in owners.items() if s.directions.get(c) in (HIGHER, LOWER)))}"
        )
    direction = spec.directions.get(config.select)
    if direction not in (HIGHER, LOWER):
        raise UsageError(
            f"--select {config.select}: its metric {spec.name} declares no better direction; choose another column"
        )
    for p in plan.variants:
        if p.spec.task not in spec.tasks:
            raise UsageError(
                f"--select {config.select} is not computed for {p.spec.name} ({p.spec.task}); choose another column"
            )
        if config.select in (C.CLASS_CONSISTENCY,) and not p.spec.conditional:
            raise UsageError(f"--select {config.select} needs a conditional variant; {p.spec.name} is not")
    if config.run.metrics and spec.name not in config.run.metrics:
        log.info("--select %s: its metric %s also runs in phase 1", config.select, spec.name)
    return direction


@dataclass(frozen=True)
class TunePlan:
    config: TuneConfig
    tune_dir: Path
    plan: Plan  # phase 2's, at the defaults: every name and override checked
    metric: str  # the metric that fills --select
    direction: str
    spaces: dict[str, dict[str, Range]]
    settings: dict[str, list[dict[str, Any]]]

    def trial_dir(self, k: int) -> Path:
        return self.tune_dir / TRIALS_DIR / f"trial-{k:03d}"

    def trial_config(self, k: int) -> RunConfig:
        run = self.config.run
        fixed = {v: {**run.set.get(v, {}), **self.settings[v][k]} for v in run.variants}
        if self.metric in run.set:  # the selecting metric's options hold in phase 1 too (its only metric)
            fixed[self.metric] = dict(run.set[self.metric])
        return run.replace(
            seeds=(TRIAL_SEED_BASE + k,), out=self.trial_dir(k), set=fixed, search={}, evals=1,
            holdout=self.config.holdout, metrics=(self.metric,), probes=(), resample=False,
        )  # fmt: skip

    def final_config(self, chosen: Mapping[str, Mapping[str, Any]]) -> RunConfig:
        run = self.config.run
        fixed = {v: {**run.set.get(v, {}), **chosen.get(v, {})} for v in run.variants}
        others = {name: dict(options) for name, options in run.set.items() if name not in run.variants}
        return run.replace(out=self.tune_dir / FINAL_DIR, set={**others, **fixed}, search={})  # metrics' and probes' options too

    def record(self) -> dict[str, Any]:
        return {
            "format": TUNE_FORMAT,
            "tune": self.config.to_json(),
            "direction": self.direction,
            "metric": self.metric,
            "space": {v: {k: r.text for k, r in space.items()} for v, space in self.spaces.items()},
            "defaults": {
                p.spec.name: {k: getattr(p.config, k) for k in self.spaces[p.spec.name]} for p in self.plan.variants
            },
            "trial_seeds": self.config.trial_seeds(),
            "settings": self.settings,
        }


def plan_tune(config: TuneConfig, registry: Registry) -> TunePlan:
    """Check everything a tune needs (names, ranges, values, --select); compute nothing."""
    config.check()
    out = config.run.out if config.run.out is not None else _default_tune_dir(config.run)
    probe = config.run.replace(out=Path(out) / FINAL_DIR)
    plan = plan_run(probe, registry)
    direction = _selection_direction(config, plan, registry)
    metric = next(r.spec.name for r in registry.metrics.values() if config.select in r.spec.columns)
    spaces = {p.spec.name: dict(p.search) for p in plan.variants}
    settings = draw_settings(spaces, config.trials, config.sobol_seed)
    tune_dir = Path(out).absolute()
    resolved = dataclasses.replace(config, run=plan.config.replace(out=tune_dir))
    tplan = TunePlan(resolved, tune_dir, plan, metric, direction, spaces, settings)
    for k in (0, config.trials - 1):  # the drawn values are checked like --set values (valid ranges)
        plan_run(tplan.trial_config(k), registry)
    return tplan


def _default_tune_dir(run: RunConfig) -> Path:
    from ganbench.harness.plan import default_run_dir

    base = default_run_dir(run)
    return base.with_name(base.name + "-tune")


def tune_options(tune_dir: Path | str) -> dict[str, Any]:
    """The options of the tune in ``tune_dir`` (``--resume``), as ``TuneConfig.from_mapping`` takes them."""
    path = Path(tune_dir)
    record = read_tune(path)
    if record is None:
        raise UsageError(f"--resume {path}: no ganbench tune there (no readable {TUNE_JSON})")
    options = dict(record["tune"])
    run = dict(options.pop("run"))
    return {**run, "out": str(path), **options}


def read_tune(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((path / TUNE_JSON).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(record, dict) and record.get("format") == TUNE_FORMAT and isinstance(record.get("tune"), dict):
        return record
    return None


def _inspect_out(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    if not path.is_dir():
        raise UsageError(f"--out {path} is a file, not a directory; {ACCEPTED_OUT}")
    names = sorted(p.name for p in path.iterdir() if not R._is_ours(p.name))
    if not names:
        return None
    record = read_tune(path)
    if record is None:
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise UsageError(f"--out {path} already holds files that are not a ganbench tune ({shown}); {ACCEPTED_OUT}")
    return record


def _check_same_tune(before: dict[str, Any], now: dict[str, Any], tune_dir: Path) -> None:
    keys = ("tune", "space", "settings")
    a = json.loads(json.dumps({k: before.get(k) for k in keys}, default=str))
    b = json.loads(json.dumps({k: now.get(k) for k in keys}, default=str))
    for record in (a, b):  # where things are and how jobs execute may change on resume
        for key in RESUME_MAY_CHANGE:
            (record.get("tune") or {}).get("run", {}).pop(key, None)
    if a != b:
        old, new = {**a["tune"].pop("run"), **a["tune"]}, {**b["tune"].pop("run"), **b["tune"]}
        changed = [
            f"{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
        ]
        changed = changed or ["its search space"]
        raise UsageError(
            f"--out {tune_dir} holds a tune with other options ({'; '.join(changed[:4])}); resume it with its "
            f"own options (ganbench tune --resume {tune_dir}) or choose another --out"
        )


# --- running --------------------------------------------------------------------------------------


def trials_table(tplan: TunePlan) -> pd.DataFrame:
    """One row per variant and trial run so far: setting, selection score, status."""
    rows = []
    for k in range(tplan.config.trials):
        folder = tplan.trial_dir(k)
        metrics, jobs = _read(folder / R.METRICS_CSV), _read(folder / R.JOBS_CSV)
        for variant in tplan.config.run.variants:
            row: dict[str, Any] = {
                C.VARIANT: variant, TRIAL: k, C.SEED: TRIAL_SEED_BASE + k, C.STATUS: "not run", SCORE: math.nan,
                SELECTED: False, C.STEP: math.nan, C.TRAIN_SECONDS: math.nan,
                "run": str(folder.relative_to(tplan.tune_dir)),
            }  # fmt: skip
            job = jobs[jobs[C.VARIANT] == variant] if len(jobs) else jobs
            if len(job):
                row[C.STATUS] = str(job[C.STATUS].iloc[-1])
            done = metrics[(metrics[C.VARIANT] == variant)] if len(metrics) else metrics
            if len(done):
                last = done.sort_values(C.STEP).iloc[-1]
                row[C.STEP] = last[C.STEP]
                row[C.TRAIN_SECONDS] = last[C.TRAIN_SECONDS]
                if row[C.STATUS] == C.STATUS_OK:
                    value = last.get(tplan.config.select, math.nan)
                    row[SCORE] = float(value) if pd.notna(value) else math.nan
            row.update({f"{key}": value for key, value in tplan.settings[variant][k].items()})
            rows.append(row)
    frame = pd.DataFrame(rows)
    params = sorted({key for space in tplan.spaces.values() for key in space})
    frame = frame.reindex(columns=[*TRIAL_COLUMNS, *params])
    for variant, best in _best(frame, tplan.direction).items():
        frame.loc[(frame[C.VARIANT] == variant) & (frame[TRIAL] == best), SELECTED] = True
    return frame


def all_metrics(tplan: TunePlan) -> pd.DataFrame:
    """Every run's metrics.csv so far, stacked, with the phase (``search`` or ``final``) and the
    trial (empty in phase 2) in front: one table for every job of the tune."""
    frames = []
    for k in range(tplan.config.trials):
        frame = _read(tplan.trial_dir(k) / R.METRICS_CSV)
        if len(frame):
            frames.append(frame.assign(**{PHASE: "search", TRIAL: k}))
    final = _read(tplan.tune_dir / FINAL_DIR / R.METRICS_CSV)
    if len(final):
        frames.append(final.assign(**{PHASE: "final", TRIAL: pd.NA}))
    if not frames:
        return pd.DataFrame(columns=[PHASE, TRIAL])
    stacked = pd.concat(frames, ignore_index=True)
    return stacked[[PHASE, TRIAL, *(c for c in stacked.columns if c not in (PHASE, TRIAL))]]


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.EmptyDataError):
        return pd.DataFrame()


def _best(frame: pd.DataFrame, direction: str) -> dict[str, int]:
    """Each variant's winning trial: the best finite score, the first trial on a tie."""
    best = {}
    for variant, group in frame.groupby(C.VARIANT, sort=False):
        scored = group[np.isfinite(group[SCORE].astype(float))]
        if len(scored):
            values = scored[SCORE] if direction == LOWER else -scored[SCORE]
            best[str(variant)] = int(scored.loc[values.idxmin(), TRIAL])
    return best


def tune(
    config: TuneConfig | None = None,
    *,
    registry: Registry | None = None,
    resume: Path | str | None = None,
    report: bool = False,
    **kwargs: Any,
) -> TuneResult:
    """Tune every variant with the same search, then train each winner on the final seeds::

        ganbench.tune(variants="dcgan,cgan", trials=16, final_seeds="0-7", budget="2TFLOP")

    Keywords are :class:`TuneConfig`'s and :class:`RunConfig`'s fields (the CLI's flags).
    ``resume=TUNE_DIR`` continues the tune there with its own options."""
    from ganbench.harness.runner import run as run_benchmark

    if resume is not None:
        config = TuneConfig.from_mapping({**tune_options(resume), **kwargs}, source=f"--resume {resume}")
    elif config is None:
        config = TuneConfig.from_mapping(kwargs)
    start = time.perf_counter()
    registry = registry if registry is not None else load_registry(config.run.plugin)
    tplan = plan_tune(config, registry)
    if config.run.executor == "ray":
        from ganbench.harness.ray_executor import require_ray

        require_ray()
    existing = _inspect_out(tplan.tune_dir)
    record = tplan.record()
    if existing is not None:
        _check_same_tune(existing, record, tplan.tune_dir)
    seconds = {"phase 1": 0.0, "phase 2": 0.0}
    with R.opened(tplan.tune_dir, marker=TUNE_JSON):
        existing = _inspect_out(tplan.tune_dir)  # again, under the lock
        if existing is not None:
            _check_same_tune(existing, record, tplan.tune_dir)
            record = {**record, "started": existing.get("started"), "resumed": [*existing.get("resumed", []), _now()]}
        else:
            record = {**record, "started": _now(), "command": " ".join(sys.argv)}
        R.atomic_write_text(tplan.tune_dir / TUNE_JSON, json.dumps(record, indent=2, default=str) + "\n")
        t = time.perf_counter()
        try:
            _search(tplan, registry, fresh=existing is None)
        except KeyboardInterrupt as exc:  # resumed as a tune, not as the trial's run
            raise RunInterrupted(tplan.tune_dir, command="tune") from exc
        finally:
            seconds["phase 1"] = time.perf_counter() - t
        trials = trials_table(tplan)
        R.atomic_write_text(tplan.tune_dir / TRIALS_CSV, trials.to_csv(index=False))
        chosen = _chosen(tplan, trials)
        for variant, setting in chosen.items():
            log.info("tune: %s chose %s", variant, _describe(setting))
        t = time.perf_counter()
        try:
            final = run_benchmark(tplan.final_config(chosen), registry=registry)
        except KeyboardInterrupt as exc:
            raise RunInterrupted(tplan.tune_dir, command="tune") from exc
        finally:
            seconds["phase 2"] = time.perf_counter() - t
            R.atomic_write_text(tplan.tune_dir / METRICS_CSV, all_metrics(tplan).to_csv(index=False))
    seconds["total"] = time.perf_counter() - start
    seconds["overhead"] = seconds["total"] - seconds["phase 1"] - seconds["phase 2"]
    if report:
        from ganbench.report.tuning import build_tune_report

        build_tune_report(tplan.tune_dir)
    return TuneResult(tplan.tune_dir, trials, final, chosen, seconds)


def _search(tplan: TunePlan, registry: Registry, fresh: bool) -> None:
    """Phase 1: every trial not finished yet, trial by trial; with ``--executor ray``, as many
    trials at once as keep the cluster busy (:func:`trials_in_flight`). trials.csv and the
    stacked metrics.csv are rewritten as each trial ends."""
    from ganbench.harness.runner import run as run_benchmark

    config = tplan.config

    def one(k: int, stop: threading.Event | None = None) -> None:
        log.info("tune: trial %d of %d (phase 1)", k + 1, config.trials)
        run_benchmark(tplan.trial_config(k), registry=registry, stop=stop)

    def written() -> None:
        R.atomic_write_text(tplan.tune_dir / TRIALS_CSV, trials_table(tplan).to_csv(index=False))
        R.atomic_write_text(tplan.tune_dir / METRICS_CSV, all_metrics(tplan).to_csv(index=False))

    try:
        if config.run.executor != "ray":
            for k in range(config.trials):
                one(k)
                written()
            return
        from ganbench.harness import ray_executor

        run = config.run
        cpus, gpus = ray_executor.job_resources(run.cpus_per_job, run.gpus_per_job, tplan.plan.device)
        with ray_executor.session(run.ray_address, cpus, gpus) as slots:
            in_flight = trials_in_flight(slots, len(run.variants), config.trials)
            log.info("tune: %d trials at a time (the Ray cluster runs %d jobs at once)", in_flight, slots)
            run_concurrently(range(config.trials), one, in_flight, written)
    except UsageError:  # bad input the data reveals (--holdout too large): a new tune leaves nothing
        if fresh and not any((tplan.trial_dir(k) / R.CONFIG_JSON).exists() for k in range(config.trials)):
            (tplan.tune_dir / TUNE_JSON).unlink(missing_ok=True)
            shutil.rmtree(tplan.tune_dir / TRIALS_DIR, ignore_errors=True)
        raise


def trials_in_flight(slots: int, variants: int, trials: int) -> int:
    """Trials to run at once on a cluster that runs ``slots`` jobs at once: enough to fill it
    with ``variants`` jobs per trial, and one more setting up (a trial's run loads the data and
    scores the reference row on the driver before its jobs start); at most every trial."""
    return max(1, min(trials, -(-slots // max(1, variants)) + 1))


def run_concurrently(
    ks: Sequence[int],
    one: Callable[[int, threading.Event], None],
    in_flight: int,
    done: Callable[[], None],
) -> None:
    """``one(k, stop)`` for every ``k``, ``in_flight`` at a time in threads, ``done()`` in this
    thread after each. Ctrl-C (which reaches this thread only) or an error sets ``stop``: the
    other trials stop as Ctrl-C stops a run, and the first error (or the interruption) is
    raised once every thread has ended, so no trial outlives the tune."""
    stop = threading.Event()
    pending = list(ks)
    errors: list[BaseException] = []
    interrupted: KeyboardInterrupt | None = None
    with concurrent.futures.ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="ganbench-trial") as pool:
        running: set[concurrent.futures.Future] = set()
        try:
            while pending or running:
                while pending and len(running) < in_flight and not stop.is_set():
                    running.add(pool.submit(one, pending.pop(0), stop))
                if not running:
                    break
                finished, running = concurrent.futures.wait(
                    running, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED
                )  # a timeout, so that Ctrl-C is seen while the trials run
                for future in finished:
                    if future.exception() is not None:  # the others stop, as after Ctrl-C
                        errors.append(future.exception())
                        stop.set()
                if finished:
                    done()
        except KeyboardInterrupt as exc:
            interrupted = exc
            stop.set()
            concurrent.futures.wait(running)  # each trial records its running jobs as interrupted
            done()
    if interrupted is not None:
        raise interrupted
    if errors:
        raise errors[0]


def _chosen(tplan: TunePlan, trials: pd.DataFrame) -> dict[str, dict[str, Any]]:
    chosen = {}
    for variant in tplan.config.run.variants:
        row = trials[(trials[C.VARIANT] == variant) & trials[SELECTED]]
        if not len(row):
            mine = trials[trials[C.VARIANT] == variant]
            raise TuneFailed(
                f"{variant}: none of its {len(mine)} trials gave a {tplan.config.select} "
                f"({', '.join(f'{s} {n}' for s, n in mine[C.STATUS].value_counts().items())}); "
                f"see {tplan.tune_dir / TRIALS_CSV}. Widen or move its --search ranges, or --select another column"
            )
        chosen[variant] = dict(tplan.settings[variant][int(row[TRIAL].iloc[0])])
    return chosen


class TuneFailed(RuntimeError):
    """Some variant has no usable trial: there is nothing to re-train in phase 2."""


def _describe(setting: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_number(v)}" for k, v in setting.items()) or "its defaults (nothing searched)"


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")
