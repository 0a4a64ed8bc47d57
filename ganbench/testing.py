"""Helpers for testing ganbench plugins (variants, metrics and probes), for plugin authors and
for ganbench's own tests.

A plugin's test can be as short as::

    from ganbench.testing import check_metric, check_probe, check_variant

    def test_my_variant():
        check_variant("my-variant", plugin_files=["my_plugin.py"])

    def test_my_metric():
        values = check_metric("my-metric", plugin_files=["my_plugin.py"]).values

    def test_my_probe():
        outcome = check_probe("my-probe", plugin_files=["my_plugin.py"])

Every check runs on real data (Fashion-MNIST by default, found as ``ganbench run`` finds it,
never downloaded) and raises AssertionError naming what is wrong. A metric or probe is tried
on a tiny variant trained a few real steps, scored by the held-out classifier (and, for a
probe, the judges) that ``ganbench run`` uses: trained once and cached like theirs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganbench.config import default_cache_dir, variant_config
from ganbench.data import BatchSource, DataRequest, DatasetSplits
from ganbench.registry import Registry, load_registry
from ganbench.specs import TASK_GENERATION, TASK_SUPER_RESOLUTION, MetricSpec, ProbeSpec, VariantSpec
from ganbench.variant import GenerativeVariant, SuperResolutionVariant, Variant, VariantContext

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.evaluation import EvalResult, Evaluation
    from ganbench.evaluation.classifier import HeldOutClassifier
    from ganbench.evaluation.probing import ProbeOutcome
    from ganbench.probes import ProbeContext


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


# --- metrics and probes -------------------------------------------------------------------------

REAL_DATA = "real-data"  # make_evaluation(None): train-split images scored as the reference row is
TRAIN_STEPS = 20  # steps of the tiny variant a metric or probe is tried on


def train_variant(
    variant: str | VariantSpec = "cgan",
    splits: DatasetSplits | None = None,
    *,
    steps: int = TRAIN_STEPS,
    overrides: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    plugin_files: Iterable[Path | str] = (),
) -> Variant:
    """A variant built as the harness builds it and trained ``steps`` real steps: something to
    try a metric or probe on. Its samples are poor, but they are a generator's, not noise."""
    built = build_variant(variant, splits, overrides=overrides, device=device, seed=seed, plugin_files=plugin_files)
    source = batch_source(built, splits, seed)
    built.train(True)
    for _ in range(steps):
        built.train_step(source)
    return built


def held_out_classifier(
    splits: DatasetSplits | None = None, cache_dir: Path | str | None = None, device: str | torch.device = "cpu"
) -> HeldOutClassifier:
    """The held-out classifier ``ganbench run`` scores ``splits`` with: loaded from
    ``cache_dir`` (default: ganbench's cache, ``$GANBENCH_CACHE``), trained there once if absent
    (minutes on a CPU)."""
    from ganbench.evaluation.classifier import load_or_train

    splits = splits or load_dataset()
    return load_or_train(splits, Path(cache_dir) if cache_dir else default_cache_dir(), torch.device(device))


def _spec(kind: str, item: Any, plugin_files: Iterable[Path | str]) -> Any:
    expected = MetricSpec if kind == "metric" else ProbeSpec
    if isinstance(item, expected):
        return item
    return getattr(load_registry(plugin_files), kind)(item)


def make_evaluation(
    variant: str | VariantSpec | Variant | None = "cgan",
    splits: DatasetSplits | None = None,
    *,
    n: int = 500,
    steps: int = TRAIN_STEPS,
    final: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    cache_dir: Path | str | None = None,
    plugin_files: Iterable[Path | str] = (),
) -> Evaluation:
    """An :class:`ganbench.Evaluation` as a run builds one: ``n`` samples of ``variant`` (a
    name or spec: trained ``steps`` steps with :func:`train_variant`; or a variant you built),
    drawn on the latents a run with ``seed`` uses, with their labels when it is conditional; or
    with ``variant=None``, ``n`` train-split images, as the ``real-data`` reference row. A
    super-resolution variant upscales the first ``n`` test images (``reference``: the originals)."""
    from ganbench.evaluation import Evaluation, generate_samples, upscale_samples
    from ganbench.evaluation.fidelity import resolve_inception_weights
    from ganbench.evaluation.sampling import EVAL_SEED_OFFSET

    splits = splits or load_dataset()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    reference = None
    if variant is None:
        name, task = REAL_DATA, TASK_GENERATION
        idx = torch.randperm(len(splits.train_images), generator=torch.Generator().manual_seed(seed))[:n]
        samples, labels = splits.train_images[idx], splits.train_labels[idx]
    else:
        if isinstance(variant, Variant):
            name = type(variant).__name__
        else:
            spec = resolve_spec(variant, plugin_files)
            name, variant = spec.name, train_variant(spec, splits, steps=steps, device=device, seed=seed)
        if isinstance(variant, SuperResolutionVariant):
            task = TASK_SUPER_RESOLUTION
            reference, labels = splits.test_images[:n], splits.test_labels[:n]
            with variant.evaluating():
                samples, _ = upscale_samples(variant.upscale, reference, variant.scale, variant.device)
        else:
            assert isinstance(variant, GenerativeVariant), (
                f"{name} is neither a GenerativeVariant nor a SuperResolutionVariant"
            )
            task = TASK_GENERATION
            k = splits.num_classes
            samples, labels, _ = generate_samples(variant, n, k, variant.conditional, seed + EVAL_SEED_OFFSET)
    weights = functools.lru_cache(maxsize=1)(lambda: resolve_inception_weights(None, download=False))
    return Evaluation(
        variant=name,
        task=task,
        samples=samples,
        labels=labels,
        data=splits,
        classifier=held_out_classifier(splits, cache, device),
        device=torch.device(device),
        cache_dir=cache,
        final=final,
        inception_weights=weights,
        reference=reference,
    )


def run_metric(
    metric: str | MetricSpec,
    evaluation: Evaluation | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    plugin_files: Iterable[Path | str] = (),
    **evaluation_kwargs: Any,
) -> EvalResult:
    """One metric run as a run runs it (:func:`ganbench.evaluation.run_metrics`): on
    ``evaluation`` (default: :func:`make_evaluation` with ``evaluation_kwargs``), with
    ``options`` typed and checked like ``--set METRIC.KEY=VALUE``. A metric that raises or
    breaks the contract gives NaN and the note a row would hold (``result.notes``)."""
    from ganbench.evaluation import run_metrics

    spec = _spec("metric", metric, plugin_files)
    config = variant_config(spec.name, spec.config, options or {})
    evaluation = evaluation or make_evaluation(plugin_files=plugin_files, **evaluation_kwargs)
    return run_metrics(evaluation, [spec], {spec.name: config})


def check_metric(
    metric: str | MetricSpec,
    evaluation: Evaluation | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    plugin_files: Iterable[Path | str] = (),
    **evaluation_kwargs: Any,
) -> EvalResult:
    """Run one metric (as :func:`run_metric`) and check what it returns against the contract:
    every declared column a float, no undeclared column, NaN only with a reason, per-class
    values one float per class of a declared column. An exception from ``compute`` propagates,
    with its traceback; a broken contract is an AssertionError naming each mistake."""
    from ganbench.evaluation import EvalResult
    from ganbench.evaluation.metrics import check_metric_output

    spec = _spec("metric", metric, plugin_files)
    config = variant_config(spec.name, spec.config, options or {})
    evaluation = evaluation or make_evaluation(plugin_files=plugin_files, **evaluation_kwargs)
    evaluation.options = config
    try:
        out = spec.compute(evaluation)
    finally:
        evaluation.options = None
    checked = check_metric_output(spec, out, evaluation.data.num_classes)
    assert not checked.problems, f"metric {spec.name}: " + "; ".join(f"{k}: {v}" for k, v in checked.problems.items())
    return EvalResult(checked.values, checked.per_class, checked.notes, 0.0)


def make_probe_context(
    probe: str | ProbeSpec,
    variant: str | VariantSpec = "cgan",
    splits: DatasetSplits | None = None,
    *,
    trained: GenerativeVariant | None = None,
    options: Mapping[str, Any] | None = None,
    steps: int = TRAIN_STEPS,
    seed: int = 0,
    device: str | torch.device = "cpu",
    cache_dir: Path | str | None = None,
    plugin_files: Iterable[Path | str] = (),
) -> ProbeContext:
    """A :class:`ganbench.ProbeContext` as a run builds one for ``probe``: ``variant`` trained
    ``steps`` steps (or ``trained``, a variant of that spec you trained), the probe's options
    typed and checked like ``--set PROBE.KEY=VALUE``, the dataset's attributes, the judge and
    steering classifiers (trained once and cached in ``cache_dir`` as a run's are; minutes on a
    CPU the first time) and the generator a run with ``seed`` seeds."""
    from ganbench.data.attributes import dataset_attributes
    from ganbench.evaluation.judges import load_or_train_judges
    from ganbench.evaluation.probing import probe_context

    registry = load_registry(plugin_files)
    spec = _spec("probe", probe, plugin_files)
    vspec = resolve_spec(variant, registry=registry)
    splits = splits or load_dataset()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    built = trained if trained is not None else train_variant(vspec, splits, steps=steps, device=device, seed=seed)
    assert isinstance(built, GenerativeVariant), f"a probe needs a GenerativeVariant, got {type(built).__name__}"
    attributes = dataset_attributes(registry.dataset(splits.name), splits) if splits.name in registry.datasets else None
    classifier = held_out_classifier(splits, cache, device)
    judges = load_or_train_judges(splits, attributes, classifier, cache, torch.device(device))
    config = variant_config(spec.name, spec.config, options or {})
    return probe_context(vspec.name, seed, built, vspec, config, splits, attributes, judges, torch.device(device))


def run_probe(
    probe: str | ProbeSpec,
    context: ProbeContext | None = None,
    *,
    plugin_files: Iterable[Path | str] = (),
    **context_kwargs: Any,
) -> ProbeOutcome:
    """One probe run as a run runs it (:func:`ganbench.evaluation.probing.run_probes`: the
    variant frozen, a probe that raises or breaks the contract gives NaN and a note) on
    ``context`` (default: :func:`make_probe_context` with ``context_kwargs``). Returns its
    values, notes, tables and pictures (``outcome.pictures[probe name][file name]``). The
    context's generator is seeded afresh first, as a run seeds each probe's."""
    from ganbench.evaluation.probing import run_probes

    spec = _spec("probe", probe, plugin_files)
    context = context or make_probe_context(spec, plugin_files=plugin_files, **context_kwargs)
    return run_probes([(spec, context.config)], lambda _spec, _config: _reseeded(context))


def _reseeded(context: ProbeContext) -> ProbeContext:
    """``context`` with its generator seeded afresh, as a run seeds each probe's: a context
    used twice gives the same latents twice."""
    from ganbench.evaluation.probing import PROBE_SEED_OFFSET

    context.generator.manual_seed(context.seed + PROBE_SEED_OFFSET)
    return context


def check_probe(
    probe: str | ProbeSpec,
    context: ProbeContext | None = None,
    *,
    plugin_files: Iterable[Path | str] = (),
    **context_kwargs: Any,
) -> ProbeOutcome:
    """Run one probe on the frozen variant and check what it returns against the contract:
    every declared column a float, NaN only with a reason, only declared tables, each a sequence
    of mappings of plain values, pictures PNG bytes under plain ``.png`` names; and the variant's
    weights unchanged. An exception from ``compute`` propagates; a broken contract is an
    AssertionError naming each mistake."""
    from ganbench.evaluation.probing import ProbeOutcome, check_probe_output

    spec = _spec("probe", probe, plugin_files)
    context = context or make_probe_context(spec, plugin_files=plugin_files, **context_kwargs)

    def weights() -> dict[str, torch.Tensor]:
        nets = context.variant.networks().items()
        return {f"{n}.{k}": v.detach().clone() for n, net in nets for k, v in net.state_dict().items()}

    before = weights()
    _reseeded(context)
    with context.variant.frozen():
        out = spec.compute(context)
    checked = check_probe_output(spec, out)
    assert not checked.problems, f"probe {spec.name}: " + "; ".join(f"{k}: {v}" for k, v in checked.problems.items())
    after = weights()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert not changed, (
        f"probe {spec.name} changed the variant's {', '.join(changed[:3])}: a probe must leave it as it found it"
    )
    pictures = {spec.name: checked.pictures} if checked.pictures else {}
    return ProbeOutcome(checked.values, checked.notes, checked.tables, pictures)
