"""What `ganbench report` and `compare` do with a damaged, malformed or unwritable run: never
publish numbers from a damaged table, one line for everything a user can fix."""

import errno
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ganbench import columns as C
from ganbench.errors import UsageError
from ganbench.harness import events as E
from ganbench.harness.rundir import TABLES_JSON, RunDir, read_manifest
from ganbench.harness.writer import ResultsWriter
from ganbench.report import load, render
from ganbench.report.load import load_run
from ganbench.report.render import build_comparison, build_report

VARIANTS, SEEDS, EVALS = ("v0", "v1"), (0, 1, 2), 2
LAST_FID = 72.0  # fid_domain of the last row of metrics.csv


def record(dataset="fashion-mnist"):
    return {
        "format": "ganbench-run/1",
        "run": {"variants": list(VARIANTS), "dataset": dataset, "budget": "20steps", "seeds": list(SEEDS),
                "evals": EVALS, "eval_samples": 100},
        "variants": {v: {"plugin": "test", "task": "generation", "conditional": True, "reference": "r"}
                     for v in VARIANTS},
        "dataset": {"name": dataset, "source": "here", "train_size": 60, "test_size": 10, "class_names": ["a", "b"]},
        "classifier": {"name": "clf", "test_accuracy": 0.9, "weights_sha256": "ab" * 32},
        "judges": {"judge": {"class_accuracy": 0.9, "mean_attribute_accuracy": 0.8},
                   "steering": {"class_accuracy": 0.9, "mean_attribute_accuracy": 0.8}},
        "environment": {"device": "cpu", "cpu": "x86", "torch_threads": 2, "ganbench": "0.1.0"},
        "started": "2026-01-01T00:00:00",
    }  # fmt: skip


def write_run(path, dataset="fashion-mnist"):
    """A run directory written by the run's own writer (tables.json included), no training."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(record(dataset)))
    order = [(v, s) for v in VARIANTS for s in SEEDS]
    writer = ResultsWriter(RunDir(path), [C.FID_DOMAIN, C.CLASS_CONSISTENCY], order, ["brightness"])
    rng = np.random.default_rng(0)
    for i, v in enumerate(VARIANTS):
        for s in SEEDS:
            writer.handle(E.JobStarted(v, s))
            for e in range(1, EVALS + 1):
                for step in range(10 * (e - 1) + 5, 10 * e + 1, 5):
                    writer.handle(E.Log({C.VARIANT: v, C.SEED: s, C.STEP: step, C.IMAGES_SEEN: 64 * step,
                                         C.TRAIN_SECONDS: step / 10, "d_loss": 0.5, "g_loss": 1.0}))  # fmt: skip
                last = (i, s, e) == (len(VARIANTS) - 1, SEEDS[-1], EVALS)
                fid = LAST_FID if last else (40 + 20 * i) / e + rng.normal(0, 0.5)
                row = {C.VARIANT: v, C.DATASET: dataset, C.SEED: s, C.EVAL_INDEX: e, C.STEP: 10 * e,
                       C.IMAGES_SEEN: 640 * e, C.TRAIN_SECONDS: 1.0 * e, C.CRITIC_STEPS: 1, C.STATUS: C.STATUS_OK,
                       C.FID_DOMAIN: fid, C.CLASS_CONSISTENCY: 0.9 - 0.1 * i + rng.normal(0, 0.01),
                       C.TRAIN_IMG_PER_S: 500.0, C.NOTE: ""}  # fmt: skip
                per_class = [{C.VARIANT: v, C.DATASET: dataset, C.SEED: s, C.EVAL_INDEX: e, C.STEP: 10 * e,
                              C.CLASS_INDEX: k, C.CLASS_NAME: n, C.CLASS_CONSISTENCY: 0.8}
                             for k, n in enumerate("ab")]  # fmt: skip
                if e == EVALS:
                    writer.handle(E.Table("brightness", v, s, e, [{"mean": 0.5}]))
                writer.handle(E.Row(row, per_class))
            writer.handle(E.JobEnded(v, s, C.STATUS_OK, "", 10 * EVALS, EVALS))
    writer.finish()
    return path


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run")


def one_line(exc):
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def cut(path, at):
    """Cut a file at byte ``at`` (a disk that filled up, a copy that stopped half-way)."""
    data = path.read_bytes()
    path.write_bytes(data[:at])


def cut_mid_number(path):
    text = path.read_bytes()
    at = text.rindex(b"72.0")
    cut(path, at + 1)  # the last row now ends in "7"


def cut_mid_row(path):
    text = path.read_bytes()
    cut(path, text.rindex(b"\n", 0, len(text) - 1) + 5)


# --- an intact run --------------------------------------------------------------------------------


def test_an_intact_run_reports_as_before_with_no_notice(run, tmp_path):
    data = load_run(run)
    assert data.notices == []
    assert data.metrics[C.FID_DOMAIN].iloc[-1] == LAST_FID and len(data.metrics) == len(VARIANTS) * len(SEEDS) * EVALS
    assert set(data.tables) == {"brightness"} and len(data.per_class) and len(data.train_log) and len(data.jobs)
    md = build_report(run, tmp_path / "out", ["md"])["md"].read_text()
    assert "Note:" not in md and "## What was run" in md


# --- a damaged metrics.csv ------------------------------------------------------------------------


@pytest.mark.parametrize("damage", [cut_mid_number, cut_mid_row], ids=["mid-number", "mid-row"])
def test_a_damaged_metrics_csv_is_replaced_by_its_intact_parquet_copy_and_the_report_says_so(run, tmp_path, damage):
    damage(run / "metrics.csv")
    data = load_run(run)
    assert data.metrics[C.FID_DOMAIN].iloc[-1] == LAST_FID  # not 7, and the last evaluation is there
    assert len(data.metrics) == len(VARIANTS) * len(SEEDS) * EVALS
    (notice,) = data.notices
    assert "metrics.csv" in notice and "damaged" in notice and "metrics.parquet" in notice
    md = build_report(run, tmp_path / "out", ["md"])["md"].read_text()
    what = md.split("## What was run", 1)[1]
    assert "Note: metrics.csv of this run is damaged" in what
    finals = data.finals.set_index([C.VARIANT, C.SEED])
    assert finals.loc[("v1", SEEDS[-1]), C.EVAL_INDEX] == EVALS


@pytest.mark.parametrize("damage", [cut_mid_number, cut_mid_row], ids=["mid-number", "mid-row"])
def test_a_damaged_metrics_csv_without_an_intact_copy_is_refused_in_one_line(run, damage):
    damage(run / "metrics.csv")
    (run / "metrics.parquet").write_bytes((run / "metrics.parquet").read_bytes()[:-10])
    with pytest.raises(UsageError) as err:
        load_run(run)
    message = one_line(err)
    assert f"{run / 'metrics.csv'} is damaged" in message and "metrics.parquet is damaged too" in message
    assert "restore it from a copy of the run" in message
    (run / "metrics.parquet").unlink()
    with pytest.raises(UsageError, match="metrics.parquet is missing"):
        load_run(run)


def test_report_and_compare_commands_never_publish_7(run, tmp_path, ganbench_cli):
    other = write_run(tmp_path / "other")
    cut_mid_number(run / "metrics.csv")
    report = ganbench_cli("report", run, "--out", tmp_path / "r", "--format", "md")
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "r" / "report.md").read_text()
    assert "metrics.parquet" in md and "| 7 " not in md
    (run / "metrics.parquet").unlink()
    for args in (("report", run, "--out", tmp_path / "r2"), ("compare", other, run, "--out", tmp_path / "c")):
        refused = ganbench_cli(*args)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert refused.stderr.startswith("ganbench: error: ") and "metrics.csv is damaged" in refused.stderr


# --- the other tables -----------------------------------------------------------------------------


def edit_a_digit(path):
    """A number changed by hand (or by a bit flip): the file still parses."""
    data = bytearray(path.read_bytes())
    at = data.index(b"1", data.index(b"\n"))
    data[at : at + 1] = b"3"
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["per_class.csv", "train_log.csv", "jobs.csv", "brightness.csv"])
@pytest.mark.parametrize("damage", [cut_mid_row, edit_a_digit])
def test_a_damaged_table_is_refused_in_one_line_naming_it(run, name, damage):
    damage(run / name)
    with pytest.raises(UsageError) as err:
        load_run(run)
    message = one_line(err)
    assert message.startswith(f"{run / name} is damaged: it does not match the SHA-256 the run recorded")
    assert "a report never publishes numbers from a damaged table" in message


def test_a_deleted_table_is_refused_and_a_stray_csv_is_not_shown(run):
    (run / "notes.csv").write_text("a,b\n1,2\n")
    data = load_run(run)
    assert "notes" not in data.tables and any("notes.csv is not one of the tables" in n for n in data.notices)
    (run / "train_log.csv").unlink()
    with pytest.raises(UsageError, match="train_log.csv is missing, though the run wrote it"):
        load_run(run)


def test_a_damaged_tables_json_is_refused(run):
    (run / TABLES_JSON).write_text('{"format": "ganbench-tables/1", "tables": {"metrics.csv": 3}}')
    with pytest.raises(UsageError) as err:
        load_run(run)
    assert "tables.json has a malformed entry for 'metrics.csv'" in one_line(err)


def test_a_table_being_rewritten_while_the_report_reads_is_read_again(run, monkeypatch):
    """The writer records a table's new version in tables.json before renaming it into place; a
    reader that read tables.json just before that sees a table it does not accept, once."""
    current = (run / TABLES_JSON).read_text()
    stale = json.loads(current)
    stale["tables"]["jobs.csv"]["sha256"] = "0" * 64  # as tables.json was a moment earlier
    (run / TABLES_JSON).write_text(json.dumps(stale))
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        (run / TABLES_JSON).write_text(current)  # meanwhile the writer wrote the new one

    monkeypatch.setattr(load.time, "sleep", sleep)
    assert load_run(run).notices == [] and len(sleeps) == 1


# --- runs from before tables.json -------------------------------------------------------------------


def test_an_older_run_is_cross_checked_against_its_parquet_copy(run):
    (run / TABLES_JSON).unlink()
    data = load_run(run)
    assert data.metrics[C.FID_DOMAIN].iloc[-1] == LAST_FID
    assert any("checked against metrics.parquet" in n for n in data.notices)
    for damage in (cut_mid_number, cut_mid_row):
        intact = (run / "metrics.csv").read_bytes()
        damage(run / "metrics.csv")
        with pytest.raises(UsageError) as err:
            load_run(run)
        message = one_line(err)
        assert "metrics.csv and its copy metrics.parquet disagree" in message and "neither can be trusted" in message
        (run / "metrics.csv").write_bytes(intact)


def test_an_older_run_without_parquet_reports_and_says_it_was_not_checked(synthetic_run):
    data = load_run(synthetic_run(variants=2, seeds=2, evals=2, name="legacy"))
    assert any("could not be checked" in n for n in data.notices)


# --- config.json of the wrong shape ---------------------------------------------------------------

MALFORMED = {
    "variants is a number": ({"variants": 3}, '"variants" should be an object, not int 3'),
    "a variant is a number": ({"variants": {"v0": 1}}, '"variants.v0" should be an object'),
    "dataset is a list": ({"dataset": ["fashion-mnist"]}, '"dataset" should be an object, not a list'),
    "dataset name is a number": ({"dataset": {"name": 5}}, '"dataset.name" should be text, not int 5'),
    "run.seeds is text": ({"run": {"seeds": "0,1"}}, '"run.seeds" should be a list of integers, not str \"0,1\"'),
    "a seed is text": ({"run": {"seeds": [0, "1"]}}, '"run.seeds[1]" should be an integer'),
    "environment is text": ({"environment": "cpu"}, '"environment" should be an object, not str'),
    "judges.judge is a number": ({"judges": {"judge": 1, "steering": {}}}, '"judges.judge" should be an object'),
    "classifier accuracy is text": ({"classifier": {"test_accuracy": "high"}},
                                    '"classifier.test_accuracy" should be a number'),
    "resumed is text": ({"resumed": "yesterday"}, '"resumed" should be a list'),
}  # fmt: skip


@pytest.mark.parametrize("change, expected", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_config_json_of_the_wrong_shape_is_one_line_naming_the_key(run, change, expected):
    (run / "config.json").write_text(json.dumps({**record(), **change}))
    with pytest.raises(UsageError) as err:
        load_run(run)
    message = one_line(err)
    assert message.startswith(f"{run / 'config.json'} is damaged: ") and expected in message


def test_the_report_command_on_a_malformed_config_json_exits_2(run, tmp_path, ganbench_cli):
    (run / "config.json").write_text(json.dumps({**record(), "variants": 1}))
    out = ganbench_cli("report", run, "--out", tmp_path / "r")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert '"variants" should be an object' in out.stderr


@pytest.mark.parametrize("missing", ["environment", "classifier", "judges", "variants", "dataset", "run", "started"])
def test_a_missing_or_null_section_of_config_json_is_shown_as_unknown(run, missing):
    for value in (None, "drop"):
        changed = record()
        if value == "drop":
            del changed[missing]
        else:
            changed[missing] = None
        (run / "config.json").write_text(json.dumps(changed))
        section = render.what_was_run(load_run(run))
        facts = section.tables[0].frame.set_index("")["value"]
        if missing in ("environment", "dataset", "started"):
            assert "unknown" in facts[{"environment": "device", "dataset": "dataset", "started": "started"}[missing]]


def test_a_report_renders_from_a_config_json_with_only_its_format(run, tmp_path):
    (run / "config.json").write_text(json.dumps({"format": "ganbench-run/1"}))
    md = build_report(run, tmp_path / "out", ["md"])["md"].read_text()
    assert "## What was run" in md and "unknown" in md


# --- where the report goes ------------------------------------------------------------------------


def test_an_unwritable_out_is_one_line_for_report_and_compare(run, tmp_path, ganbench_cli):
    afile = tmp_path / "afile"
    afile.write_text("x")
    other = write_run(tmp_path / "other")
    for args in (("report", run, "--out", afile / "r"), ("compare", run, other, "--out", afile / "c")):
        out = ganbench_cli(*args)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        line = f"ganbench: error: cannot write the report to {afile / args[0][0]} (Not a directory)"
        assert out.stderr.startswith(line)
        assert out.stderr.strip().endswith("give a directory you can write to with --out DIR")
    with pytest.raises(UsageError, match="it is a file, not a directory; choose another --out DIR"):
        build_report(run, afile)
    assert afile.read_text() == "x"


def test_a_read_only_run_directory_is_one_line_naming_it_and_the_way_out(run, monkeypatch):
    def read_only(path, *args):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(render, "atomic_write_text", read_only)
    monkeypatch.setattr(render, "atomic_write_bytes", read_only)
    with pytest.raises(UsageError) as err:
        build_report(run)
    message = one_line(err)
    assert message == (
        f"cannot write the report to {run / 'report'} (Read-only file system); "
        "give a directory you can write to with --out DIR"
    )


def test_temporary_files_of_a_killed_report_are_removed_by_the_next(run, tmp_path):
    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [out / f".report.html.tmp-{dead.pid}-0123abcd", out / "images" / f".x.png.tmp-{dead.pid}-89abcdef"]
    live = out / f".report.md.tmp-{1}-0123abcd"  # pid 1 is always alive: another report's, left alone
    mine = [out / "notes.tmp-1.txt", out / ".tmp-1-0123abcd"]  # not names ganbench makes
    for path in [*stale, live, *mine]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    build_report(run, out, ["html"])
    assert not any(p.exists() for p in stale) and live.exists() and all(p.exists() for p in mine)


# --- compare names the dataset ------------------------------------------------------------------


def test_compare_names_a_missing_dataset_in_words(tmp_path):
    named = write_run(tmp_path / "named")
    unnamed = write_run(tmp_path / "unnamed", dataset="")
    with pytest.raises(UsageError) as err:
        build_comparison([named, unnamed], tmp_path / "c")
    message = one_line(err)
    assert "is on fashion-mnist" in message and "on an unnamed dataset (its config.json names none)" in message
    assert "on ," not in message
    other = write_run(tmp_path / "unnamed2", dataset="")
    md = build_comparison([unnamed, other], tmp_path / "c", ["md"])["md"].read_text()
    assert "2 runs on an unnamed dataset" in md and "on ," not in md
