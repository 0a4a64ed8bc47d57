"""ResNet generator and discriminator at 32x32 and 64x64: the residual blocks of SNGAN
(Miyato et al. 2018, Appendix B.4) and of the projection discriminator (Miyato & Koyama
2018), as mimicry and PyTorch-StudioGAN ship them.

G: z -> linear -> width x 4 x 4 -> up-sampling blocks (BN or class-conditional BN, ReLU,
nearest 2x up-sampling, 3x3 convolutions; a 1x1 shortcut) -> BN, ReLU, 3x3 conv, tanh.
D: an "optimised" first down-sampling block, down-sampling blocks (ReLU, 3x3 convs, 2x2
average pooling; a 1x1 shortcut), plain blocks, ReLU and global sum pooling into ``width``
features. Channels stay ``width`` throughout (the CIFAR-10 layout; the papers use 256 for G
and 128 for D, here the variant's g_width and d_width).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.normalization import ConditionalBatchNorm

RESNET_SIZES = (32, 64)
ARCHS = ("dcgan", "resnet")


def check_resnet_shape(image_shape: tuple[int, int, int]) -> None:
    _, h, w = image_shape
    if h != w or h not in RESNET_SIZES:
        sizes = ", ".join(f"{s}x{s}" for s in RESNET_SIZES)
        raise ValueError(f"arch=resnet does not support {h}x{w} images; supported sizes: {sizes}")


def _blocks(image_shape: tuple[int, int, int]) -> int:
    check_resnet_shape(image_shape)
    return {32: 3, 64: 4}[image_shape[1]]  # up-sampling blocks from 4x4


def resnet_init(module: nn.Module) -> None:
    """Xavier-uniform weights, zero biases (the SNGAN reference code's init); norms at 1 and 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _Norm(nn.Module):
    """Batch norm, or class-conditional batch norm given ``num_classes``: called (x, labels)."""

    def __init__(self, channels: int, num_classes: int | None) -> None:
        super().__init__()
        self.conditional = num_classes is not None
        self.bn = ConditionalBatchNorm(channels, num_classes) if self.conditional else nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.bn(x, labels) if self.conditional else self.bn(x)


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int | None = None) -> None:
        super().__init__()
        self.bn1 = _Norm(cin, num_classes)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn2 = _Norm(cout, num_classes)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, labels)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class ResNetGenerator(nn.Module):
    """(N, in_dim) [, labels] -> (N, C, H, W) in [-1, 1], H = W = 32 or 64. With
    ``num_classes`` every batch norm of the blocks is class-conditional."""

    def __init__(
        self, in_dim: int, image_shape: tuple[int, int, int], width: int = 64, num_classes: int | None = None
    ) -> None:
        super().__init__()
        self.uses_labels = num_classes is not None
        self.width = width
        self.fc = nn.Linear(in_dim, width * 4 * 4)
        self.blocks = nn.ModuleList(GBlock(width, width, num_classes) for _ in range(_blocks(image_shape)))
        self.bn = nn.BatchNorm2d(width)
        self.out = nn.Conv2d(width, image_shape[0], 3, 1, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(x).view(-1, self.width, 4, 4)
        for block in self.blocks:
            h = block(h, labels)
        return torch.tanh(self.out(F.relu(self.bn(h))))


def _dnorm(kind: str, channels: int) -> nn.Module:
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind in ("none", "spectral"):  # spectral: applied to the weights afterwards
        return nn.Identity()
    raise ValueError(f"the ResNet discriminator takes d_norm spectral, layer or none, got {kind!r}")


class DBlock(nn.Module):
    """Pre-activation residual block, optionally down-sampling; ``first``: the optimised
    first block (no activation before its first convolution, shortcut pooled first)."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool = False, norm: str = "none") -> None:
        super().__init__()
        self.down, self.first = down, first
        self.norm1 = nn.Identity() if first else _dnorm(norm, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = _dnorm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if (down or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(self.norm1(x))
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.shortcut(F.avg_pool2d(s, 2))
        elif self.shortcut is not None:
            s = self.shortcut(s)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class ResNetTrunk(nn.Module):
    """(N, C, H, W) -> (N, width): residual blocks, ReLU, global sum pooling. 32x32: one
    optimised and one plain down-sampling block, then two plain blocks (SNGAN's CIFAR-10 D);
    64x64: one more down-sampling block each."""

    def __init__(self, in_channels: int, image_shape: tuple[int, int, int], width: int = 64, norm: str = "spectral"):
        super().__init__()
        downs = _blocks(image_shape) - 2  # 32: 1, 64: 2 down-sampling blocks after the first
        blocks = [DBlock(in_channels, width, down=True, first=True, norm=norm)]
        blocks += [DBlock(width, width, down=True, norm=norm) for _ in range(downs)]
        blocks += [DBlock(width, width, down=False, norm=norm) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))
