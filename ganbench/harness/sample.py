"""``ganbench sample``: a checkpoint's samples as PNGs (a grid, grids per class, a latent
interpolation strip, or N image files), drawn with :mod:`ganbench.pictures`.

The default latents are the run's own: the grid is the one the run drew for its sample grid,
and ``--n N`` images are the first N samples of its final evaluation (the files that
``ganbench evaluate --images`` reads back score what the checkpoint scores).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganbench.data import DataRequest, check_splits, load_dataset, to_uint8
from ganbench.errors import UsageError
from ganbench.evaluation import generate_samples
from ganbench.evaluation.classifier import load_or_train
from ganbench.evaluation.sampling import EVAL_SEED_OFFSET
from ganbench.harness import rundir as R
from ganbench.harness.evaluate import Source, _open, checkpoint_run, read_checkpoint
from ganbench.harness.job import GRID_PER_CLASS
from ganbench.harness.plan import plan_run
from ganbench.pictures import grid_png
from ganbench.registry import load_registry
from ganbench.variant import GenerativeVariant

log = logging.getLogger(__name__)

SAMPLES_JSON = "samples.json"
SAMPLES_FORMAT = "ganbench-samples/1"  # what tells a folder ganbench sample wrote from someone's
ACCEPTED_OUT = "accepted: a new or empty folder, or one ganbench sample wrote"
PER_CLASS_IMAGES = 100
INTERPOLATION_STEPS = 10
INTERPOLATION_ROWS = 10  # latent pairs of an unconditional strip


@dataclass(frozen=True)
class SampleConfig:
    """``ganbench sample``'s options (config key = CLI flag = API argument)."""

    checkpoint: Path
    out: Path
    per_class: bool = False
    interpolate: bool = False
    n: int | None = None
    seed: int | None = None
    device: str | None = None
    cache_dir: Path | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SampleConfig:
        given = {k.replace("-", "_"): v for k, v in values.items() if v is not None and v is not False}
        for key in ("checkpoint", "out", "cache_dir"):
            if key in given:
                given[key] = Path(given[key])
        try:
            config = cls(**given)
        except TypeError as exc:
            raise UsageError(f"sample: {exc}") from None
        config.check()
        return config

    def check(self) -> None:
        modes = [m for m, on in (("--per-class", self.per_class), ("--interpolate", self.interpolate),
                                 ("--n", self.n is not None)) if on]  # fmt: skip
        if len(modes) > 1:
            raise UsageError(f"{' and '.join(modes)}: give one of --per-class, --interpolate or --n (or none: a grid)")
        if self.n is not None and self.n < 1:
            raise UsageError(f"--n must be at least 1, got {self.n}")
        if self.seed is not None and self.seed < 0:
            raise UsageError(f"--seed must be a non-negative integer, got {self.seed}")

    @property
    def mode(self) -> str:
        return "per-class" if self.per_class else "interpolate" if self.interpolate else "images" if self.n else "grid"


def check_out(path: Path) -> None:
    """New, empty, or written by ganbench sample before: anything else holds someone's files."""
    if not path.exists():
        return
    if not path.is_dir():
        raise UsageError(f"--out {path} is a file, not a folder; {ACCEPTED_OUT}")
    names = sorted(p.name for p in path.iterdir() if p.name != R.LOCK_FILE)
    if not names:
        return
    try:
        record = json.loads((path / SAMPLES_JSON).read_text())
    except (OSError, ValueError):
        record = None
    if not (isinstance(record, dict) and record.get("format") == SAMPLES_FORMAT):
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise UsageError(f"--out {path} already holds files that ganbench sample did not write ({shown}); {ACCEPTED_OUT}")


def image_png(image: torch.Tensor) -> bytes:
    """One uint8 image (C, H, W) as a PNG at its own size: L for one channel, else RGB."""
    from PIL import Image

    array = image.cpu()
    array = array[0].numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


@torch.no_grad()
def _generate(variant: GenerativeVariant, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    with variant.evaluating():
        return to_uint8(variant.generate(z, labels)).cpu()


def _slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation: Gaussian latents keep their norm along the path (a straight
    line through the origin's neighbourhood passes latents the generator never saw)."""
    t = torch.linspace(0, 1, steps, device=a.device)[:, None]
    cos = (a * b).sum() / (a.norm() * b.norm())
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def write_samples(config: SampleConfig) -> list[Path]:
    """Write the PNGs; returns their paths."""
    check_out(config.out)
    path = Path(config.checkpoint)
    state = read_checkpoint(path)
    options = {k: v for k, v in (("device", config.device), ("cache_dir", config.cache_dir)) if v is not None}
    run = checkpoint_run(path, state, options, lambda r: load_registry(r.plugin))
    plan = plan_run(run, load_registry(run.plugin))
    spec = plan.variants[0].spec
    if spec.task != "generation":
        raise UsageError(f"--checkpoint {path} is of {spec.name}, a {spec.task} variant; sample needs a generator")
    splits = load_dataset(plan.dataset, DataRequest(run.data_dir, run.download, plan.cache_dir))
    check_splits(plan.dataset, splits)
    classifier = load_or_train(splits, plan.cache_dir, plan.device)
    variant, _, _ = _open(plan, Source("checkpoint", path, spec, state), splits, classifier)
    assert isinstance(variant, GenerativeVariant)
    k, conditional, names = splits.num_classes, spec.conditional, list(splits.class_names)
    if config.per_class and not conditional:
        raise UsageError(f"--per-class: {spec.name} is unconditional (it takes no labels); drop --per-class")
    job_seed = run.seeds[0]
    files: dict[str, bytes] = {}
    if config.mode == "images":
        seed = config.seed if config.seed is not None else job_seed + EVAL_SEED_OFFSET
        samples, labels, _ = generate_samples(variant, config.n, k, conditional, seed)  # type: ignore[arg-type]
        for i, image in enumerate(samples):
            folder = f"{int(labels[i])}/" if labels is not None else ""
            files[f"{folder}{i:06d}.png"] = image_png(image)
    else:
        seed = config.seed if config.seed is not None else job_seed + EVAL_SEED_OFFSET + 1
        gen = torch.Generator(device=variant.device).manual_seed(seed)
        if config.mode == "grid":  # the run's sample grid: one labelled row per class
            samples, labels, _ = generate_samples(variant, k * GRID_PER_CLASS, k, conditional, seed)
            rows: list[str] = []
            if labels is not None:
                samples, rows = samples[torch.argsort(labels, stable=True)], names
            files["grid.png"] = grid_png(samples, GRID_PER_CLASS, rows)
        elif config.mode == "per-class":
            z = variant.sample_latent(PER_CLASS_IMAGES, generator=gen)
            for c in range(k):
                labels = torch.full((PER_CLASS_IMAGES,), c, device=variant.device)
                files[f"class-{c}-{_file_label(names[c])}.png"] = grid_png(_generate(variant, z, labels), 10)
        else:
            a, b = variant.sample_latent(2 * INTERPOLATION_ROWS, generator=gen).split(INTERPOLATION_ROWS)
            if conditional:  # one latent pair through every class
                z = _slerp(a[0], b[0], INTERPOLATION_STEPS).repeat(k, 1)
                labels = torch.arange(k, device=variant.device).repeat_interleave(INTERPOLATION_STEPS)
                rows = names
            else:
                z = torch.cat([_slerp(a[i], b[i], INTERPOLATION_STEPS) for i in range(INTERPOLATION_ROWS)])
                labels, rows = None, []
            files["interpolation.png"] = grid_png(_generate(variant, z, labels), INTERPOLATION_STEPS, rows)
    record = {"format": SAMPLES_FORMAT, "checkpoint": str(path.absolute()), "mode": config.mode, "seed": seed,
              "files": sorted(files)}  # fmt: skip
    written = []
    with R.opened(config.out, marker=SAMPLES_JSON) as folder:
        for name, data in files.items():
            target = folder.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            R.atomic_write_bytes(target, data)
            written.append(target)
        R.atomic_write_text(folder.path / SAMPLES_JSON, json.dumps(record, indent=1) + "\n")
    log.info("%d PNG file%s in %s", len(written), "s" if len(written) != 1 else "", config.out)
    return written if len(written) <= 20 else [config.out]


def _file_label(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "class"
