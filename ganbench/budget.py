"""Compute budgets: training wall-clock, generator steps, thousands of real images, or FLOPs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from ganbench.errors import UsageError

SECONDS, STEPS, KIMG, FLOPS = "seconds", "steps", "kimg", "flops"
_UNITS = {
    "s": (SECONDS, 1), "sec": (SECONDS, 1), "secs": (SECONDS, 1), "second": (SECONDS, 1), "seconds": (SECONDS, 1),
    "m": (SECONDS, 60), "min": (SECONDS, 60), "mins": (SECONDS, 60), "minute": (SECONDS, 60), "minutes": (SECONDS, 60),
    "h": (SECONDS, 3600), "hour": (SECONDS, 3600), "hours": (SECONDS, 3600),
    "step": (STEPS, 1), "steps": (STEPS, 1),
    "kimg": (KIMG, 1),
    "gflop": (FLOPS, 10**9), "tflop": (FLOPS, 10**12), "pflop": (FLOPS, 10**15), "eflop": (FLOPS, 10**18),
}  # fmt: skip
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)\s*$")
ACCEPTED = (
    "a number with a unit: seconds (90s), minutes (2m), hours (1h), generator steps (2000steps), kimg (60kimg) "
    "or training FLOPs (500TFLOP, 1.5PFLOP; GFLOP, TFLOP, PFLOP, EFLOP)"
)


@dataclass(frozen=True)
class Budget:
    """How much training every (variant, seed) run gets.

    ``seconds`` counts training wall-clock only (evaluation excluded); ``steps`` counts
    generator updates; ``kimg`` counts thousands of real images consumed; ``flops`` counts
    generator steps times the FLOPs of one step (:mod:`ganbench.harness.flops`), the same
    on every machine.
    """

    kind: str
    amount: float
    text: str

    @classmethod
    def parse(cls, text: str) -> Budget:
        match = _PATTERN.match(str(text).lower())
        unit = _UNITS.get(match.group(2)) if match else None
        if unit is None:
            raise UsageError(f"budget {text!r} is not understood; accepted: {ACCEPTED}")
        kind, scale = unit
        # Decimal: 1.5TFLOP is exactly 1.5e12 FLOPs, so a budget of k steps' FLOPs ends at step k.
        amount = float(Decimal(match.group(1)) * scale)  # type: ignore[union-attr]
        if amount <= 0:
            raise UsageError(f"budget {text!r} must be positive; accepted: {ACCEPTED}")
        if kind == STEPS and amount != int(amount):
            raise UsageError(f"budget {text!r}: steps must be a whole number")
        return cls(kind, amount, str(text).strip())

    def fraction(self, steps: int, images_seen: int, train_seconds: float, flops: float | None = None) -> float:
        """How much of the budget is spent, from 0 to 1 (or more, past the last step);
        ``flops``, the FLOPs spent, is needed by a FLOP budget only."""
        if self.kind == FLOPS:
            if flops is None:
                raise ValueError(f"budget {self}: the FLOPs spent are needed")
            return flops / self.amount
        spent = {SECONDS: train_seconds, STEPS: steps, KIMG: images_seen / 1000}[self.kind]
        return spent / self.amount

    def __str__(self) -> str:
        return self.text
