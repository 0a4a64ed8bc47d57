"""What a probe receives and returns (see :class:`ganbench.ProbeSpec`).

A probe analyses a *trained* variant at its final evaluation: it gets the variant frozen
(eval mode, no parameter gradients, gradients still flowing to its inputs), so it can, for
example, push latents by gradient ascent through the generator. It scores with the *judge*
(the held-out classifier, with attribute heads) and, where it steers, steers with a separately
trained *steering* classifier, so that success is not just a classifier fooled by itself.
A probe may also give its value on real data (``ProbeSpec.reference``, called with a
:class:`ReferenceContext`) for the run's ``real-data`` row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.data.attributes import Attributes
    from ganbench.data import DatasetSplits
    from ganbench.specs import VariantSpec
    from ganbench.variant import GenerativeVariant


class Judge(Protocol):
    """A classifier of images into classes and binary attributes. Both methods take float
    images in [-1, 1] (N, C, H, W) and are differentiable in them (uint8 images are accepted
    too); they return logits."""

    class_names: tuple[str, ...]
    attribute_names: tuple[str, ...]

    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, num_classes) class logits."""
        ...

    def attribute_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, num_attributes) logits: sigmoid(logit) is the probability the attribute is present."""
        ...


@dataclass
class ProbeContext:
    """What a probe's ``compute`` receives.

    Attributes:
        name: the variant's name.
        seed: the run's seed.
        variant: the trained variant, frozen; ``variant.generate(z, labels)`` is
            differentiable in ``z``.
        spec: the variant's spec (``spec.conditional`` says whether it takes labels).
        config: the probe's options (an instance of its ``ProbeSpec.config``).
        data: the dataset, both splits.
        attributes: the dataset's attributes (names, train/test presence, and how to measure
            them from pixels when they are measurable); None when it declares none.
        judge: scores: the held-out classifier with attribute heads.
        steering: steers: a classifier trained separately from the judge (other architecture,
            seed and data), with class and attribute heads.
        generator: a seeded torch.Generator on the variant's device: the same latents for
            every variant of a run with the same seed.
        device: where the variant lives.
        cache_dir: the run's cache directory (``--cache-dir``), for what a probe computes
            once per dataset rather than per variant; None: cache nothing.
    """

    name: str
    seed: int
    variant: GenerativeVariant
    spec: VariantSpec
    config: Any
    data: DatasetSplits
    attributes: Attributes | None
    judge: Judge
    steering: Judge
    generator: torch.Generator
    device: torch.device
    cache_dir: Path | None = None


@dataclass
class ReferenceContext:
    """What a probe's ``reference`` receives: what it needs to score real data for the run's
    ``real-data`` reference row (no variant: the row has none).

    Attributes:
        seed: :data:`REFERENCE_SEED`, whatever the run's seeds: the row is one per run and
            stays the same when seeds are added.
        config: the probe's options, as its variants' probes get them.
        data: the dataset, both splits (the run's: with ``--holdout``, the held-out training
            images are its test split).
        judge: the held-out classifier with attribute heads, as in :class:`ProbeContext`.
        generator: a torch.Generator on ``device`` seeded as a job of seed
            :data:`REFERENCE_SEED` seeds its probes': a reference that draws from it as
            the probe does gets the random numbers of that job.
        device: the run's device.
        cache_dir: as in :class:`ProbeContext`.
    """

    seed: int
    config: Any
    data: DatasetSplits
    judge: Judge
    generator: torch.Generator
    device: torch.device
    cache_dir: Path | None = None


REFERENCE_SEED = 0  # the seed of the real-data row's probe references


@dataclass(frozen=True)
class ProbeResult:
    """What a probe returns when a mapping of column to float is not enough.

    Attributes:
        values: column -> float for metrics.csv (NaN allowed, with a note).
        tables: table name (one of the spec's ``tables``) -> rows, each a mapping of column to
            text, number, bool or None; each table becomes ``<name>.csv`` in the run directory
            (e.g. ``steering``), with ``variant``, ``seed``, ``eval_index`` and ``row`` (the
            row's position at that evaluation, from 0) before each row's own columns.
        pictures: file name (plain, ending in ``.png``) -> PNG bytes (:mod:`ganbench.pictures`),
            saved as ``probes/<variant>-seed<k>/<probe>/<file name>``.
        notes: column -> why its value is NaN.

    What breaks this contract (an undeclared table, a row that is not a mapping, a picture that
    is not PNG, a value that is not a float) is dropped with a note naming the probe.
    """

    values: Mapping[str, float]
    tables: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    pictures: Mapping[str, bytes] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)
