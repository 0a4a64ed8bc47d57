"""``ganbench sample``: a checkpoint's grid (the run's own picture), grids per class, an
interpolation strip and N image files; a folder holding someone's files is refused."""

import json

import pytest
from PIL import Image

import ganbench
from ganbench.cli import main
from ganbench.harness.sample import SAMPLES_JSON

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("sampled") / "run"
    ganbench.run(
        variants="cgan", dataset="fashion-mnist", budget="6steps", evals=1, eval_samples=100, seeds=(3,),
        device="cpu", cache_dir=cache_dir, download=False, out=out, probes=(),
    )  # fmt: skip
    return out / "checkpoints" / "cgan-seed3.pt"


def sample(checkpoint, out, cache_dir, *args):
    return main(["-q", "sample", "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu",
                 "--cache-dir", str(cache_dir), *args])  # fmt: skip


def test_the_default_grid_is_the_runs_sample_grid(checkpoint, tmp_path, cache_dir):
    assert sample(checkpoint, tmp_path / "grid", cache_dir) == 0
    run = checkpoint.parent.parent
    assert (tmp_path / "grid" / "grid.png").read_bytes() == (run / "samples" / "cgan-seed3.png").read_bytes()
    assert json.loads((tmp_path / "grid" / SAMPLES_JSON).read_text())["mode"] == "grid"


def test_per_class_interpolation_and_n_images(checkpoint, tmp_path, cache_dir):
    assert sample(checkpoint, tmp_path / "classes", cache_dir, "--per-class") == 0
    grids = sorted((tmp_path / "classes").glob("class-*.png"))
    assert len(grids) == 10 and grids[0].name == "class-0-t-shirt-top.png"
    assert len({g.read_bytes() for g in grids}) == 10  # the labels change the pictures
    assert sample(checkpoint, tmp_path / "strip", cache_dir, "--interpolate") == 0
    with Image.open(tmp_path / "strip" / "interpolation.png") as strip:
        assert strip.width > strip.height  # ten steps across, one row per class
    assert sample(checkpoint, tmp_path / "files", cache_dir, "--n", "25", "--seed", "7") == 0
    files = sorted((tmp_path / "files").glob("*/*.png"))
    assert len(files) == 25 and {f.parent.name for f in files} == {str(k) for k in range(10)}
    with Image.open(files[0]) as image:
        assert (image.size, image.mode) == ((28, 28), "L")
    # another seed, other images; the same seed again, the same ones (into ganbench's own folder)
    assert sample(checkpoint, tmp_path / "other", cache_dir, "--n", "25", "--seed", "8") == 0
    assert (tmp_path / "other/0/000000.png").read_bytes() != (tmp_path / "files/0/000000.png").read_bytes()
    before = (tmp_path / "files/0/000000.png").read_bytes()
    assert sample(checkpoint, tmp_path / "files", cache_dir, "--n", "25", "--seed", "7") == 0
    assert (tmp_path / "files/0/000000.png").read_bytes() == before


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--n", "5", "--per-class"], "give one of --per-class, --interpolate or --n"),
        (["--n", "0"], "--n must be at least 1"),
        ([], "already holds files that ganbench sample did not write (notes.txt)"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(args, expected, checkpoint, tmp_path, cache_dir, capsys):
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "notes.txt").write_text("someone's")
    capsys.readouterr()
    assert sample(checkpoint, out, cache_dir, *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ganbench: error: ") and expected in err, err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, cache_dir, capsys):
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    assert sample(tmp_path / "x.pt", tmp_path / "out", cache_dir) == 2
    assert "is unreadable" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
