"""Plots of a run report: PNG bytes of a fixed size, reproducible, one colour per variant.

Synthetic runs use the real column names; one test reads a real small run (tests/report/conftest.py).
Speed is measured in tests/benchmarks/test_bench_report.py, not asserted here.
"""

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from ganbench import columns as C
from ganbench.harness.rundir import RUN_FORMAT
from ganbench.report import plots
from ganbench.report.load import RunData, load_run

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress"]
METRIC_COLUMNS = [*C.ID_COLUMNS, *C.METRIC_COLUMNS, *C.PROBE_COLUMNS, *C.COST_COLUMNS, C.NOTE]
PER_CLASS_COLUMNS = [C.VARIANT, C.DATASET, C.SEED, C.EVAL_INDEX, C.STEP, C.CLASS_INDEX, C.CLASS_NAME,
                     C.CLASS_CONSISTENCY]  # fmt: skip
LOSSES = {"dcgan": ("d_loss", "g_loss"), "wgan-gp": ("d_loss", "g_loss", "gp")}


def make_run(
    variants=("dcgan", "cgan", "wgan-gp"),
    seeds=2,
    evals=3,
    conditional=("cgan",),
    failed=(),
    diverged=(),
    superres=(),
    real_data=True,
) -> RunData:
    """A run with the tables ganbench writes: ``failed`` variants stop before their first
    evaluation, ``diverged`` ones after it (a stop row with NaN metrics); ``superres`` ones
    score psnr and the run gets a bicubic-x2 reference."""
    rng = np.random.default_rng(0)
    metrics, per_class, train_log, jobs = [], [], [], []

    def row(variant, seed, k, status, **values):
        base = {c: math.nan for c in METRIC_COLUMNS}
        base.update({C.VARIANT: variant, C.DATASET: "fashion-mnist", C.SEED: seed, C.EVAL_INDEX: k, C.STEP: 100 * k,
                     C.IMAGES_SEEN: 6400 * k, C.TRAIN_SECONDS: 60.0 * k + seed, C.CRITIC_STEPS: 1,
                     C.STATUS: status, C.NOTE: ""})  # fmt: skip
        return {**base, **values}

    if real_data:
        metrics.append(row(C.REAL_DATA, -1, 0, C.STATUS_REFERENCE, fid_domain=0.06, class_consistency=0.96))
        per_class += [(C.REAL_DATA, "fashion-mnist", -1, 0, 0, i, n, 0.95) for i, n in enumerate(CLASS_NAMES)]
    if superres:
        metrics.append(row("bicubic-x2", -1, 0, C.STATUS_REFERENCE, fid_domain=3.0, psnr=24.0, ssim=0.8))
    for v, variant in enumerate(variants):
        for seed in range(seeds):
            stop = 1 if variant in failed else 2 if variant in diverged else None
            for k in range(1, evals + 1):
                if k == stop:
                    metrics.append(row(variant, seed, k, C.STATUS_FAILED if variant in failed else C.STATUS_DIVERGED,
                                       train_img_per_s=500.0))  # fmt: skip
                    break
                values = {
                    C.FID_DOMAIN: (40.0 + 10 * v) / k + rng.uniform(0, 2),
                    C.KID_DOMAIN: 0.4 / k,
                    C.CLASS_COVERAGE: 0.9,
                    C.CLASS_CONSISTENCY: 0.5 + 0.1 * k + 0.02 * seed if variant in conditional else math.nan,
                    C.PSNR: 20.0 + k + rng.uniform(0, 1) if variant in superres else math.nan,
                    C.TRAIN_IMG_PER_S: 800.0 + 50 * v + 10 * seed,
                    C.GEN_IMG_PER_S: 4000.0 + 100 * v + 20 * seed,
                }
                metrics.append(row(variant, seed, k, C.STATUS_OK, **values))
                if variant in conditional:
                    per_class += [(variant, "fashion-mnist", seed, k, 100 * k, i, n, 0.3 + 0.1 * i + 0.05 * k)
                                  for i, n in enumerate(CLASS_NAMES)]  # fmt: skip
            steps = range(50, 100 * (stop or evals + 1), 50)
            for step in steps:
                losses = {name: 1.0 + j + math.sin(step / 100 + seed) for j, name in
                          enumerate(LOSSES.get(variant, ("d_loss", "g_loss")))}  # fmt: skip
                if variant in diverged and step == steps[-1]:
                    losses["d_loss"] = math.inf
                train_log.append({C.VARIANT: variant, C.SEED: seed, C.STEP: step, C.IMAGES_SEEN: 64 * step,
                                  C.TRAIN_SECONDS: 0.6 * step, **losses})  # fmt: skip
            status = C.STATUS_FAILED if variant in failed else C.STATUS_DIVERGED if variant in diverged else C.STATUS_OK
            jobs.append({C.VARIANT: variant, C.SEED: seed, C.STATUS: status, C.STEP: 100 * (stop or evals),
                         C.EVAL_INDEX: (stop or evals + 1) - 1, C.NOTE: ""})  # fmt: skip
    return RunData(
        path=Path("synthetic"),
        record={"format": RUN_FORMAT, "dataset": {"name": "fashion-mnist", "class_names": CLASS_NAMES}},
        metrics=pd.DataFrame(metrics, columns=METRIC_COLUMNS),
        per_class=pd.DataFrame(per_class, columns=PER_CLASS_COLUMNS),
        train_log=pd.DataFrame(train_log),
        jobs=pd.DataFrame(jobs),
    )


def write_run(run: RunData, folder: Path) -> Path:
    """The run as a directory that load_run reads."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(run.record))
    for name, frame in (("metrics", run.metrics), ("per_class", run.per_class), ("train_log", run.train_log),
                        ("jobs", run.jobs)):  # fmt: skip
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def colours_in(data: bytes) -> set[int]:
    """The exact colours of an image's pixels, as 0xRRGGBB."""
    rgb = np.asarray(decode(data).convert("RGB")).reshape(-1, 3).astype(np.uint32)
    return set(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]).tolist())


def code(hex_colour: str) -> int:
    r, g, b = (round(255 * c) for c in to_rgb(hex_colour))
    return r << 16 | g << 8 | b


def pixels(inches: tuple[float, float]) -> tuple[int, int]:
    return round(inches[0] * plots.DPI), round(inches[1] * plots.DPI)


@pytest.fixture
def run() -> RunData:
    return make_run()


@pytest.fixture
def broken_run() -> RunData:
    """A run where one variant failed before evaluating and one diverged after its first evaluation."""
    return make_run(variants=("dcgan", "cgan", "broken", "wgan-gp"), failed=("broken",), diverged=("wgan-gp",))


def scale(frame: pd.DataFrame, column: str, factor: float) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column] * factor
    return out


# Each plot: how to make it from a run, its expected size in inches, and how to change its data.
PLOTS = {
    "curve-time": (
        lambda r: plots.quality_curve(r.metrics, C.FID_DOMAIN, C.TRAIN_SECONDS),
        lambda r: plots.figure_size("curve"),
        lambda r: RunData(r.path, r.record, scale(r.metrics, C.FID_DOMAIN, 1.5)),
    ),
    "curve-images": (
        lambda r: plots.quality_curve(r.metrics, C.FID_DOMAIN, C.IMAGES_SEEN),
        lambda r: plots.figure_size("curve"),
        lambda r: RunData(r.path, r.record, scale(r.metrics, C.IMAGES_SEEN, 2)),
    ),
    "cost": (
        lambda r: plots.quality_vs_cost(r.finals, C.FID_DOMAIN, C.TRAIN_IMG_PER_S),
        lambda r: plots.figure_size("cost"),
        lambda r: RunData(r.path, r.record, scale(r.metrics, C.TRAIN_IMG_PER_S, 0.5)),
    ),
    "heatmap": (
        lambda r: plots.class_heatmap(r.per_class, CLASS_NAMES),
        lambda r: plots.figure_size("heatmap", 2),  # cgan and real-data
        lambda r: RunData(r.path, r.record, r.metrics, per_class=scale(r.per_class, C.CLASS_CONSISTENCY, 0.5)),
    ),
    "throughput": (
        lambda r: plots.throughput_bars(r.finals),
        lambda r: plots.figure_size("throughput", 3),
        lambda r: RunData(r.path, r.record, scale(r.metrics, C.GEN_IMG_PER_S, 3)),
    ),
    "losses": (
        lambda r: plots.training_losses(r.train_log),
        lambda r: plots.figure_size("losses", 3),
        lambda r: RunData(r.path, r.record, r.metrics, train_log=scale(r.train_log, "g_loss", -1)),
    ),
}


@pytest.mark.parametrize("name", PLOTS)
def test_plot_is_a_png_of_the_configured_size(run, name):
    make, size, _ = PLOTS[name]
    image = decode(make(run))
    assert image.format == "PNG"
    assert image.size == pixels(size(run))


@pytest.mark.parametrize("name", PLOTS)
def test_plot_differs_when_the_data_differ(run, name):
    make, _, change = PLOTS[name]
    assert make(run) != make(change(run))


@pytest.mark.parametrize("name", PLOTS)
def test_same_data_give_identical_bytes(name):
    make, _, _ = PLOTS[name]
    assert make(make_run()) == make(make_run())


@pytest.mark.parametrize(
    "make",
    [
        lambda: plots.quality_curve(pd.DataFrame(columns=METRIC_COLUMNS)),
        lambda: plots.quality_vs_cost(pd.DataFrame(columns=METRIC_COLUMNS)),
        lambda: plots.class_heatmap(pd.DataFrame(columns=PER_CLASS_COLUMNS)),
        lambda: plots.throughput_bars(pd.DataFrame(columns=METRIC_COLUMNS)),
        lambda: plots.training_losses(pd.DataFrame()),
    ],
    ids=["curve", "cost", "heatmap", "throughput", "losses"],
)
def test_plot_of_an_empty_table_is_none(make):
    assert make() is None


def test_quality_curve_of_an_all_nan_metric_is_none(run):
    assert plots.quality_curve(run.metrics, C.PSNR) is None


def test_quality_curve_rejects_an_unknown_x_axis(run):
    with pytest.raises(ValueError, match="x must be one of"):
        plots.quality_curve(run.metrics, C.FID_DOMAIN, C.STEP)


def test_quality_curve_ignores_rows_without_a_value(broken_run):
    # The diverged variant's stop row (NaN metrics) moved far away must not change its curve.
    moved = broken_run.metrics.copy()
    stops = moved[C.FID_DOMAIN].isna() & (moved[C.STATUS] == C.STATUS_DIVERGED)
    assert stops.any()
    moved.loc[stops, [C.TRAIN_SECONDS, C.IMAGES_SEEN]] = [1e6, 10**9]
    for x in (C.TRAIN_SECONDS, C.IMAGES_SEEN):
        assert plots.quality_curve(moved, x=x) == plots.quality_curve(broken_run.metrics, x=x)


def test_run_plots_names_every_plot_of_a_conditional_run(run):
    assert set(plots.run_plots(run)) == {
        "fid_domain-vs-time.png", "fid_domain-vs-images.png", "class_consistency-vs-time.png",
        "class_consistency-vs-images.png", "quality-vs-cost.png", "class-consistency-per-class.png",
        "throughput.png", "losses.png",
    }  # fmt: skip


def test_run_plots_of_a_run_with_failed_and_diverged_variants_still_plots(broken_run):
    made = plots.run_plots(broken_run)
    assert set(made) == {
        "fid_domain-vs-time.png", "fid_domain-vs-images.png", "class_consistency-vs-time.png",
        "class_consistency-vs-images.png", "quality-vs-cost.png", "class-consistency-per-class.png",
        "throughput.png", "losses.png",
    }  # fmt: skip
    assert all(decode(data).format == "PNG" for data in made.values())


def test_run_plots_of_an_unconditional_run_leaves_out_class_plots():
    made = plots.run_plots(make_run(variants=("dcgan", "wgan-gp"), conditional=()))
    assert not [name for name in made if "class" in name]
    assert "fid_domain-vs-time.png" in made


def test_run_plots_of_a_superresolution_run_has_psnr_curves():
    made = plots.run_plots(make_run(variants=("srgan", "esrgan"), conditional=(), superres=("srgan", "esrgan")))
    assert {"psnr-vs-time.png", "psnr-vs-images.png", "fid_domain-vs-time.png"} <= set(made)


def test_class_heatmap_is_none_without_conditional_variants():
    per_class = make_run(variants=("dcgan", "wgan-gp"), conditional=()).per_class
    assert (per_class[C.VARIANT] == C.REAL_DATA).any()  # the reference alone is nothing to show
    assert plots.class_heatmap(per_class, CLASS_NAMES) is None


def test_class_heatmap_leaves_out_variants_without_values(run):
    with_nan = pd.concat([run.per_class, pd.DataFrame(
        [("dcgan", "fashion-mnist", 0, 3, 300, i, n, math.nan) for i, n in enumerate(CLASS_NAMES)],
        columns=PER_CLASS_COLUMNS,
    )])  # fmt: skip
    assert plots.class_heatmap(with_nan, CLASS_NAMES) == plots.class_heatmap(run.per_class, CLASS_NAMES)


def test_class_heatmap_shows_the_last_evaluation_only(run):
    per_class = run.per_class
    last = per_class[(per_class[C.EVAL_INDEX] == per_class[C.EVAL_INDEX].max()) | (per_class[C.SEED] < 0)]
    assert len(last) < len(per_class)
    assert plots.class_heatmap(per_class, CLASS_NAMES) == plots.class_heatmap(last, CLASS_NAMES)


def test_palette_gives_distinct_colours_by_position():
    names = [f"v{i}" for i in range(25)]
    for n in (3, 10, 20, 25):
        colours = plots.palette(names[:n])
        assert list(colours) == names[:n]
        assert len(set(colours.values())) == n


def test_each_variant_has_its_palette_colour_in_every_plot(broken_run):
    colours = {v: code(c) for v, c in plots.palette(broken_run.variants).items()}
    made = plots.run_plots(broken_run)
    drawn = {
        "fid_domain-vs-time.png": ("dcgan", "cgan", "wgan-gp"),
        "quality-vs-cost.png": ("dcgan", "cgan", "wgan-gp"),
        "throughput.png": ("dcgan", "cgan", "broken", "wgan-gp"),
        "class_consistency-vs-time.png": ("cgan",),
    }
    for name, variants in drawn.items():
        found = colours_in(made[name])
        assert {v for v in colours if colours[v] in found} == set(variants), name


def test_wants_log_scale_only_for_fid_like_metrics_spanning_a_decade():
    assert plots.wants_log_scale(C.FID_DOMAIN, [2.0, 50.0, math.nan])
    assert not plots.wants_log_scale(C.FID_DOMAIN, [5.0, 40.0])
    assert not plots.wants_log_scale(C.KID_DOMAIN, [-0.001, 0.5])
    assert not plots.wants_log_scale(C.PSNR, [1.0, 30.0])


def test_plots_import_and_run_without_torch(run, tmp_path):
    folder = write_run(run, tmp_path / "run")
    code = (
        "import sys\n"
        "from ganbench.report.load import load_run\n"
        "from ganbench.report.plots import run_plots\n"
        "made = run_plots(load_run(sys.argv[1]))\n"
        "print(len(made), sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8", "[]"]


@pytest.mark.slow
def test_run_plots_of_a_real_run(real_run):
    made = plots.run_plots(load_run(real_run))
    assert {"fid_domain-vs-time.png", "class_consistency-vs-time.png", "class-consistency-per-class.png",
            "quality-vs-cost.png", "throughput.png", "losses.png"} <= set(made)  # fmt: skip
    assert decode(made["class-consistency-per-class.png"]).size == pixels(plots.figure_size("heatmap", 2))
