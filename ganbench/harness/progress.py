"""Progress of a training run: a tqdm bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from ganbench.budget import FLOPS, KIMG, SECONDS, STEPS, Budget
from ganbench.harness.trainer import LogPoint

log = logging.getLogger("ganbench.harness.progress")

LINE_INTERVAL_S = 15.0  # between plain log lines when not on a terminal


def _spent(budget: Budget, point: LogPoint, step_flops: int | None) -> float:
    """The fraction of the budget spent at ``point``."""
    flops = point.step * step_flops if step_flops is not None else None
    return budget.fraction(point.step, point.images_seen, point.train_seconds, flops)


def _remaining(budget: Budget, point: LogPoint, step_flops: int | None = None) -> float:
    """Estimated training seconds left of the budget."""
    fraction = _spent(budget, point, step_flops)
    if budget.kind == SECONDS:
        return max(budget.amount - point.train_seconds, 0.0)
    return point.train_seconds * (1 - fraction) / fraction if fraction > 0 else float("nan")


def _fmt_seconds(seconds: float) -> str:
    if seconds != seconds:
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


class Progress:
    """Reports one run's log points against its budget."""

    def __init__(
        self,
        label: str,
        budget: Budget,
        stream: TextIO | None = None,
        bar: bool | None = None,
        step_flops: int | None = None,
    ) -> None:
        self.label = label
        self.budget = budget
        self.step_flops = step_flops
        self.stream = stream or sys.stderr
        self.bar = None
        self._last_line = 0.0
        if bar if bar is not None else self.stream.isatty():
            from tqdm import tqdm

            unit = {SECONDS: "s", STEPS: "step", KIMG: "kimg", FLOPS: "FLOP"}[budget.kind]
            self.bar = tqdm(
                total=budget.amount,
                desc=label,
                unit=unit,
                unit_scale=budget.kind == FLOPS,  # 1.2TFLOP, not 1200000000000FLOP
                file=self.stream,
                leave=True,
                dynamic_ncols=True,
            )

    def update(self, point: LogPoint) -> None:
        rate = point.images_seen / point.train_seconds if point.train_seconds > 0 else 0.0
        losses = ", ".join(f"{k} {v:.3f}" for k, v in point.losses.items())
        left = _fmt_seconds(_remaining(self.budget, point, self.step_flops))
        if self.bar is not None:
            flops = point.step * (self.step_flops or 0)
            done = {SECONDS: point.train_seconds, STEPS: point.step, KIMG: point.images_seen / 1000, FLOPS: flops}
            self.bar.n = min(done[self.budget.kind], self.budget.amount)
            self.bar.set_postfix_str(f"step {point.step}, {rate:.0f} img/s, {losses}, {left} left", refresh=False)
            self.bar.refresh()
            return
        now = time.monotonic()
        if now - self._last_line >= LINE_INTERVAL_S:
            self._last_line = now
            fraction = _spent(self.budget, point, self.step_flops)
            log.info(
                "%s: step %d (%.0f%% of %s), %.0f img/s, %s, %s left",
                self.label, point.step, 100 * min(fraction, 1.0), self.budget, rate, losses, left,
            )  # fmt: skip

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            log.info("%s", text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
