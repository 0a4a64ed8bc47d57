"""Sample grids: PNG pictures of a variant's samples, one labelled row per class."""

from __future__ import annotations

import io
from collections.abc import Sequence

import torch


def sample_grid_png(images: torch.Tensor, per_row: int, row_labels: Sequence[str] = (), scale: int = 2) -> bytes:
    """A PNG grid of uint8 images (N, C, H, W), ``per_row`` per row, each row optionally
    labelled on the left (one row per class for conditional variants)."""
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    grid = make_grid(images.float() / 255.0, nrow=per_row, padding=2, pad_value=1.0)
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
