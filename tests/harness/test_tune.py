"""``ganbench tune``: equal searches, selection on held-out training images only, phase 2 on
fresh seeds; trials are ordinary runs, so they resume exactly and fan out on Ray."""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

import ganbench
from ganbench import columns as C
from ganbench.harness.tune import TRIAL_SEED_BASE, draw_settings, run_concurrently, sobol_points, trials_in_flight
from ganbench.hparams import Choice, IntUniform, LogUniform, Uniform
from ganbench.report.tuning import expected_best

# --- the settings -----------------------------------------------------------------------------


def test_settings_lie_in_their_ranges_and_share_positions_across_variants():
    spaces = {
        "a": {"lr_g": LogUniform(1e-5, 1e-2), "beta1": Uniform(0, 1), "critic_steps": IntUniform(1, 5)},
        "b": {"lr_g": LogUniform(1e-5, 1e-2), "beta2": Choice(0.9, 0.999)},
    }
    settings = draw_settings(spaces, 16, seed=3)
    assert settings == draw_settings(spaces, 16, seed=3)  # seeded: a tune is re-made exactly
    assert settings != draw_settings(spaces, 16, seed=4)
    for variant, space in spaces.items():
        assert len(settings[variant]) == 16
        for setting in settings[variant]:
            assert set(setting) == set(space) and all(space[k].contains(v) for k, v in setting.items())
    # the same coordinate for the same name: both variants try the same learning rates, in order
    assert [s["lr_g"] for s in settings["a"]] == [s["lr_g"] for s in settings["b"]]
    assert len({s["lr_g"] for s in settings["a"]}) == 16
    assert {s["critic_steps"] for s in settings["a"]} == {1, 2, 3, 4, 5}  # 16 Sobol points reach every value


def test_sobol_points_are_balanced_in_every_coordinate():
    points = sobol_points(16, 3, seed=0)
    assert points.shape == (16, 3) and ((0 <= points) & (points < 1)).all()
    for column in points.T:  # scrambled Sobol: one point in each sixteenth of every axis
        assert sorted(np.floor(column * 16).astype(int)) == list(range(16))


# --- Dodge et al.'s expected best ----------------------------------------------------------------


def brute_force(scores, k, lower):
    """The expectation by enumerating every k-tuple of trials drawn with replacement."""
    best = []
    for draw in itertools.product(scores, repeat=k):
        finite = [v for v in draw if np.isfinite(v)]
        if finite:
            best.append(min(finite) if lower else max(finite))
    return np.mean(best), np.std(best), 1 - len(best) / len(scores) ** k


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("scores", [[3.0, 1.0, 2.0, 5.0], [2.0, 2.0, 7.0, float("nan"), 1.0], [4.0]])
def test_expected_best_equals_enumerating_every_draw(scores, lower):
    for k in range(1, 4):
        mean, sd, p_none = expected_best(scores, k, lower)
        want = brute_force(scores, k, lower)
        assert mean == pytest.approx(want[0], rel=1e-12) and sd == pytest.approx(want[1], abs=1e-12)
        assert p_none == pytest.approx(want[2], abs=1e-12)
    assert expected_best(scores, 1, lower)[0] == pytest.approx(np.nanmean(scores))


def test_expected_best_without_any_score_is_nan():
    mean, sd, p_none = expected_best([float("nan")] * 3, 2, lower=True)
    assert np.isnan(mean) and np.isnan(sd) and p_none == 1.0


# --- bad input: one line, exit 2, nothing created ----------------------------------------------------

BAD = {
    "no trials": (["--trials", "0"], "--trials 0: accepted: 1 to"),
    "unknown selection column": (
        ["--select", "sharpness"],
        "--select sharpness: no metric computes that column; accepted:",
    ),
    "selection not computed for a variant": (
        ["--select", "class_consistency"],
        "needs a conditional variant; dcgan is not",
    ),
    "a log range touching 0": (["--search", "dcgan.lr_g=log(0,1)"], "touches 0"),
    "an inverted range": (["--search", "dcgan.beta1=uniform(0.9,0.1)"], "is inverted"),
    "an empty range": (["--search", "dcgan.critic_steps=int(3,3)"], "dcgan.critic_steps"),
    "a range on a field the variant lacks": (
        ["--search", "dcgan.gp_weight=log(1,10)"],
        "dcgan has no setting 'gp_weight'",
    ),
    "a range of the wrong type": (["--search", "dcgan.batch_size=uniform(1.5,9.5)"], "dcgan.batch_size"),
    "final seeds that are search seeds": (["--final-seeds", f"{TRIAL_SEED_BASE}"], "include search seeds"),
    "nothing held out": (["--holdout", "0"], "--holdout 0"),
    "a value outside the valid ones": (["--set", "dcgan.lr_g=-1"], "dcgan.lr_g"),
    "more held out than the training split": (["--holdout", "70000"], "holdout = 70000 does not fit"),
}


@pytest.mark.parametrize("args, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_and_exit_2_before_any_training(args, message, tmp_path, cache_dir, ganbench_cli):
    out = tmp_path / "tune"
    done = ganbench_cli(
        "tune", "--variants", "dcgan,cgan", "--trials", "2", "--budget", "2steps", "--eval-samples", "50",
        "--cache-dir", cache_dir, "--no-download", "--device", "cpu", "--out", out, *args,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ganbench: error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert not out.exists()  # nothing created, nothing trained


def test_a_folder_holding_someone_elses_files_is_refused(tmp_path, cache_dir, ganbench_cli):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    done = ganbench_cli(
        "tune", "--variants", "dcgan", "--trials", "2", "--cache-dir", cache_dir, "--out", tmp_path / "mine"
    )
    assert done.returncode == 2 and "not a ganbench tune (notes.txt)" in done.stderr
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


# --- whole tunes (CPU, steps budget) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tune_args(cache_dir):
    """2 variants x 4 trials + 2 final seeds, small evaluations."""
    return [
        "tune", "--variants", "dcgan,cgan", "--trials", "4", "--final-seeds", "0,1", "--budget", "2steps",
        "--eval-samples", "100", "--evals", "1", "--holdout", "500", "--no-probes", "--metrics",
        "domain-fidelity,class-consistency", "--device", "cpu", "--no-download", "--cache-dir", str(cache_dir),
    ]  # fmt: skip


def tune_tables(out):
    """What must come out the same: trials.csv, and every run's metrics and jobs, timings aside."""
    trials = pd.read_csv(out / "trials.csv").drop(columns=[C.TRAIN_SECONDS])
    runs = sorted(p.parent for p in out.rglob("jobs.csv"))  # the runs (the tune's own metrics.csv stacks theirs)
    frames = [trials]
    for run in runs:
        metrics = pd.read_csv(run / "metrics.csv")
        frames += [metrics.drop(columns=[c for c in C.TIMING_COLUMNS if c in metrics]), pd.read_csv(run / "jobs.csv")]
    return [str(r.relative_to(out)) for r in runs], frames


@pytest.fixture(scope="module")
def uninterrupted(tune_args, tmp_path_factory, ganbench_command):
    out = tmp_path_factory.mktemp("tune") / "whole"
    done = subprocess.run([*ganbench_command, *tune_args, "--out", out], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def assert_same_tune(out, other):
    ours, theirs = tune_tables(out), tune_tables(other)
    assert ours[0] == theirs[0]
    for a, b in zip(ours[1], theirs[1]):
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_a_tune_tries_equal_settings_selects_and_retrains_on_fresh_seeds(uninterrupted, registry):
    trials = pd.read_csv(uninterrupted / "trials.csv")
    assert len(trials) == 8 and trials.groupby("variant").trial.apply(list).to_dict() == {
        "cgan": [0, 1, 2, 3], "dcgan": [0, 1, 2, 3],
    }  # fmt: skip
    assert (trials.status == "ok").all() and trials.score.notna().all()
    assert (trials.seed == TRIAL_SEED_BASE + trials.trial).all()
    for variant, group in trials.groupby("variant"):
        space = registry.variant(variant).search_space
        for key, r in space.items():
            assert group[key].map(r.contains).all(), (variant, key)
        assert group.selected.sum() == 1  # the best held-out score (lower fid_domain)
        assert group.loc[group.selected, "score"].iloc[0] == group.score.min()
    shared = ["lr_g", "lr_d", "beta1", "beta2"]  # the same positions: the same values of shared names
    dcgan, cgan = (trials[trials.variant == v].set_index("trial")[shared] for v in ("dcgan", "cgan"))
    pd.testing.assert_frame_equal(dcgan, cgan)
    # phase 1 scored on held-out training images, with only the selection metric
    record = json.loads((uninterrupted / "trials" / "trial-000" / "config.json").read_text())
    assert record["run"]["holdout"] == 500 and record["run"]["metrics"] == ["domain-fidelity"]
    # phase 2: the chosen settings, on the final seeds, scored on the test split
    final = json.loads((uninterrupted / "final" / "config.json").read_text())
    assert final["run"]["seeds"] == [0, 1] and final["run"]["holdout"] == 0
    for variant, group in trials.groupby("variant"):
        chosen = group[group.selected].iloc[0]
        assert final["variants"][variant]["config"]["lr_g"] == pytest.approx(chosen.lr_g, rel=1e-12)
    metrics = pd.read_csv(uninterrupted / "final" / "metrics.csv")
    assert set(metrics[metrics.status == "ok"].seed) == {0, 1} and metrics.fid_domain.notna().any()
    # one table of every job of both phases
    stacked = pd.read_csv(uninterrupted / "metrics.csv")
    assert list(stacked.columns[:2]) == ["phase", "trial"]
    search = stacked[stacked.phase == "search"]
    assert len(search) == sum(len(pd.read_csv(p)) for p in (uninterrupted / "trials").glob("*/metrics.csv"))
    assert sorted(search[search.status == "ok"].trial.unique()) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(
        stacked[stacked.phase == "final"].drop(columns=["phase", "trial"]).reset_index(drop=True), metrics,
        check_dtype=False,
    )


@pytest.mark.slow
def test_two_identical_tunes_write_identical_tables(uninterrupted, tune_args, tmp_path, ganbench_command):
    out = tmp_path / "again"
    done = subprocess.run([*ganbench_command, *tune_args, "--out", out], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_same_tune(out, uninterrupted)


@pytest.mark.slow
@pytest.mark.xdist_group("tune-resume")  # one worker builds the uninterrupted tune once
@pytest.mark.parametrize(
    "moment", ["batch:6", "replace:trials.csv:2", "batch:19"], ids=["phase 1", "trials table", "phase 2"]
)
def test_a_tune_killed_and_resumed_equals_an_uninterrupted_one(
    moment, uninterrupted, tune_args, tmp_path, fixtures_dir, ganbench_cli
):
    out = tmp_path / "tune"
    killed = subprocess.run(
        [sys.executable, fixtures_dir / "kill_at.py", moment, "--", *tune_args, "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = ganbench_cli("tune", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_tune(out, uninterrupted)


@pytest.mark.slow
def test_a_tune_with_other_options_in_the_same_folder_is_refused(uninterrupted, tune_args, ganbench_cli):
    done = ganbench_cli(*tune_args, "--trials", "5", "--out", uninterrupted)
    assert done.returncode == 2 and "holds a tune with other options (trials: 4 -> 5)" in done.stderr


@pytest.mark.slow
def test_selection_reads_only_held_out_training_images(tmp_path, cache_dir, fixtures_dir):
    result = ganbench.tune(
        variants="dcgan,cgan", trials=4, final_seeds="0,1", budget="2steps", eval_samples=100, evals=1,
        holdout=500, probes=(), metrics="split-ink", select="split_ink", plugin=[fixtures_dir / "plugin_split_metric.py"],
        device="cpu", download=False, cache_dir=cache_dir, out=tmp_path / "tune",
    )  # fmt: skip
    trials = result.trials
    for k in range(4):  # phase 1 never handed the metric the test split
        metrics = pd.read_csv(result.tune_dir / "trials" / f"trial-{k:03d}" / "metrics.csv")
        assert (metrics.split_is_test == 0).all()
    final = result.final.metrics
    assert (final.split_is_test == 1).all()  # phase 2 is scored on the test split
    for _, group in trials.groupby("variant"):
        held_out_best = group.loc[group.score.idxmin(), "trial"]
        test_best = group.loc[(-group.score).idxmin(), "trial"]  # the test split's ranking is the reverse
        assert held_out_best != test_best
        assert group.loc[group.selected, "trial"].tolist() == [held_out_best]


@pytest.mark.slow
def test_the_tuned_report_shows_the_search_then_the_verdicts(uninterrupted, ganbench_cli, tmp_path):
    done = ganbench_cli("report", uninterrupted, "--out", tmp_path / "report", "--format", "md")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    assert "tuned: 4 trials each, 2 seeds" in text.splitlines()[2]
    order = ["## What the seeds decide", "## How the variants were tuned", "## Expected best score after k trials",
             "## Chosen settings", "## Sensitivity", "## All trials", "## Leaderboard"]  # fmt: skip
    assert [text.index(h) for h in order] == sorted(text.index(h) for h in order)
    expected = pd.read_csv(tmp_path / "report" / "expected_best.csv")
    trials = pd.read_csv(uninterrupted / "trials.csv")
    for variant, group in trials.groupby("variant"):
        mine = expected[expected.variant == variant].set_index("k").expected_best
        assert mine[1] == pytest.approx(group.score.mean()) and mine[4] <= mine[1]
    for key in ("lr_g", "beta1", "beta2", "lr_d"):
        assert (tmp_path / "report" / "images" / f"tune-sensitivity-{key}.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_ray_tune_writes_the_same_tables_as_a_local_one(ray_instance, tmp_path, cache_dir):
    import torch

    kwargs = dict(
        variants="dcgan,cgan", trials=2, final_seeds="0", budget="2steps", eval_samples=100, evals=1, holdout=500,
        probes=(), metrics="domain-fidelity", device="cpu", download=False, cache_dir=cache_dir,
    )  # fmt: skip
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a Ray job's thread count with one CPU: CPU results may depend on it
    try:
        ray_tune = ganbench.tune(**kwargs, out=tmp_path / "ray", executor="ray", cpus_per_job=1)
        local_tune = ganbench.tune(**kwargs, out=tmp_path / "local")
    finally:
        torch.set_num_threads(before)
    assert len(ray_tune.trials) == 4
    assert_same_tune(ray_tune.tune_dir, local_tune.tune_dir)


# --- trials at once on Ray -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slots, variants, trials, expected",
    [(2, 4, 16, 2), (64, 4, 16, 16), (64, 8, 16, 9), (64, 4, 8, 8), (1, 1, 16, 2), (3, 2, 1, 1), (0, 0, 4, 1)],
)
def test_a_ray_tune_runs_enough_trials_at_once_to_fill_the_cluster(slots, variants, trials, expected):
    assert trials_in_flight(slots, variants, trials) == expected


def test_job_slots_count_the_scarcer_resource():
    from ganbench.harness.ray_executor import job_slots

    assert job_slots({"CPU": 16.0}, 1, 0) == 16
    assert job_slots({"CPU": 16.0, "GPU": 4.0}, 2, 1) == 4
    assert job_slots({"CPU": 16.0, "GPU": 4.0}, 8, 1) == 2
    assert job_slots({"CPU": 1.0}, 4, 0) == 1  # never 0: one job at a time at least


def test_trials_run_concurrently_up_to_the_limit_and_tables_follow_each():
    lock, state, order = threading.Lock(), {"now": 0, "most": 0, "done": 0}, []

    def one(k, stop):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
            order.append(k)

    def done():
        state["done"] += 1

    run_concurrently(range(7), one, 3, done)
    assert sorted(order) == list(range(7)) and state["most"] == 3
    assert 1 <= state["done"] <= 7 and state["now"] == 0


def test_a_failing_trial_stops_the_others_and_its_error_is_raised():
    started, stopped = [], []

    def one(k, stop):
        started.append(k)
        if k == 1:
            raise ValueError("trial 1 broke")
        if stop.wait(5):  # as a Ray run does: it ends, its running jobs recorded interrupted
            stopped.append(k)
            raise KeyboardInterrupt

    with pytest.raises(ValueError, match="trial 1 broke"):
        run_concurrently(range(6), one, 2, lambda: None)
    assert 1 in started and len(started) < 6  # no trial is started once one has failed
    assert stopped == [k for k in started if k != 1]


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ctrl_c_stops_every_trial_of_a_ray_tune_and_says_how_to_resume(
    tmp_path, cache_dir, classifier, start_interruptible
):  # classifier: trained before the clock starts
    out = tmp_path / "tune"
    process = start_interruptible(
        "tune", "--variants", "dcgan", "--trials", "4", "--final-seeds", "0", "--budget", "2000steps",
        "--evals", "200", "--eval-samples", "100", "--holdout", "500", "--device", "cpu", "--no-download",
        "--cache-dir", cache_dir, "--executor", "ray", "--out", out,
    )  # fmt: skip
    try:  # interrupted once two trials' jobs have started (a trial evaluates at its end only)
        deadline = time.monotonic() + 600
        while len([j for j in (out / "trials").glob("trial-*/jobs.csv") if _started(j)]) < 2:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert f"ganbench tune --resume {out}" in stderr.splitlines()[-1]
    statuses = {  # a trial still setting up when Ctrl-C came has no jobs yet
        jobs.parent.name: pd.read_csv(jobs).status.tolist() for jobs in sorted((out / "trials").glob("*/jobs.csv"))
    }
    assert sum(s == ["interrupted"] for s in statuses.values()) >= 2, statuses  # two trials at once
    assert "ok" not in {s for v in statuses.values() for s in v}  # none ran to its end after Ctrl-C
    assert not (out / "final").exists()


def _started(jobs_csv):
    try:
        return (pd.read_csv(jobs_csv).variant == "dcgan").any()
    except (OSError, pd.errors.EmptyDataError):
        return False


def test_a_metrics_and_a_probes_options_reach_the_trials_and_the_final_run(tmp_path, fixtures_dir):
    """--set of a metric or probe is not a variant's hyperparameter: the trials keep the selecting
    metric's options, the final run every metric's and probe's (none is dropped on the way)."""
    from ganbench.config import RunConfig
    from ganbench.harness.plan import plan_run
    from ganbench.harness.tune import TuneConfig, plan_tune
    from ganbench.registry import load_registry

    plugin = fixtures_dir / "plugin_third_party.py"
    registry = load_registry([str(plugin)], environ={})
    options = {"bright-fraction": {"threshold": "0.7"}, "latent-walk": {"steps": "6"}, "dcgan": {"lr_d": "1e-4"}}
    run = RunConfig(variants=("dcgan",), out=tmp_path / "tune", device="cpu", plugin=(plugin,), set=options,
                    probes=("latent-walk",))  # fmt: skip
    tplan = plan_tune(TuneConfig(run=run, trials=2, select="bright_fraction", holdout=1000), registry)
    trial = plan_run(tplan.trial_config(0), registry)
    assert trial.metric_options["bright-fraction"].threshold == 0.7 and trial.probes == ()
    assert trial.variant("dcgan").config.lr_d == 1e-4
    final = plan_run(tplan.final_config({"dcgan": {"lr_g": 3e-4}}), registry)
    assert final.metric_options["bright-fraction"].threshold == 0.7
    assert [(p.spec.name, p.config.steps) for p in final.probes] == [("latent-walk", 6)]
    assert (final.variant("dcgan").config.lr_g, final.variant("dcgan").config.lr_d) == (3e-4, 1e-4)
