import hashlib
import io
import json
import math

import pandas as pd
import pytest
import torch
from PIL import Image

from ganbench import columns as C
from ganbench.errors import UsageError
from ganbench.harness import events as E
from ganbench.harness import writer as W
from ganbench.harness.grids import sample_grid_png
from ganbench.harness.rundir import TABLES_JSON, RunDir, manifest_accepts, read_manifest
from ganbench.harness.writer import ResultsWriter, final_rows, format_summary


def row(variant, seed, eval_index, fid, status=C.STATUS_OK):
    return {C.VARIANT: variant, C.DATASET: "d", C.SEED: seed, C.EVAL_INDEX: eval_index, C.STEP: eval_index * 10,
            C.IMAGES_SEEN: eval_index * 640, C.TRAIN_SECONDS: 1.0, C.CRITIC_STEPS: 1, C.STATUS: status,
            C.FID_DOMAIN: fid, C.NOTE: ""}  # fmt: skip


ORDER = [("a", 0), ("a", 1), ("b", 0), ("b", 1)]


@pytest.fixture
def writer(tmp_path):
    return ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER)


def test_summary_is_mean_and_std_of_final_evaluations_over_seeds(writer, tmp_path):
    for r in [row("a", 0, 1, 100.0), row("a", 0, 2, 10.0), row("a", 1, 1, 90.0), row("a", 1, 2, 20.0),
              row("b", 0, 1, 50.0), row("b", 1, 1, math.nan, C.STATUS_DIVERGED)]:  # fmt: skip
        writer.add_row(r)
    frame, summary = writer.finish()
    assert list(final_rows(frame)[C.FID_DOMAIN].fillna(-1)) == [10.0, 20.0, 50.0, -1]
    a = summary.set_index(C.VARIANT).loc["a"]
    assert a.fid_domain_mean == 15.0 and a.fid_domain_std == pytest.approx(math.sqrt(50)) and a.seeds == 2
    b = summary.set_index(C.VARIANT).loc["b"]
    assert b.status == "1 ok, 1 diverged" and b.fid_domain_mean == 50.0 and math.isnan(b.fid_domain_std)
    assert pd.read_csv(tmp_path / "summary.csv").shape == summary.shape
    text = format_summary(summary, [C.FID_DOMAIN])
    assert "15 ± 7.1" in text and "1 ok, 1 diverged" in text


def test_summary_of_an_interrupted_job_is_its_last_evaluation(writer):
    writer.add_row(row("a", 0, 1, 80.0))
    writer.add_row(row("a", 0, 2, 40.0))
    writer.add_row(row("a", 0, 3, math.nan, C.STATUS_INTERRUPTED))
    _, summary = writer.finish()
    a = summary.set_index(C.VARIANT).loc["a"]
    assert a.fid_domain_mean == 40.0 and a.step_mean == 20 and a.status == C.STATUS_INTERRUPTED


def test_rows_are_keyed_so_writing_one_twice_is_harmless(writer, tmp_path):
    writer.add_row(row("a", 0, 1, 5.0))
    writer.add_row(row("a", 0, 1, 5.0))
    writer.flush()
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 1


def test_rows_are_written_in_plan_order_whatever_order_they_arrive_in(writer, tmp_path):
    for r in (row("b", 1, 1, 1.0), row("a", 1, 2, 2.0), row("a", 0, 1, 3.0), row("a", 1, 1, 4.0)):
        writer.add_row(r)
    writer.flush()
    frame = pd.read_csv(tmp_path / "metrics.csv")
    assert list(zip(frame.variant, frame.seed, frame.eval_index)) == [
        ("a", 0, 1),
        ("a", 1, 1),
        ("a", 1, 2),
        ("b", 1, 1),
    ]


def test_a_restarted_job_keeps_only_its_restored_history(writer, tmp_path):
    writer.handle(E.JobStarted("a", 0))
    for i in (1, 2):
        writer.handle(E.Row(row("a", 0, i, 10.0 * i)))
    writer.handle(E.Log({C.VARIANT: "a", C.SEED: 0, C.STEP: 15, "g_loss": 1.0}))
    writer.handle(E.Row(row("a", 0, 3, math.nan, C.STATUS_INTERRUPTED)))
    writer.handle(E.JobStarted("a", 0, rows=[row("a", 0, 1, 10.0)], logs=[{C.VARIANT: "a", C.SEED: 0, C.STEP: 5}]))
    frame = pd.read_csv(tmp_path / "metrics.csv")
    assert frame.eval_index.tolist() == [1] and frame.fid_domain.tolist() == [10.0]
    assert pd.read_csv(tmp_path / "train_log.csv").step.tolist() == [5]
    assert pd.read_csv(tmp_path / "jobs.csv").status.tolist() == ["running"]


def test_tables_are_rewritten_after_every_row(tmp_path):
    writer = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN, "extra_metric"], [("a", 0)])
    per_class = [{C.VARIANT: "a", C.SEED: 0, C.EVAL_INDEX: 1, C.CLASS_INDEX: k, C.CLASS_NAME: n, C.CLASS_CONSISTENCY: v}
                 for k, n, v in ((0, "x", 0.5), (1, "y", 1.0))]  # fmt: skip
    writer.handle(E.Row(row("a", 0, 1, 5.0), per_class))
    frame = pd.read_csv(tmp_path / "metrics.csv")
    assert len(frame) == 1 and "extra_metric" in frame.columns and frame.columns[-1] == C.NOTE
    per_class = pd.read_csv(tmp_path / "per_class.csv")
    assert per_class[C.CLASS_NAME].tolist() == ["x", "y"] and per_class[C.CLASS_CONSISTENCY].tolist() == [0.5, 1.0]
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_a_resumed_writer_reads_back_exactly_what_it_wrote(writer, tmp_path):
    odd = {**row("a", 0, 1, 1 / 3), C.NOTE: "NA", C.CLASS_CONSISTENCY: math.nan}
    writer.handle(E.Row(odd, [{C.VARIANT: "a", C.SEED: 0, C.EVAL_INDEX: 1, C.CLASS_INDEX: 0, C.CLASS_NAME: "NA"}]))
    writer.handle(E.JobEnded("a", 0, C.STATUS_OK, "", 10, 1))
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.csv")}
    again = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER)
    assert again.status("a", 0) == C.STATUS_OK and again.rows[("a", 0, 1)][C.FID_DOMAIN] == 1 / 3
    again._dirty.update(before)  # force a rewrite of every table
    again.flush()
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.csv")} == before


def test_an_artefact_is_written_into_the_run_directory(writer, tmp_path):
    writer.handle(E.Artefact("samples/a-seed0.png", b"\x89PNG"))
    assert (tmp_path / "samples" / "a-seed0.png").read_bytes() == b"\x89PNG"


def test_sample_grid_has_one_labelled_row_per_class():
    images = torch.randint(0, 256, (30, 1, 28, 28), dtype=torch.uint8)
    picture = Image.open(io.BytesIO(sample_grid_png(images, per_row=10, row_labels=("a", "b", "c"), scale=2)))
    grid_height = 3 * (28 + 2) + 2
    assert picture.height == grid_height * 2 and picture.width > (10 * 30 + 2) * 2  # plus the label margin
    plain = Image.open(io.BytesIO(sample_grid_png(images[:20], per_row=10, scale=1)))
    assert plain.size == (10 * 30 + 2, 2 * 30 + 2)


# --- tables.json ----------------------------------------------------------------------------------


def settled(path):
    """tables.json names every table on disk with its SHA-256 and row count, and nothing pending."""
    manifest = read_manifest(path)
    tables = {p.name for p in path.glob("*.csv")} | {p.name for p in path.glob("*.parquet")}
    assert set(manifest) == tables
    for name, entry in manifest.items():
        data = (path / name).read_bytes()
        frame = pd.read_parquet(path / name) if name.endswith(".parquet") else pd.read_csv(path / name)
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(frame)}, name
    return manifest


def fill(writer, seeds=(0, 1)):
    for s in seeds:
        writer.handle(E.JobStarted("a", s))
        writer.handle(E.Log({C.VARIANT: "a", C.SEED: s, C.STEP: 5, "g_loss": 1.0}))
        writer.handle(E.Table("probe", "a", s, 1, [{"score": 0.5}]))
        per_class = [{C.VARIANT: "a", C.SEED: s, C.EVAL_INDEX: 1, C.CLASS_INDEX: 0, C.CLASS_CONSISTENCY: 0.5}]
        writer.handle(E.Row(row("a", s, 1, 10.0 + s), per_class))
        writer.handle(E.JobEnded("a", s, C.STATUS_OK, "", 10, 1))


def test_tables_json_records_every_table_with_its_checksum_and_rows(tmp_path):
    writer = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"])
    fill(writer)
    writer.finish()
    manifest = settled(tmp_path)
    assert set(manifest) == {"metrics.csv", "metrics.parquet", "per_class.csv", "train_log.csv", "jobs.csv",
                             "probe.csv", "summary.csv"}  # fmt: skip
    assert manifest["metrics.csv"]["rows"] == 2 and manifest["summary.csv"]["rows"] == 1
    assert json.loads((tmp_path / TABLES_JSON).read_text())["format"] == "ganbench-tables/1"


def test_a_write_stopped_after_tables_json_leaves_tables_that_it_accepts(tmp_path, monkeypatch):
    """tables.json is written first, naming the new and the replaced version: a process killed
    before the table is renamed into place leaves the old table, which tables.json accepts."""
    writer = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"])
    writer.add_row(row("a", 0, 1, 10.0))
    writer.flush()
    old = (tmp_path / "metrics.csv").read_bytes()
    real = W.atomic_write_bytes

    def killed(path, data):
        if path.name in ("metrics.csv", "per_class.csv"):
            raise KeyboardInterrupt  # stands for the kill: nothing after it runs
        real(path, data)

    monkeypatch.setattr(W, "atomic_write_bytes", killed)
    writer.add_row(row("a", 0, 2, 5.0), [{C.VARIANT: "a", C.SEED: 0, C.EVAL_INDEX: 2, C.CLASS_INDEX: 0}])
    with pytest.raises(KeyboardInterrupt):
        writer.flush()
    manifest = read_manifest(tmp_path)
    assert (tmp_path / "metrics.csv").read_bytes() == old and not (tmp_path / "per_class.csv").exists()
    assert manifest_accepts(manifest["metrics.csv"], old) == {"sha256": hashlib.sha256(old).hexdigest(), "rows": 1}
    assert manifest["metrics.csv"]["rows"] == 2  # the version on its way
    assert manifest_accepts(manifest["per_class.csv"], None)  # its first version: absent is what was there
    assert manifest_accepts(manifest["metrics.csv"], old[:-3]) is None


def test_a_resumed_writer_keeps_tables_json_right(tmp_path):
    writer = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"])
    fill(writer, seeds=(0,))
    writer.finish()
    again = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"])
    fill(again, seeds=(1,))
    again.finish()
    assert settled(tmp_path)["metrics.csv"]["rows"] == 2
    nothing_to_do = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"])
    nothing_to_do.finish()
    settled(tmp_path)


def test_a_run_from_before_tables_json_gets_its_tables_recorded_on_resume(tmp_path):
    writer = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"])
    fill(writer)
    writer.finish()
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.csv")}
    (tmp_path / TABLES_JSON).unlink()
    ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"]).finish()
    settled(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.csv")} == before


def test_a_resume_remakes_a_damaged_metrics_csv_and_refuses_a_damaged_table_it_would_keep(tmp_path):
    writer = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"])
    fill(writer)
    writer.finish()
    intact = (tmp_path / "metrics.csv").read_bytes()
    (tmp_path / "metrics.csv").write_bytes(intact[: len(intact) // 2])
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(jobs.read_text().replace(",ok,", ",interrupted,"))  # edited to run a job again: allowed
    again = ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"])
    assert again.status("a", 0) == C.STATUS_INTERRUPTED
    again.finish()
    assert (tmp_path / "metrics.csv").read_bytes() == intact  # made again from metrics.parquet
    settled(tmp_path)
    for name in ("per_class.csv", "train_log.csv", "probe.csv", "metrics.parquet"):
        saved = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(saved[:-4])
        with pytest.raises(UsageError) as err:
            ResultsWriter(RunDir(tmp_path), [C.FID_DOMAIN], ORDER, ["probe"])
        assert "\n" not in str(err.value)
        assert str(err.value).startswith(f"{tmp_path / name} ") and "this run cannot be resumed" in str(err.value)
        (tmp_path / name).write_bytes(saved)
