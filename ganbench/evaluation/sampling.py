"""What an evaluation point scores: a generator's samples on fixed latents, or a
super-resolution variant's upscaled test images."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ganbench.data import to_float, to_uint8
from ganbench.devices import synchronize
from ganbench.variant import GenerativeVariant

GENERATE_CHUNK = 1000
# Evaluation latents: seeded with the job's seed plus this, the same for every variant of a run
# and apart from training's RNG (the harness and ganbench.testing draw them alike).
EVAL_SEED_OFFSET = 1_000_003


@torch.no_grad()
def generate_samples(
    variant: GenerativeVariant, n: int, num_classes: int, conditional: bool, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """``n`` samples as uint8 on the CPU, their requested labels (balanced over classes, or
    None), and the generation rate in images per second.

    The latents come from a generator seeded with ``seed``: every evaluation point of a run
    sees the same latents, and the training RNG is untouched.
    """
    device = variant.device
    gen = torch.Generator(device=device).manual_seed(seed)
    labels = (torch.arange(n, device=device) % num_classes) if conditional else None
    with variant.evaluating():
        synchronize(device)
        start = time.perf_counter()
        chunks = []
        for lo in range(0, n, GENERATE_CHUNK):
            m = min(GENERATE_CHUNK, n - lo)
            z = variant.sample_latent(m, generator=gen)
            chunks.append(to_uint8(variant.generate(z, None if labels is None else labels[lo : lo + m])))
        samples = torch.cat(chunks)
        synchronize(device)
        rate = n / max(time.perf_counter() - start, 1e-9)
    return samples.cpu(), None if labels is None else labels.cpu(), rate


@torch.no_grad()
def upscale_samples(
    upscale: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, scale: int, device: torch.device
) -> tuple[torch.Tensor, float]:
    """Degrade uint8 high-resolution ``images`` with :func:`ganbench.superres.downsample` and
    upscale them back with ``upscale``: uint8 results on the CPU and images per second."""
    from ganbench.superres import downsample

    synchronize(device)
    start = time.perf_counter()
    chunks = [
        to_uint8(upscale(downsample(to_float(chunk.to(device)), scale))) for chunk in images.split(GENERATE_CHUNK)
    ]
    synchronize(device)
    rate = len(images) / max(time.perf_counter() - start, 1e-9)
    return torch.cat(chunks).cpu(), rate
