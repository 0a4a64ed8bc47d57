"""Each (variant, seed) job as a Ray task, on this machine or across a cluster.

Imported only for ``--executor ray``: ``import ganbench`` and local runs never import ray.

A job is a streaming generator task: it yields its events as it emits them, and the driver
waits on every running job at once and hands each event to the one writer as it arrives, in
per-job order (the tables grow during the run as with the local executor). Nothing is read
from or written to the run directory on a worker, so a worker may be another machine: the
data, the held-out classifier, attributes and judges go through the object store (put once),
local plugin files travel with the task, the job's last checkpoint is read on the driver and
handed to it, and its new checkpoints come back as events.

A worker that dies fails its own job only (a failed row and its end, as a job that raised
would write); ``--resume`` continues it from its last checkpoint. Ctrl-C cancels every task,
records the running jobs as interrupted at the last point they reported, and propagates.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import os
import queue
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganbench import columns as C
from ganbench.errors import UsageError, describe
from ganbench.harness import events as E
from ganbench.harness.executor import Handle
from ganbench.harness.job import Job, JobEnv, load_checkpoint, run_fingerprint, saved_checkpoint
from ganbench.harness.trainer import Outcome, RunState

log = logging.getLogger(__name__)

INSTALL = "pip install 'ganbench[ray]'"


def require_ray() -> Any:
    """The ray module, or a one-line UsageError saying how to get it."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            f"--executor ray needs Ray, which is not installed: {INSTALL} (or use --executor local)"
        ) from None
    return ray


@dataclass(frozen=True)
class Payload:
    """What every job of a run reads and no worker should load or train again."""

    splits: Any
    classifier: Any
    attributes: Any
    judges: Any


def _move(obj: Any, device: torch.device, seen: set[int] | None = None) -> None:
    """Move every network reachable through ``obj``'s attributes to ``device``, in place."""
    seen = set() if seen is None else seen
    if id(obj) in seen or obj is None:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module):
        obj.to(device)
        return
    for value in getattr(obj, "__dict__", {}).values():
        if isinstance(value, torch.nn.Module) or type(value).__module__.startswith("ganbench"):
            _move(value, device, seen)


def plugin_sources(env: JobEnv) -> list[tuple[str, bytes]]:
    """The run's local plugin files ($GANBENCH_PLUGINS and --plugin), by path, with their contents."""
    from ganbench.registry import env_plugin_files

    paths = dict.fromkeys(Path(p).expanduser().resolve() for p in (*env_plugin_files(), *env.plan.config.plugin))
    return [(str(p), p.read_bytes()) for p in paths if p.is_file()]


def _plugin_files(sources: Sequence[tuple[str, bytes]], folder: Path) -> list[Path]:
    """The driver's plugin files on this machine: the same file where it is here unchanged
    (the same module name), else a copy under its own name in ``folder``."""
    files = []
    for i, (path, data) in enumerate(sources):
        here = Path(path)
        if here.is_file() and here.read_bytes() == data:
            files.append(here)
            continue
        copy_ = folder / str(i) / here.name
        copy_.parent.mkdir(parents=True)
        copy_.write_bytes(data)
        files.append(copy_)
    return files


def _worker_env(job: Job, payload: Payload, plugins: Sequence[tuple[str, bytes]], run_dir: str) -> JobEnv:
    from ganbench.harness.plan import plan_run
    from ganbench.harness.rundir import RunDir
    from ganbench.registry import load_registry

    with tempfile.TemporaryDirectory(prefix="ganbench-plugins-") as folder:
        registry = load_registry(_plugin_files(plugins, Path(folder)), environ={})
    plan = plan_run(job.config, registry)
    if plan.device.type == "cuda" and plan.device.index:  # Ray shows a task only its own GPUs
        plan = dataclasses.replace(plan, device=torch.device("cuda"))
    for part in (payload.classifier, payload.judges):
        _move(part, plan.device)
    return JobEnv(plan, payload.splits, payload.classifier, RunDir(run_dir), payload.attributes, payload.judges)


@dataclass(frozen=True)
class _Raised:
    error: BaseException


def job_events(
    job: Job, payload: Payload, plugins: list[tuple[str, bytes]], checkpoint: bytes | None, run_dir: str, threads: int
) -> Iterator[E.Event]:
    """The Ray task: run ``job`` and yield its events as it emits them. The job runs in a
    thread because it reports through a callback; this generator relays what it emits."""
    torch.set_num_threads(threads)
    env = _worker_env(job, payload, plugins, run_dir)
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    done = object()

    def work() -> None:
        torch.set_num_threads(threads)  # per thread: OpenMP's setting is thread-local
        try:
            job.run(env, events.put, checkpoint)
        except BaseException as exc:  # raised in the task, where Ray reports it
            events.put(_Raised(exc))
        finally:
            events.put(done)

    threading.Thread(target=work, name=job.label, daemon=True).start()
    while (event := events.get()) is not done:
        if isinstance(event, _Raised):
            raise event.error
        yield event


@dataclass
class _Tracked:
    """Where a job stands, from its events: enough to record where it stopped if its worker
    dies or the run is interrupted."""

    job: Job
    started: bool = False
    state: RunState = field(default_factory=RunState)
    critic_steps: int = 0
    ended: E.JobEnded | None = None

    def see(self, event: E.Event) -> None:
        if isinstance(event, E.JobStarted):
            self.started = True
            if event.rows:
                self._from_row(event.rows[-1])
        elif isinstance(event, E.Row) and event.row.get(C.STATUS) == C.STATUS_OK:
            self._from_row(event.row)
        elif isinstance(event, E.Log):
            r = event.record
            self.state = dataclasses.replace(
                self.state, step=r[C.STEP], images_seen=r[C.IMAGES_SEEN], train_seconds=r[C.TRAIN_SECONDS]
            )
        elif isinstance(event, E.JobEnded):
            self.ended = event

    def _from_row(self, row: dict[str, Any]) -> None:
        peak, compiled = row.get(C.PEAK_MEM_MB), row.get(C.COMPILE_SECONDS)
        self.critic_steps = int(row.get(C.CRITIC_STEPS) or 0)
        self.state = RunState(
            step=row[C.STEP],
            images_seen=row[C.IMAGES_SEEN],
            train_seconds=row[C.TRAIN_SECONDS],
            eval_index=row[C.EVAL_INDEX],
            peak_mem_mb=0.0 if peak is None or math.isnan(peak) else peak,
            compile_seconds=0.0 if compiled is None or math.isnan(compiled) else compiled,
        )

    def stop(self, env: JobEnv, handle: Handle, status: str, note: str) -> None:
        """What Job.run records when it ends early, written for it: the row after its last
        evaluation (status and why, no metrics), then its end."""
        job = self.job
        if not self.started:  # it never reported: it stands where its checkpoint left it
            saved = saved_checkpoint(env.rundir, job.variant, job.seed)
            if saved is not None:
                path, fingerprint = env.rundir.checkpoint(job.variant, job.seed), run_fingerprint(env.plan)
                state = load_checkpoint(path, job.variant, job.seed, fingerprint, saved)["trainer"]["state"]
                self.state = RunState(**state)

        def emit(event: E.Event) -> None:
            self.see(event)
            handle(event)

        job.stop(env, emit, Outcome(status, note, self.state), self.critic_steps)

    def outcome(self) -> Outcome:
        assert self.ended is not None
        return Outcome(self.ended.status, self.ended.note, self.state)


def _died(error: Exception) -> str:
    """One line: the worker died (or the task could not run), and why."""
    cause = getattr(error, "cause", None)  # a task's own exception, wrapped by Ray
    what = describe(cause if isinstance(cause, BaseException) else error)
    prefix = (
        "worker died" if "WorkerCrashed" in type(error).__name__ or "Died" in type(error).__name__ else "task failed"
    )
    return f"{prefix} on Ray ({what})"


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def start_ray(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local instance; True when this call started
    or joined it (and so should shut it down), False when Ray was already running here."""
    if ray.is_initialized():
        return False
    quiet = dict(logging_level=logging.WARNING, log_to_driver=True)
    if address is not None:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UsageError(
                f"ray_address {address}: cannot join that Ray cluster ({describe(exc)}); "
                "accepted: auto, ray://HOST:PORT, HOST:PORT of a running cluster, or none to start one"
            ) from None
        return True
    ray.init(num_cpus=_cpu_count(), include_dashboard=False, **quiet)
    return True


def job_resources(cpus_per_job: float, gpus_per_job: float | None, device: torch.device) -> tuple[float, float]:
    """What one job reserves: ``cpus_per_job``, and ``gpus_per_job`` (default 1 on CUDA, else 0)."""
    default_gpus = 1.0 if device.type == "cuda" else 0.0
    return float(cpus_per_job), float(gpus_per_job if gpus_per_job is not None else default_gpus)


def job_slots(resources: dict[str, float], cpus: float, gpus: float) -> int:
    """How many jobs of ``cpus`` CPUs and ``gpus`` GPUs the cluster's ``resources`` run at once."""
    slots = [int(resources.get("CPU", 0.0) // cpus)] if cpus > 0 else []
    if gpus > 0:
        slots.append(int(resources.get("GPU", 0.0) // gpus))
    return max(1, min(slots)) if slots else 1


@contextlib.contextmanager
def session(address: str | None, cpus: float, gpus: float) -> Iterator[int]:
    """Ray started (or joined) once for several runs, as ``ganbench tune`` runs its trials;
    yields how many jobs the cluster runs at once. Each run's executor finds Ray running and
    leaves it to this session to shut down."""
    ray = require_ray()
    started = start_ray(ray, address)
    try:
        yield job_slots(ray.cluster_resources(), cpus, gpus)
    finally:
        if started:
            ray.shutdown()


class RayExecutor:
    """Every job a Ray task with the run's ``cpus_per_job`` and ``gpus_per_job``, run as the
    cluster has room; events stream back to ``handle`` in this process.

    ``stop``: an event another thread sets to interrupt this run as Ctrl-C would (a tune running
    several trials at once in threads: a signal reaches the main thread only)."""

    def __init__(self, env: JobEnv, stop: threading.Event | None = None) -> None:
        self.env = env
        config = env.plan.config
        self.cpus, self.gpus = job_resources(config.cpus_per_job, config.gpus_per_job, env.plan.device)
        self.threads = max(1, int(self.cpus))
        self.stop = stop

    def _start(self, ray: Any) -> bool:
        return start_ray(ray, self.env.plan.config.ray_address)

    def _check_fits(self, ray: Any) -> None:
        have = ray.cluster_resources()
        for what, need in (("cpus_per_job", self.cpus), ("gpus_per_job", self.gpus)):
            total = have.get("CPU" if what == "cpus_per_job" else "GPU", 0.0)
            if need > total:
                raise UsageError(f"{what} {need:g} exceeds the Ray cluster's {total:g}; accepted: at most {total:g}")

    def run(self, jobs: Sequence[Job], handle: Handle) -> list[Outcome]:
        ray = require_ray()
        started = self._start(ray)
        running: dict[Any, _Tracked] = {}
        tracked = [_Tracked(job) for job in jobs]
        try:
            self._check_fits(ray)
            env = self.env
            networks = (env.classifier, env.judges)
            if env.plan.device.type != "cpu":  # across machines: every network on the CPU, moved back by the worker
                networks = copy.deepcopy(networks)
                _move(networks, torch.device("cpu"))
            payload = Payload(env.splits, networks[0], env.attributes, networks[1])
            shared, plugins = ray.put(payload), plugin_sources(env)
            task = ray.remote(job_events).options(
                num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0, num_returns="streaming"
            )
            for t in tracked:
                checkpoint = saved_checkpoint(env.rundir, t.job.variant, t.job.seed)
                run_dir = str(env.rundir.path)
                running[task.remote(t.job, shared, plugins, checkpoint, run_dir, self.threads)] = t
            while running:
                if self.stop is not None and self.stop.is_set():
                    raise KeyboardInterrupt
                ready, _ = ray.wait(list(running), num_returns=1, timeout=None if self.stop is None else 0.5)
                for stream in ready:
                    self._next(ray, stream, running, handle)
        except BaseException as exc:  # Ctrl-C, or the writer failed: no task outlives the run
            for stream, t in running.items():
                ray.cancel(stream, force=True)
                if isinstance(exc, KeyboardInterrupt) and t.started and t.ended is None:
                    t.stop(self.env, handle, C.STATUS_INTERRUPTED, "interrupted")
            raise
        finally:
            if started:
                ray.shutdown()
        return [t.outcome() for t in tracked]

    def _next(self, ray: Any, stream: Any, running: dict[Any, _Tracked], handle: Handle) -> None:
        """Hand the next event of ``stream`` to ``handle``; drop the stream when it has ended."""
        t = running[stream]
        try:
            event = ray.get(next(stream))
        except StopIteration:
            del running[stream]
            if t.ended is None:  # cannot happen unless a job returns without its end
                t.stop(self.env, handle, C.STATUS_FAILED, "its Ray task ended without reporting its end")
            return
        except ray.exceptions.RayError as exc:
            del running[stream]
            note = _died(exc)
            log.warning("%s: failed (%s)", t.job.label, note)
            t.stop(self.env, handle, C.STATUS_FAILED, note)
            return
        t.see(event)
        handle(event)
        if isinstance(event, E.Row) and event.row.get(C.STATUS) == C.STATUS_OK:  # workers' progress, told here
            r = event.row
            log.info(
                "%s: eval %d at step %d: fid_domain %.4g",
                t.job.label,
                r[C.EVAL_INDEX],
                r[C.STEP],
                r.get(C.FID_DOMAIN, math.nan),
            )
