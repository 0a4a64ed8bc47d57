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
from ganbench.normalization import ConditionalBatchNorm

# "spectral": spectral norm on every convolution and linear layer of D, no norm layers.
NORMS = ("batch", "layer", "none", "spectral")


def dcgan_init(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0 (Radford et al. 2016)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _check_shape(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    c, h, w = image_shape
    if h % 4 or w % 4:
        raise ValueError(f"DCGAN networks need height and width divisible by 4, got {h}x{w}")
    return c, h // 4, w // 4


class DCGANGenerator(nn.Module):
    """(N, in_dim) -> (N, C, H, W) in [-1, 1]. With ``num_classes``, its batch norms are
    class-conditional (:class:`ConditionalBatchNorm`) and ``forward`` takes the labels."""

    def __init__(
        self, in_dim: int, image_shape: tuple[int, int, int], width: int = 64, num_classes: int | None = None
    ) -> None:
        super().__init__()
        c, h, w = _check_shape(image_shape)
        self.uses_labels = num_classes is not None
        if self.uses_labels:
            self.fc = nn.Linear(in_dim, 2 * width * h * w, bias=False)
            self.bn1 = ConditionalBatchNorm(2 * width * h * w, num_classes, dims=1)
            self.up = nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False)
            self.bn2 = ConditionalBatchNorm(width, num_classes)
            self.out = nn.ConvTranspose2d(width, c, 4, 2, 1)
            self.shape = (2 * width, h, w)
            return
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

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if not self.uses_labels:
            return self.net(x)
        x = torch.relu(self.bn1(self.fc(x), labels)).view(-1, *self.shape)
        x = torch.relu(self.bn2(self.up(x), labels))
        return torch.tanh(self.out(x))


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per-sample normalisation: safe under a gradient penalty
        return nn.GroupNorm(1, channels)
    if kind in ("none", "spectral"):  # spectral: the weights are normalised instead
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
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=norm in ("none", "spectral")),
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

    @property
    def uses_labels(self) -> bool:
        return self.conditioning.uses_labels or getattr(self.backbone, "uses_labels", False)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.conditioning(z, labels)
        # a backbone with class-conditional layers (conditional batch norm) reads the labels too
        return self.backbone(x, labels) if getattr(self.backbone, "uses_labels", False) else self.backbone(x)


class Discriminator(nn.Module):
    """Image conditioning, a trunk and named linear heads, optionally a projection head.

    ``forward(images, labels)`` returns ``{head: output}``; a head of width 1 is squeezed to
    shape (N,). :meth:`condition` and :meth:`score` split the two stages, so a gradient
    penalty can differentiate through the conditioned input (label channels included).

    ``projection=num_classes`` adds the projection discriminator's class term (Miyato &
    Koyama 2018) to the ``adv`` head: ``adv = linear(h) + <embed(y), h>`` for trunk features
    h; :meth:`score` then needs the labels. The embedding is created after the heads, so a
    discriminator without it builds (and draws init randomness) exactly as before.

    The trunk is any module with a ``features`` attribute (its output width): the DCGAN
    trunk or :class:`ganbench.resnet.ResNetTrunk`.
    """

    def __init__(
        self,
        conditioning: ImageConditioning,
        trunk: nn.Module,
        heads: Mapping[str, int],
        projection: int | None = None,
    ) -> None:
        super().__init__()
        self.conditioning = conditioning
        self.trunk = trunk
        self.heads = nn.ModuleDict({name: nn.Linear(trunk.features, n) for name, n in heads.items()})
        if projection is not None:
            if "adv" not in heads or heads["adv"] != 1:
                raise ValueError("a projection head adds to an 'adv' head of width 1")
            self.projection = nn.Embedding(projection, trunk.features)
            nn.init.xavier_uniform_(self.projection.weight)  # as the paper's code; N(0, 1) would swamp linear(h)
        else:
            self.projection = None

    def condition(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.conditioning(images, labels)

    def score(self, inputs: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        features = self.trunk(inputs)
        out = {}
        for name, head in self.heads.items():
            y = head(features)
            out[name] = y.squeeze(1) if y.shape[1] == 1 else y
        if self.projection is not None:
            assert labels is not None, "a projection discriminator needs labels"
            out["adv"] = out["adv"] + (self.projection(labels) * features).sum(1)
        return out

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.score(self.condition(images, labels), labels)
