"""Batches of real data drawn on the training device, and the uint8 <-> [-1, 1] conversions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the range generators produce (tanh)."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to nearest (inverse of :func:`to_float`)."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class Batch:
    """One batch of real training data on the training device.

    Attributes:
        images: float32 (B, C, H, W) in [-1, 1].
        labels: int64 (B,).
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]


class BatchSource:
    """Draws batches from the whole training split held as one tensor on the device.

    Sampling is without replacement within an epoch: a seeded permutation per epoch, sliced
    by index on the device, so no host synchronisation and no per-sample DataLoader. A
    variant calls :meth:`next` once per real batch it consumes (a WGAN critic takes several
    per generator step); the source counts the images it hands out.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int) -> None:
        if images.dtype != torch.uint8:
            raise ValueError("BatchSource holds uint8 images and converts each batch")
        if not 0 < batch_size <= images.shape[0]:
            raise ValueError(f"batch_size must be in 1..{images.shape[0]}, got {batch_size}")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.device = images.device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.images_seen = 0
        self._order = torch.empty(0, dtype=torch.int64, device=self.device)
        self._pos = images.shape[0]  # the first next() starts an epoch

    def next(self) -> Batch:
        n = self.images.shape[0]
        if self._pos + self.batch_size > n:  # drop the ragged tail, start a new epoch
            self._order = torch.randperm(n, generator=self.generator, device=self.device)
            self._pos = 0
        idx = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        self.images_seen += self.batch_size
        return Batch(to_float(self.images.index_select(0, idx)), self.labels.index_select(0, idx))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the exact same sequence of batches."""
        return {
            "generator": self.generator.get_state(),
            "order": self._order.cpu(),
            "pos": self._pos,
            "images_seen": self.images_seen,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._order = state["order"].to(self.device)
        self._pos = int(state["pos"])
        self.images_seen = int(state["images_seen"])
