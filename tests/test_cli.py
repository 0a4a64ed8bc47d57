"""The ``ganbench`` command as a user runs it: the installed console script, in a subprocess."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import SMALL_PROBES


@pytest.fixture
def ganbench(ganbench_cli):
    return ganbench_cli


def one_line_error(out):
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganbench: error: "), out.stderr
    return lines[0]


def test_list_shows_each_provider(ganbench):
    out = ganbench("list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for name, plugin in (
        ("dcgan", "[dcgan]"),
        ("cgan", "[cgan]"),
        ("acgan", "[acgan]"),
        ("fashion-mnist", "[ganbench.datasets]"),
        ("steering", "[ganbench.probes]"),
        ("label-swap", "[ganbench.probes]"),
    ):
        assert any(line.split()[0] == name and plugin in line for line in lines if line.strip()), name
    assert any("domain-fidelity" in line and "fid_domain" in line for line in lines)


def test_list_reports_a_broken_plugin_and_still_lists_the_rest(ganbench, fixtures_dir):
    out = ganbench(
        "list", "--plugin", fixtures_dir / "plugin_broken.py", "--plugin", fixtures_dir / "plugin_all_hooks.py"
    )
    assert out.returncode == 0
    assert "Plugin errors:" in out.stdout and "plugin_broken.py" in out.stdout and "ModuleNotFoundError" in out.stdout
    assert "linear" in out.stdout and "fashion-mnist-tiny" in out.stdout and "mean-intensity" in out.stdout


def test_plugins_from_the_environment(tmp_path, ganbench, fixtures_dir):
    env = {**os.environ, "GANBENCH_PLUGINS": str(fixtures_dir / "plugin_all_hooks.py")}
    out = ganbench("list", env=env)
    assert out.returncode == 0 and "linear" in out.stdout


@pytest.mark.slow
def test_run_end_to_end(tmp_path, cache_dir, ganbench):
    out_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(
        f'dataset = "fashion-mnist"\neval-samples = 200\ncache-dir = "{cache_dir}"\nbudget = "1000steps"\n'
    )
    out = ganbench(
        "run", "--config", config, "--variants", "cgan,acgan", "--budget", "15steps", "--evals", "1",
        "--seeds", "0", "--device", "cpu", "--out", out_dir, "--set", "acgan.aux_weight=0.5", "--no-download",
        *SMALL_PROBE_SETS,  # every probe, small: their defaults train CAS classifiers for a minute
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
            "unknown variant 'nope'; accepted: acgan, cgan, cgan-pd, cgan-wgangp, dcgan, r1gan, sngan, srgan, wgan, wgan-gp",
        ),
        (["run", "--variants", "cgan", "--budget", "ten"], "budget 'ten' is not understood; accepted:"),
        (["run", "--variants", "cgan", "--set", "cgan.lr_g"], "accepted: VARIANT.KEY=VALUE"),
        (["run", "--variants", "cgan", "--seeds", "x"], "seeds: 'x' is not a seed"),
        (["run", "--variants", "cgan", "--eval-samples", "many"], "'many' is not a valid integer"),
        (["run", "--bogus"], "No such option"),
        (["run", "--variants", "cgan", "--config", "/no/such.toml"], "config file /no/such.toml does not exist"),
        (["data", "--dataset", "mnist", "--no-download"], "mnist data not found; tried:"),
        (["run", "--variants", "cgan", "--seeds", "0,0"], "seeds: 0 given more than once; name each seed once"),
        (
            ["run", "--variants", "cgan", "--seeds", "4-0"],
            "seeds: range '4-0' is reversed; write it low-high, e.g. 0-4",
        ),
        (["run", "--variants", "cgan,cgan"], "variants in command line: cgan given more than once"),
        (["run", "--resume", "/no/such/run"], "--resume /no/such/run: no ganbench run there"),
        (["run", "--resume", "/no/such/run", "--out", "x"], "--resume RUN_DIR takes the run's own options"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, tmp_path, ganbench):
    out = ganbench(*args, cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganbench: error: ") and message in lines[0], out.stderr
    assert not (tmp_path / "results").exists()


def test_data_command_says_where_the_data_is(ganbench):
    out = ganbench("data", "--no-download")
    assert out.returncode == 0 and "60000 train / 10000 test" in out.stdout


def test_help_and_version(ganbench):
    assert ganbench("--help").returncode == 0
    out = ganbench("--version")
    assert out.returncode == 0 and "0.1.0" in out.stdout


REFUSED_IMPORTS = """
import sys
from ganbench.cli import main
code = main(["run", "--variants", "dcgan", "--set", "dcgan.lr_g=-1", "--device", "cpu", "--no-download"])
print(code, sorted(m for m in ("torch_fidelity", "torchvision") if m in sys.modules))
"""


def test_a_refused_run_never_imports_torch_fidelity(tmp_path):
    """torch-fidelity imports torchvision's models and torch._dynamo (1.3 s of every refused
    command line, doubled on a loaded machine): it waits until a job needs the Inception weights."""
    out = subprocess.run([sys.executable, "-c", REFUSED_IMPORTS], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.split("\n")[0] == "2 []", out.stdout + out.stderr


# Every probe at a test's size: conftest's SMALL_PROBES, as the command line gives them.
SMALL_PROBE_SETS = [
    arg for probe, options in SMALL_PROBES.items() for key, value in options.items()
    for arg in ("--set", f"{probe}.{key}={value}")
]  # fmt: skip
SMALL = ["--budget", "2steps", "--evals", "1", "--eval-samples", "100", "--device", "cpu", "--no-download"]


@pytest.fixture
def small_run(cache_dir):
    """A fast run's arguments: two steps, one evaluation of 100 samples, only class metrics."""
    return [*SMALL, "--metrics", "class-consistency", "--no-probes", "--cache-dir", str(cache_dir)]


def folder_with_a_config(tmp):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "config.json").write_text('{"lr": 1}')
    return tmp / "mine"


def regular_file(tmp):
    (tmp / "notes.txt").write_text("mine")
    return tmp / "notes.txt"


@pytest.mark.parametrize(
    "make_out, message",
    [
        (folder_with_a_config, "already holds files that are not a ganbench run (config.json); accepted: a new or "
                               "empty directory, or a ganbench run to resume"),
        (regular_file, "is a file, not a directory; accepted: a new or empty directory, or a ganbench run to resume"),
        (lambda tmp: "/proc/x", "cannot create run directory /proc/x (No such file or directory); choose a writable --out"),
    ],
    ids=["folder-with-a-config", "regular-file", "proc"],
)  # fmt: skip
def test_an_out_that_is_not_a_run_is_refused_and_left_alone(
    make_out, message, tmp_path, small_run, ganbench, tree_digest
):
    out_path = make_out(tmp_path)
    before = tree_digest(tmp_path)
    out = ganbench("run", "--variants", "cgan", *small_run, "--out", out_path)
    assert out.returncode == 2 and message in one_line_error(out)
    assert tree_digest(tmp_path) == before


@pytest.mark.slow
def test_a_run_where_a_variant_failed_exits_1_and_says_which(tmp_path, small_run, ganbench, fixtures_dir):
    plugin = fixtures_dir / "plugin_failing.py"
    out = ganbench("run", "--variants", "failing,dcgan", "--plugin", plugin, *small_run, "--out", tmp_path / "run")
    assert out.returncode == 1
    assert "ganbench: failing seed 0 failed at step 0: RuntimeError: out of cheese" in out.stderr
    jobs = pd.read_csv(tmp_path / "run" / "jobs.csv")
    assert jobs.status.tolist() == ["failed", "ok"]


@pytest.mark.slow
def test_two_runs_on_the_same_out_at_once_one_runs_and_the_other_is_refused(tmp_path, cache_dir, ganbench_command):
    args = [*ganbench_command, "run", "--variants", "cgan", "--budget", "30steps", "--evals", "1",
            "--eval-samples", "100", "--metrics", "class-consistency", "--no-probes", "--device", "cpu",
            "--no-download", "--cache-dir", str(cache_dir), "--out", str(tmp_path / "run")]  # fmt: skip
    runs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(r.pid, *r.communicate(timeout=600), r.returncode) for r in runs]
    codes = sorted(code for *_, code in results)
    assert codes == [0, 2], results
    (winner,) = [pid for pid, _, _, code in results if code == 0]
    (refused,) = [stderr for _, _, stderr, code in results if code == 2]
    assert f"is in use by pid {winner} on host" in refused and refused.startswith("ganbench: error: ")
    assert len(refused.strip().splitlines()) == 1
    assert pd.read_csv(tmp_path / "run" / "jobs.csv").status.tolist() == ["ok"]


@pytest.mark.slow
def test_a_run_remade_from_its_config_json_goes_to_a_new_directory(tmp_path, small_run, ganbench, tree_digest):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = ganbench("run", "--variants", "cgan", *small_run, cwd=tmp_path / "a")
    assert first.returncode == 0, first.stderr
    (old,) = (tmp_path / "a" / "results").iterdir()
    before = tree_digest(old)
    again = ganbench("run", "--config", old / "config.json", cwd=tmp_path / "b")
    assert again.returncode == 0, again.stderr
    (new,) = (tmp_path / "b" / "results").iterdir()
    assert tree_digest(old) == before
    drop = ["train_seconds", "train_img_per_s", "gen_img_per_s", "peak_mem_mb", "eval_seconds"]
    pd.testing.assert_frame_equal(
        pd.read_csv(old / "metrics.csv").drop(columns=drop), pd.read_csv(new / "metrics.csv").drop(columns=drop)
    )


@pytest.mark.slow
def test_a_relative_plugin_path_in_config_json_works_from_another_folder(tmp_path, small_run, ganbench, fixtures_dir):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "plugin.py").write_text((fixtures_dir / "plugin_all_hooks.py").read_text())
    args = ["--variants", "linear", "--dataset", "fashion-mnist-tiny", *small_run]
    first = ganbench("run", "--plugin", "plugin.py", *args, "--out", "run", cwd=tmp_path / "a")
    assert first.returncode == 0, first.stderr
    record = json.loads((tmp_path / "a" / "run" / "config.json").read_text())
    assert record["run"]["plugin"] == [str(tmp_path / "a" / "plugin.py")]
    again = ganbench("run", "--config", tmp_path / "a" / "run" / "config.json", "--out", "run", cwd=tmp_path / "b")
    assert again.returncode == 0, again.stderr


@pytest.mark.slow
def test_ctrl_c_exits_130_keeps_the_rows_and_the_run_resumes(tmp_path, cache_dir, start_interruptible, ganbench):
    out = tmp_path / "run"
    # 100 steps: after the first evaluation (step 25) the job trains 75 more, seconds for the signal to land
    args = ["run", "--variants", "cgan", "--budget", "100steps", "--evals", "4", "--eval-samples", "100",
            "--metrics", "class-consistency", "--no-probes", "--device", "cpu", "--no-download",
            "--cache-dir", str(cache_dir), "--out", str(out)]  # fmt: skip
    process = start_interruptible(*args)
    deadline = time.monotonic() + 300
    while not (out / "metrics.csv").exists() or len(pd.read_csv(out / "metrics.csv")) < 2:  # the first evaluation
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert (
        f"ganbench: interrupted; rows written so far are kept; continue it with: ganbench run --resume {out}" in stderr
    )
    frame = pd.read_csv(out / "metrics.csv").set_index("variant").loc["cgan"]
    assert frame.status.tolist()[:1] == ["ok"] and frame.status.tolist()[-1] == "interrupted"
    assert pd.read_csv(out / "jobs.csv").status.tolist() == ["interrupted"]
    resumed = ganbench("run", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    frame = pd.read_csv(out / "metrics.csv").set_index("variant").loc["cgan"]
    assert frame.status.tolist() == ["ok"] * 4 and frame.step.tolist() == [25, 50, 75, 100]


@pytest.mark.slow
def test_resume_with_more_seeds_trains_only_the_new_jobs(tmp_path, small_run, ganbench, tree_digest):
    out = tmp_path / "run"
    args = ["--variants", "cgan,dcgan", "--seeds", "0-2", *small_run, "--evals", "2", "--resample"]
    first = ganbench("run", *args, "--out", out)
    assert first.returncode == 0, first.stderr
    before = {name: pd.read_csv(out / name) for name in ("metrics.csv", "train_log.csv", "sampling.csv")}
    more = ganbench("run", "--resume", out, "--seeds", "0-5")
    assert more.returncode == 0, more.stderr
    assert "6 of 12 jobs done, 6 to run" in more.stderr
    trained = sorted({line.split(":")[0] for line in more.stderr.splitlines() if ": eval 1 at step" in line})
    assert trained == [f"{v} seed {s}" for v in ("cgan", "dcgan") for s in (3, 4, 5)]
    jobs = pd.read_csv(out / "jobs.csv")
    assert len(jobs) == 12 and (jobs.status == "ok").all()
    assert jobs[["variant", "seed"]].values.tolist() == [[v, s] for v in ("cgan", "dcgan") for s in range(6)]
    for name, old in before.items():  # the first jobs' rows are kept as they were, timings included
        now = pd.read_csv(out / name)
        kept = now[now.seed < 3].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, old)
        assert (now[now.seed >= 3].groupby("variant").seed.nunique() == 3).all()
    metrics = pd.read_csv(out / "metrics.csv")
    assert (metrics.variant == "real-data").sum() == 1  # the reference row is not computed again
    record = json.loads((out / "config.json").read_text())
    assert record["run"]["seeds"] == list(range(6))
    assert [e["seeds"] for e in record["extended"]] == [[3, 4, 5]] and record["extended"][0]["at"]
    # the report's verdicts use all 6 seeds of each variant
    report = ganbench("report", out, "--format", "md")
    assert report.returncode == 0, report.stderr
    verdicts = pd.read_csv(out / "report" / "verdicts.csv")
    assert len(verdicts) and (verdicts.n_a == 6).all() and (verdicts.n_b == 6).all()
    decide = (out / "report" / "report.md").read_text().split("## What was run")[0]
    # this run measures only class metrics (dcgan has none), so its one matrix is throughput's
    assert "## What the seeds decide" in decide and "### train_img_per_s ↑" in decide
    # seeds are only added to: a --seeds that drops any is refused, and nothing changes
    digest = tree_digest(out)
    for seeds, dropped in (("0-4", "seed 5"), ("6-8", "seeds 0-5")):
        refused = ganbench("run", "--resume", out, "--seeds", seeds)
        assert refused.returncode == 2
        line = one_line_error(refused)
        assert f"--seeds {seeds} would drop {dropped} of the run in {out}" in line
        assert "accepted: its seeds 0-5 or a superset of" in line
    assert tree_digest(out) == digest


# --- hyperparameters: valid values and search ranges (ganbench.hparams) -------------------------------


def test_list_shows_each_variants_search_ranges(ganbench):
    out = ganbench("list")
    assert out.returncode == 0, out.stderr
    section = out.stdout.split("Search spaces")[1].split("\n\n")[0].splitlines()[1:]
    rows = {line.split()[0]: line.split()[1:] for line in section}
    assert set(rows) == {"acgan", "cgan", "cgan-pd", "cgan-wgangp", "dcgan", "r1gan", "sngan", "srgan", "wgan", "wgan-gp"}
    assert rows["dcgan"] == ["lr_g=log(1e-5,0.01)", "lr_d=log(1e-5,0.01)", "beta1=uniform(0,1)", "beta2=choice(0.9,0.999)"]
    assert "gp_weight=log(0.1,100)" in rows["wgan-gp"] and "critic_steps=int(1,5)" in rows["wgan-gp"]
    assert "clip=log(1e-3,1)" in rows["wgan"] and "critic_steps=int(1,5)" in rows["wgan"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "dcgan.lr_g=-1"], "--set dcgan.lr_g=-1: lr_g must be > 0 and finite"),
        (["--set", "dcgan.lr_g=nan"], "--set dcgan.lr_g=nan: lr_g must be > 0 and finite"),
        (["--set", "dcgan.batch_size=0"], "--set dcgan.batch_size=0: batch_size must be >= 1 and at most the training split's size"),
        (["--search", "dcgan.lr_g=log(1e-2,1e-5)"], "--search dcgan.lr_g=log(1e-2,1e-5): log(0.01,1e-5) is inverted"),
        (["--search", "dcgan.lr_g=uniform(1e-3,1e-3)"], "uniform(1e-3,1e-3) is empty"),
        (["--search", "dcgan.lr_g=log(0,1e-2)"], "--search dcgan.lr_g=log(0,1e-2): log(0,0.01) touches 0"),
        (["--search", "dcgan.lr_g=choice()"], "choice() is empty"),
        (["--search", "dcgan.gp_weight=log(1,10)"], "--search dcgan.gp_weight: dcgan has no setting 'gp_weight'; accepted: batch_size"),
        (["--search", "dcgan.z_dim=log(16,256)"], "log(16,256) draws real numbers, but z_dim is an integer field"),
        (["--search", "dcgan.lr_g=choice(fast,slow)"], "lr_g is a float field, and choice value 'fast' is not one"),
        (["--search", "dcgan.beta1=uniform(0,2)"], "beta1 must be in [0, 1), and uniform(0,2) reaches values up to 2"),
        (["--search", "cgan.lr_g=log(1e-5,1e-2)"], "--search names cgan, which is not a variant in --variants (dcgan)"),
        (["--search", "dcgan.lr_g=log(1e-5,1e-2)", "--set", "dcgan.lr_g=1e-4"], "dcgan.lr_g is both fixed by --set and searched by --search"),
        (["--search", "dcgan.lr_g"], "accepted: VARIANT.KEY=RANGE, e.g. dcgan.lr_g=log(1e-5,1e-2)"),
    ],
)  # fmt: skip
def test_bad_hyperparameters_are_refused_before_anything_is_written(args, message, tmp_path, ganbench):
    out = ganbench("run", "--variants", "dcgan", "--device", "cpu", "--no-download", *args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in one_line_error(out)
    assert not list(tmp_path.iterdir())  # no run directory, no results/


def test_a_bad_search_table_in_a_config_file_is_refused(tmp_path, ganbench):
    config = tmp_path / "run.toml"
    config.write_text('variants = ["wgan-gp"]\n\n[search.wgan-gp]\ncritic_steps = "int(5,1)"\n')
    out = ganbench("run", "--config", config, cwd=tmp_path)
    assert out.returncode == 2
    assert "search.wgan-gp.critic_steps=int(5,1): int(5,1) is inverted" in one_line_error(out)
    assert [p.name for p in tmp_path.iterdir()] == ["run.toml"]


def test_a_batch_larger_than_the_training_split_is_refused_once_the_data_is_known(tmp_path, cache_dir, ganbench):
    out = ganbench(
        "-q", "run", "--variants", "dcgan", "--device", "cpu", "--no-download", "--cache-dir", cache_dir,
        "--set", "dcgan.batch_size=60001", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2
    line = one_line_error(out)
    assert "dcgan.batch_size = 60001 is more than the 60000 images of fashion-mnist's training split" in line
    assert "accepted: 1 to 60000" in line
    assert not list(tmp_path.iterdir())  # the run directory and the results/ folder it needed are gone again


def test_a_search_range_is_validated_and_recorded(tmp_path, small_run, ganbench):
    out_dir = tmp_path / "run"
    out = ganbench(
        "run", "--variants", "wgan-gp", *small_run, "--out", out_dir,
        "--search", "wgan-gp.lr_g=log(1e-4, 1e-3)", "--search", "wgan-gp.z_dim=choice(64,128)",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    record = json.loads((out_dir / "config.json").read_text())
    assert record["run"]["search"] == {"wgan-gp": {"lr_g": "log(1e-4,1e-3)", "z_dim": "choice(64,128)"}}
    assert record["variants"]["wgan-gp"]["config"]["lr_g"] == 1e-4  # the default still trains: nothing is searched yet


@pytest.mark.parametrize(
    "setting, message",
    [
        ("bright-fraction.threshold=2", "--set bright-fraction.threshold=2: threshold must be in [0, 1]"),
        ("bright-fraction.threshold=high", "--set bright-fraction.threshold=high: could not convert string to float"),
        ("bright-fraction.cutoff=0.2", "--set bright-fraction.cutoff: bright-fraction has no setting 'cutoff'; accepted: threshold"),
        ("latent-walk.steps=1", "--set latent-walk.steps=1: steps must be >= 2"),
    ],
)  # fmt: skip
def test_bad_metric_and_probe_options_are_refused_with_exit_2(setting, message, tmp_path, ganbench, fixtures_dir):
    plugin = fixtures_dir / "plugin_third_party.py"
    out = ganbench("run", "--plugin", plugin, "--variants", "dcgan", "--device", "cpu", "--no-download",
                   "--set", setting, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2
    assert message in one_line_error(out)
    assert not list(tmp_path.iterdir())


def test_list_shows_the_options_of_metrics_and_probes(ganbench, fixtures_dir):
    out = ganbench("list", "--plugin", fixtures_dir / "plugin_third_party.py")
    assert out.returncode == 0, out.stderr
    section = out.stdout.split("Options of metrics and probes")[1].split("\n\n")[0].splitlines()[1:]
    rows = {line.split()[0]: line.split()[1:] for line in section}
    assert rows["bright-fraction"] == ["threshold=0.5"] and rows["latent-walk"] == ["steps=4"]
    assert rows["steering"][:2] == ["latents=64", "steps=10"]
