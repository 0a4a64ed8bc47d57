"""Constraints applied to the critic after each of its updates."""

from __future__ import annotations

import torch
from torch import nn


class WeightClip:
    """WGAN's weight clipping (Arjovsky et al. 2017): every critic parameter into [-c, c]."""

    def __init__(self, clip: float = 0.01) -> None:
        self.clip = clip

    @torch.no_grad()
    def __call__(self, critic: nn.Module) -> None:
        for p in critic.parameters():
            p.clamp_(-self.clip, self.clip)
