"""Devices: resolving ``--device``, and the one way the harness waits for a device."""

from __future__ import annotations

import torch

from ganbench.errors import UsageError

DEVICES = "auto, cpu, cuda, cuda:N, mps"


def resolve_device(text: str) -> torch.device:
    text = text.strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UsageError(f"device {text!r} is not understood; accepted: {DEVICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {text!r} requested but CUDA is not available here; accepted: auto, cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device {text!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {text!r} requested but MPS is not available here; accepted: auto, cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"device {text!r} is not supported; accepted: {DEVICES}")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op on the CPU): before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
