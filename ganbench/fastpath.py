"""The GPU fast path: mixed precision, torch.compile and channels-last memory format.

Everything here is opt-in (``--precision bf16``, ``--compile``): at the defaults every function
is a no-op, so a default run computes exactly what it computed before the fast path existed.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ganbench.errors import UsageError

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
