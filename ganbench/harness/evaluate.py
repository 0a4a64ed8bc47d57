"""``ganbench evaluate``: score a generator ganbench did not train (a checkpoint of an earlier
run, a TorchScript file, or a folder of generated PNGs) with a run's metrics, probes, reference
rows and tables, into a run directory that ``report`` and ``compare`` read like any other.

Nothing here computes a metric: the scoring is the harness's own (:class:`JobEnv`, the final
evaluation of :class:`Job`), on the latents a run's final evaluation draws (the seed plus
``EVAL_SEED_OFFSET``), so a checkpoint scores exactly what its run scored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganbench import columns as C
from ganbench.attributes import dataset_attributes
from ganbench.config import _PARSERS, RunConfig
from ganbench.data import DataRequest, DatasetSplits, check_splits, hold_out, load_dataset
from ganbench.errors import UsageError, describe
from ganbench.evaluation.classifier import HeldOutClassifier, WatchedFeatures, load_or_train
from ganbench.evaluation.judges import load_or_train_judges
from ganbench.harness import events as E
from ganbench.harness import rundir as R
from ganbench.harness.job import CHECKPOINT_FORMAT, NOT_HELD_OUT, Job, JobEnv, reference_rows, run_fingerprint
from ganbench.harness.plan import Plan, plan_run
from ganbench.harness.provenance import config_record
from ganbench.harness.runner import RunResult
from ganbench.harness.trainer import RunState
from ganbench.harness.writer import ResultsWriter
from ganbench.registry import Registered, Registry, load_registry
from ganbench.specs import TASK_GENERATION, VariantSpec
from ganbench.variant import GenerativeVariant, Variant, VariantContext

log = logging.getLogger(__name__)

EVALUATE_PLUGIN = "ganbench.evaluate"  # the "plugin" of a generator given as a file or a folder
VALIDATION_BATCH = 4
RANGE_SLACK = 1e-4  # a tanh output a rounding step past +-1 is still in range
SOURCES = ("checkpoint", "torchscript", "images")
# The run options evaluate takes (config key = CLI flag = API argument); unset ones are the
# checkpoint's run's, or RunConfig's defaults for a file or a folder.
RUN_OPTIONS = (
    "dataset", "eval_samples", "seeds", "out", "device", "metrics", "probes", "set", "plugin", "data_dir",
    "download", "cache_dir", "inception_weights", "dinov2_weights", "resample", "holdout",
)  # fmt: skip


@dataclass(frozen=True)
class EvaluateConfig:
    """What ``ganbench evaluate`` scores and how.

    Attributes:
        checkpoint: ``RUN_DIR/checkpoints/<variant>-seed<k>.pt`` of an earlier ganbench run:
            scored under that run's options (its dataset, samples, metrics, probes, seed).
        torchscript: a TorchScript generator, ``forward(z, labels=None) -> images in [-1, 1]``.
        images: a folder of generated PNGs; for a conditional generator one subfolder per
            class, named by its index or its name.
        name: the variant column of its rows [default: the checkpoint's variant, the file's or
            the folder's name].
        z_dim: the TorchScript generator's latent size [default: its ``z_dim`` attribute].
        conditional: whether it takes labels [default: its ``conditional`` attribute, else
            no; for a folder: whether it has class subfolders].
        options: the run options (:data:`RUN_OPTIONS`) given, typed as RunConfig types them.
    """

    checkpoint: Path | None = None
    torchscript: Path | None = None
    images: Path | None = None
    name: str | None = None
    z_dim: int | None = None
    conditional: bool | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "arguments") -> EvaluateConfig:
        own: dict[str, Any] = {}
        options: dict[str, Any] = {}
        accepted = [*SOURCES, "name", "z_dim", "conditional", *RUN_OPTIONS]
        for raw, value in values.items():
            key = raw.replace("-", "_")
            if value is None:
                continue
            if key in SOURCES:
                own[key] = Path(value)
            elif key == "name":
                own[key] = str(value)
            elif key in ("z_dim", "conditional"):
                try:
                    own[key] = _PARSERS["eval_samples" if key == "z_dim" else "resample"](value)
                except (TypeError, ValueError) as exc:
                    raise UsageError(f"{key} in {source}: {exc}") from None
            elif key in RUN_OPTIONS:
                try:
                    options[key] = _PARSERS[key](value)
                except (TypeError, ValueError) as exc:
                    raise UsageError(f"{key} in {source}: {exc}") from None
            else:
                raise UsageError(f"unknown key {raw!r} in {source}; accepted: {', '.join(sorted(accepted))}")
        config = cls(**own, options=options)
        config.check()
        return config

    def check(self) -> None:
        given = [s for s in SOURCES if getattr(self, s) is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(f"--{s}" for s in given)
            raise UsageError(f"give exactly one of --checkpoint, --torchscript or --images to score (got {what})")
        if self.z_dim is not None and self.z_dim < 1:
            raise UsageError(f"z_dim must be at least 1, got {self.z_dim}")
        if self.checkpoint is not None and (self.z_dim is not None or self.conditional is not None):
            raise UsageError("--z-dim and --conditional are for --torchscript and --images; a checkpoint knows its own")

    @property
    def source(self) -> str:
        return next(s for s in SOURCES if getattr(self, s) is not None)


# --- sources ------------------------------------------------------------------------------------


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A job checkpoint read without running any code (``weights_only=True``), checked to be
    of this ganbench's checkpoint format; a one-line UsageError otherwise."""
    from ganbench.evaluation.cache import short_reason

    if not path.is_file():
        raise UsageError(f"--checkpoint {path} is not a file; accepted: RUN_DIR/checkpoints/<variant>-seed<k>.pt")
    try:
        with warnings.catch_warnings():  # torch's warnings about a file it is about to refuse: the refusal says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = short_reason(exc)
        reason = reason if "weights_only" not in reason else type(exc).__name__  # never pass that advice on
        raise UsageError(f"--checkpoint {path} is unreadable: damaged, or not a ganbench checkpoint ({reason})") from None
    found = state.get("format") if isinstance(state, dict) else None
    if found != CHECKPOINT_FORMAT or not isinstance(state.get("job"), dict):
        version = f"format {found!r}" if isinstance(found, str) else "no ganbench checkpoint format"
        raise UsageError(
            f"--checkpoint {path} has {version}, not {CHECKPOINT_FORMAT}: written by another ganbench version "
            f"or not by ganbench; accepted: a checkpoint of a run of this version"
        )
    return state


def checkpoint_run(path: Path, state: dict[str, Any], options: Mapping[str, Any], registry_for: Any) -> RunConfig:
    """The options of the run a checkpoint belongs to (``RUN_DIR/config.json``, two folders up),
    checked against the checkpoint's fingerprint, with the evaluation's own options on top."""
    run_dir = path.absolute().parent.parent
    record = R.read_record(run_dir / R.CONFIG_JSON)
    if record is None:
        raise UsageError(
            f"--checkpoint {path}: no ganbench run around it (no readable {R.CONFIG_JSON} in {run_dir}); "
            "accepted: RUN_DIR/checkpoints/<variant>-seed<k>.pt inside its run directory"
        )
    before = RunConfig.from_mapping(record["run"], source=f"{run_dir / R.CONFIG_JSON}")
    job = state["job"]
    if options.get("dataset") not in (None, before.dataset):
        raise UsageError(
            f"--checkpoint {path} is of a generator trained on {before.dataset}, not --dataset {options['dataset']}; "
            f"accepted: --dataset {before.dataset} or none"
        )
    if run_fingerprint(plan_run(before, registry_for(before))) != job.get("run"):
        raise UsageError(
            f"--checkpoint {path} was made by a run with other options (another dataset or settings) than "
            f"{run_dir / R.CONFIG_JSON} records; accepted: a checkpoint inside the run directory that made it"
        )
    variant, seed = job.get("variant"), job.get("seed")
    if variant not in before.variants or seed not in before.seeds:
        raise UsageError(f"--checkpoint {path} is of {variant} seed {seed}, which its run does not have")
    base = before.replace(variants=(variant,), seeds=(seed,), checkpoints=False, out=None)
    if "seeds" in options and tuple(options["seeds"]) != (seed,):
        raise UsageError(
            f"--checkpoint {path} is {variant} seed {seed}: its latents are that seed's; accepted: --seeds {seed} or none"
        )
    return base.replace(**{k: v for k, v in options.items() if k != "seeds"})


class ScriptedGenerator(GenerativeVariant):
    """A TorchScript generator as a variant: it only generates (and is steered by probes)."""

    def __init__(self, context: VariantContext, config: Any, module: torch.nn.Module, z_dim: int) -> None:
        super().__init__(context, config)
        self.module = module
        self.z_dim = z_dim

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.module}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def train_step(self, data: Any) -> dict[str, torch.Tensor]:
        raise RuntimeError("a scored generator is not trained")

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.module(z) if labels is None else self.module(z, labels)


def load_torchscript(path: Path, device: torch.device) -> torch.nn.Module:
    # torch.jit.load reads TorchScript's own archive (code as TorchScript source, tensors as
    # data): it unpickles no arbitrary Python objects, unlike torch.load without weights_only.
    if not path.is_file():
        raise UsageError(f"--torchscript {path} is not a file; accepted: a TorchScript file (torch.jit.save)")
    try:
        with warnings.catch_warnings():  # TorchScript's deprecation notice: it is the format users export to
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:
        raise UsageError(
            f"--torchscript {path} is not a TorchScript file ({type(exc).__name__}); accepted: a file "
            "written by torch.jit.save of a scripted or traced generator"
        ) from None
    return module


def _script_attribute(module: torch.nn.Module, name: str) -> Any:
    try:
        return getattr(module, name)
    except (AttributeError, RuntimeError):
        return None


def validate_generator(path: Path, variant: GenerativeVariant, splits: DatasetSplits, conditional: bool) -> None:
    """A small batch through the generator: it must run, and give the dataset's image shape in
    [-1, 1]; anything else is a one-line UsageError naming what it did."""
    n, k = VALIDATION_BATCH, splits.num_classes
    z = variant.sample_latent(n, generator=torch.Generator(device=variant.device).manual_seed(0))
    labels = torch.arange(n, device=variant.device) % k if conditional else None
    try:
        with variant.evaluating():
            out = variant.generate(z, labels)
    except Exception as exc:
        raise UsageError(
            f"--torchscript {path} raised on a batch of {n} latents of size {variant.z_dim}"
            f"{' with labels' if conditional else ''}: {describe(exc).splitlines()[0][:200]}; accepted: "
            "forward(z, labels=None) (check --z-dim and --conditional)"
        ) from None
    want = (n, *splits.image_shape)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(f"--torchscript {path} returned {got} for {n} latents; accepted: images of shape {want}")
    lo, hi = (float(v) for v in out.aminmax())
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1 - RANGE_SLACK or hi > 1 + RANGE_SLACK:
        raise UsageError(
            f"--torchscript {path} returned values in [{lo:.4g}, {hi:.4g}]; accepted: images in [-1, 1] (tanh output)"
        )


def read_images(folder: Path, splits: DatasetSplits, n: int, conditional: bool | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` images from ``folder`` as uint8 (N, C, H, W), labels balanced as a run draws them
    (sample i of class i mod K), or None for an unconditional folder (PNGs directly in it)."""
    from PIL import Image

    if not folder.is_dir():
        raise UsageError(f"--images {folder} is not a folder; accepted: a folder of PNGs, per class in subfolders")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    conditional = bool(subfolders) if conditional is None else conditional
    names = list(splits.class_names)
    k = splits.num_classes
    if conditional:
        by_class: dict[int, Path] = {}
        for sub in subfolders:
            index = int(sub.name) if sub.name.isdigit() else names.index(sub.name) if sub.name in names else None
            if index is None or index >= k:
                raise UsageError(
                    f"--images {folder}: subfolder {sub.name!r} names no class of {splits.name}; accepted: "
                    f"0-{k - 1} or {', '.join(names)}"
                )
            by_class[index] = sub
        missing = [i for i in range(k) if i not in by_class]
        if missing:
            raise UsageError(f"--images {folder} has no subfolder for class {missing[0]} ({names[missing[0]]}); "
                             f"a conditional generator's folder needs one per class")  # fmt: skip
        need = [len(range(i, n, k)) for i in range(k)]
        files = {i: sorted(by_class[i].glob("*.png")) for i in range(k)}
        short = [i for i in range(k) if len(files[i]) < need[i]]
        if short:
            i = short[0]
            raise UsageError(
                f"--images {folder}: class {i} has {len(files[i])} PNGs, fewer than the {need[i]} that "
                f"--eval-samples {n} needs; accepted: at least {need[i]} per class, or a smaller --eval-samples"
            )
        order = [files[i % k][i // k] for i in range(n)]
        labels: torch.Tensor | None = torch.arange(n) % k
    else:
        found = sorted(folder.glob("*.png"))
        if len(found) < n:
            raise UsageError(
                f"--images {folder} has {len(found)} PNGs, fewer than --eval-samples {n}; accepted: at least {n}"
            )
        order, labels = found[:n], None
    channels, height, width = splits.image_shape
    mode = "L" if channels == 1 else "RGB"
    images = []
    for path in order:
        try:
            with Image.open(path) as picture:
                picture.load()
                size, pmode = picture.size, picture.mode
                array = torch.from_numpy(__import__("numpy").asarray(picture.convert(mode)).copy())
        except Exception as exc:
            raise UsageError(f"--images: {path} is not a readable PNG ({type(exc).__name__})") from None
        if size != (width, height) or (pmode in ("L", "RGB") and pmode != mode):
            raise UsageError(
                f"--images: {path} is {size[0]}x{size[1]} {pmode}; accepted: {width}x{height} {mode}, "
                f"{splits.name}'s image shape"
            )
        images.append(array[None] if channels == 1 else array.permute(2, 0, 1))
    return torch.stack(images), labels


@dataclass
class Source:
    """What a plan scores: a variant (None for a folder of images) or its images."""

    kind: str
    path: Path
    spec: VariantSpec | None = None
    state: dict[str, Any] | None = None  # a checkpoint's contents
    module: torch.nn.Module | None = None
    z_dim: int | None = None
    conditional: bool = False

    def record(self) -> dict[str, Any]:
        path = self.path.absolute()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        return {"source": self.kind, "path": str(path), "sha256": digest}


def _external_spec(name: str, conditional: bool, build: Any) -> VariantSpec:
    return VariantSpec(name, build=build, conditional=conditional, description=f"scored by ganbench evaluate")


def _with_variant(registry: Registry, spec: VariantSpec) -> Registry:
    if spec.name in registry.variants:
        raise UsageError(f"--name {spec.name} is a registered variant; choose another name for the scored generator")
    return dataclasses.replace(registry, variants={**registry.variants, spec.name: Registered(spec, EVALUATE_PLUGIN)})


def prepare(config: EvaluateConfig, registry: Registry | None = None) -> tuple[Plan, Registry, Source]:
    """Plan the evaluation: the source read (a checkpoint) or opened (a TorchScript file), the
    run options resolved, every name checked; nothing is written."""
    options = dict(config.options)

    def registry_for(run: RunConfig) -> Registry:
        return registry if registry is not None else load_registry(run.plugin)

    if config.checkpoint is not None:
        path = Path(config.checkpoint)
        state = read_checkpoint(path)
        run = checkpoint_run(path, state, options, registry_for)
        reg = registry_for(run)
        if config.name not in (None, run.variants[0]):
            raise UsageError(f"--name: a checkpoint's rows are its variant's ({run.variants[0]}); drop --name")
        plan = plan_run(run, reg)
        return plan, reg, Source("checkpoint", path, plan.variants[0].spec, state)
    run = RunConfig.from_mapping({**options, "checkpoints": False, "variants": ("pending",)})
    if config.torchscript is not None:
        path = Path(config.torchscript)
        module = load_torchscript(path, torch.device("cpu"))
        z_dim = config.z_dim if config.z_dim is not None else _script_attribute(module, "z_dim")
        if not isinstance(z_dim, int) or isinstance(z_dim, bool) or z_dim < 1:
            raise UsageError(f"--torchscript {path} has no z_dim attribute; give its latent size with --z-dim N")
        flag = config.conditional if config.conditional is not None else _script_attribute(module, "conditional")
        conditional = bool(flag) if isinstance(flag, bool) else False
        name = config.name or _label(path.stem)

        def build(context: VariantContext, cfg: Any) -> Variant:
            return ScriptedGenerator(context, cfg, module.to(context.device), z_dim)

        spec = _external_spec(name, conditional, build)
        source = Source("torchscript", path, spec, module=module, z_dim=z_dim, conditional=conditional)
    else:
        path = Path(config.images)  # type: ignore[arg-type]
        if not path.is_dir():
            raise UsageError(f"--images {path} is not a folder; accepted: a folder of PNGs, per class in subfolders")
        conditional = config.conditional if config.conditional is not None else any(p.is_dir() for p in path.iterdir())
        name = config.name or _label(path.name)

        def no_build(context: VariantContext, cfg: Any) -> Variant:
            raise RuntimeError("a folder of images has no generator to build")

        spec = _external_spec(name, conditional, no_build)
        source = Source("images", path, spec, conditional=conditional)
        if options.get("probes"):
            raise UsageError("--images: probes need a generator to steer or sample; drop --probes (or use --torchscript)")
        run = run.replace(probes=())
    reg = _with_variant(registry_for(run), spec)
    return plan_run(run.replace(variants=(spec.name,)), reg), reg, source


def _label(text: str) -> str:
    label = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return label or "generator"


# --- the evaluation -----------------------------------------------------------------------------


def evaluate(
    config: EvaluateConfig | None = None, *, registry: Registry | None = None, report: bool = False, **kwargs: Any
) -> RunResult:
    """Score a generator ganbench did not train, into a new run directory::

        ganbench.evaluate(checkpoint="results/run/checkpoints/cgan-seed0.pt", out="results/again")
        ganbench.evaluate(torchscript="g.pt", z_dim=100, conditional=True, dataset="fashion-mnist")

    Takes an :class:`EvaluateConfig` or its fields (``checkpoint``, ``torchscript``, ``images``,
    ``name``, ``z_dim``, ``conditional``, and the run options of :data:`RUN_OPTIONS`)."""
    if config is None:
        config = EvaluateConfig.from_mapping(kwargs)
    elif kwargs:
        raise TypeError("give an EvaluateConfig or keyword options, not both")
    plan, registry, source = prepare(config, registry)
    if R.inspect_out(plan.run_dir) is not None:
        raise UsageError(f"--out {plan.run_dir} holds a run already; evaluate writes a new run: choose a new or empty --out")
    run = plan.config
    splits = load_dataset(plan.dataset, DataRequest(run.data_dir, run.download, plan.cache_dir))
    check_splits(plan.dataset, splits)
    scored = hold_out(splits, run.holdout) if run.holdout else splits
    classifier = load_or_train(splits, plan.cache_dir, plan.device)
    name = plan.variants[0].spec.name
    variant, features, images = _open(plan, source, scored, classifier)  # bad input: refused before any write
    with R.opened(plan.run_dir) as rundir:
        attributes = dataset_attributes(plan.dataset, splits)
        judges = load_or_train_judges(splits, attributes, classifier, plan.cache_dir, plan.device) if plan.probed else None
        record = {**config_record(plan, splits, classifier, registry, attributes, judges), "evaluated": source.record()}
        tables = [t for p in plan.probes for t in p.spec.tables]
        if run.resample and plan.generates and variant is not None:
            tables.append(R.SAMPLING_TABLE)
        keys = [(C.REAL_DATA, -1)] if plan.generates else []
        keys += [(f"{C.BICUBIC}-x{s}", -1) for s in plan.sr_scales]
        writer = ResultsWriter(rundir, plan.columns, [*keys, *plan.jobs()], tables)
        env = JobEnv(plan, scored, classifier, rundir, attributes, judges)
        R.atomic_write_text(rundir.config, json.dumps(record, indent=2, default=str) + "\n")
        log.info("run directory: %s", plan.run_dir)
        if source.kind == "checkpoint":  # train_flops as its run counted them
            env.step_flops(name)
        try:
            for event in reference_rows(env):
                writer.handle(event)
            for seed in run.seeds:
                _score(env, writer.handle, source, name, seed, variant, features, images)
        finally:
            metrics, summary = writer.finish()
    result = RunResult(plan.run_dir, metrics, summary, writer.jobs_frame(), plan.directions)
    if report:
        from ganbench.report.render import build_report

        build_report(result.run_dir)
    return result


def _open(
    plan: Plan, source: Source, splits: DatasetSplits, classifier: HeldOutClassifier
) -> tuple[Variant | None, WatchedFeatures, tuple[torch.Tensor, torch.Tensor | None] | None]:
    """The variant to score (its weights loaded, validated) or the folder's images."""
    features = WatchedFeatures(classifier, plan.device)
    planned = plan.variants[0]
    if source.kind == "images":
        return None, features, read_images(source.path, splits, plan.config.eval_samples, source.conditional)
    context = VariantContext(
        splits.image_shape, splits.num_classes, plan.device, features, planned.spec.conditional, precision="fp32"
    )
    variant = planned.spec.build(context, planned.config)
    if source.kind == "checkpoint":
        assert source.state is not None
        try:
            variant.load_state_dict(source.state["trainer"]["variant"])
        except Exception as exc:
            raise UsageError(f"--checkpoint {source.path} does not fit {planned.spec.name}: {describe(exc)[:200]}") from None
        features.used = bool(source.state.get("features_used"))
    else:
        assert isinstance(variant, GenerativeVariant)
        validate_generator(source.path, variant, splits, source.conditional)
    return variant, features, None


def _score(
    env: JobEnv,
    emit: Any,
    source: Source,
    name: str,
    seed: int,
    variant: Variant | None,
    features: WatchedFeatures,
    images: tuple[torch.Tensor, torch.Tensor | None] | None,
) -> None:
    """One row: the final evaluation of a job (:meth:`Job.run`'s), on this source."""
    job = Job(name, seed, env.plan.config)
    saved = source.state
    state = RunState(**saved["trainer"]["state"]) if saved is not None else RunState()
    emit(E.JobStarted(name, seed))
    spec = env.plan.variant(name).spec
    start = time.perf_counter()
    if variant is not None:
        samples, labels, reference, rate = job._produce(env, variant)
    else:
        assert images is not None
        (samples, labels), reference, rate = images, None, math.nan
    result = env.evaluate(name, spec.task, samples, labels, True, reference)
    probes = env.probe(name, variant, seed) if variant is not None else None
    if probes is not None:
        for table_name, rows in probes.tables.items():
            emit(E.Table(table_name, name, seed, state.eval_index, rows))
        for probe, pictures in probes.pictures.items():
            for file, data in pictures.items():
                emit(E.Artefact(env.rundir.relative(env.rundir.probe_picture(name, seed, probe, file)), data))
    if env.plan.config.resample and isinstance(variant, GenerativeVariant):
        emit(job._resample(env, variant, state, result))
    notes = [NOT_HELD_OUT if features.used else "", f"scored by ganbench evaluate from {source.kind} {source.path}"]
    critic_steps = variant.critic_steps if variant is not None else 0
    status = C.STATUS_OK
    row = {**env.row(name, seed, state, status, critic_steps, "; ".join(n for n in notes if n)), C.GEN_IMG_PER_S: rate}
    emit(env.scored_row(row, result, probes))
    if variant is not None:
        emit(E.Artefact(env.rundir.relative(env.rundir.sample_grid(name, seed)), job._grid(env, variant)))
    log.info("%s seed %d scored in %.1f s", name, seed, time.perf_counter() - start)
    emit(E.JobEnded(name, seed, status, "", state.step, state.eval_index))
