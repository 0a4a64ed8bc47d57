"""Pictures a probe or a metric returns (``ProbeResult.pictures``): PNG bytes of grids, strips
and side-by-side pairs of uint8 images, the same helpers the built-in probes and the harness's
sample grids use.

Every function takes uint8 images (N, C, H, W) on any device and returns PNG bytes; a probe
returns them under a file name ending in ``.png`` (``{"closest-pairs.png": pairs_png(...)}``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import torch


def grid_png(images: torch.Tensor, per_row: int, row_labels: Sequence[str] = (), scale: int = 2) -> bytes:
    """A PNG grid of uint8 images (N, C, H, W), ``per_row`` per row, each row optionally
    labelled on the left (one row per class for conditional variants)."""
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().cpu().float() / 255.0, nrow=per_row, padding=2, pad_value=1.0)
    array = grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)
    if row_labels:
        margin = 8 + 7 * max(len(label) for label in row_labels)
        canvas = Image.new("RGB", (picture.width + margin, picture.height), "white")
        canvas.paste(picture, (margin, 0))
        draw = ImageDraw.Draw(canvas)
        row_height = (images.shape[2] + 2) * scale
        for i, label in enumerate(row_labels):
            draw.text((4, i * row_height + row_height // 2 - 5), label, fill="black")
        picture = canvas
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def strip_png(images: torch.Tensor, labels: Sequence[str] = (), scale: int = 2) -> bytes:
    """One row of images, e.g. the steps of one latent's steering; ``labels``: one row label."""
    return grid_png(images, per_row=max(len(images), 1), row_labels=list(labels)[:1], scale=scale)


def pairs_png(left: torch.Tensor, right: torch.Tensor, row_labels: Sequence[str] = (), scale: int = 2) -> bytes:
    """Side-by-side pairs: row i shows ``left[i]`` beside ``right[i]`` (a sample and its nearest
    training image, say). Both uint8 (N, C, H, W) of the same shape."""
    if left.shape != right.shape:
        raise ValueError(f"pairs_png needs two batches of one shape, got {tuple(left.shape)} and {tuple(right.shape)}")
    return grid_png(torch.stack([left, right], 1).flatten(0, 1), per_row=2, row_labels=row_labels, scale=scale)
