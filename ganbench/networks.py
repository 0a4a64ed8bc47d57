"""DCGAN-style networks shared by the built-in variants, so that differences between
variants come from their losses and conditioning, not from their capacity.

For an image of H x W (both divisible by 4): the generator maps its input by a linear layer
to 2w x H/4 x W/4 and up-samples twice with 4x4 stride-2 transposed convolutions; the
discriminator down-samples twice with 4x4 stride-2 convolutions into a feature vector read by
one or more linear heads. This is the InfoGAN/DCGAN layout used for MNIST-sized data (as in
Lucic et al. 2018), with w = 64 by default.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ganbench.conditioning import ImageConditioning, LatentConditioning

NORMS = ("batch", "layer", "none")


def dcgan_init(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0 (Radford et al. 2016)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _check_shape(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    c, h, w = image_shape
    if h % 4 or w % 4:
        raise ValueError(f"DCGAN networks need height and width divisible by 4, got {h}x{w}")
    return c, h // 4, w // 4


class DCGANGenerator(nn.Module):
    """(N, in_dim) -> (N, C, H, W) in [-1, 1]."""

    def __init__(self, in_dim: int, image_shape: tuple[int, int, int], width: int = 64) -> None:
        super().__init__()
        c, h, w = _check_shape(image_shape)
        self.net = nn.Sequential(
            nn.Linear(in_dim, 2 * width * h * w, bias=False),
            nn.BatchNorm1d(2 * width * h * w),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (2 * width, h, w)),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, c, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per-sample normalisation: safe under a gradient penalty
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; accepted: {', '.join(NORMS)}")


class DCGANTrunk(nn.Module):
    """(N, C, H, W) -> (N, features) with features = 2w * H/4 * W/4."""

    def __init__(self, in_channels: int, image_shape: tuple[int, int, int], width: int = 64, norm: str = "batch"):
        super().__init__()
        _, h, w = _check_shape(image_shape)
        self.features = 2 * width * h * w
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=norm == "none"),
            _norm2d(norm, 2 * width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConditionalGenerator(nn.Module):
    """A generator backbone behind a latent conditioning part: forward(z, labels)."""

    def __init__(self, conditioning: LatentConditioning, backbone: nn.Module) -> None:
        super().__init__()
        self.conditioning = conditioning
        self.backbone = backbone

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.backbone(self.conditioning(z, labels))


class Discriminator(nn.Module):
    """Image conditioning, a trunk and named linear heads.

    ``forward(images, labels)`` returns ``{head: output}``; a head of width 1 is squeezed to
    shape (N,). :meth:`condition` and :meth:`score` split the two stages, so a gradient
    penalty can differentiate through the conditioned input (label channels included).
    """

    def __init__(self, conditioning: ImageConditioning, trunk: DCGANTrunk, heads: Mapping[str, int]) -> None:
        super().__init__()
        self.conditioning = conditioning
        self.trunk = trunk
        self.heads = nn.ModuleDict({name: nn.Linear(trunk.features, n) for name, n in heads.items()})

    def condition(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.conditioning(images, labels)

    def score(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.trunk(inputs)
        out = {}
        for name, head in self.heads.items():
            y = head(features)
            out[name] = y.squeeze(1) if y.shape[1] == 1 else y
        return out

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.score(self.condition(images, labels))
