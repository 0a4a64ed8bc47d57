"""The GPU fast path: mixed precision, torch.compile and channels-last memory format.

Everything here is opt-in (``--precision bf16``, ``--compile``): at the defaults every function
is a no-op, so a default run computes exactly what it computed before the fast path existed.
"""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

from ganbench.data import BatchSource
from ganbench.errors import UsageError
from ganbench.seeding import capture_rng, restore_rng

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.variant import Variant

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16}


def check_precision(precision: str, device: torch.device) -> None:
    """UsageError unless ``device`` can run ``precision``: CUDA autocast without native bf16 would
    warn and fall back to fp32 while the rows said bf16."""
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise UsageError(f"precision bf16: {device} has no native bfloat16 (Ampere or newer needed); accepted: fp32")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[None]:
    """torch.autocast to the precision's dtype on ``device``; a no-op under fp32. Weights stay
    fp32 (master weights) and bf16 has fp32's exponent range, so no gradient scaling is needed."""
    dtype = _AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def accelerate(module: nn.Module, device: torch.device, precision: str, compile: bool) -> nn.Module:
    """Prepare a network built on ``device`` for the fast path, in place; returns it.

    Channels-last only on CUDA under bf16, where tensor-core convolutions want NHWC (on the CPU
    it is not uniformly faster for the DCGAN nets, and the default path stays untouched).
    ``module.compile()`` compiles in place: the module keeps its type and its state_dict keys,
    so checkpoints of compiled and eager runs have the same layout.
    """
    if device.type == "cuda" and precision != "fp32":
        module.to(memory_format=torch.channels_last)
    if compile:
        module.compile()
    return module


def warm_up(variant: Variant, source: BatchSource) -> None:
    """Run one ``train_step`` of ``variant`` so that its compiled networks compile now, before
    the budget's clock starts, and leave everything as it was: what the job computes afterwards
    is what it would have computed without the warm-up.

    The step draws from a throwaway batch source over ``source``'s images (the job's batches
    are not consumed), with every global RNG captured before and restored after; the
    optimisers' ``step`` does nothing meanwhile, so their state is untouched; and the variant's
    checkpoint state (``state_dict()``: the networks' parameters and buffers, such as batch-norm
    statistics and weights a constraint such as clipping changes in place, and whatever else a
    variant saves there) and the gradients are restored after. It runs on the real networks, in
    place: a compiled module's graphs are tied to it, so a copy would not warm it up.
    """
    saved = copy.deepcopy(variant.state_dict())
    params = [p for net in variant.networks().values() for p in net.parameters()]
    grads = [p.grad for p in params]
    optimizers = list(variant.optimizers().values())
    patched = [opt.__dict__.get("step") for opt in optimizers]  # an instance attribute (an LR scheduler's)
    rng = capture_rng()
    throwaway = BatchSource(source.images, source.labels, source.batch_size, seed=0)
    try:
        for opt in optimizers:
            opt.step = _no_step  # type: ignore[method-assign]
        variant.train_step(throwaway)
    finally:
        for opt, step in zip(optimizers, patched):
            if step is None:
                del opt.step
            else:
                opt.step = step  # type: ignore[method-assign]
        variant.load_state_dict(saved)  # in place: the networks stay the compiled modules they are
        for p, grad in zip(params, grads):
            p.grad = grad
        restore_rng(rng)


def _no_step(*args: object, **kwargs: object) -> None:
    return None
