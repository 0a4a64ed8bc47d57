"""Built-in probes: steering, label swap, path length, classification accuracy score and
memorisation, registered through the ``ganbench`` hook like any third-party probe.
docs/metrics.md defines every score."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ganbench import columns as C
from ganbench import hookimpl
from ganbench.data import to_float, to_uint8
from ganbench.probes import ProbeContext, ProbeResult, ReferenceContext
from ganbench.specs import HIGHER, LOWER, NEITHER, ProbeSpec, VariantSpec
from ganbench.steering import ATTRIBUTE, CHUNK, CLASS, MODES, PLAIN, SCORES, Steered, Target, judged, score_rows, steer

STEER_COLUMNS = {
    mode: dict(zip(SCORES, C.STEER_PLAIN_COLUMNS if mode == PLAIN else C.STEER_COLUMNS, strict=True)) for mode in MODES
}
PPL_SIMILARITY = "ganbench-judge-features"  # torch-fidelity sample similarity (registered on first use)
PPL_FEATURES_KWARG = "ganbench_features"  # the calculate_metrics kwarg that hands it the judge's features
PPL_BATCH = 500  # latent pairs per generator call: 1000 images
PPL_DISCARD = (1, 99)  # percentiles of the distances kept, torch-fidelity's (and StyleGAN's) defaults


def _positive(config: object, *names: str) -> None:
    for name in names:
        if not getattr(config, name) > 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)!r}")


@dataclass(frozen=True)
class SteeringConfig:
    latents: int = 64  # latents steered toward each target (the same ones for every target)
    steps: int = 10  # S gradient steps
    penalty: float = 0.1  # w: weight of the other attributes' L2 change in the penalised score
    step_size: float | None = None  # eta; None: 1 / steps
    strip: int = 4  # latents shown per mode in each steering-<target>.png

    def __post_init__(self) -> None:
        _positive(self, "latents", "steps")
        if self.penalty < 0 or self.strip < 0 or (self.step_size is not None and not self.step_size > 0):
            raise ValueError("penalty and strip must be >= 0 and step_size positive (or none)")


@dataclass(frozen=True)
class LabelSwapConfig:
    latents: int = 100  # each rendered under every label
    strip: int = 8  # latents shown in label-swap.png

    def __post_init__(self) -> None:
        _positive(self, "latents")


@dataclass(frozen=True)
class PathLengthConfig:
    samples: int = 2000  # latent pairs
    epsilon: float = 1e-4  # step along the latent path
    seed: int | None = None  # torch-fidelity's rng_seed for the latents (and labels); None: the run's seed

    def __post_init__(self) -> None:
        _positive(self, "samples", "epsilon")


@dataclass(frozen=True)
class CASConfig:
    samples: int = 10000  # generated images the classifier trains on, balanced over the classes
    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-3  # Adam's, constant

    def __post_init__(self) -> None:
        _positive(self, "samples", "epochs", "batch_size", "lr")


@dataclass(frozen=True)
class MemorisationConfig:
    samples: int = 2000  # generated images, each compared with the whole train split
    percentile: float = 5.0  # of the unseen test images' distances: closer than it counts as memorised
    pairs: int = 8  # closest sample/training-image pairs shown in memorisation.png

    def __post_init__(self) -> None:
        _positive(self, "samples")
        if not 0 < self.percentile < 100 or self.pairs < 0:
            raise ValueError(f"percentile must be in (0, 100) and pairs >= 0, got {self.percentile!r}, {self.pairs!r}")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "target"


def _labels(probe: ProbeContext, n: int) -> torch.Tensor | None:
    """Balanced labels for a conditional variant, None for an unconditional one."""
    return torch.arange(n, device=probe.device) % probe.variant.context.num_classes if probe.spec.conditional else None


def compute_steering(probe: ProbeContext) -> ProbeResult:
    cfg: SteeringConfig = probe.config
    variant, attributes = probe.variant, probe.attributes
    names = attributes.names if attributes is not None else ()
    targets = [Target(name, ATTRIBUTE, i) for i, name in enumerate(names)]
    if not probe.spec.conditional:  # a conditional variant's class is fixed by its label
        targets += [Target(name, CLASS, k) for k, name in enumerate(probe.data.class_names)]
    nan = {c: math.nan for c in (*C.STEER_COLUMNS, *C.STEER_PLAIN_COLUMNS)}
    if not targets:
        return ProbeResult(nan, notes={c: "the dataset declares no attributes" for c in nan})

    labels = _labels(probe, cfg.latents)
    with variant.frozen():
        z0 = variant.sample_latent(cfg.latents, generator=probe.generator)
        steered = steer(
            variant.generate,
            probe.steering,
            names,
            targets,
            z0,
            labels,
            steps=cfg.steps,
            step_size=cfg.step_size or 1.0 / cfg.steps,
            penalty=cfg.penalty,
            strip=cfg.strip,
        )
    measured_before = measured_after = None
    if attributes is not None and attributes.measured:
        measured_before = attributes.present(to_uint8(steered.images0).cpu())
        measured_after = attributes.present(to_uint8(steered.images).cpu())
    rows = score_rows(
        steered,
        targets,
        judged(probe.judge, steered.images0, names),
        judged(probe.judge, steered.images, names),
        len(names),
        measured_before,
        measured_after,
    )

    values, notes = dict(nan), {}
    if names:
        for mode in MODES:
            mine = [r for r in rows if r["mode"] == mode and r["kind"] == ATTRIBUTE]
            values.update({col: sum(r[s] for r in mine) / len(mine) for s, col in STEER_COLUMNS[mode].items()})
        if not attributes.measured:
            for mode in MODES:
                notes[STEER_COLUMNS[mode]["verified_gain"]] = "annotated attributes cannot be measured from pixels"
    else:
        notes = {c: "the dataset declares no attributes (class targets: steering table only)" for c in nan}
    return ProbeResult(values, tables={"steering": rows}, pictures=_strips(steered, targets, cfg), notes=notes)


def _strips(steered: Steered, targets: list[Target], cfg: SteeringConfig) -> dict[str, bytes]:
    """steering-<target>.png: one row per shown latent (plain rows above penalised rows), one
    column per step 0..S."""
    from ganbench.pictures import grid_png

    shown = min(cfg.strip, len(steered.z0))
    if shown == 0:
        return {}
    pictures = {}
    for i, target in enumerate(targets):
        rows = [(m * len(targets) + i) * shown + j for m in range(len(MODES)) for j in range(shown)]
        frames = steered.frames[:, rows].transpose(0, 1).flatten(0, 1)  # row-major: latent, then step
        labels = [f"{mode} {j + 1}" for mode in MODES for j in range(shown)]
        prefix = "steering-class-" if target.kind == CLASS else "steering-"
        pictures[f"{prefix}{_slug(target.name)}.png"] = grid_png(
            to_uint8(frames).cpu(), per_row=cfg.steps + 1, row_labels=labels
        )
    return pictures


def compute_label_swap(probe: ProbeContext) -> ProbeResult:
    cfg: LabelSwapConfig = probe.config
    variant = probe.variant
    if not probe.spec.conditional:
        return ProbeResult({C.SWAP_CONSISTENCY: math.nan}, notes={C.SWAP_CONSISTENCY: "unconditional variant"})
    k = variant.context.num_classes
    labels = torch.arange(k, device=probe.device).repeat(cfg.latents)
    with variant.frozen(), torch.no_grad():
        z = variant.sample_latent(cfg.latents, generator=probe.generator).repeat_interleave(k, 0)
        images = torch.cat([to_uint8(variant.generate(zc, yc)) for zc, yc in zip(z.split(CHUNK), labels.split(CHUNK))])
        predicted = torch.cat([probe.judge.class_logits(to_float(c)).argmax(1) for c in images.split(CHUNK)])
    hits = (predicted.cpu() == labels.cpu()).double()
    per_label = hits.view(cfg.latents, k).mean(0)
    table = [
        {"class_index": j, "class_name": name, C.SWAP_CONSISTENCY: per_label[j].item()}
        for j, name in enumerate(probe.data.class_names)
    ]
    pictures = {}
    if cfg.strip > 0:
        from ganbench.pictures import grid_png

        pictures["label-swap.png"] = grid_png(images[: min(cfg.strip, cfg.latents) * k].cpu(), per_row=k)
    return ProbeResult({C.SWAP_CONSISTENCY: hits.mean().item()}, tables={"label_swap": table}, pictures=pictures)


class _Generate(nn.Module):
    """A frozen variant's generator as the nn.Module torch-fidelity wraps: latents (and labels)
    arrive on the CPU and go to the variant's device; float images in [-1, 1] come back."""

    def __init__(self, variant) -> None:
        super().__init__()
        self.variant = variant  # not an nn.Module: eval()/cuda() on the wrapper leave it alone

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        device = self.variant.device
        return self.variant.generate(z.to(device), None if labels is None else labels.to(device))


def register_ppl_similarity() -> str:
    """Register the judge-feature similarity with torch-fidelity (idempotent); return its name."""
    import torch.nn.functional as F
    from torch_fidelity import register_sample_similarity
    from torch_fidelity.helpers import text_to_dtype
    from torch_fidelity.registry import SAMPLE_SIMILARITY_REGISTRY
    from torch_fidelity.sample_similarity_base import SampleSimilarityBase

    class JudgeFeatureDistance(SampleSimilarityBase):
        """Squared L2 distance between the judge's features of two batches of images, as
        generated (float in [-1, 1]). ``ppl_sample_similarity_dtype`` checks the inputs' dtype
        (as torch-fidelity's LPIPS does), ``ppl_sample_similarity_resize`` resizes them
        (bilinear); the features callable comes as the ``ganbench_features`` kwarg."""

        def __init__(self, name, sample_similarity_resize=None, sample_similarity_dtype=None, **kwargs):
            super().__init__(name)
            self.features = kwargs.get(PPL_FEATURES_KWARG)
            if not callable(self.features):
                raise ValueError(f"{name} needs {PPL_FEATURES_KWARG}=features(images) among the torch-fidelity kwargs")
            self.resize = sample_similarity_resize
            self.dtype = text_to_dtype(sample_similarity_dtype) if sample_similarity_dtype is not None else None

        def forward(self, in0, in1):
            if self.dtype is not None and not (in0.dtype == in1.dtype == self.dtype):
                raise ValueError(f"expected {self.dtype} images, got {in0.dtype} and {in1.dtype}")
            if self.resize is not None:
                in0, in1 = (
                    F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False) for x in (in0, in1)
                )
            return (self.features(in0).double() - self.features(in1).double()).pow(2).sum(1)

    if PPL_SIMILARITY not in SAMPLE_SIMILARITY_REGISTRY:
        register_sample_similarity(PPL_SIMILARITY, JudgeFeatureDistance)
    return PPL_SIMILARITY


def trimmed_mean(distances: np.ndarray, lower: float = PPL_DISCARD[0], higher: float = PPL_DISCARD[1]) -> float:
    """The mean of the distances between their ``lower`` and ``higher`` percentiles, as
    torch-fidelity's calculate_ppl trims them (its own call passes numpy's removed
    ``interpolation=`` keyword, renamed ``method=`` in numpy 1.22, so it is done here)."""
    lo = np.percentile(distances, lower, method="lower")
    hi = np.percentile(distances, higher, method="higher")
    return float(distances[(lo <= distances) & (distances <= hi)].mean())


def compute_path_length(probe: ProbeContext) -> ProbeResult:
    cfg: PathLengthConfig = probe.config
    features = getattr(probe.judge, "features", None)
    if not callable(features):
        return ProbeResult({C.PPL_DOMAIN: math.nan}, notes={C.PPL_DOMAIN: "the judge exposes no features(images)"})
    import torch_fidelity
    from torch_fidelity import GenerativeModelModuleWrapper

    variant = probe.variant
    classes = variant.context.num_classes if probe.spec.conditional else 0
    with variant.frozen():
        model = GenerativeModelModuleWrapper(_Generate(variant), int(variant.z_dim), "normal", classes)
        out = torch_fidelity.calculate_metrics(
            input1=model,
            input1_model_num_samples=int(cfg.samples),
            input1_model_num_classes=classes,
            ppl=True,
            ppl_epsilon=float(cfg.epsilon),
            ppl_z_interp_mode="lerp",
            ppl_sample_similarity=register_ppl_similarity(),
            ppl_sample_similarity_resize=None,  # the judge's own resolution
            ppl_sample_similarity_dtype="float32",  # never uint8: an epsilon step is far below one grey level
            ppl_reduction="none",  # every distance back, trimmed below
            ppl_discard_percentile_lower=None,
            ppl_discard_percentile_higher=None,
            rng_seed=int(probe.seed if cfg.seed is None else cfg.seed),
            batch_size=PPL_BATCH,
            cuda=False,  # latents stay on the CPU; _Generate moves them, nothing moves the variant
            cache=False,
            verbose=False,
            **{PPL_FEATURES_KWARG: features},
        )
    return ProbeResult({C.PPL_DOMAIN: trimmed_mean(out[torch_fidelity.KEY_METRIC_PPL_RAW])})


# --- classification accuracy score ----------------------------------------------------------------


def compute_cas(probe: ProbeContext) -> ProbeResult:
    from ganbench.cas import draw_seed

    cfg: CASConfig = probe.config
    if not probe.spec.conditional:
        return ProbeResult({C.CAS: math.nan}, notes={C.CAS: "unconditional variant"})
    seed = draw_seed(probe.generator)  # first, as the reference draws it: one classifier seed for both
    labels = _labels(probe, cfg.samples)
    assert labels is not None
    variant = probe.variant
    with variant.frozen(), torch.no_grad():
        z = variant.sample_latent(cfg.samples, generator=probe.generator)
        images = torch.cat(
            [to_uint8(variant.generate(zc, yc)).cpu() for zc, yc in zip(z.split(CHUNK), labels.split(CHUNK))]
        )
    return _cas(images, labels.cpu(), probe.data, cfg, seed, probe.device)


def reference_cas(ref: ReferenceContext) -> ProbeResult:
    """The same classifier (seed drawn first from the same stream as a job of seed 0) trained on
    as many real training images, balanced over the classes; cached per data, options and seed."""
    from ganbench.cas import balanced_subset, draw_seed

    cfg: CASConfig = ref.config
    seed = draw_seed(ref.generator)
    idx = balanced_subset(ref.data.train_labels, cfg.samples, ref.data.num_classes, ref.generator)

    def build() -> dict[str, torch.Tensor]:
        out = _cas(ref.data.train_images[idx], ref.data.train_labels[idx], ref.data, cfg, seed, ref.device)
        row = out.tables["cas"]
        per_class = [r[C.CAS] for r in row]
        return {
            "accuracy": torch.tensor([out.values[C.CAS]], dtype=torch.float64),
            "per_class": torch.tensor(per_class, dtype=torch.float64),
        }

    if ref.cache_dir is None:
        tensors = build()
    else:
        from ganbench.evaluation.cache import cache_path, load_or_build
        from ganbench.evaluation.classifier import fingerprint

        identity = {
            "kind": "cas-reference", "version": 1, "data": fingerprint(ref.data), "seed": seed,
            "device": ref.device.type, **{k: repr(v) for k, v in vars(cfg).items()},
        }  # fmt: skip
        key = hashlib.sha256(repr(sorted(identity.items())).encode()).hexdigest()[:16]
        tensors = load_or_build(cache_path(ref.cache_dir, f"cas-reference-{ref.data.name}-{key}"), identity, build)
    counts = torch.bincount(ref.data.train_labels[idx], minlength=ref.data.num_classes)
    return ProbeResult(
        {C.CAS: tensors["accuracy"].item()}, tables={"cas": _cas_table(ref.data, tensors["per_class"].tolist(), counts)}
    )


def _cas(images, labels, data, cfg: CASConfig, seed: int, device: torch.device) -> ProbeResult:
    from ganbench.cas import fit, score

    k = data.num_classes
    net = fit(images, labels, k, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=seed, device=device)
    result = score(net, data.test_images, data.test_labels, k)
    table = _cas_table(data, result.per_class, torch.bincount(labels.cpu(), minlength=k))
    return ProbeResult({C.CAS: result.accuracy}, tables={"cas": table})


def _cas_table(data, per_class: list[float], counts: torch.Tensor) -> list[dict]:
    return [
        {C.CLASS_INDEX: j, C.CLASS_NAME: name, C.CAS: per_class[j], "train_images": int(counts[j])}
        for j, name in enumerate(data.class_names)
    ]


# --- memorisation ---------------------------------------------------------------------------------

SPACE_COLUMNS = {  # each space's (share, ratio)
    "domain": (C.MEMORISED_SHARE_DOMAIN, C.NN_RATIO_DOMAIN),
    "pixel": (C.MEMORISED_SHARE_PIXEL, C.NN_RATIO_PIXEL),
}


def compute_memorisation(probe: ProbeContext) -> ProbeResult:
    from ganbench.memorisation import PIXEL, build_spaces, score

    cfg: MemorisationConfig = probe.config
    variant, labels = probe.variant, _labels(probe, cfg.samples)
    with variant.frozen(), torch.no_grad():
        z = variant.sample_latent(cfg.samples, generator=probe.generator)
        ys = labels.split(CHUNK) if labels is not None else [None] * len(z.split(CHUNK))
        images = torch.cat([to_uint8(variant.generate(zc, yc)).cpu() for zc, yc in zip(z.split(CHUNK), ys)])
    spaces = build_spaces(probe.data, _features(probe.judge), probe.device, probe.cache_dir)
    scores = {name: score(space, *space.nearest(images), cfg.percentile) for name, space in spaces.items()}
    result = _memorisation(scores, len(images), probe.data)
    pictures = {}
    if cfg.pairs > 0:
        from ganbench.pictures import pairs_png

        pixel = scores[PIXEL]
        closest = pixel.distances.argsort(stable=True)[: cfg.pairs]
        marks = [f"{pixel.distances[i]:.2f}{' <' if pixel.distances[i] < pixel.threshold else ''}" for i in closest]
        nearest = probe.data.train_images[pixel.index[closest]]
        pictures["memorisation.png"] = pairs_png(images[closest], nearest, row_labels=marks)
    return ProbeResult(result.values, result.tables, pictures, result.notes)


def reference_memorisation(ref: ReferenceContext) -> ProbeResult:
    """The held-out half of the test split scored like samples: what unseen real images score."""
    from ganbench.memorisation import build_spaces, score

    cfg: MemorisationConfig = ref.config
    spaces = build_spaces(ref.data, _features(ref.judge), ref.device, ref.cache_dir)
    scores = {name: score(space, space.held_out, None, cfg.percentile) for name, space in spaces.items()}
    return _memorisation(scores, len(next(iter(spaces.values())).held_out), ref.data)


def _features(judge):
    features = getattr(judge, "features", None)
    return features if callable(features) else None


def _memorisation(scores, n: int, data) -> ProbeResult:
    from ganbench.memorisation import halves, median

    values = {c: math.nan for c in C.MEMORISATION_COLUMNS}
    notes = {c: "the judge exposes no features(images)" for c in SPACE_COLUMNS["domain"]}
    table = []
    for name, s in scores.items():
        share, ratio = SPACE_COLUMNS[name]
        values[share], values[ratio] = s.memorised_share, s.nn_ratio
        for column in (share, ratio):
            notes.pop(column, None)
        table.append(
            {
                "space": name, "images": n, "calibration_images": len(halves(len(data.test_images))[0]),
                "threshold": s.threshold, "median_distance": median(s.distances),
                "typical_distance": s.typical, "memorised_share": s.memorised_share, "nn_ratio": s.nn_ratio,
            }
        )  # fmt: skip
    return ProbeResult(values, tables={"memorisation": table}, notes=notes)


def _conditional(spec: VariantSpec) -> bool:
    return spec.conditional


# success, gain, disentanglement and verified gain: higher is better; leakage (other attributes
# moved): lower; latent distance (how far steering moved z) is neither good nor bad in itself.
_STEER_DIRECTIONS = {
    C.STEER_SUCCESS: HIGHER, C.STEER_GAIN: HIGHER, C.STEER_LEAKAGE: LOWER, C.STEER_DISENTANGLEMENT: HIGHER,
    C.STEER_VERIFIED_GAIN: HIGHER, C.STEER_LATENT_DISTANCE: NEITHER,
    C.STEER_PLAIN_SUCCESS: HIGHER, C.STEER_PLAIN_GAIN: HIGHER, C.STEER_PLAIN_LEAKAGE: LOWER,
    C.STEER_PLAIN_DISENTANGLEMENT: HIGHER, C.STEER_PLAIN_VERIFIED_GAIN: HIGHER, C.STEER_PLAIN_LATENT_DISTANCE: NEITHER,
}  # fmt: skip


STEERING = ProbeSpec(
    name="steering",
    columns=(*C.STEER_COLUMNS, *C.STEER_PLAIN_COLUMNS),
    compute=compute_steering,
    config=SteeringConfig,
    tables=("steering",),
    description="gradient ascent on z toward each attribute (and class), plain and penalised; judged by the judge",
    directions=_STEER_DIRECTIONS,
)
LABEL_SWAP = ProbeSpec(
    name="label-swap",
    columns=(C.SWAP_CONSISTENCY,),
    compute=compute_label_swap,
    applies=_conditional,
    config=LabelSwapConfig,
    tables=("label_swap",),
    description="one z under every label: the judge's accuracy against the labels",
    directions={C.SWAP_CONSISTENCY: HIGHER},
)
PATH_LENGTH = ProbeSpec(
    name="path-length",
    columns=(C.PPL_DOMAIN,),
    compute=compute_path_length,
    config=PathLengthConfig,
    description="perceptual path length (torch-fidelity) in the judge's feature space",
    directions={C.PPL_DOMAIN: LOWER},
)


CAS_SCORE = ProbeSpec(
    name="cas",
    columns=(C.CAS,),
    compute=compute_cas,
    applies=_conditional,
    config=CASConfig,
    tables=("cas",),
    description="classification accuracy score: a small classifier trained on the samples, tested on the test split",
    directions={C.CAS: HIGHER},
    reference=reference_cas,
)
MEMORISATION = ProbeSpec(
    name="memorisation",
    columns=C.MEMORISATION_COLUMNS,
    compute=compute_memorisation,
    config=MemorisationConfig,
    tables=("memorisation",),
    description="samples' nearest training images against unseen test images', in the judge's features and pixels",
    directions={
        C.MEMORISED_SHARE_DOMAIN: LOWER,
        C.MEMORISED_SHARE_PIXEL: LOWER,
        C.NN_RATIO_DOMAIN: NEITHER,
        C.NN_RATIO_PIXEL: NEITHER,  # best near 1: below, closer to the training images than unseen images are
    },
    reference=reference_memorisation,
)


@hookimpl
def ganbench_register_probes(register):
    for spec in (STEERING, LABEL_SWAP, PATH_LENGTH, CAS_SCORE, MEMORISATION):
        register(spec)
