"""The training loop: one trainer for every variant. It owns the budget, the evaluation
schedule, timing, divergence detection and checkpoints; the variant owns one step.

The loop never synchronises with the device between log points: each step's losses stay on
the device, stacked, and are read back together every ``log_every`` steps (or at an
evaluation point), where non-finite values are traced to the exact step they appeared at.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganbench import columns as C
from ganbench.budget import Budget
from ganbench.data import BatchSource
from ganbench.devices import synchronize
from ganbench.harness.seeding import capture_rng
from ganbench.variant import Variant

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """How much of the budget a run has spent."""

    step: int = 0
    images_seen: int = 0
    train_seconds: float = 0.0
    eval_index: int = 0
    peak_mem_mb: float = 0.0


@dataclass(frozen=True)
class LogPoint:
    """Losses averaged over the steps since the last log point."""

    step: int
    images_seen: int
    train_seconds: float
    losses: dict[str, float]


@dataclass
class Outcome:
    status: str
    note: str = ""
    state: RunState = field(default_factory=RunState)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # not Linux: the process's high-water mark
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if os.uname().sysname == "Darwin" else rss / 2**10


class Trainer:
    """Trains one variant under one budget, calling ``on_eval`` at each evaluation point.

    Args:
        variant: the variant, built and seeded.
        source: the run's batch source.
        budget: the budget of this run.
        evals: evaluation points, at fractions 1/evals, 2/evals, ..., 1 of the budget.
        on_eval: ``on_eval(state, final)``; its time is not training time.
        on_log: ``on_log(log_point)`` at each log point.
        log_every: steps between loss read-backs.
        checkpoint: where to save the full state after each evaluation (None: never).
    """

    def __init__(
        self,
        variant: Variant,
        source: BatchSource,
        budget: Budget,
        evals: int,
        on_eval: Callable[[RunState, bool], None],
        on_log: Callable[[LogPoint], None] = lambda point: None,
        log_every: int = 50,
        checkpoint: Path | None = None,
    ) -> None:
        self.variant = variant
        self.source = source
        self.budget = budget
        self.evals = evals
        self.on_eval = on_eval
        self.on_log = on_log
        self.log_every = log_every
        self.checkpoint = checkpoint
        self.state = RunState()
        self.device = variant.device

    def _fraction(self) -> float:
        s = self.state
        return self.budget.fraction(s.step, s.images_seen, s.train_seconds)

    def _measure_memory(self) -> None:
        if self.device.type == "cuda":
            mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            mb = _rss_mb()
        self.state.peak_mem_mb = max(self.state.peak_mem_mb, mb)

    def fit(self) -> Outcome:
        state, variant = self.state, self.variant
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        thresholds = [(i + 1) / self.evals for i in range(self.evals)]
        next_eval = 0
        names: list[str] | None = None
        pending: list[torch.Tensor] = []
        variant.train(True)
        synchronize(self.device)
        last = time.perf_counter()
        while True:
            losses = variant.train_step(self.source)
            if names is None:
                names = list(losses)
            pending.append(torch.stack([losses[k].detach().float().reshape(()) for k in names]))
            state.step += 1
            state.images_seen = self.source.images_seen
            now = time.perf_counter()
            state.train_seconds += now - last
            last = now
            due = self._fraction() >= thresholds[next_eval]
            if due or len(pending) >= self.log_every:
                synchronize(self.device)  # the one host synchronisation per log interval
                now = time.perf_counter()
                state.train_seconds += now - last
                last = now
                values = torch.stack(pending).cpu()
                first_step = state.step - len(pending) + 1
                pending.clear()
                finite = torch.isfinite(values).all(dim=1)
                self._measure_memory()
                if not bool(finite.all()):
                    bad = int((~finite).nonzero()[0, 0])
                    state.step = first_step + bad
                    bad_losses = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, values[bad].tolist()))
                    return Outcome(C.STATUS_DIVERGED, f"non-finite loss at step {state.step}: {bad_losses}", state)
                self.on_log(
                    LogPoint(
                        state.step, state.images_seen, state.train_seconds, dict(zip(names, values.mean(0).tolist()))
                    )
                )
                fraction = self._fraction()
                if fraction >= thresholds[next_eval]:
                    while next_eval < len(thresholds) and fraction >= thresholds[next_eval]:
                        next_eval += 1
                    final = next_eval == len(thresholds)
                    state.eval_index += 1
                    self.on_eval(state, final)
                    if self.checkpoint is not None:
                        self.save(self.checkpoint)
                    variant.train(True)
                    if final:
                        return Outcome(C.STATUS_OK, "", state)
                    last = time.perf_counter()  # evaluation time is not training time

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly: networks, optimisers, the batch
        source, every RNG and the budget spent."""
        s = self.state
        return {
            "variant": self.variant.state_dict(),
            "source": self.source.state_dict(),
            "rng": capture_rng(),
            "state": {
                "step": s.step,
                "images_seen": s.images_seen,
                "train_seconds": s.train_seconds,
                "eval_index": s.eval_index,
            },
            "budget": {"kind": self.budget.kind, "amount": self.budget.amount, "text": self.budget.text},
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)
