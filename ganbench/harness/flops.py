"""What one training step of a variant costs in FLOPs: the unit of a machine-independent budget.

The count is torch's own (:class:`torch.utils.flop_counter.FlopCounterMode`): matrix products
and convolutions, forward and backward (double backward included), a multiply-add counted as
2 FLOPs; element-wise work (activations, normalisation, losses, the optimiser's update) counts
nothing. It runs one full ``train_step`` (every critic step with it) of a throwaway instance of
the variant on a throwaway batch source, with every RNG forked, so the job's own variant,
batches and random streams are untouched. The count depends on shapes only, so it is made once
per variant, config, data shape and device in a process.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ganbench.data import BatchSource
from ganbench.specs import VariantSpec
from ganbench.variant import VariantContext

_counted: dict[tuple[Any, ...], int] = {}


class _NoModules:
    """Stands in for FlopCounterMode's module tracker: every FLOP goes to "Global"."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _NoModules:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _TotalFlopCounter(FlopCounterMode):
    """FlopCounterMode without per-module attribution: the module tracker's backward hooks make
    ``torch.autograd.grad`` on a leaf (a gradient penalty's interpolates) raise
    (pytorch/pytorch#131753), and only the total is wanted."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.mod_tracker = _NoModules()  # type: ignore[assignment]


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the torch operations ``fn()`` runs (forward, backward and double backward)."""
    with _TotalFlopCounter() as counter:
        fn()
    return int(counter.get_total_flops())


def _config_key(config: Any) -> str:
    fields = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    return json.dumps(fields, sort_keys=True, default=repr)


def train_step_flops(
    spec: VariantSpec, config: Any, context: VariantContext, images: torch.Tensor, labels: torch.Tensor
) -> int:
    """FLOPs of one ``train_step`` of ``spec`` built with ``config`` in ``context``, counted on
    a throwaway instance drawing from ``images`` (uint8, on the context's device); cached."""
    key = (spec.name, _config_key(config), tuple(context.image_shape), context.num_classes, context.conditional)
    key += (str(context.device),)
    if key not in _counted:
        _counted[key] = _count(spec, config, context, images, labels)
    return _counted[key]


def _count(spec: VariantSpec, config: Any, context: VariantContext, images: torch.Tensor, labels: torch.Tensor) -> int:
    cuda = [context.device] if context.device.type == "cuda" else []
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            variant = spec.build(context, config)
            variant.train(True)
            source = BatchSource(images, labels, variant.batch_size, seed=0)
            return count_flops(lambda: variant.train_step(source))
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
