"""The training loop: one trainer for every variant. It owns the budget, the evaluation
schedule, timing, divergence detection and checkpoints; the variant owns one step.

The loop never synchronises with the device between log points: each step's losses stay on
the device, stacked, and are read back together every ``log_every`` steps (or at an
evaluation point), where non-finite values are traced to the exact step they appeared at.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ganbench import columns as C
from ganbench.budget import Budget
from ganbench.data import BatchSource
from ganbench.devices import synchronize
from ganbench.fastpath import warm_up
from ganbench.harness.seeding import capture_rng, restore_rng
from ganbench.variant import Variant

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """How much of the budget a run has spent, and where its evaluation schedule stands."""

    step: int = 0
    images_seen: int = 0
    train_seconds: float = 0.0
    compile_seconds: float = 0.0  # warm-ups before the clock (compilation), summed over resumes
    eval_index: int = 0
    peak_mem_mb: float = 0.0
    next_eval: int = 0  # index of the next evaluation threshold (several collapse when steps are few)
    finished: bool = False


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
        on_checkpoint: ``on_checkpoint(trainer)`` after each evaluation: the moment the whole
            state (:meth:`state_dict`) is consistent and can be saved.
        step_flops: FLOPs of one step (:mod:`ganbench.harness.flops`); a FLOP budget needs it.
        compile_warm_up: run one throwaway step first (:func:`ganbench.fastpath.warm_up`), so
            that ``--compile``'s compilation happens before the clock starts; its seconds are
            ``state.compile_seconds``, not training time, and it changes nothing the run computes.

    A trainer restored with :meth:`load_state_dict` continues exactly where the saved one was.
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
        on_checkpoint: Callable[[Trainer], None] | None = None,
        step_flops: int | None = None,
        compile_warm_up: bool = False,
    ) -> None:
        self.variant = variant
        self.source = source
        self.budget = budget
        self.evals = evals
        self.on_eval = on_eval
        self.on_log = on_log
        self.log_every = log_every
        self.on_checkpoint = on_checkpoint
        self.step_flops = step_flops
        self.compile_warm_up = compile_warm_up
        self.state = RunState()
        self.device = variant.device

    def _fraction(self) -> float:
        s = self.state
        flops = s.step * self.step_flops if self.step_flops is not None else None
        return self.budget.fraction(s.step, s.images_seen, s.train_seconds, flops)

    def _measure_memory(self) -> None:
        if self.device.type == "cuda":
            mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            mb = _rss_mb()
        self.state.peak_mem_mb = max(self.state.peak_mem_mb, mb)

    def fit(self) -> Outcome:
        state, variant = self.state, self.variant
        if state.finished:
            return Outcome(C.STATUS_OK, "", state)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        thresholds = [(i + 1) / self.evals for i in range(self.evals)]
        names: list[str] | None = None
        pending: list[torch.Tensor] = []  # each step's losses, still on the device
        seen: list[int] = []  # images consumed up to each pending step (host integers: no sync)
        variant.train(True)
        if self.compile_warm_up:  # in every process that trains: a resumed job compiles again
            start = time.perf_counter()
            warm_up(variant, self.source)
            synchronize(self.device)
            seconds = time.perf_counter() - start
            state.compile_seconds += seconds
            log.info("compiled in %.1f s, before the budget's clock started", seconds)
        synchronize(self.device)
        last = time.perf_counter()
        while True:
            losses = variant.train_step(self.source)
            if names is None:
                names = list(losses)
            pending.append(torch.stack([losses[k].detach().float().reshape(()) for k in names]))
            state.step += 1
            state.images_seen = self.source.images_seen
            seen.append(state.images_seen)
            now = time.perf_counter()
            state.train_seconds += now - last
            last = now
            due = self._fraction() >= thresholds[state.next_eval]
            if due or len(pending) >= self.log_every:
                synchronize(self.device)  # the one host synchronisation per log interval
                now = time.perf_counter()
                state.train_seconds += now - last
                last = now
                values = torch.stack(pending).cpu()
                first_step = state.step - len(pending) + 1
                finite = torch.isfinite(values).all(dim=1)
                self._measure_memory()
                if not bool(finite.all()):
                    return self._diverged(names, values, seen, first_step, int((~finite).nonzero()[0, 0]))
                pending.clear()
                seen.clear()
                self.on_log(
                    LogPoint(
                        state.step, state.images_seen, state.train_seconds, dict(zip(names, values.mean(0).tolist()))
                    )
                )
                fraction = self._fraction()
                if fraction >= thresholds[state.next_eval]:
                    while state.next_eval < len(thresholds) and fraction >= thresholds[state.next_eval]:
                        state.next_eval += 1
                    final = state.next_eval == len(thresholds)
                    state.eval_index += 1
                    state.finished = final
                    self.on_eval(state, final)
                    if self.on_checkpoint is not None:
                        self.on_checkpoint(self)
                    variant.train(True)
                    if final:
                        return Outcome(C.STATUS_OK, "", state)
                    last = time.perf_counter()  # evaluation time is not training time

    def _diverged(self, names: list[str], values: torch.Tensor, seen: list[int], first_step: int, bad: int) -> Outcome:
        """End at the first non-finite step: the state and the training log as of that step."""
        state = self.state
        if bad > 0:  # the finite steps of the window before it
            self.on_log(
                LogPoint(
                    first_step + bad - 1,
                    seen[bad - 1],
                    state.train_seconds,
                    dict(zip(names, values[:bad].mean(0).tolist())),
                )
            )
        state.step = first_step + bad
        state.images_seen = seen[bad]
        self.on_log(
            LogPoint(state.step, state.images_seen, state.train_seconds, dict(zip(names, values[bad].tolist())))
        )
        bad_losses = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, values[bad].tolist()))
        return Outcome(C.STATUS_DIVERGED, f"non-finite loss at step {state.step}: {bad_losses}", state)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly: networks, optimisers, the batch
        source, every RNG, the budget spent and the evaluation schedule."""
        return {
            "variant": self.variant.state_dict(),
            "source": self.source.state_dict(),
            "rng": capture_rng(),
            "state": dataclasses.asdict(self.state),
            "budget": {"kind": self.budget.kind, "amount": self.budget.amount, "text": self.budget.text},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; restores the RNGs last, as the saved run had them."""
        budget = state["budget"]
        if (budget["kind"], budget["amount"]) != (self.budget.kind, self.budget.amount):
            raise ValueError(f"the checkpoint was made under budget {budget['text']}, not {self.budget}")
        self.variant.load_state_dict(state["variant"])
        self.source.load_state_dict(state["source"])
        self.state = RunState(**state["state"])
        restore_rng(state["rng"])
