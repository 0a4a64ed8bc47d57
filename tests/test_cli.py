"""The ``ganbench`` command as a user runs it: the installed console script, in a subprocess."""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from conftest import FIXTURES


def ganbench(*args, env=None, cwd=None):
    exe = shutil.which("ganbench") or f"{sys.executable} -m ganbench"
    return subprocess.run(
        [*exe.split(), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_list_shows_each_provider():
    out = ganbench("list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for name, plugin in (
        ("dcgan", "[dcgan]"),
        ("cgan", "[cgan]"),
        ("acgan", "[acgan]"),
        ("fashion-mnist", "[ganbench.datasets]"),
    ):
        assert any(line.split()[0] == name and plugin in line for line in lines if line.strip()), name
    assert any("domain-fidelity" in line and "fid_domain" in line for line in lines)


def test_list_reports_a_broken_plugin_and_still_lists_the_rest():
    out = ganbench("list", "--plugin", FIXTURES / "plugin_broken.py", "--plugin", FIXTURES / "plugin_all_hooks.py")
    assert out.returncode == 0
    assert "Plugin errors:" in out.stdout and "plugin_broken.py" in out.stdout and "ModuleNotFoundError" in out.stdout
    assert "linear" in out.stdout and "fashion-mnist-tiny" in out.stdout and "mean-intensity" in out.stdout


def test_plugins_from_the_environment(tmp_path):
    import os

    env = {**os.environ, "GANBENCH_PLUGINS": str(FIXTURES / "plugin_all_hooks.py")}
    out = ganbench("list", env=env)
    assert out.returncode == 0 and "linear" in out.stdout


def test_run_end_to_end(tmp_path, cache_dir):
    out_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(
        f'dataset = "fashion-mnist"\neval-samples = 200\ncache-dir = "{cache_dir}"\nbudget = "1000steps"\n'
    )
    out = ganbench(
        "run", "--config", config, "--variants", "cgan,acgan", "--budget", "15steps", "--evals", "1",
        "--seeds", "0", "--device", "cpu", "--out", out_dir, "--set", "acgan.aux_weight=0.5", "--no-download",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "variant" in out.stdout and "fid_domain" in out.stdout and f"results: {out_dir}" in out.stdout
    frame = pd.read_csv(out_dir / "metrics.csv")
    trained = frame[frame.status == "ok"]
    assert trained.step.tolist() == [15, 15]  # the flag beat the config file's 1000steps
    assert trained.fid_domain.notna().all() and trained.class_consistency.notna().all()
    config_json = json.loads((out_dir / "config.json").read_text())
    assert config_json["variants"]["acgan"]["config"]["aux_weight"] == 0.5
    assert config_json["run"]["eval_samples"] == 200  # from the file
    # not a terminal: plain progress lines on stderr, no progress bar
    assert "cgan seed 0: eval 1 at step 15" in out.stderr and "\r" not in out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["run", "--variants", "nope"],
            "unknown variant 'nope'; accepted: acgan, cgan, cgan-wgangp, dcgan, srgan, wgan, wgan-gp",
        ),
        (["run", "--variants", "cgan", "--budget", "ten"], "budget 'ten' is not understood; accepted:"),
        (["run", "--variants", "cgan", "--set", "cgan.lr_g"], "accepted: VARIANT.KEY=VALUE"),
        (["run", "--variants", "cgan", "--seeds", "x"], "seeds: 'x' is not a seed"),
        (["run", "--variants", "cgan", "--eval-samples", "many"], "'many' is not a valid integer"),
        (["run", "--bogus"], "No such option"),
        (["run", "--variants", "cgan", "--config", "/no/such.toml"], "config file /no/such.toml does not exist"),
        (["data", "--dataset", "mnist", "--no-download"], "mnist data not found; tried:"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, tmp_path):
    out = ganbench(*args, cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganbench: error: ") and message in lines[0], out.stderr
    assert not (tmp_path / "results").exists()


def test_data_command_says_where_the_data_is():
    out = ganbench("data", "--no-download")
    assert out.returncode == 0 and "60000 train / 10000 test" in out.stdout


def test_help_and_version():
    assert ganbench("--help").returncode == 0
    out = ganbench("--version")
    assert out.returncode == 0 and "0.1.0" in out.stdout
