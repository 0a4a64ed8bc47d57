"""``ganbench evaluate``: a checkpoint of a finished run, a TorchScript export of its generator
and the PNGs ``ganbench sample --n`` writes of it all score what the run scored; bad input is
one line, exit 2, nothing written."""

import math
import pickle

import pandas as pd
import pytest
import torch

import ganbench
from ganbench import columns as C
from ganbench.cli import main
from ganbench.harness.sample import SampleConfig, write_samples
from ganbench.report.render import build_comparison, build_report
from ganbench.variant import VariantContext

# On one xdist worker, with session-scoped fixtures: the trained run is built once, not once per
# worker, nor again after the worker ran another module's test between this module's (which tears
# module fixtures down).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("evaluate")]

PROBES = {
    "steering": {"latents": 4}, "path-length": {"samples": 50}, "label-swap": {"latents": 5},
    "cas": {"samples": 200, "epochs": 1}, "memorisation": {"samples": 100},
}  # fmt: skip
EVAL_SAMPLES = 1000


@pytest.fixture(scope="session")
def trained(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("trained") / "run"
    ganbench.run(
        variants="cgan", dataset="fashion-mnist", budget="30steps", evals=2, eval_samples=EVAL_SAMPLES, seeds=(0,),
        device="cpu", cache_dir=cache_dir, download=False, out=out, set=PROBES,
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def checkpoint(trained):
    return trained / "checkpoints" / "cgan-seed0.pt"


def final(run_dir, variant):
    metrics = pd.read_csv(run_dir / "metrics.csv")
    rows = metrics[metrics[C.VARIANT] == variant]
    return rows[rows[C.EVAL_INDEX] == rows[C.EVAL_INDEX].max()].iloc[0]


def scored_columns(run_dir):
    """Every metric and probe column the run filled (config.json's record of them)."""
    import json

    return list(json.loads((run_dir / "config.json").read_text())["columns"])


def assert_same_values(ours, theirs, columns):
    assert columns
    for c in columns:
        a, b = ours[c], theirs[c]
        assert (a == b) or (pd.isna(a) and pd.isna(b)), f"{c}: {a} != {b}"


@pytest.fixture(scope="session")
def evaluated(trained, checkpoint, tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("evaluated") / "run"
    ganbench.evaluate(checkpoint=checkpoint, out=out, cache_dir=cache_dir, download=False, device="cpu")
    return out


def test_a_checkpoint_scores_exactly_what_its_run_scored(trained, evaluated):
    columns = scored_columns(trained)
    assert {C.FID_DOMAIN, C.CLASS_CONSISTENCY} <= set(columns) and any(c.startswith("steer") for c in columns)
    for variant in ("cgan", C.REAL_DATA):
        assert_same_values(final(evaluated, variant), final(trained, variant), columns)
    ours, theirs = final(evaluated, "cgan"), final(trained, "cgan")
    for c in (C.STEP, C.EVAL_INDEX, C.IMAGES_SEEN):
        assert ours[c] == theirs[c]
    assert math.isfinite(ours[C.FID_DOMAIN])
    per_class = [pd.read_csv(d / "per_class.csv") for d in (evaluated, trained)]
    per_class = [t[(t[C.VARIANT] == "cgan") & (t[C.EVAL_INDEX] == ours[C.EVAL_INDEX])] for t in per_class]
    assert len(per_class[0]) == 10
    pd.testing.assert_frame_equal(per_class[0].reset_index(drop=True), per_class[1].reset_index(drop=True))
    for table in ("steering.csv", "label_swap.csv"):
        a, b = (pd.read_csv(d / table) for d in (evaluated, trained))
        pd.testing.assert_frame_equal(a.drop(columns=[c for c in a if "seconds" in c]),
                                      b.drop(columns=[c for c in b if "seconds" in c]))  # fmt: skip
    # the sample grid drawn from the same latents is the same picture
    assert (evaluated / "samples/cgan-seed0.png").read_bytes() == (trained / "samples/cgan-seed0.png").read_bytes()


def test_report_and_compare_accept_an_evaluation(trained, evaluated, tmp_path):
    written = build_report(evaluated, tmp_path / "report")
    assert "cgan" in written["md"].read_text()
    compared = build_comparison([trained, evaluated], tmp_path / "compare")
    assert compared["md"].read_text()


def traced_generator(checkpoint, fashion, path):
    """The trained generator, loaded from the checkpoint and exported with torch.jit.trace."""
    state = torch.load(checkpoint, weights_only=True)
    from ganbench.registry import load_registry

    spec = load_registry().variant("cgan")
    context = VariantContext(fashion.image_shape, fashion.num_classes, torch.device("cpu"), None, True)
    variant = spec.build(context, spec.make_config())
    variant.load_state_dict(state["trainer"]["variant"])
    generator = variant.generator.eval()
    example = (torch.randn(10, variant.z_dim), torch.arange(10))
    torch.jit.trace(generator, example).save(str(path))
    return path


def test_a_torchscript_export_scores_the_same(trained, checkpoint, fashion, tmp_path, cache_dir):
    # A trace records the same aten ops the module runs, on the same weights: on the same
    # machine and threads the values are bit for bit the run's, so no tolerance is needed.
    script = traced_generator(checkpoint, fashion, tmp_path / "g.pt")
    out = tmp_path / "scripted"
    ganbench.evaluate(
        torchscript=script, z_dim=100, conditional=True, eval_samples=EVAL_SAMPLES, set=PROBES, out=out,
        cache_dir=cache_dir, download=False, device="cpu",
    )  # fmt: skip
    ours = final(out, "g")
    assert_same_values(ours, final(trained, "cgan"), scored_columns(trained))
    assert_same_values(final(out, C.REAL_DATA), final(trained, C.REAL_DATA), scored_columns(trained))


def test_the_images_sample_writes_score_the_same(trained, checkpoint, tmp_path, cache_dir):
    folder = tmp_path / "images"
    write_samples(SampleConfig(checkpoint, folder, n=EVAL_SAMPLES, device="cpu", cache_dir=cache_dir))
    assert len(list(folder.glob("*/*.png"))) == EVAL_SAMPLES
    out = tmp_path / "from-images"
    ganbench.evaluate(images=folder, eval_samples=EVAL_SAMPLES, out=out, cache_dir=cache_dir, download=False,
                      device="cpu")  # fmt: skip
    # The run scores uint8 samples, and PNG stores uint8 losslessly: the metrics are the run's
    # exactly (probes need a generator: not run on a folder).
    metrics = [c for c in C.METRIC_COLUMNS if c in scored_columns(trained)]
    assert_same_values(final(out, "images"), final(trained, "cgan"), metrics)
    assert pd.isna(final(out, "images")[C.GEN_IMG_PER_S])


# --- bad input: one line, exit 2, nothing written ------------------------------------------------


class Wrong(torch.nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "shape":
            return torch.zeros(z.shape[0], 1, 14, 14)
        if self.kind == "range":
            return torch.full((z.shape[0], 1, 28, 28), 3.0)
        raise RuntimeError("this generator always fails")


def _script(tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    torch.jit.script(Wrong(kind)).save(str(path))
    return path


def _foreign_checkpoint(trained, tmp_path, change):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns("report"))
    path = run / "checkpoints" / "cgan-seed0.pt"
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no-source", "give exactly one of"),
        ("two-sources", "give exactly one of"),
        ("not-torchscript", "is not a TorchScript file"),
        ("shape", "returned (4, 1, 14, 14)"),
        ("range", "returned values in [3, 3]"),
        ("raises", "raised on a batch"),
        ("no-z-dim", "give its latent size with --z-dim"),
        ("old-format", "written by another ganbench version"),
        ("other-dataset", "trained on fashion-mnist, not --dataset mnist"),
        ("other-run", "made by a run with other options"),
        ("pickle", "unreadable"),
        ("too-few-images", "fewer than the 100"),
        ("wrong-size-images", "accepted: 28x28 L"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(case, expected, trained, checkpoint, tmp_path, cache_dir, capsys):
    from PIL import Image

    common = ["--cache-dir", str(cache_dir), "--no-download", "--device", "cpu", "--eval-samples", "100"]
    out = tmp_path / "out"
    args = {
        "no-source": [],
        "two-sources": ["--checkpoint", str(checkpoint), "--images", str(tmp_path)],
        "shape": ["--torchscript", str(_script(tmp_path, "shape")), "--z-dim", "8", "--conditional"],
        "range": ["--torchscript", str(_script(tmp_path, "range")), "--z-dim", "8", "--conditional"],
        "raises": ["--torchscript", str(_script(tmp_path, "raises")), "--z-dim", "8", "--conditional"],
        "no-z-dim": ["--torchscript", str(_script(tmp_path, "shape"))],
        "other-dataset": ["--checkpoint", str(checkpoint), "--dataset", "mnist"],
    }.get(case)
    if case == "not-torchscript":
        (tmp_path / "notes.pt").write_text("not a generator")
        args = ["--torchscript", str(tmp_path / "notes.pt"), "--z-dim", "8"]
    elif case == "old-format":
        args = ["--checkpoint", str(_foreign_checkpoint(trained, tmp_path, lambda s: s.update(format="ganbench-checkpoint/0")))]
    elif case == "other-run":
        args = ["--checkpoint", str(_foreign_checkpoint(trained, tmp_path, lambda s: s["job"].update(run="0" * 16)))]
    elif case == "pickle":
        planted = tmp_path / "copy" / "checkpoints"
        planted.mkdir(parents=True)
        marker = tmp_path / "ran"
        (planted / "cgan-seed0.pt").write_bytes(pickle.dumps(Planted(str(marker))))
        args = ["--checkpoint", str(planted / "cgan-seed0.pt")]
    elif case in ("too-few-images", "wrong-size-images"):
        folder = tmp_path / "pngs"
        for k in range(10):
            (folder / str(k)).mkdir(parents=True)
            size = (28, 28) if case == "too-few-images" else (32, 32)
            for i in range(3 if case == "too-few-images" else 10):
                Image.new("L", size, 10 * i).save(folder / str(k) / f"{i}.png")
        args = ["--images", str(folder), "--eval-samples", "1000" if case == "too-few-images" else "100"]
    capsys.readouterr()
    # -q: the progress lines (data found, classifier loaded) that precede a late refusal are off
    assert main(["-q", "evaluate", *common, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("ganbench: error: ") and expected in err, err
    assert not out.exists()
    if case == "pickle":
        assert not marker.exists()


class Planted:
    """A pickle that would write a file if anything unpickled it."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))
