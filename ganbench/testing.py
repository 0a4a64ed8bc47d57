"""Helpers for testing ganbench variants, for plugin authors and for ganbench's own tests.

A plugin's test can be as short as::

    from ganbench.testing import check_variant

    def test_my_variant():
        check_variant("my-variant", plugin_files=["my_plugin.py"])

Every check runs real training steps on real data (Fashion-MNIST by default, found as
``ganbench run`` finds it, never downloaded) and raises AssertionError naming what is wrong.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from ganbench.config import default_cache_dir, variant_config
from ganbench.data import BatchSource, DataRequest, DatasetSplits
from ganbench.registry import Registry, load_registry
from ganbench.specs import TASK_SUPER_RESOLUTION, VariantSpec
from ganbench.variant import GenerativeVariant, SuperResolutionVariant, Variant, VariantContext


@functools.lru_cache(maxsize=4)
def load_dataset(name: str = "fashion-mnist", data_dir: Path | None = None) -> DatasetSplits:
    """A registered dataset, found locally (no download); cached per process."""
    registry = load_registry()
    return registry.dataset(name).load(DataRequest(data_dir, download=False, cache_dir=default_cache_dir()))


def make_context(
    splits: DatasetSplits, device: str | torch.device = "cpu", conditional: bool = False
) -> VariantContext:
    return VariantContext(splits.image_shape, splits.num_classes, torch.device(device), conditional=conditional)


def resolve_spec(
    variant: str | VariantSpec, plugin_files: Iterable[Path | str] = (), registry: Registry | None = None
) -> VariantSpec:
    if isinstance(variant, VariantSpec):
        return variant
    return (registry or load_registry(plugin_files)).variant(variant)


def build_variant(
    variant: str | VariantSpec,
    splits: DatasetSplits | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    plugin_files: Iterable[Path | str] = (),
) -> Variant:
    """Build a variant as the harness does: seeded, with ``overrides`` typed like ``--set``."""
    spec = resolve_spec(variant, plugin_files)
    splits = splits or load_dataset()
    torch.manual_seed(seed)
    context = make_context(splits, device, spec.conditional)
    return spec.build(context, variant_config(spec.name, spec.config, overrides or {}))


def batch_source(variant: Variant, splits: DatasetSplits | None = None, seed: int = 0) -> BatchSource:
    splits = splits or load_dataset()
    return BatchSource(
        splits.train_images.to(variant.device), splits.train_labels.to(variant.device), variant.batch_size, seed
    )


def check_train_step(variant: Variant, source: BatchSource, steps: int = 2) -> list[dict[str, float]]:
    """Run ``steps`` training steps; check the losses are finite 0-dim tensors, real data was
    consumed and every network with trainable parameters changed. Returns the losses."""
    before = {
        name: [p.detach().clone() for p in net.parameters() if p.requires_grad]
        for name, net in variant.networks().items()
    }
    variant.train(True)
    history = []
    for step in range(steps):
        seen = source.images_seen
        losses = variant.train_step(source)
        assert isinstance(losses, dict) and losses, f"train_step must return a non-empty dict of losses, got {losses!r}"
        assert source.images_seen > seen, "train_step consumed no real batch (call data.next())"
        values = {}
        for key, value in losses.items():
            assert isinstance(value, torch.Tensor) and value.dim() == 0, f"loss {key!r} must be a 0-dim tensor"
            assert not value.requires_grad, f"loss {key!r} must be detached"
            values[key] = float(value)
            assert math.isfinite(values[key]), f"loss {key!r} is {values[key]} at step {step + 1}"
        history.append(values)
    for name, params in before.items():
        after = [p for p in variant.networks()[name].parameters() if p.requires_grad]
        if params:
            assert any(not torch.equal(a, b) for a, b in zip(params, after)), f"network {name!r} did not change"
    return history


def check_generate(variant: GenerativeVariant, conditional: bool, n: int = 20) -> torch.Tensor:
    """Generated images have the dataset's shape, are finite and lie in [-1, 1]."""
    labels = torch.arange(n, device=variant.device) % variant.context.num_classes if conditional else None
    with variant.evaluating():
        images = variant.generate(variant.sample_latent(n), labels)
    expected = (n, *variant.context.image_shape)
    assert tuple(images.shape) == expected, f"generate returned shape {tuple(images.shape)}, expected {expected}"
    assert torch.isfinite(images).all(), "generate returned non-finite values"
    assert images.min() >= -1 and images.max() <= 1, "generate must return images in [-1, 1]"
    return images


def check_labels_honoured(variant: GenerativeVariant) -> None:
    """A conditional generator's output depends on the label: the same latent with each
    class gives images that differ."""
    k = variant.context.num_classes
    z = variant.sample_latent(1).expand(k, -1)
    with variant.evaluating():
        images = variant.generate(z, torch.arange(k, device=variant.device))
    diffs = (images[1:] - images[:1]).flatten(1).abs().amax(1)
    assert bool((diffs > 1e-6).all()), "the same latent with different labels gives the same image: labels are ignored"


def check_upscale(variant: SuperResolutionVariant, splits: DatasetSplits | None = None, n: int = 8) -> torch.Tensor:
    """Upscaled test images have the original shape, are finite and lie in [-1, 1]."""
    from ganbench.data import to_float
    from ganbench.superres import downsample

    splits = splits or load_dataset()
    targets = to_float(splits.test_images[:n].to(variant.device))
    with variant.evaluating():
        out = variant.upscale(downsample(targets, variant.scale))
    assert tuple(out.shape) == tuple(targets.shape), (
        f"upscale returned {tuple(out.shape)}, expected {tuple(targets.shape)}"
    )
    assert torch.isfinite(out).all(), "upscale returned non-finite values"
    assert out.min() >= -1 and out.max() <= 1, "upscale must return images in [-1, 1]"
    return out


def check_variant(
    variant: str | VariantSpec,
    *,
    steps: int = 2,
    plugin_files: Iterable[Path | str] = (),
    splits: DatasetSplits | None = None,
    device: str | torch.device = "cpu",
) -> list[dict[str, float]]:
    """Every contract check on one variant: build, train ``steps`` steps, then generate (and
    for a conditional variant, honour labels) or upscale. Returns the training losses."""
    spec = resolve_spec(variant, plugin_files)
    splits = splits or load_dataset()
    built = build_variant(spec, splits, device=device)
    expected = SuperResolutionVariant if spec.task == TASK_SUPER_RESOLUTION else GenerativeVariant
    assert isinstance(built, expected), f"{spec.name} must build a {expected.__name__} for task {spec.task!r}"
    assert set(built.networks()) and set(built.optimizers()), "networks() and optimizers() must not be empty"
    losses = check_train_step(built, batch_source(built, splits), steps)
    if isinstance(built, SuperResolutionVariant):
        check_upscale(built, splits)
        return losses
    check_generate(built, spec.conditional)
    if spec.conditional:
        check_labels_honoured(built)
    return losses
