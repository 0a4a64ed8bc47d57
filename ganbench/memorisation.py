"""Memorisation: how close a generator's samples come to its training images, against how
close unseen real images come to them.

Every query image (a sample, or a real test image) gets its nearest-neighbour distance to the
train split, d(q) = min_j ||phi(q) - phi(x_j)||_2, in two spaces: the held-out classifier's
128-d features (``domain``) and the pixels scaled to [0, 1] (``pixel``). The test split is cut
in two halves by a fixed seeded permutation: the *calibration* half gives the distances an
unseen real image typically has (the threshold below which a sample counts as memorised is
their ``percentile``-th percentile, the ratio's denominator their median); the *held-out* half
is scored like samples, as the ``real-data`` row, so that what an unseen real image scores is
measured rather than true by construction. (Meehan et al. 2020, "A Non-Parametric Test to
Detect Data-Copying in Generative Models", compare the same two distributions of distances;
Stein et al. 2023, "Exposing flaws of generative model evaluation metrics", apply this to
modern generators in dgm-eval.)

The train features and both halves' distances depend on the data and the feature map only,
not on a variant: they are computed once and cached (``<cache_dir>/features/``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ganbench.data import DatasetSplits, to_float

DOMAIN = "domain"
PIXEL = "pixel"
SPACES = (DOMAIN, PIXEL)
SPLIT_SEED = 3  # which half of the test split calibrates (the other is the real-data row's)
QUERY_CHUNK = 512  # query rows per distance block
TRAIN_CHUNK = 8192  # train rows per distance block: a block is 512 x 8192 floats, 16 MiB
FEATURE_CHUNK = 1000
FINGERPRINT_IMAGES = 256  # train images whose features identify the feature map in the cache
VERSION = 1

Features = Callable[[torch.Tensor], torch.Tensor]


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) as float rows in [0, 1]: the pixel space."""
    return images.flatten(1).float().div_(255.0)


@torch.no_grad()
def embed(features: Features, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The feature map's rows for uint8 images (fed as floats in [-1, 1]), float32 on the CPU."""
    return torch.cat([features(to_float(c.to(device))).float().cpu() for c in images.split(FEATURE_CHUNK)])


@torch.no_grad()
def nearest(
    queries: torch.Tensor, train: torch.Tensor, rows: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``queries``, the Euclidean distance to its nearest row of ``train`` and
    that row's index; ``rows`` maps a block of ``train`` to its float rows (so 60,000 uint8
    images need not be held as floats at once). The search uses ||q||^2 + ||x||^2 - 2 q.x by
    blocks (matrix products); the distance returned is then recomputed from the pair itself,
    so that an exact copy is at distance 0, not at float32's cancellation error."""
    rows = rows or (lambda block: block)
    best_d2 = torch.full((len(queries),), float("inf"))
    best_i = torch.zeros(len(queries), dtype=torch.long)
    q_sq = queries.pow(2).sum(1, keepdim=True)
    for lo in range(0, len(train), TRAIN_CHUNK):
        block = rows(train[lo : lo + TRAIN_CHUNK])
        b_sq = block.pow(2).sum(1)
        for q in range(0, len(queries), QUERY_CHUNK):
            hi = q + QUERY_CHUNK
            dist = torch.addmm(q_sq[q:hi] + b_sq, queries[q:hi], block.T, alpha=-2.0)
            value, where = dist.min(1)
            better = value < best_d2[q:hi]
            best_d2[q:hi] = torch.where(better, value, best_d2[q:hi])
            best_i[q:hi] = torch.where(better, where + lo, best_i[q:hi])
    return (queries - rows(train[best_i])).norm(dim=1), best_i


def halves(n: int, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """The calibration and held-out halves of an ``n``-image test split: a seeded permutation
    cut in two (the calibration half gets the extra image of an odd split), each sorted."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cut = (n + 1) // 2
    return order[:cut].sort().values, order[cut:].sort().values


@dataclass(frozen=True)
class Space:
    """One space: how it maps uint8 images to rows (``embed``), the train split in it (as
    ``train``, whose blocks ``block`` turns into float rows: the pixels stay uint8 until
    then), and the nearest-neighbour distances of both test halves."""

    embed: Callable[[torch.Tensor], torch.Tensor]
    train: torch.Tensor
    block: Callable[[torch.Tensor], torch.Tensor] | None
    calibration: torch.Tensor  # distances of the calibration half
    held_out: torch.Tensor  # distances of the held-out half

    def nearest(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each uint8 image's distance to its nearest training image, and that image's index."""
        return nearest(self.embed(images), self.train, self.block)

    def threshold(self, percentile: float) -> float:
        """The ``percentile``-th percentile of the calibration distances (linear interpolation)."""
        return torch.quantile(self.calibration.double(), percentile / 100).item()

    @property
    def typical(self) -> float:
        """The median calibration distance: the ratio's denominator."""
        return median(self.calibration)


@dataclass(frozen=True)
class Scores:
    """What one space says of a set of query images."""

    distances: torch.Tensor  # each query's distance to its nearest training image
    index: torch.Tensor | None  # that image's index in the train split (None: not searched here)
    threshold: float
    typical: float
    memorised_share: float  # share of queries closer than the threshold
    nn_ratio: float  # median query distance / typical


def median(distances: torch.Tensor) -> float:
    """The median, the mean of the two middle values for an even count (torch.median takes the lower)."""
    return torch.quantile(distances.double(), 0.5).item()


def score(space: Space, distances: torch.Tensor, index: torch.Tensor | None, percentile: float) -> Scores:
    """The share and ratio of query images at ``distances`` from their nearest training images."""
    threshold, typical = space.threshold(percentile), space.typical
    share = (distances < threshold).double().mean().item()
    ratio = median(distances) / typical if typical > 0 else float("nan")
    return Scores(distances, index, threshold, typical, share, ratio)


def data_fingerprint(splits: DatasetSplits) -> str:
    h = hashlib.sha256()
    for t in (splits.train_images, splits.test_images):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def build_spaces(
    splits: DatasetSplits, features: Features | None, device: torch.device, cache_dir: Path | None
) -> dict[str, Space]:
    """Both spaces (pixel only when ``features`` is None), their distances from the cache
    when it holds them."""
    spaces = {PIXEL: _space(splits, PIXEL, pixels, None, cache_dir)}
    if features is not None:
        spaces[DOMAIN] = _space(splits, DOMAIN, lambda x: embed(features, x, device), features, cache_dir)
    return spaces


def _space(
    splits: DatasetSplits,
    name: str,
    rows: Callable[[torch.Tensor], torch.Tensor],
    features: Features | None,
    cache_dir: Path | None,
) -> Space:
    """One space. The domain's train features are computed once and cached with the
    distances; the pixels are not (cheap to make again, 188 MB as floats for 60,000 images):
    their search converts one block of uint8 images at a time."""
    calibration, held_out = halves(len(splits.test_images))
    in_pixels = features is None

    def build() -> dict[str, torch.Tensor]:
        tensors = {} if in_pixels else {"train": rows(splits.train_images)}
        train, block = (splits.train_images, rows) if in_pixels else (tensors["train"], None)
        test = rows(splits.test_images)
        tensors["calibration"], _ = nearest(test[calibration], train, block)
        tensors["held_out"], _ = nearest(test[held_out], train, block)
        return tensors

    if cache_dir is None:
        tensors = build()
    else:
        from ganbench.evaluation.cache import cache_path, digest, load_or_build

        identity: dict[str, str | int] = {
            "kind": "memorisation",
            "version": VERSION,
            "space": name,
            "data": data_fingerprint(splits),
            "split_seed": SPLIT_SEED,
        }
        if features is not None:  # a feature map is known by what it makes of fixed images
            identity["features"] = digest({"f": rows(splits.train_images[:FINGERPRINT_IMAGES])})
        key = hashlib.sha256(repr(sorted(identity.items())).encode()).hexdigest()[:16]
        tensors = load_or_build(cache_path(cache_dir, f"memorisation-{splits.name}-{name}-{key}"), identity, build)
    if in_pixels:
        return Space(rows, splits.train_images, rows, tensors["calibration"], tensors["held_out"])
    return Space(rows, tensors["train"], None, tensors["calibration"], tensors["held_out"])
