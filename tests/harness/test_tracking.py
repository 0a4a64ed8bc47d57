"""Live tracking (``--track``): what TensorBoard's event reader and MLflow's client read back
from a run, a resumed run without duplicated points, and a tracker that fails or is missing."""

import io
import logging
import subprocess
import sys

import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import ganbench
from ganbench import columns as C
from ganbench.cli import main
from ganbench.harness import events as E
from ganbench.harness.tracking import (
    MLFLOW_DB,
    TENSORBOARD_DIR,
    MlflowTracker,
    TensorBoardTracker,
    Tracking,
    read_tracking,
)


def png(shade: int, size=(8, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, shade).save(buffer, format="PNG")
    return buffer.getvalue()


def accumulator(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def mlflow_client(run_dir) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{run_dir / MLFLOW_DB}")


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def log(variant, seed, step, **losses) -> E.Log:
    where = {C.VARIANT: variant, C.SEED: seed, C.STEP: step, C.IMAGES_SEEN: step * 64, C.TRAIN_SECONDS: 0.1}
    return E.Log({**where, **losses})


def row(variant, seed, step, eval_index, **values) -> E.Row:
    base = {C.VARIANT: variant, C.SEED: seed, C.STEP: step, C.EVAL_INDEX: eval_index, C.STATUS: C.STATUS_OK}
    return E.Row({**base, **values})


def first_attempt(tracking: Tracking) -> None:
    """A job's events up to step 30, checkpointed at step 20 (then it is killed)."""
    tracking.handle(E.JobStarted("cgan", 0))
    for step in (10, 20):
        tracking.handle(log("cgan", 0, step, d_loss=1.0 / step, g_loss=2.0))
    tracking.handle(E.Grid("cgan", 0, 20, 1, png(40)))
    tracking.handle(row("cgan", 0, 20, 1, fid_domain=50.0, class_coverage=float("nan")))
    tracking.handle(E.Checkpoint("cgan", 0, b""))
    tracking.handle(log("cgan", 0, 30, d_loss=0.5, g_loss=2.5))  # after the checkpoint: logged again on resume


def second_attempt(tracking: Tracking) -> None:
    """The resumed job: from its checkpoint at step 20 to its end at step 40."""
    tracking.handle(E.JobStarted("cgan", 0, resumed_at=20))
    for step in (30, 40):
        tracking.handle(log("cgan", 0, step, d_loss=0.25, g_loss=3.0))
    tracking.handle(E.Grid("cgan", 0, 40, 2, png(200)))
    tracking.handle(row("cgan", 0, 40, 2, fid_domain=40.0))
    tracking.handle(E.JobEnded("cgan", 0, C.STATUS_OK, step=40, eval_index=2))


def params(variant):
    return {"variant": variant, "hparams": {"lr_g": 2e-4, "betas": [0.5, 0.999]}}


RUN_PARAMS = {"run": {"budget": "40steps", "set": {"cgan": {"lr_g": "2e-4"}}, "out": None}}


def test_tensorboard_gets_losses_metrics_grids_and_hparams_and_a_resume_duplicates_none(tmp_path):
    tracking = Tracking([TensorBoardTracker(tmp_path, RUN_PARAMS)], [C.FID_DOMAIN, C.CLASS_COVERAGE], params)
    first_attempt(tracking)
    tracking.close()
    tracking = Tracking([TensorBoardTracker(tmp_path, RUN_PARAMS)], [C.FID_DOMAIN, C.CLASS_COVERAGE], params)
    second_attempt(tracking)
    tracking.close()

    folder = tmp_path / TENSORBOARD_DIR / "cgan-seed0"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2  # one file per attempt
    acc = accumulator(folder)
    assert steps(acc, "loss/d_loss") == [10, 20, 30, 40]  # step 30 of the first attempt purged
    assert [e.value for e in acc.Scalars("loss/d_loss")][2] == 0.25
    assert steps(acc, "metrics/fid_domain") == [20, 40]
    assert "metrics/class_coverage" not in acc.Tags()["scalars"]  # NaN: not a point
    assert [(i.step, i.width, i.height) for i in acc.Images("samples")] == [(20, 8, 4), (40, 8, 4)]
    hparams = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams
    config = acc.Tensors("config/text_summary")
    assert len(config) == 1 and "set.cgan.lr_g" in config[0].tensor_proto.string_val[0].decode()
    assert "hparams.lr_g" in config[0].tensor_proto.string_val[0].decode()


def test_mlflow_gets_a_parent_a_child_per_job_and_a_resume_duplicates_none(tmp_path):
    tracking = Tracking([MlflowTracker(tmp_path, None, "run", RUN_PARAMS)], [C.FID_DOMAIN], params)
    first_attempt(tracking)
    tracking.handle(E.JobStarted("acgan", 1))
    tracking.handle(log("acgan", 1, 10, d_loss=0.7))
    tracking.handle(E.JobEnded("acgan", 1, C.STATUS_FAILED))
    ids = read_tracking(tmp_path)["mlflow"]
    tracking = Tracking([MlflowTracker(tmp_path, None, "run", RUN_PARAMS)], [C.FID_DOMAIN], params)
    second_attempt(tracking)
    tracking.close()

    client = mlflow_client(tmp_path)
    assert read_tracking(tmp_path)["mlflow"] == ids  # the same tracked runs continued
    parent = client.get_run(ids["parent"])
    assert parent.data.params["run.set.cgan.lr_g"] == "2e-4" and parent.info.status == "FINISHED"
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{ids['parent']}'")
    assert sorted(r.info.run_name for r in children) == ["acgan-seed1", "cgan-seed0"]
    cgan = client.get_run(ids["jobs"]["cgan-seed0"])
    assert cgan.info.status == "FINISHED" and client.get_run(ids["jobs"]["acgan-seed1"]).info.status == "FAILED"
    assert cgan.data.params["hparams.lr_g"] == "0.0002" and cgan.data.params["seed"] == "0"
    run_id = cgan.info.run_id
    # step 30 logged once: by the first attempt (the resume's is not logged again)
    assert history(client, run_id, "loss/d_loss") == [(10, 0.1), (20, 0.05), (30, 0.5), (40, 0.25)]
    assert history(client, run_id, "metrics/fid_domain") == [(20, 50.0), (40, 40.0)]
    grids = [a.path for a in client.list_artifacts(run_id, "samples")]
    assert grids == ["samples/step-00000020.png", "samples/step-00000040.png"]


class Broken:
    """A tracker whose every call raises."""

    name = "broken"

    def __init__(self):
        self.calls = 0

    def __getattr__(self, method):
        def fail(*args, **kwargs):
            self.calls += 1
            raise OSError("the disk is full")

        return fail


def test_a_tracker_that_raises_is_one_warning_and_the_others_go_on(tmp_path, caplog):
    broken = Broken()
    tracking = Tracking([broken, TensorBoardTracker(tmp_path, RUN_PARAMS)], [C.FID_DOMAIN], params)
    with caplog.at_level(logging.WARNING, logger="ganbench.harness.tracking"):
        first_attempt(tracking)
        second_attempt(tracking)
        tracking.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["--track broken stopped tracking this run: OSError: the disk is full"]
    assert broken.calls == 1
    assert steps(accumulator(tmp_path / TENSORBOARD_DIR / "cgan-seed0"), "metrics/fid_domain") == [20, 40]


MISSING = {
    "mlflow": "--track mlflow needs mlflow installed: pip install 'ganbench[mlflow]'",
    "sqlalchemy": "--track mlflow's local store needs sqlalchemy installed: pip install 'ganbench[mlflow]' "
    "(or give --track-uri)",
}


@pytest.mark.parametrize("module", MISSING)
def test_track_mlflow_without_mlflow_is_exit_2_before_anything_is_written(
    module, tmp_path, monkeypatch, capsys, cache_dir
):
    monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    out = tmp_path / "run"
    argv = ["run", "--variants", "cgan", "--budget", "5steps", "--cache-dir", str(cache_dir), "--out", str(out)]
    assert main([*argv, "--track", "tensorboard,mlflow"]) == 2
    assert capsys.readouterr().err.strip() == f"ganbench: error: {MISSING[module]}"
    assert not out.exists()


def test_an_unknown_tracker_is_exit_2(tmp_path, capsys, cache_dir):
    argv = ["run", "--variants", "cgan", "--cache-dir", str(cache_dir), "--out", str(tmp_path / "run")]
    assert main([*argv, "--track", "tensorboard,wandb"]) == 2
    assert "track wandb is unknown; accepted: tensorboard, mlflow" in capsys.readouterr().err


# --- real runs -------------------------------------------------------------------------------------

RUN = dict(
    variants="cgan", dataset="fashion-mnist", budget="40steps", evals=2, eval_samples=50, log_every=10,
    device="cpu", download=False, probes=(),
)  # fmt: skip


def cli_args(cache_dir, out, track="tensorboard,mlflow"):
    args = [f"--{k.replace('_', '-')}={v}" for k, v in RUN.items() if k not in ("download", "probes")]
    return ["run", *args, "--no-download", "--no-probes", "--cache-dir", cache_dir, "--out", out, "--track", track]


def tables(out):
    metrics = pd.read_csv(out / "metrics.csv").drop(columns=list(C.TIMING_COLUMNS))
    train_log = pd.read_csv(out / "train_log.csv").drop(columns=[C.TRAIN_SECONDS])
    return metrics, train_log, pd.read_csv(out / "per_class.csv")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("tracked") / "run"
    ganbench.run(**RUN, cache_dir=cache_dir, out=out, track=("tensorboard", "mlflow"))
    return out


@pytest.mark.slow
def test_a_tracked_run_reads_back_from_tensorboard_and_mlflow(tracked):
    metrics = pd.read_csv(tracked / "metrics.csv")
    final = metrics[metrics[C.VARIANT] == "cgan"].iloc[-1]
    acc = accumulator(tracked / TENSORBOARD_DIR / "cgan-seed0")
    assert steps(acc, "loss/d_loss") == [10, 20, 30, 40] and steps(acc, "loss/g_loss") == [10, 20, 30, 40]
    assert steps(acc, "metrics/fid_domain") == [20, 40]
    assert acc.Scalars("metrics/fid_domain")[-1].value == pytest.approx(final[C.FID_DOMAIN])
    assert acc.Scalars("metrics/class_consistency")[-1].value == pytest.approx(final[C.CLASS_CONSISTENCY])
    assert [i.step for i in acc.Images("samples")] == [20, 40]
    shown = Image.open(io.BytesIO(acc.Images("samples")[-1].encoded_image_string)).convert("RGB")
    assert shown.tobytes() == Image.open(tracked / "samples" / "cgan-seed0.png").convert("RGB").tobytes()

    ids = read_tracking(tracked)["mlflow"]
    client = mlflow_client(tracked)
    child = client.get_run(ids["jobs"]["cgan-seed0"])
    assert child.data.tags["mlflow.parentRunId"] == ids["parent"]
    assert client.get_run(ids["parent"]).data.params["run.budget"] == "40steps"
    assert child.data.params["variant"] == "cgan" and "hparams.lr_g" in child.data.params
    assert [s for s, _ in history(client, child.info.run_id, "metrics/fid_domain")] == [20, 40]
    assert child.data.metrics["metrics/fid_domain"] == pytest.approx(final[C.FID_DOMAIN])
    train_log = pd.read_csv(tracked / "train_log.csv")
    logged = history(client, child.info.run_id, "loss/g_loss")
    assert [s for s, _ in logged] == train_log[C.STEP].tolist()
    assert [v for _, v in logged] == pytest.approx(train_log["g_loss"].tolist())


@pytest.mark.slow
def test_a_run_whose_tracker_raises_keeps_its_tables(tracked, tmp_path, cache_dir, monkeypatch, caplog):
    def fail(*args, **kwargs):
        raise RuntimeError("tensorboard broke")

    monkeypatch.setattr(TensorBoardTracker, "scalars", fail)
    with caplog.at_level(logging.WARNING, logger="ganbench.harness.tracking"):
        ganbench.run(**RUN, cache_dir=cache_dir, out=tmp_path / "run", track=("tensorboard",))
    warnings = [r.getMessage() for r in caplog.records if r.name == "ganbench.harness.tracking"]
    assert warnings == ["--track tensorboard stopped tracking this run: RuntimeError: tensorboard broke"]
    for ours, theirs in zip(tables(tmp_path / "run"), tables(tracked)):
        pd.testing.assert_frame_equal(ours, theirs)


@pytest.mark.slow
def test_a_killed_and_resumed_tracked_run_has_no_duplicated_points(
    tracked, tmp_path, cache_dir, fixtures_dir, ganbench_command
):
    out = tmp_path / "run"
    # killed mid-way through the second half: after the checkpoint at step 20 and the log point at 30
    killed = subprocess.run(
        [sys.executable, fixtures_dir / "kill_at.py", "batch:35", "--", *map(str, cli_args(cache_dir, out))],
        capture_output=True,
        text=True,
    )
    assert killed.returncode < 0, killed.stderr
    client = mlflow_client(out)
    ids = read_tracking(out)["mlflow"]
    child = ids["jobs"]["cgan-seed0"]
    assert [s for s, _ in history(client, child, "loss/d_loss")] == [10, 20, 30]  # 30: after the checkpoint
    resumed = subprocess.run([*ganbench_command, "run", "--resume", str(out)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert read_tracking(out)["mlflow"] == ids

    acc = accumulator(out / TENSORBOARD_DIR / "cgan-seed0")
    for tag in ("loss/d_loss", "loss/g_loss"):
        assert steps(acc, tag) == [10, 20, 30, 40]
    assert steps(acc, "metrics/fid_domain") == [20, 40]
    assert [i.step for i in acc.Images("samples")] == [20, 40]
    for key in ("loss/d_loss", "loss/g_loss", "metrics/fid_domain", "metrics/kid_domain"):
        points = [s for s, _ in history(client, child, key)]
        assert points == sorted(set(points)), key
    assert [s for s, _ in history(client, child, "loss/d_loss")] == [10, 20, 30, 40]
    assert len(client.search_runs([client.get_experiment_by_name("ganbench").experiment_id])) == 2
    for ours, theirs in zip(tables(out), tables(tracked)):  # and the run is the uninterrupted one
        pd.testing.assert_frame_equal(ours, theirs)


def test_an_event_the_trackers_cannot_read_stops_tracking_with_one_warning(tmp_path, caplog):
    def no_params(variant):
        raise KeyError(variant)

    tracking = Tracking([TensorBoardTracker(tmp_path, RUN_PARAMS)], [C.FID_DOMAIN], no_params)
    with caplog.at_level(logging.WARNING, logger="ganbench.harness.tracking"):
        first_attempt(tracking)
        tracking.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["--track tensorboard stopped tracking this run: KeyError: 'cgan'"]


def test_a_moved_run_directory_continues_its_local_mlflow_runs(tmp_path):
    import shutil

    tracking = Tracking([MlflowTracker(tmp_path / "a", None, "run", RUN_PARAMS)], [C.FID_DOMAIN], params)
    first_attempt(tracking)
    before = read_tracking(tmp_path / "a")["mlflow"]
    shutil.move(tmp_path / "a", tmp_path / "b")
    tracking = Tracking([MlflowTracker(tmp_path / "b", None, "run", RUN_PARAMS)], [C.FID_DOMAIN], params)
    second_attempt(tracking)
    tracking.close()
    after = read_tracking(tmp_path / "b")["mlflow"]
    assert (after["parent"], after["jobs"]) == (before["parent"], before["jobs"])
    client = mlflow_client(tmp_path / "b")
    assert [s for s, _ in history(client, after["jobs"]["cgan-seed0"], "loss/d_loss")] == [10, 20, 30, 40]
    assert not (tmp_path / "a").exists()  # nothing written where the run directory was
