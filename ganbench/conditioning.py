"""How class labels enter the networks: small modules that variants compose.

Latent conditioning turns (z, labels) into the generator's input; image conditioning turns
(images, labels) into the discriminator's input. Modules with parameters (an embedding) are
part of the network that holds them, so optimisers and checkpoints include them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LatentConditioning(nn.Module):
    """Unconditional: the generator's input is z itself."""

    uses_labels = False

    def out_dim(self, z_dim: int) -> int:
        return z_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return z


class OneHotConcat(LatentConditioning):
    """CGAN (Mirza & Osindero 2014): the one-hot label concatenated to z."""

    uses_labels = True

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def out_dim(self, z_dim: int) -> int:
        return z_dim + self.num_classes

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        assert labels is not None, "OneHotConcat needs labels"
        return torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)


class EmbeddingMultiply(LatentConditioning):
    """ACGAN as in the reference code: a learned label embedding multiplied element-wise into z."""

    uses_labels = True

    def __init__(self, num_classes: int, z_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes, z_dim)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        assert labels is not None, "EmbeddingMultiply needs labels"
        return z * self.embedding(labels)


class ImageConditioning(nn.Module):
    """Unconditional: the discriminator sees the image itself."""

    def out_channels(self, channels: int) -> int:
        return channels

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return images


class LabelChannels(ImageConditioning):
    """CGAN discriminator input: the one-hot label repeated into image-sized channels and
    concatenated to the image (num_classes extra channels, one of them all ones)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def out_channels(self, channels: int) -> int:
        return channels + self.num_classes

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        assert labels is not None, "LabelChannels needs labels"
        n, _, h, w = images.shape
        planes = F.one_hot(labels, self.num_classes).to(images.dtype)[:, :, None, None].expand(n, -1, h, w)
        return torch.cat([images, planes], dim=1)
