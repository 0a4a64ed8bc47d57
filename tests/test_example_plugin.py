"""examples/ganbench-lsgan, pip-installed into a directory of the test environment, is found
through its entry point and runs through `ganbench run` (as a user's installed plugin would)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "ganbench-lsgan"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / EXAMPLE.name  # pip builds in-tree: keep the checkout clean
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    # --no-index --no-deps --no-build-isolation: offline, with the environment's setuptools
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))}


@pytest.mark.slow
def test_installed_example_is_listed_through_its_entry_point(installed, ganbench_cli):
    out = ganbench_cli("list", env=installed)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.strip().startswith("lsgan"))
    assert "[lsgan]" in line and "least-squares" in line
    ranges = [line for line in out.stdout.splitlines() if line.split()[:1] == ["lsgan"] and "lr_g=" in line]
    assert ranges and "lr_g=log(1e-5,0.01)" in ranges[0] and "beta1=uniform(0,1)" in ranges[0]  # its declared ranges
    assert "Plugin errors" not in out.stdout
    plain = ganbench_cli("list")  # not installed in the plain environment
    assert plain.returncode == 0, plain.stderr
    assert "dcgan" in plain.stdout and "lsgan" not in plain.stdout


@pytest.mark.slow
def test_installed_example_runs(installed, tmp_path, cache_dir, ganbench_cli):
    out_dir = tmp_path / "run"
    out = ganbench_cli(
        "run", "--variants", "lsgan", "--budget", "10steps", "--evals", "1", "--eval-samples", "200",
        "--device", "cpu", "--cache-dir", cache_dir, "--out", out_dir, "--no-download", env=installed,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    row = pd.read_csv(out_dir / "metrics.csv").set_index("variant").loc["lsgan"]
    assert row.status == "ok" and row.step == 10 and row.fid_domain > 0
