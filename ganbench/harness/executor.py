"""Executors run jobs and hand their events to the one writer.

An executor is anything with ``run(jobs, handle)``: it runs every job and calls ``handle``
with each event, in order per job, in the process that owns the writer. The local executor
runs jobs one after another in this process (the default); another executor may run them
elsewhere (:mod:`.ray_executor`), as long as the events reach ``handle``. Either way the
executor reads a job's last checkpoint and hands its bytes to the job, and the job's new
checkpoints come back as events for the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ganbench.harness.events import Event
from ganbench.harness.job import Job, JobEnv, saved_checkpoint
from ganbench.harness.trainer import Outcome

Handle = Callable[[Event], None]


class Executor(Protocol):
    def run(self, jobs: Sequence[Job], handle: Handle) -> list[Outcome]:
        """Run every job; return their outcomes in the order of ``jobs``. A job that fails or
        diverges does not stop the others; Ctrl-C stops all, after the running job has
        reported where it stopped."""
        ...


class LocalExecutor:
    """One job at a time in this process, sharing one :class:`JobEnv` (data and classifier
    loaded once); each job's events go straight to the writer."""

    def __init__(self, env: JobEnv) -> None:
        self.env = env

    def run(self, jobs: Sequence[Job], handle: Handle) -> list[Outcome]:
        outcomes = []
        for job in jobs:
            checkpoint = saved_checkpoint(self.env.rundir, job.variant, job.seed)
            outcomes.append(job.run(self.env, handle, checkpoint))
            if self.env.plan.device.type == "cuda":
                import torch

                torch.cuda.empty_cache()
        return outcomes
