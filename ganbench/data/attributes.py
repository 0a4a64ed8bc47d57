"""Attributes of images besides their class: what steering probes steer toward.

A dataset declares attribute names (:class:`ganbench.DatasetSpec.attributes`). They are either
measured from the pixels (``measure_attributes``; exact on any image, generated or real, and
independent of the class) and binarised at the train split's median, or annotations its
``load`` returns (CelebA's 40).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ganbench.data.splits import DatasetSplits
from ganbench.errors import UsageError
from ganbench.specs import DatasetSpec

Measure = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Attributes:
    """A dataset's binary attributes.

    Attributes:
        names: one per column.
        train, test: bool (N, A): whether each image of the split has each attribute.
        measure: ``measure(uint8 images) -> float (N, A)``, exact from the pixels; None for
            annotated attributes (then only a classifier can tell them on a generated image).
        thresholds: float (A,): a measured value above its threshold means present (the
            train split's medians, see :func:`median_thresholds`); None for annotated attributes.
    """

    names: tuple[str, ...]
    train: torch.Tensor
    test: torch.Tensor
    measure: Measure | None = None
    thresholds: torch.Tensor | None = None

    @property
    def measured(self) -> bool:
        return self.measure is not None

    def present(self, images: torch.Tensor) -> torch.Tensor:
        """bool (N, A): the attributes of uint8 images, measured from their pixels."""
        if self.measure is None or self.thresholds is None:
            raise ValueError("these attributes are annotations: they cannot be measured from pixels")
        return self.measure(images) > self.thresholds.to(images.device)


PIXEL_ATTRIBUTES = ("ink", "area", "width", "height")
ON_THRESHOLD = 32  # 1/8 of full scale: above a generator's near-black background, below dark fabric (shape, not shade)
_CHUNK = 8192  # images per step of pixel_measures: bounds its temporaries (~130 MB at 64x64 RGB)


def pixel_measures(images: torch.Tensor) -> torch.Tensor:
    """float32 (N, 4) of uint8 images (N, C, H, W), on their device: ``ink`` (mean intensity /
    255), ``area`` (fraction of "on" pixels, mean over channels > ``ON_THRESHOLD``), ``width``
    and ``height`` (the on pixels' bounding box as a fraction of W and H; 0 when none is on)."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"pixel_measures takes uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    # NumPy: its integer reductions are exact and ~5x faster than torch's on the CPU.
    array = images.detach().cpu().numpy()
    values = [_measure(array[i : i + _CHUNK]) for i in range(0, len(array), _CHUNK)]
    return torch.from_numpy(np.concatenate(values) if values else np.zeros((0, 4), np.float32)).to(images.device)


def _measure(images: np.ndarray) -> np.ndarray:
    n, c, h, w = images.shape
    total = images[:, 0] if c == 1 else images.sum(1, dtype=np.uint32)  # (N, H, W)
    on = total > ON_THRESHOLD * c  # mean over channels > threshold, in integers
    ink = total.reshape(n, -1).sum(1, dtype=np.uint64) / (255 * c * h * w)
    area = on.reshape(n, -1).sum(1, dtype=np.uint64) / (h * w)
    return np.stack([ink, area, _extent(on.any(1)) / w, _extent(on.any(2)) / h], 1).astype(np.float32)


def _extent(line: np.ndarray) -> np.ndarray:
    """(N, L) bool -> (N,): last True index - first True index + 1, or 0 when none."""
    first = line.argmax(1)  # argmax returns the first maximum
    last = line.shape[1] - 1 - line[:, ::-1].argmax(1)
    return np.where(line.any(1), last - first + 1, 0)


def median_thresholds(values: torch.Tensor) -> torch.Tensor:
    """float (A,): per column, the lower median (torch.median), or the next lower distinct value
    when that splits ``value > threshold`` closer to half (many ties at the median)."""
    thresholds = []
    for column in values.T:
        median = column.median()
        below = column[column < median]
        threshold = median
        if below.numel():
            lower = below.max()
            if abs((column > lower).float().mean() - 0.5) < abs((column > median).float().mean() - 0.5):
                threshold = lower
        thresholds.append(threshold)
    return torch.stack(thresholds).float()


def dataset_attributes(spec: DatasetSpec, splits: DatasetSplits) -> Attributes | None:
    """The attributes of ``splits`` as ``spec`` declares them; None when it declares none.

    Measured attributes are binarised at :func:`median_thresholds` of the train split (the
    test split uses the train thresholds): ``present = value > threshold``. Ties make the
    split uneven on discrete values: on Fashion-MNIST 57% of the train images span the full
    height, so ``height`` > the median (1.0) would be present on none and the threshold is
    the next lower value (27/28): present on those 57%.
    """
    if not spec.attributes:
        return None
    names = tuple(spec.attributes)
    if spec.measure_attributes is not None:
        train, test = (_measured(spec, getattr(splits, f"{s}_images")) for s in ("train", "test"))
        thresholds = median_thresholds(train)
        return Attributes(names, train > thresholds, test > thresholds, spec.measure_attributes, thresholds)
    train, test = splits.train_attributes, splits.test_attributes
    if train is None or test is None:
        raise UsageError(f"dataset {spec.name} declares attributes {', '.join(names)} but its load returned none")
    for split, tensor in (("train", train), ("test", test)):
        _check_columns(spec, split, "annotations have", tensor)
    return Attributes(names, train, test)


def _measured(spec: DatasetSpec, images: torch.Tensor) -> torch.Tensor:
    values = spec.measure_attributes(images)
    _check_columns(spec, "", "measure_attributes returned", values)
    return values.float()


def _check_columns(spec: DatasetSpec, split: str, what: str, values: torch.Tensor) -> None:
    shape = tuple(values.shape)
    if len(shape) != 2 or shape[1] != len(spec.attributes):
        where = f"{split} " if split else ""
        raise UsageError(
            f"dataset {spec.name}'s {where}{what} shape {shape}, but it declares {len(spec.attributes)} attributes "
            f"({', '.join(spec.attributes)}); fix the dataset's plugin: one column per attribute"
        )
