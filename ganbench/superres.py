"""The super-resolution task: how low-resolution inputs are made, the bicubic baseline, and
the image-fidelity measures (PSNR, SSIM). Training, evaluation and the baseline all degrade
images with the same :func:`downsample`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # an 11x11 window, truncated at 3.5 sigma as scikit-image does
SSIM_K1, SSIM_K2 = 0.01, 0.03


def downsample(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Area downsampling by an integer factor: each output pixel is the mean of a scale x scale block."""
    return F.avg_pool2d(images, scale)


def bicubic(lowres: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline: bicubic upsampling (a = -0.75, as PyTorch and OpenCV), clamped to [-1, 1]."""
    return F.interpolate(lowres, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def _unit(images: torch.Tensor) -> torch.Tensor:
    return images.double() / 255.0 if images.dtype == torch.uint8 else images.double()


def psnr(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, for uint8 images (or floats in [0, 1])."""
    mse = (_unit(predicted) - _unit(target)).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp(min=1e-12))


def _gaussian_window(channels: int) -> torch.Tensor:
    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, -1, -1).contiguous()


def ssim(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004): Gaussian window (sigma 1.5,
    11x11), K1 = 0.01, K2 = 0.03, data range 1, averaged over the positions where the window
    fits and over channels; equal to scikit-image's ``structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``."""
    x, y = _unit(predicted), _unit(target)
    c = x.shape[1]
    w = _gaussian_window(c).to(x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def check_scale(image_shape: tuple[int, int, int], scale: int) -> None:
    _, h, w = image_shape
    if scale < 2 or h % scale or w % scale:
        raise ValueError(f"scale {scale} must be >= 2 and divide the image size {h}x{w}")
    if math.log2(scale) != int(math.log2(scale)):
        raise ValueError(f"scale {scale} must be a power of 2")
