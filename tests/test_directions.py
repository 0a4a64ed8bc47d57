"""Directions for every column: a metric's or probe's spec declares which way each of its columns
is better, the run records it in config.json, and the report (arrows, bold best, verdicts,
pairwise comparisons) and the console follow the record, falling back to ganbench.columns for
runs written before it."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import ganbench
from ganbench import columns as C
from ganbench.config import RunConfig
from ganbench.errors import UsageError
from ganbench.harness.job import _brief
from ganbench.harness.plan import plan_run
from ganbench.harness.provenance import columns_record
from ganbench.harness.runner import RunResult
from ganbench.registry import load_registry
from ganbench.report import stats
from ganbench.report.load import load_run
from ganbench.report.render import build_report, decide
from ganbench.specs import DIRECTIONS, HIGHER, LOWER, NEITHER, MetricSpec, column_directions

BUILTIN_PLUGINS = ("ganbench.metrics", "ganbench.probes")


def _columns_py(column: str) -> str:
    """A column's direction as ganbench.columns gives it (what reports used before the record)."""
    return LOWER if column in C.LOWER_IS_BETTER else HIGHER if column in C.HIGHER_IS_BETTER else NEITHER


# --- declarations ------------------------------------------------------------------------------


def test_builtin_metrics_and_probes_declare_exactly_the_directions_of_columns_py(registry):
    declared = {
        column: direction
        for table in (registry.metrics, registry.probes)
        for r in table.values()
        if r.plugin in BUILTIN_PLUGINS
        for column, direction in column_directions(r.spec).items()
    }
    assert declared == {c: _columns_py(c) for c in declared}
    # every column columns.py gives a direction is the host's (cost) or declared by a built-in
    host = {*C.COST_COLUMNS}
    assert (C.HIGHER_IS_BETTER | C.LOWER_IS_BETTER) - host <= set(declared)
    assert declared[C.STEER_LATENT_DISTANCE] == NEITHER and declared[C.PPL_DOMAIN] == LOWER


def test_a_column_left_out_of_directions_has_none_and_the_spec_stays_hashable():
    spec = MetricSpec("m", ("a", "b"), lambda ev: {}, directions={"a": HIGHER})
    assert column_directions(spec) == {"a": HIGHER, "b": NEITHER}
    assert column_directions(MetricSpec("m", ("a",), lambda ev: {})) == {"a": NEITHER}
    assert hash(spec) == hash(MetricSpec("m", ("a", "b"), spec.compute, directions={"a": LOWER}))
    assert (ganbench.HIGHER, ganbench.LOWER, ganbench.NEITHER) == DIRECTIONS


def test_a_bad_direction_is_refused_in_one_line_naming_the_plugin(fixtures_dir):
    path = str(fixtures_dir / "plugin_bad_direction.py")
    registry = load_registry([path], environ={})
    messages = [str(e) for e in registry.errors if e.plugin == path]
    assert len(messages) == 2 and all("\n" not in m and m.startswith(f"plugin {path!r}: ") for m in messages)
    assert any(
        "refused metric registration: directions of 'stray-direction': 'blur' is not one of its columns (sharpness)"
        in m
        for m in messages
    )
    assert any(
        "refused probe registration: directions of 'odd-word': 'up' for column 'wobble' is unknown; "
        "accepted: higher, lower, neither" in m
        for m in messages
    )
    assert "stray-direction" not in registry.metrics and "odd-word" not in registry.probes


def test_the_run_records_every_metric_and_probe_columns_direction_and_owner(fixtures_dir):
    path = str(fixtures_dir / "plugin_metric_direction.py")
    registry = load_registry([path], environ={})
    config = RunConfig.from_mapping(
        {"variants": "cgan", "metrics": "domain-fidelity,ink", "probes": "path-length", "device": "cpu"}
    )
    record = columns_record(plan_run(config, registry), registry)
    assert record["ink_mean"] == {"direction": HIGHER, "kind": "metric", "source": "ink", "plugin": path}
    assert record["ink_spread"]["direction"] == NEITHER
    assert record[C.FID_DOMAIN] == {
        "direction": LOWER, "kind": "metric", "source": "domain-fidelity", "plugin": "ganbench.metrics",
    }  # fmt: skip
    assert record[C.PPL_DOMAIN] == {"direction": LOWER, "kind": "probe", "source": "path-length", "plugin": "ganbench.probes"}
    assert list(record) == [C.FID_DOMAIN, C.KID_DOMAIN, C.PRECISION_DOMAIN, C.RECALL_DOMAIN, "ink_mean", "ink_spread",
                            C.PPL_DOMAIN]  # fmt: skip
    assert json.loads(json.dumps(record)) == record


# --- the reading side ------------------------------------------------------------------------------


def test_a_recorded_direction_wins_and_the_rest_fall_back_to_columns_py():
    recorded = {"ink_mean": HIGHER, "ink_spread": NEITHER, "blur": LOWER}
    assert stats.higher_is_better("ink_mean", recorded) is True
    assert stats.higher_is_better("blur", recorded) is False
    assert stats.higher_is_better("ink_spread", recorded) is None
    assert stats.higher_is_better("ink_mean") is None  # an older run: a plugin column has no direction
    assert stats.higher_is_better(C.FID_DOMAIN, recorded) is False  # not recorded: columns.py
    assert stats.higher_is_better(C.TRAIN_IMG_PER_S, recorded) is True  # the host's own column
    assert [stats.arrow(c, recorded) for c in ("ink_mean", "blur", "ink_spread")] == ["↑", "↓", ""]


def _table(markdown: str, header: str) -> pd.DataFrame:
    """The first markdown table (of ``report.md``) whose header row has ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and f" {header} " in line)
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return pd.DataFrame(rows[2:], columns=rows[0])


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _with_plugin_columns(run_dir, record_directions: bool):
    """A synthetic run with two plugin columns: sharpness (variant i: 1 + i, small seed noise) and
    wobble (noise); config.json records their directions (higher, neither) when asked."""
    metrics = pd.read_csv(run_dir / "metrics.csv")
    trained = metrics[C.STATUS] == C.STATUS_OK
    index = metrics[C.VARIANT].str.removeprefix("v").where(trained, "0").astype(int)
    metrics["sharpness"] = (1.0 + index + 0.01 * metrics[C.SEED]).where(trained, 3.5)
    metrics["wobble"] = (0.5 + 0.1 * ((metrics[C.SEED] * 7 + index * 3) % 5)).where(trained, math.nan)
    metrics.to_csv(run_dir / "metrics.csv", index=False)
    if record_directions:
        record = json.loads((run_dir / "config.json").read_text())
        record["columns"] = {
            "sharpness": {"direction": HIGHER, "kind": "metric", "source": "sharp", "plugin": "sharp.py"},
            "wobble": {"direction": NEITHER, "kind": "probe", "source": "wob", "plugin": "sharp.py"},
        }
        (run_dir / "config.json").write_text(json.dumps(record))
    return run_dir


def test_a_recorded_plugin_direction_gets_arrow_bold_best_verdicts_and_pairwise(synthetic_run, tmp_path):
    run_dir = _with_plugin_columns(synthetic_run(variants=3, seeds=5, evals=2, name="directed"), True)
    md = build_report(run_dir, tmp_path / "report", formats=("md",))["md"].read_text()
    leaderboard = _section(md, "Leaderboard")
    board = _table(leaderboard, "sharpness ↑")
    bold = board.loc[board["sharpness ↑"].str.startswith("**"), "variant"].tolist()
    assert bold == ["v2"]  # the highest mean
    # each column in the table of the metric or probe that filled it, the metric's before the probe's
    assert leaderboard.index("### metric sharp") < leaderboard.index("sharpness ↑") < leaderboard.index("### probe wob")
    wobble = _table(leaderboard.split("### probe wob", 1)[1], "wobble")
    assert [c for c in wobble.columns if c.startswith("wobble")] == ["wobble"]  # declared neither: no arrow
    assert not wobble["wobble"].str.startswith("**").any()  # no direction: no best
    verdict_part = _section(md, "What the seeds decide")
    assert "\n### sharpness ↑\n" in verdict_part and "wobble" not in verdict_part
    assert "v2 beats v0 on sharpness ↑" in verdict_part
    assert "sharpness ↑" in _section(md, "Pairwise comparisons") and "wobble" not in _section(md, "Pairwise comparisons")
    decisions = decide(run_dir)
    assert set(decisions.verdicts["metric"]) == {C.FID_DOMAIN, C.KID_DOMAIN, C.CLASS_CONSISTENCY, C.TRAIN_IMG_PER_S,
                                                 "sharpness"}  # fmt: skip
    assert load_run(run_dir).directions == {"sharpness": HIGHER, "wobble": NEITHER}


def test_a_run_without_the_record_reports_from_columns_py(synthetic_run, tmp_path):
    run_dir = _with_plugin_columns(synthetic_run(variants=3, seeds=5, evals=2, name="older"), False)
    assert load_run(run_dir).directions == {}
    md = build_report(run_dir, tmp_path / "report", formats=("md",))["md"].read_text()
    board = _table(_section(md, "Leaderboard"), "fid_domain ↓")
    assert "class_consistency ↑" in board.columns and "sharpness" in board.columns  # a plugin column: no arrow
    assert board.loc[board["fid_domain ↓"].str.startswith("**"), "variant"].tolist() == ["v0"]
    assert not board["sharpness"].str.startswith("**").any()
    verdict_part = _section(md, "What the seeds decide")
    assert "\n### fid_domain ↓\n" in verdict_part and "sharpness" not in verdict_part


def test_a_damaged_direction_in_config_json_is_refused_in_one_line(synthetic_run):
    run_dir = synthetic_run(variants=2, seeds=2, evals=1, name="damaged")
    record = json.loads((run_dir / "config.json").read_text())
    record["columns"] = {"sharpness": {"direction": "up", "kind": "metric", "source": "s", "plugin": "p"}}
    (run_dir / "config.json").write_text(json.dumps(record))
    with pytest.raises(UsageError) as caught:
        load_run(run_dir)
    message = str(caught.value)
    assert "\n" not in message and '"columns.sharpness.direction" should be one of higher, lower, neither' in message


# --- the console -------------------------------------------------------------------------------------


def test_the_progress_line_shows_a_plugins_columns():
    assert _brief({C.FID_DOMAIN: math.nan, "ink_mean": 0.25, "ink_spread": math.nan}) == "ink_mean 0.25"
    assert _brief({C.FID_DOMAIN: 12.5, C.KID_DOMAIN: 0.1, "ink_mean": 0.25}) == "fid_domain 12.5, ink_mean 0.25"
    many = {f"p{i}": float(i) for i in range(6)}
    assert _brief(many) == "p0 0, p1 1, p2 2, p3 3 (+2 more)"
    assert _brief({C.FID_DOMAIN: math.nan}) == "no finite metrics"


def test_the_console_summary_and_verdicts_show_a_plugins_columns(synthetic_run):
    run_dir = _with_plugin_columns(synthetic_run(variants=2, seeds=5, evals=1, name="console"), False)
    metrics = pd.read_csv(run_dir / "metrics.csv")
    metrics[[C.FID_DOMAIN, C.KID_DOMAIN, C.CLASS_CONSISTENCY, C.CLASS_COVERAGE, C.TRAIN_IMG_PER_S]] = math.nan
    from ganbench.harness.writer import summarize

    trained = metrics[metrics[C.STATUS] != C.STATUS_REFERENCE]
    directions = {C.FID_DOMAIN: LOWER, "sharpness": HIGHER, "wobble": NEITHER}
    result = RunResult(run_dir, metrics, summarize(trained), pd.DataFrame(), directions)
    text = result.format_summary()
    header = text.splitlines()[0].split()
    assert header[:2] == [C.VARIANT, "seeds"] and "sharpness" in header and "wobble" in header
    assert "v1 beats v0 on sharpness ↑" in text and "wobble" not in text.split("What the seeds decide", 1)[1]


# --- a real run --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_third_party_metrics_direction_reaches_a_real_runs_record_console_and_report(run_kwargs, fixtures_dir):
    plugin, third = fixtures_dir / "plugin_metric_direction.py", fixtures_dir / "plugin_third_party.py"
    kwargs = {**run_kwargs, "variants": "dcgan,cgan", "seeds": (0, 1, 2, 3), "evals": 1, "plugin": [plugin, third],
              "probes": "latent-walk", "set": {"bright-fraction": {"threshold": "0.6"}, "latent-walk": {"steps": "3"}}}  # fmt: skip
    result = ganbench.run(**kwargs)
    columns = json.loads((result.run_dir / "config.json").read_text())["columns"]
    assert {k: v for k, v in columns["ink_mean"].items() if k != "plugin"} == {
        "direction": HIGHER, "kind": "metric", "source": "ink",
    }  # fmt: skip
    assert columns["ink_mean"]["plugin"].endswith("plugin_metric_direction.py")
    assert columns["ink_spread"]["direction"] == NEITHER and columns[C.FID_DOMAIN]["direction"] == LOWER

    console = result.format_summary()
    assert {"ink_mean", "ink_spread"} <= set(console.splitlines()[0].split())
    assert "ink_mean ↑" in console.split("What the seeds decide", 1)[1]

    md = build_report(result.run_dir)["md"].read_text()
    _third_party_checks(result, third)
    finals = load_run(result.run_dir).finals
    best = finals.groupby(C.VARIANT)["ink_mean"].mean().idxmax()
    board = _table(_section(md, "Leaderboard"), "ink_mean ↑")
    assert board.loc[board["ink_mean ↑"].str.startswith("**"), "variant"].tolist() == [best]
    assert "ink_spread" in board.columns and not board["ink_spread"].str.startswith("**").any()
    verdict_part = _section(md, "What the seeds decide")
    assert "\n### ink_mean ↑\n" in verdict_part and "ink_spread" not in verdict_part
    verdicts_csv = pd.read_csv(result.run_dir / "report" / "verdicts.csv")
    assert "ink_mean" in set(verdicts_csv["metric"]) and "ink_spread" not in set(verdicts_csv["metric"])
    assert {"bright_fraction", "walk_change"} <= set(verdicts_csv["metric"])
    assert "ink_mean ↑" in _section(md, "Pairwise comparisons")


def _third_party_checks(result, third):
    """config.json, the console and the report of a real run with plugin_third_party.py."""
    import hashlib
    import re

    record = json.loads((result.run_dir / "config.json").read_text())
    assert record["plugins"][str(third)] == {"file": str(third), "sha256": hashlib.sha256(third.read_bytes()).hexdigest()}
    assert record["plugins"]["ganbench.metrics"]["distribution"] == "ganbench"
    assert record["metrics"]["bright-fraction"]["config"] == {"threshold": 0.6}
    assert record["probes"]["latent-walk"] == {
        "plugin": str(third), "columns": ["walk_change"], "tables": ["walk"],
        "description": "mean image change per step of a straight latent walk", "config": {"steps": 3},
    }  # fmt: skip
    console = result.format_summary()
    assert {"bright_fraction", "walk_change"} <= set(console.splitlines()[0].split())
    walk = pd.read_csv(result.run_dir / "walk.csv")
    assert list(walk.columns) == [C.VARIANT, C.SEED, C.EVAL_INDEX, "row", "step", "change"] and len(walk) == 2 * 4 * 2
    assert (result.run_dir / "probes" / "cgan-seed0" / "latent-walk" / "walk.png").is_file()

    html = (result.run_dir / "report" / "report.html").read_text()
    sections = dict(re.findall(r"<section>\s*<h2>(.*?)</h2>(.*?)</section>", html, flags=re.S))
    own = sections["Probe: latent-walk"]
    assert "<h3>walk</h3>" in own and "<th>change</th>" in own
    assert re.findall(r'alt="([^"]+)"', own) == ["dcgan-seed0/latent-walk/walk.png", "cgan-seed0/latent-walk/walk.png"]
    assert all("latent-walk" not in body for title, body in sections.items() if title != "Probe: latent-walk"
               and title != "What was run" and title != "Leaderboard")  # fmt: skip
    board = sections["Leaderboard"]
    assert "<h3>metric bright-fraction</h3>" in board and "<h3>probe latent-walk</h3>" in board
    assert "walk_change ↓" in board and "<strong>" in board.split("<h3>probe latent-walk</h3>")[1].split("<h3>")[0]
    assert "<h3>walk_change ↓</h3>" in sections["What the seeds decide"]
    what = sections["What was run"]
    assert f"sha256 {record['plugins'][str(third)]['sha256']}" in what and "threshold=0.6" in what
    reference = load_run(result.run_dir).references.set_index(C.VARIANT).loc[C.REAL_DATA]
    assert 0 < reference.bright_fraction < 1 and 0 < reference.ink_mean < 1
    assert f"{reference.bright_fraction:.4g}" in what and f"{reference.ink_mean:.4g}" in what  # the reference row
