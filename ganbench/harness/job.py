"""One job: train and evaluate one (variant, seed), continuing from its checkpoint if it has one.

A :class:`Job` is a small picklable value (variant name, seed, the run's resolved options), so
an executor may run it in another process. What every job of a run shares in one process
(the data on the device, the held-out classifier, the plugins) is a :class:`JobEnv`. A job
reports everything through events (:mod:`ganbench.harness.events`), its checkpoints included,
and writes no file itself: the executor hands it its last checkpoint's bytes when it starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ganbench import columns as C
from ganbench.budget import FLOPS
from ganbench.config import RESUME_MAY_CHANGE, RunConfig
from ganbench.data import BatchSource, DatasetSplits
from ganbench.errors import UsageError, describe
from ganbench.evaluation import EvalResult, Evaluation, applicable, generate_samples, run_metrics, upscale_samples
from ganbench.evaluation.classifier import HeldOutClassifier, WatchedFeatures
from ganbench.evaluation.dinov2 import Dinov2Weights
from ganbench.evaluation.metrics import no_dinov2_weights
from ganbench.evaluation.probing import PROBE_SEED_OFFSET, ProbeOutcome, probe_context, run_probes, run_references
from ganbench.evaluation.sampling import EVAL_SEED_OFFSET
from ganbench.harness import events as E
from ganbench.harness.flops import train_step_flops
from ganbench.harness.grids import sample_grid_png
from ganbench.harness.plan import Plan
from ganbench.harness.progress import Progress
from ganbench.harness.rundir import SAMPLING_TABLE, RunDir
from ganbench.harness.seeding import seed_everything
from ganbench.harness.trainer import LogPoint, Outcome, RunState, Trainer
from ganbench.probes import REFERENCE_SEED, ProbeContext, ReferenceContext
from ganbench.specs import TASK_GENERATION, TASK_SUPER_RESOLUTION, MetricSpec, ProbeSpec
from ganbench.superres import bicubic
from ganbench.variant import GenerativeVariant, SuperResolutionVariant, Variant, VariantContext

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.data.attributes import Attributes
    from ganbench.evaluation.fidelity import InceptionWeights
    from ganbench.evaluation.judges import Judges

log = logging.getLogger(__name__)

RESAMPLE_SEED_OFFSET = 3_000_017  # --resample: the final evaluation's second, independent draw of latents
GRID_PER_CLASS = 10
NOT_HELD_OUT = "trained with the held-out classifier's features: its metrics are not held out for this run"
CHECKPOINT_FORMAT = "ganbench-checkpoint/1"

Emit = Callable[[E.Event], None]


class JobEnv:
    """What the jobs of one run share in one process: the plan, the data on the device, the
    held-out classifier and the run directory."""

    def __init__(
        self,
        plan: Plan,
        splits: DatasetSplits,
        classifier: HeldOutClassifier,
        rundir: RunDir,
        attributes: Attributes | None = None,
        judges: Judges | None = None,
    ) -> None:
        self.plan = plan
        self.splits = splits
        self.classifier = classifier
        self.rundir = rundir
        self.attributes = attributes
        self.judges = judges
        self.train_images = splits.train_images.to(plan.device)
        self.train_labels = splits.train_labels.to(plan.device)
        self._inception: InceptionWeights | None = None
        self._step_flops: dict[str, int | None] = {}

    def variant_context(
        self, conditional: bool, features: WatchedFeatures, precision: str, compile: bool
    ) -> VariantContext:
        """What a variant is built with in this run: the data's shape, the device, the features."""
        return VariantContext(
            self.splits.image_shape,
            self.splits.num_classes,
            self.plan.device,
            features,
            conditional,
            precision=precision,
            compile=compile,
        )

    def step_flops(self, name: str) -> int | None:
        """FLOPs of one training step of variant ``name`` on the run's device (counted once:
        :mod:`ganbench.harness.flops`); None when the count failed (its job fails the same way)."""
        if name not in self._step_flops:
            planned = self.plan.variant(name)
            # fp32, not compiled: the count is the same whatever --precision and --compile
            features = WatchedFeatures(self.classifier, self.plan.device)  # its own: the job's records its use
            context = self.variant_context(planned.spec.conditional, features, "fp32", False)
            try:
                flops = train_step_flops(planned.spec, planned.config, context, self.train_images, self.train_labels)
            except Exception as exc:
                log.warning("%s: the FLOPs of its training step could not be counted (%s)", name, describe(exc))
                flops = None
            self._step_flops[name] = flops
        return self._step_flops[name]

    def dinov2_weights(self) -> Dinov2Weights:
        """The weights file checked when the run was planned, or why there is none."""
        return self.plan.dinov2 if self.plan.dinov2 is not None else no_dinov2_weights()

    def inception_weights(self) -> InceptionWeights:
        """Resolved once per process: a failed download is not retried for every job."""
        if self._inception is None:
            # Imported here: torch-fidelity imports torchvision's models (1.3 s), which a refused
            # command line, `list` or `report` never needs.
            from ganbench.evaluation.fidelity import resolve_inception_weights

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
        metrics: Sequence[MetricSpec] | None = None,
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
            dinov2_weights=self.dinov2_weights,
        )
        chosen = applicable(self.plan.metrics, task) if metrics is None else metrics
        return run_metrics(evaluation, chosen, self.plan.metric_options)

    def resampled_metrics(self) -> list[MetricSpec]:
        """What ``--resample`` scores again: every generation metric of the run except the
        final-only ones (fid_inception, fd_dinov2: expensive, and they need weights)."""
        return [m for m in applicable(self.plan.metrics, TASK_GENERATION) if not m.final_only]

    def probe(self, name: str, variant: Variant, seed: int) -> ProbeOutcome | None:
        """The probes that apply to variant ``name``, run on it; None when none applies."""
        planned = self.plan.probes_for(name)
        if not planned or not isinstance(variant, GenerativeVariant):
            return None
        if self.judges is None:
            raise RuntimeError("probes need the judges: the runner loads them when a probe applies")
        spec, judges = self.plan.variant(name).spec, self.judges

        def context(probe: ProbeSpec, config: Any) -> ProbeContext:
            return probe_context(
                name, seed, variant, spec, config, self.splits, self.attributes, judges, self.plan.device,
                self.plan.cache_dir,
            )

        return run_probes([(p.spec, p.config) for p in planned], context)

    def probe_references(self) -> ProbeOutcome | None:
        """The references (values on real data) of the run's probes that have one and apply
        to one of its variants: the ``real-data`` row's probe values; None when there are none."""
        planned = [p for p in self.plan.probes if p.spec.reference is not None and self.plan.probe_runs(p)]
        if not planned:
            return None
        if self.judges is None:
            raise RuntimeError("probes need the judges: the runner loads them when a probe applies")
        judge, device = self.judges.judge, self.plan.device

        def context(probe: ProbeSpec, config: Any) -> ReferenceContext:
            generator = torch.Generator(device=device).manual_seed(REFERENCE_SEED + PROBE_SEED_OFFSET)
            return ReferenceContext(REFERENCE_SEED, config, self.splits, judge, generator, device, self.plan.cache_dir)

        return run_references([(p.spec, p.config) for p in planned], context)

    def sr_targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The high-resolution test images (and labels) every super-resolution evaluation uses."""
        n = min(self.plan.config.eval_samples, self.splits.test_images.shape[0])
        return self.splits.test_images[:n], self.splits.test_labels[:n]

    def row(
        self, variant: str, seed: int, state: RunState, status: str, critic_steps: int, note: str = ""
    ) -> dict[str, Any]:
        rate = state.images_seen / state.train_seconds if state.train_seconds > 0 else math.nan
        compiled = state.compile_seconds  # the warm-up before the clock: not in train_seconds
        return {
            C.VARIANT: variant,
            C.DATASET: self.splits.name,
            C.SEED: seed,
            C.EVAL_INDEX: state.eval_index,
            C.STEP: state.step,
            C.IMAGES_SEEN: state.images_seen,
            C.TRAIN_SECONDS: state.train_seconds,
            C.CRITIC_STEPS: critic_steps,
            C.PRECISION: self.plan.config.precision,
            C.COMPILED: self.plan.config.compile,
            C.STATUS: status,
            C.TRAIN_IMG_PER_S: rate,
            C.PEAK_MEM_MB: state.peak_mem_mb or math.nan,
            C.TRAIN_FLOPS: self._train_flops(variant, state.step),
            C.COMPILE_SECONDS: compiled if self.plan.config.compile and status != C.STATUS_REFERENCE else math.nan,
            C.NOTE: note,
        }

    def _train_flops(self, variant: str, step: int) -> float:
        """FLOPs spent by ``step`` steps of a counted variant; NaN for reference rows."""
        flops = self._step_flops.get(variant)
        return float(step * flops) if flops is not None else math.nan

    def scored_row(self, row: dict[str, Any], result: EvalResult, probes: ProbeOutcome | None = None) -> E.Row:
        """``row`` with the evaluation's (and probes') values, its per-class rows, and NaN
        reasons in the note."""
        row = {**row, **result.values, C.EVAL_SECONDS: result.seconds}
        reasons = dict(result.notes)
        if probes is not None:
            row.update({**probes.values, C.PROBE_SECONDS: probes.seconds})
            reasons.update(probes.notes)
        notes = "; ".join(f"{k}: {v}" for k, v in reasons.items())
        row[C.NOTE] = "; ".join(n for n in (row[C.NOTE], notes) if n)
        per_class = [
            {
                **{c: row[c] for c in (C.VARIANT, C.DATASET, C.SEED, C.EVAL_INDEX, C.STEP)},
                C.CLASS_INDEX: k,
                C.CLASS_NAME: name,
                **{column: values[k] for column, values in result.per_class.items()},
            }
            for k, name in enumerate(self.splits.class_names)
        ] if result.per_class else []  # fmt: skip
        return E.Row(row, per_class)


def reference_rows(env: JobEnv) -> list[E.Row | E.Table]:
    """The rows a run scores besides its variants: the train split as if generated (the floor
    of the generation metrics; the probes' references fill its probe columns and tables), and
    for super-resolution the bicubic baseline per scale. A row's tables come before it."""
    rows: list[E.Row | E.Table] = []
    config, splits = env.plan.config, env.splits
    if env.plan.generates:
        n = min(config.eval_samples, splits.train_images.shape[0])
        idx = torch.randperm(splits.train_images.shape[0], generator=torch.Generator().manual_seed(0))[:n]
        samples, labels = splits.train_images[idx], splits.train_labels[idx]
        result = env.evaluate(C.REAL_DATA, TASK_GENERATION, samples, labels, final=True)
        probes = env.probe_references()
        if probes is not None:
            rows += [E.Table(name, C.REAL_DATA, -1, 0, table) for name, table in probes.tables.items()]
        row = env.row(C.REAL_DATA, -1, RunState(), C.STATUS_REFERENCE, 0, f"{n} train-split images")
        rows.append(env.scored_row(row, result, probes))
    for scale in env.plan.sr_scales:
        name = f"{C.BICUBIC}-x{scale}"
        targets, labels = env.sr_targets()
        samples, rate = upscale_samples(lambda x, s=scale: bicubic(x, s), targets, scale, env.plan.device)
        result = env.evaluate(name, TASK_SUPER_RESOLUTION, samples, labels, final=True, reference=targets)
        note = f"{len(targets)} test images, area-downsampled x{scale}"
        row = {**env.row(name, -1, RunState(), C.STATUS_REFERENCE, 0, note), C.GEN_IMG_PER_S: rate}
        rows.append(env.scored_row(row, result))
    return rows


def reference_keys(plan: Plan) -> list[tuple[str, int]]:
    keys = [(C.REAL_DATA, -1)] if plan.generates else []
    return keys + [(f"{C.BICUBIC}-x{scale}", -1) for scale in plan.sr_scales]


# --- checkpoints ----------------------------------------------------------------------------------


def run_fingerprint(plan: Plan) -> str:
    """What a checkpoint must have been made under: the options that change what a run
    computes, hyperparameters as typed values (``1e-4`` and ``0.0001`` are one run). Not the
    run's seeds: a job computes the same whatever other seeds its run has (seeds are added)."""
    options = {k: v for k, v in plan.config.to_json().items() if k not in (*RESUME_MAY_CHANGE, "set", "seeds")}
    for p in (*plan.variants, *plan.probes):
        options[f"config:{p.spec.name}"] = dataclasses.asdict(p.config)
    for metric, config in plan.metric_options.items():
        if dataclasses.fields(config):  # one without options changes nothing: older runs keep their fingerprint
            options[f"metric-config:{metric}"] = dataclasses.asdict(config)
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_checkpoint(path: Path, variant: str, seed: int, fingerprint: str, data: bytes | None = None) -> dict[str, Any]:
    """A job's checkpoint (the file at ``path``, or its contents ``data``), loaded without
    running any code (``weights_only=True``) and checked to be this job's; anything else is a
    one-line UsageError naming the file.

    torch's refusal advises loading with ``weights_only=False``; ganbench never unpickles, so
    the message keeps only its cause (a file it refuses is damaged or was not written by it).
    """
    from ganbench.evaluation.cache import short_reason  # torch's paragraphs to their cause, in one line

    fix = f"delete it to restart {variant} seed {seed} from the beginning"
    try:
        state = torch.load(path if data is None else io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = short_reason(exc)
        reason = reason if "weights_only" not in reason else type(exc).__name__  # never pass that advice on
        why = f"damaged, or not a ganbench checkpoint ({reason})"
        raise UsageError(f"checkpoint {path} is unreadable: {why}; {fix}") from None
    job = state.get("job") if isinstance(state, dict) else None
    if not isinstance(job, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} file; {fix}")
    if (job.get("variant"), job.get("seed")) != (variant, seed):
        raise UsageError(
            f"checkpoint {path} belongs to {job.get('variant')} seed {job.get('seed')}, not {variant} seed {seed}; {fix}"
        )
    if job.get("run") != fingerprint:
        raise UsageError(f"checkpoint {path} was made by a run with other options; {fix}")
    return state


def saved_checkpoint(rundir: RunDir, variant: str, seed: int) -> bytes | None:
    """The contents of a job's checkpoint file, if it has one (read by the executor, on the
    machine that holds the run directory)."""
    path = rundir.checkpoint(variant, seed)
    return path.read_bytes() if path.exists() else None


@dataclass
class History:
    """What a job has reported so far; saved in its checkpoint so that a resumed job
    restores exactly the rows and log points that led to it."""

    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    per_class: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    logs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    tables: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # probes' E.Table events, as dicts


# --- the job ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """Train and evaluate ``variant`` with ``seed`` under the run's resolved options."""

    variant: str
    seed: int
    config: RunConfig

    @property
    def label(self) -> str:
        return f"{self.variant} seed {self.seed}"

    def run(self, env: JobEnv, emit: Emit, checkpoint: bytes | None = None) -> Outcome:
        """Run to the end of the budget (or from ``checkpoint``, the contents of its last
        checkpoint file, to the end), emitting events; a variant that raises or diverges ends
        this job only. Ctrl-C ends it as interrupted and propagates."""
        planned = env.plan.variant(self.variant)
        spec, seed, config = planned.spec, self.seed, self.config
        fingerprint = run_fingerprint(env.plan)
        path = env.rundir.checkpoint(self.variant, seed)  # only named in errors: it may be on another machine
        saved = load_checkpoint(path, spec.name, seed, fingerprint, checkpoint) if checkpoint is not None else None
        history = History(**saved["history"]) if saved else History()
        resumed = RunState(**saved["trainer"]["state"]) if saved else RunState()
        # First: the tables hold exactly this job's history from now on, whatever happens next.
        restored = [E.Table(**t) for t in history.tables]
        emit(E.JobStarted(spec.name, seed, history.rows, history.per_class, history.logs, restored, resumed.step))
        variant: Variant | None = None
        trainer: Trainer | None = None
        progress = Progress(self.label, config.budget)
        try:
            step_flops = progress.step_flops = env.step_flops(spec.name)  # once per process; every RNG forked
            seed_everything(seed)
            features = WatchedFeatures(env.classifier, env.plan.device)
            context = env.variant_context(spec.conditional, features, config.precision, config.compile)
            variant = spec.build(context, planned.config)
            expected = SuperResolutionVariant if spec.task == TASK_SUPER_RESOLUTION else GenerativeVariant
            if not isinstance(variant, expected):
                raise TypeError(f"{spec.name} builds a {type(variant).__name__}, not a ganbench.{expected.__name__}")
            if step_flops is None and config.budget.kind == FLOPS:
                raise RuntimeError(f"a {config.budget} budget needs the FLOPs of a step: counting them failed")
            source = BatchSource(env.train_images, env.train_labels, variant.batch_size, seed)
            built: Variant = variant

            def on_log(point: LogPoint) -> None:
                progress.update(point)
                record = {
                    C.VARIANT: spec.name,
                    C.SEED: seed,
                    C.STEP: point.step,
                    C.IMAGES_SEEN: point.images_seen,
                    C.TRAIN_SECONDS: point.train_seconds,
                    **point.losses,
                }
                history.logs.append(record)
                emit(E.Log(record))

            def on_eval(state: RunState, final: bool) -> None:
                samples, labels, reference, rate = self._produce(env, built)
                result = env.evaluate(spec.name, spec.task, samples, labels, final, reference)
                probes = env.probe(spec.name, built, seed) if final else None
                if probes is not None:
                    for name, rows in probes.tables.items():
                        table = E.Table(name, spec.name, seed, state.eval_index, rows)
                        history.tables.append(dataclasses.asdict(table))
                        emit(table)
                    for probe, pictures in probes.pictures.items():
                        for file, data in pictures.items():
                            path = env.rundir.probe_picture(spec.name, seed, probe, file)
                            emit(E.Artefact(env.rundir.relative(path), data))
                if final and config.resample and isinstance(built, GenerativeVariant):  # after the probes: they
                    table = self._resample(env, built, state, result)  # are the same with or without it
                    history.tables.append(dataclasses.asdict(table))
                    emit(table)
                grid = None
                if config.track:  # the same latents at every evaluation; the training RNG is untouched
                    grid = self._grid(env, built)
                    emit(E.Grid(spec.name, seed, state.step, state.eval_index, grid))
                note = NOT_HELD_OUT if features.used else ""
                row = {**env.row(spec.name, seed, state, C.STATUS_OK, built.critic_steps, note), C.GEN_IMG_PER_S: rate}
                scored = env.scored_row(row, result, probes)
                history.rows.append(scored.row)
                history.per_class.extend(scored.per_class)
                emit(scored)
                brief = _brief({**result.values, **(probes.values if probes is not None else {})})
                progress.message(f"{self.label}: eval {state.eval_index} at step {state.step}: {brief}")
                if final:
                    grid = grid if grid is not None else self._grid(env, built)
                    emit(E.Artefact(env.rundir.relative(env.rundir.sample_grid(spec.name, seed)), grid))

            def on_checkpoint(t: Trainer) -> None:
                state = {
                    "format": CHECKPOINT_FORMAT,
                    "job": {"variant": spec.name, "seed": seed, "run": fingerprint},
                    "trainer": t.state_dict(),
                    "features_used": features.used,
                    "history": dataclasses.asdict(history),
                }
                buffer = io.BytesIO()
                torch.save(state, buffer)
                emit(E.Checkpoint(spec.name, seed, buffer.getvalue()))

            trainer = Trainer(
                variant,
                source,
                config.budget,
                config.evals,
                on_eval,
                on_log,
                config.log_every,
                on_checkpoint if config.checkpoints else None,
                step_flops,
                compile_warm_up=config.compile,  # compilation before the budget's clock starts
            )
            if saved is not None:
                trainer.load_state_dict(saved["trainer"])
                features.used = bool(saved["features_used"])
                log.info("%s: resumed from its checkpoint at step %d", self.label, resumed.step)
            outcome = trainer.fit()
        except KeyboardInterrupt:
            state = trainer.state if trainer is not None else resumed
            self._stop(env, emit, Outcome(C.STATUS_INTERRUPTED, "interrupted", state), variant)
            raise
        except UsageError:
            raise
        except Exception as exc:
            log.exception("%s failed", self.label)
            state = trainer.state if trainer is not None else resumed
            outcome = Outcome(C.STATUS_FAILED, f"{type(exc).__name__}: {exc}", state)
        finally:
            progress.close()
        if outcome.status != C.STATUS_OK:
            log.warning("%s: %s (%s)", self.label, outcome.status, outcome.note)
            self._stop(env, emit, outcome, variant)
            return outcome
        s = outcome.state
        emit(E.JobEnded(spec.name, seed, C.STATUS_OK, "", s.step, s.eval_index))
        return outcome

    def _stop(self, env: JobEnv, emit: Emit, outcome: Outcome, variant: Variant | None) -> None:
        critic_steps = variant.critic_steps if variant is not None else 0
        self.stop(env, emit, outcome, critic_steps)

    def stop(self, env: JobEnv, emit: Emit, outcome: Outcome, critic_steps: int) -> None:
        """The row of a job that ended without its final evaluation (the next eval_index, no
        metrics, the status and why), then its end. An executor whose job could not say it
        (its worker died) records it the same way."""
        s = outcome.state
        stopped = dataclasses.replace(s, eval_index=s.eval_index + 1)
        emit(E.Row(env.row(self.variant, self.seed, stopped, outcome.status, critic_steps, outcome.note)))
        emit(E.JobEnded(self.variant, self.seed, outcome.status, outcome.note, s.step, s.eval_index))

    def _produce(
        self, env: JobEnv, variant: Variant
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, float]:
        """What an evaluation point scores: samples, their labels, references, images/s."""
        if isinstance(variant, SuperResolutionVariant):
            targets, labels = env.sr_targets()
            with variant.evaluating():
                samples, rate = upscale_samples(variant.upscale, targets, variant.scale, env.plan.device)
            return samples, labels, targets, rate
        assert isinstance(variant, GenerativeVariant)
        conditional = env.plan.variant(self.variant).spec.conditional
        samples, labels, rate = generate_samples(
            variant, self.config.eval_samples, env.splits.num_classes, conditional, self.seed + EVAL_SEED_OFFSET
        )
        return samples, labels, None, rate

    def _resample(self, env: JobEnv, variant: GenerativeVariant, state: RunState, main: EvalResult) -> E.Table:
        """The final generator scored again on latents from an independent seed: sampling.csv's
        rows for this evaluation, draw 0 the main evaluation's values, draw 1 the resample's."""
        metrics = env.resampled_metrics()
        conditional = env.plan.variant(self.variant).spec.conditional
        seed = self.seed + RESAMPLE_SEED_OFFSET
        n, k = self.config.eval_samples, env.splits.num_classes
        samples, labels, _ = generate_samples(variant, n, k, conditional, seed)
        again = env.evaluate(self.variant, TASK_GENERATION, samples, labels, True, metrics=metrics)
        columns = [c for m in metrics for c in m.columns]
        rows = [
            {
                C.DRAW: draw,
                C.SAMPLING_SEED: sampling_seed,
                C.STEP: state.step,
                **{c: result.values.get(c, math.nan) for c in columns},
                C.EVAL_SECONDS: result.seconds,
            }
            for draw, (sampling_seed, result) in enumerate(((self.seed + EVAL_SEED_OFFSET, main), (seed, again)))
        ]
        return E.Table(SAMPLING_TABLE, self.variant, self.seed, state.eval_index, rows)

    def _grid(self, env: JobEnv, variant: Variant) -> bytes:
        if isinstance(variant, SuperResolutionVariant):  # rows: input, bicubic, output, original
            targets = env.splits.test_images[:GRID_PER_CLASS]
            scale, device = variant.scale, env.plan.device
            nearest, _ = upscale_samples(
                lambda x: F.interpolate(x, scale_factor=scale, mode="nearest"), targets, scale, device
            )
            cubic, _ = upscale_samples(lambda x: bicubic(x, scale), targets, scale, device)
            with variant.evaluating():
                ours, _ = upscale_samples(variant.upscale, targets, scale, device)
            rows = (f"input 1/{scale}", "bicubic", self.variant, "original")
            return sample_grid_png(torch.cat([nearest, cubic, ours, targets]), GRID_PER_CLASS, rows)
        assert isinstance(variant, GenerativeVariant)
        k = env.splits.num_classes
        conditional = env.plan.variant(self.variant).spec.conditional
        samples, labels, _ = generate_samples(
            variant, k * GRID_PER_CLASS, k, conditional, self.seed + EVAL_SEED_OFFSET + 1
        )
        row_labels: Sequence[str] = ()
        if labels is not None:  # one row per class
            samples = samples[torch.argsort(labels, stable=True)]
            row_labels = env.splits.class_names
        return sample_grid_png(samples, GRID_PER_CLASS, row_labels)


BRIEF_COLUMNS = (C.FID_DOMAIN, C.CLASS_CONSISTENCY, C.CLASS_COVERAGE)
BRIEF_PLUGIN_COLUMNS = 4  # a plugin's finite values shown on the progress line, at most


def _brief(values: Mapping[str, Any]) -> str:
    """The progress line's values: the built-in headline metrics, then a plugin's own columns
    (those :mod:`ganbench.columns` does not name), the finite ones only."""
    known = {*C.METRIC_COLUMNS, *C.PROBE_COLUMNS}
    finite = [c for c, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)]
    plugin = [c for c in finite if c not in known]
    shown = [c for c in BRIEF_COLUMNS if c in finite] + plugin[:BRIEF_PLUGIN_COLUMNS]
    text = ", ".join(f"{c} {values[c]:.4g}" for c in shown)
    if len(plugin) > BRIEF_PLUGIN_COLUMNS:
        text += f" (+{len(plugin) - BRIEF_PLUGIN_COLUMNS} more)"
    return text or "no finite metrics"
