"""``ganbench run``: every variant x seed under the same budget, evaluated and tabulated.

Everything the user gave is checked before anything is computed (:func:`plan_run`); after
that, a run that fails, diverges or is interrupted keeps every row written before it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from ganbench import columns as C
from ganbench.config import RunConfig, default_cache_dir, variant_config
from ganbench.data import BatchSource, DataRequest, DatasetSplits
from ganbench.devices import resolve_device
from ganbench.errors import UsageError
from ganbench.evaluation import EvalResult, Evaluation, applicable, generate_samples, run_metrics, upscale_samples
from ganbench.evaluation.classifier import HeldOutClassifier, WatchedFeatures, load_or_train
from ganbench.evaluation.fidelity import InceptionWeights, resolve_inception_weights
from ganbench.harness.progress import Progress
from ganbench.harness.provenance import config_record
from ganbench.harness.seeding import seed_everything
from ganbench.harness.trainer import Outcome, RunState, Trainer
from ganbench.harness.writer import (
    CHECKPOINTS_DIR,
    METRICS_CSV,
    SAMPLES_DIR,
    ResultsWriter,
    format_summary,
    save_sample_grid,
)
from ganbench.registry import Registry, load_registry
from ganbench.specs import TASK_GENERATION, TASK_SUPER_RESOLUTION, DatasetSpec, MetricSpec, VariantSpec
from ganbench.superres import bicubic
from ganbench.variant import GenerativeVariant, SuperResolutionVariant, Variant, VariantContext

log = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 1_000_003  # evaluation latents: same for every variant, apart from training's RNG
GRID_PER_CLASS = 10
NOT_HELD_OUT = "trained with the held-out classifier's features: its metrics are not held out for this run"
SUMMARY_METRICS = (
    C.FID_DOMAIN, C.KID_DOMAIN, C.CLASS_CONSISTENCY, C.CLASS_COVERAGE, C.PSNR, C.SSIM, C.FID_INCEPTION, C.TRAIN_IMG_PER_S,
)  # fmt: skip


@dataclass(frozen=True)
class PlannedVariant:
    spec: VariantSpec
    config: Any
    plugin: str


@dataclass(frozen=True)
class Plan:
    """A validated run: every name resolved and every override typed."""

    config: RunConfig
    dataset: DatasetSpec
    variants: tuple[PlannedVariant, ...]
    metrics: tuple[MetricSpec, ...]
    device: torch.device
    cache_dir: Path
    run_dir: Path


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: pd.DataFrame
    summary: pd.DataFrame

    def format_summary(self) -> str:
        return format_summary(self.summary, SUMMARY_METRICS)


def default_run_dir(config: RunConfig, now: dt.datetime | None = None) -> Path:
    """results/<time>-<variants>-<dataset>, with a suffix if that name is taken already."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    short = "-".join(config.variants)
    if len(short) > 40:
        short = f"{short[:37]}-{len(config.variants)}v"
    base = Path("results") / f"{stamp}-{short}-{config.dataset}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def plan_run(config: RunConfig, registry: Registry) -> Plan:
    """Check every name and override against the registry; compute nothing."""
    config.check()
    if not config.variants:
        raise UsageError(
            f"no variants given; use --variants NAME[,NAME...] (accepted: {', '.join(sorted(registry.variants)) or 'none registered'})"
        )
    dataset = registry.dataset(config.dataset)
    unknown_sets = set(config.set) - set(config.variants)
    if unknown_sets:
        raise UsageError(
            f"--set names variant(s) {', '.join(sorted(unknown_sets))} that are not in --variants ({', '.join(config.variants)})"
        )
    planned = []
    for name in dict.fromkeys(config.variants):
        spec = registry.variant(name)
        planned.append(
            PlannedVariant(
                spec, variant_config(name, spec.config, config.set.get(name, {})), registry.variants[name].plugin
            )
        )
    if config.metrics:
        metrics = tuple(registry.metric(name) for name in dict.fromkeys(config.metrics))
    else:
        metrics = tuple(r.spec for r in registry.metrics.values())
    device = resolve_device(config.device)
    run_dir = Path(config.out) if config.out is not None else default_run_dir(config)
    if (run_dir / METRICS_CSV).exists():
        raise UsageError(f"out {run_dir} already holds a run ({METRICS_CSV}); choose another --out")
    cache_dir = Path(config.cache_dir) if config.cache_dir is not None else default_cache_dir()
    return Plan(config, dataset, tuple(planned), metrics, device, cache_dir, run_dir)


class _Session:
    """The state shared by every run of one ``ganbench run``: data, classifier, writer."""

    def __init__(self, plan: Plan, splits: DatasetSplits, classifier: HeldOutClassifier, writer: ResultsWriter) -> None:
        self.plan = plan
        self.splits = splits
        self.classifier = classifier
        self.writer = writer
        self._inception: InceptionWeights | None = None
        device = plan.device
        self.train_images = splits.train_images.to(device)
        self.train_labels = splits.train_labels.to(device)

    def inception_weights(self) -> InceptionWeights:
        """Resolved once per session: a failed download is not retried for every run."""
        if self._inception is None:
            self._inception = resolve_inception_weights(self.plan.config.inception_weights, self.plan.config.download)
            if self._inception.path is None:
                log.warning("fid_inception will be NaN: %s", self._inception.reason)
        return self._inception

    def evaluate(
        self,
        name: str,
        task: str,
        samples: torch.Tensor,
        labels: torch.Tensor | None,
        final: bool,
        reference: torch.Tensor | None = None,
    ) -> EvalResult:
        evaluation = Evaluation(
            variant=name,
            task=task,
            samples=samples,
            labels=labels,
            data=self.splits,
            classifier=self.classifier,
            device=self.plan.device,
            cache_dir=self.plan.cache_dir,
            final=final,
            inception_weights=self.inception_weights,
            reference=reference,
        )
        return run_metrics(evaluation, applicable(self.plan.metrics, task))

    def row(
        self, variant: str, seed: int, state: RunState, status: str, critic_steps: int, note: str = ""
    ) -> dict[str, Any]:
        rate = state.images_seen / state.train_seconds if state.train_seconds > 0 else math.nan
        return {
            C.VARIANT: variant,
            C.DATASET: self.splits.name,
            C.SEED: seed,
            C.EVAL_INDEX: state.eval_index,
            C.STEP: state.step,
            C.IMAGES_SEEN: state.images_seen,
            C.TRAIN_SECONDS: state.train_seconds,
            C.CRITIC_STEPS: critic_steps,
            C.STATUS: status,
            C.TRAIN_IMG_PER_S: rate,
            C.PEAK_MEM_MB: state.peak_mem_mb or math.nan,
            C.NOTE: note,
        }

    def add(self, row: dict[str, Any], result: EvalResult | None) -> None:
        if result is not None:
            row.update(result.values)
            row[C.EVAL_SECONDS] = result.seconds
            notes = "; ".join(f"{k}: {v}" for k, v in result.notes.items())
            row[C.NOTE] = "; ".join(n for n in (row.get(C.NOTE, ""), notes) if n)
        self.writer.add_row(row, result.per_class if result else {}, self.splits.class_names)
        self.writer.flush()

    def reference(self) -> None:
        """The real-data row: train-split images scored as if generated (the floor of fid_domain)."""
        n = min(self.plan.config.eval_samples, self.splits.train_images.shape[0])
        idx = torch.randperm(self.splits.train_images.shape[0], generator=torch.Generator().manual_seed(0))[:n]
        samples, labels = self.splits.train_images[idx], self.splits.train_labels[idx]
        result = self.evaluate(C.REAL_DATA, TASK_GENERATION, samples, labels, final=True)
        row = self.row(C.REAL_DATA, -1, RunState(), C.STATUS_REFERENCE, 0, f"{n} train-split images")
        self.add(row, result)
        log.info("%s reference: %s", C.REAL_DATA, _brief(result.values))

    def sr_targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The high-resolution test images (and labels) every super-resolution evaluation uses."""
        n = min(self.plan.config.eval_samples, self.splits.test_images.shape[0])
        return self.splits.test_images[:n], self.splits.test_labels[:n]

    def bicubic(self, scale: int) -> None:
        """The bicubic baseline row of super-resolution, scored like a variant."""
        name = f"{C.BICUBIC}-x{scale}"
        targets, labels = self.sr_targets()
        samples, rate = upscale_samples(lambda lowres: bicubic(lowres, scale), targets, scale, self.plan.device)
        result = self.evaluate(name, TASK_SUPER_RESOLUTION, samples, labels, final=True, reference=targets)
        row = self.row(
            name, -1, RunState(), C.STATUS_REFERENCE, 0, f"{len(targets)} test images, area-downsampled x{scale}"
        )
        row[C.GEN_IMG_PER_S] = rate
        self.add(row, result)
        log.info("%s reference: %s", name, _brief(result.values))

    def produce(
        self, variant: Variant, spec: VariantSpec, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, float]:
        """What an evaluation point scores: samples, their labels, references, images/s."""
        if isinstance(variant, SuperResolutionVariant):
            targets, labels = self.sr_targets()
            with variant.evaluating():
                samples, rate = upscale_samples(variant.upscale, targets, variant.scale, self.plan.device)
            return samples, labels, targets, rate
        samples, labels, rate = generate_samples(
            variant, self.plan.config.eval_samples, self.splits.num_classes, spec.conditional, seed + EVAL_SEED_OFFSET
        )
        return samples, labels, None, rate

    def train_one(self, planned: PlannedVariant, seed: int) -> Outcome:
        plan, spec = self.plan, planned.spec
        label = f"{spec.name} seed {seed}"
        seed_everything(seed)
        features = WatchedFeatures(self.classifier, plan.device)
        context = VariantContext(self.splits.image_shape, self.splits.num_classes, plan.device, features)
        variant = spec.build(context, planned.config)
        expected = SuperResolutionVariant if spec.task == TASK_SUPER_RESOLUTION else GenerativeVariant
        if not isinstance(variant, expected):
            raise TypeError(f"{spec.name} builds a {type(variant).__name__}, not a ganbench.{expected.__name__}")
        source = BatchSource(self.train_images, self.train_labels, variant.batch_size, seed)
        progress = Progress(label, plan.config.budget)
        checkpoint = plan.run_dir / CHECKPOINTS_DIR / f"{spec.name}-seed{seed}.pt" if plan.config.checkpoints else None

        def on_log(point) -> None:
            progress.update(point)
            self.writer.add_log(spec.name, seed, point.step, point.images_seen, point.train_seconds, point.losses)

        def on_eval(state: RunState, final: bool) -> None:
            samples, labels, reference, rate = self.produce(variant, spec, seed)
            result = self.evaluate(spec.name, spec.task, samples, labels, final, reference)
            note = NOT_HELD_OUT if features.used else ""
            row = self.row(spec.name, seed, state, C.STATUS_OK, variant.critic_steps, note)
            row[C.GEN_IMG_PER_S] = rate
            self.add(row, result)
            progress.message(f"{label}: eval {state.eval_index} at step {state.step}: {_brief(result.values)}")
            if final:
                self.save_grid(variant, spec, seed)

        trainer = Trainer(
            variant, source, plan.config.budget, plan.config.evals, on_eval, on_log, plan.config.log_every, checkpoint
        )
        try:
            outcome = trainer.fit()
        except KeyboardInterrupt:
            self.add_stop(spec.name, seed, Outcome(C.STATUS_INTERRUPTED, "interrupted", trainer.state), variant)
            raise
        except Exception as exc:
            log.exception("%s failed", label)
            outcome = Outcome(C.STATUS_FAILED, f"{type(exc).__name__}: {exc}", trainer.state)
        finally:
            progress.close()
        if outcome.status != C.STATUS_OK:
            log.warning("%s: %s (%s)", label, outcome.status, outcome.note)
            self.add_stop(spec.name, seed, outcome, variant)
        return outcome

    def add_stop(self, name: str, seed: int, outcome: Outcome, variant: Variant) -> None:
        """The row of a run that ended without its final evaluation: the next eval_index,
        no metrics, the status and why."""
        outcome.state.eval_index += 1
        self.add(self.row(name, seed, outcome.state, outcome.status, variant.critic_steps, outcome.note), None)

    def save_grid(self, variant: Variant, spec: VariantSpec, seed: int) -> None:
        path = self.plan.run_dir / SAMPLES_DIR / f"{spec.name}-seed{seed}.png"
        if isinstance(variant, SuperResolutionVariant):  # rows: input, bicubic, output, original
            targets = self.splits.test_images[:GRID_PER_CLASS]
            scale, device = variant.scale, self.plan.device
            nearest, _ = upscale_samples(
                lambda x: F.interpolate(x, scale_factor=scale, mode="nearest"), targets, scale, device
            )
            cubic, _ = upscale_samples(lambda x: bicubic(x, scale), targets, scale, device)
            with variant.evaluating():
                ours, _ = upscale_samples(variant.upscale, targets, scale, device)
            rows = (f"input 1/{scale}", "bicubic", spec.name, "original")
            save_sample_grid(path, torch.cat([nearest, cubic, ours, targets]), GRID_PER_CLASS, rows)
            return
        k = self.splits.num_classes
        samples, labels, _ = generate_samples(
            variant, k * GRID_PER_CLASS, k, spec.conditional, seed + EVAL_SEED_OFFSET + 1
        )
        rows: Sequence[str] = ()
        if labels is not None:  # one row per class
            samples = samples[torch.argsort(labels, stable=True)]
            rows = self.splits.class_names
        save_sample_grid(path, samples, GRID_PER_CLASS, rows)


def _brief(values: dict[str, float]) -> str:
    shown = [
        c for c in (C.FID_DOMAIN, C.CLASS_CONSISTENCY, C.CLASS_COVERAGE) if c in values and not math.isnan(values[c])
    ]
    return ", ".join(f"{c} {values[c]:.4g}" for c in shown) or "no finite metrics"


def run(config: RunConfig | None = None, *, registry: Registry | None = None, **kwargs: Any) -> RunResult:
    """Run a benchmark. Takes a :class:`RunConfig`, or its fields as keyword arguments
    (the same names as the CLI flags)::

        ganbench.run(variants="cgan,acgan", dataset="fashion-mnist", budget="500steps")
    """
    if config is None:
        config = RunConfig.from_mapping(kwargs)
    elif kwargs:
        config = RunConfig.from_mapping({**config.to_json(), **kwargs})
    registry = registry if registry is not None else load_registry(config.plugin)
    plan = plan_run(config, registry)
    splits = plan.dataset.load(DataRequest(config.data_dir, config.download, plan.cache_dir))
    if splits.image_shape != plan.dataset.image_shape or splits.class_names != plan.dataset.class_names:
        raise RuntimeError(f"dataset {plan.dataset.name} loaded images {splits.image_shape} that differ from its spec")
    classifier = load_or_train(splits, plan.cache_dir, plan.device)
    writer = ResultsWriter(plan.run_dir, [c for m in plan.metrics for c in m.columns])
    writer.write_config(config_record(plan, splits, classifier, registry))
    log.info("run directory: %s", plan.run_dir)
    session = _Session(plan, splits, classifier, writer)
    try:
        tasks = {p.spec.task for p in plan.variants}
        if TASK_GENERATION in tasks:
            session.reference()
        for scale in sorted(
            {getattr(p.config, "scale", 2) for p in plan.variants if p.spec.task == TASK_SUPER_RESOLUTION}
        ):
            session.bicubic(scale)
        for planned in plan.variants:
            for seed in config.seeds:
                session.train_one(planned, seed)
                if plan.device.type == "cuda":
                    torch.cuda.empty_cache()
    finally:
        metrics, summary = writer.finish()
    return RunResult(plan.run_dir, metrics, summary)
