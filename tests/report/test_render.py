"""`ganbench report` and `ganbench compare`: pages built from run directories alone."""

import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest

import ganbench
from ganbench import columns as C
from ganbench.errors import UsageError
from ganbench.harness.writer import record_tables
from ganbench.report.render import build_comparison, build_report, parse_formats

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_a_report_has_both_formats_and_md_pictures_beside_it(synthetic_run, tmp_path):
    run = synthetic_run(variants=3, seeds=3, evals=2)
    written = build_report(run, tmp_path / "out")
    assert set(written) == {"html", "md"}
    md = written["md"].read_text()
    linked = re.findall(r"!\[[^\]]*\]\((images/[^)]+)\)", md)
    assert linked and all((tmp_path / "out" / p).is_file() for p in linked)
    assert "## Leaderboard" in md and "fid_domain ↓" in md and "class_consistency ↑" in md


def test_a_report_opens_with_what_the_seeds_decide(synthetic_run, tmp_path):
    run = synthetic_run(variants=3, seeds=5, evals=2)
    out = tmp_path / "out"
    md = build_report(run, out, ["md"])["md"].read_text()
    titles = re.findall(r"^## (.+)$", md, flags=re.M)
    assert titles[0] == "What the seeds decide" and titles.index("Leaderboard") > titles.index("What the seeds decide")
    decide = section(md, "What the seeds decide")
    assert "### fid_domain ↓" in decide and "Holm" in decide
    # the tables behind the section are written beside the report, and the API returns them
    verdicts = pd.read_csv(out / "verdicts.csv")
    assert set(verdicts["metric"]) >= {C.FID_DOMAIN} and (verdicts["pairs"] == 3).all()
    from ganbench.report.render import decide as decide_api

    decisions = decide_api(run)
    assert len(decisions.verdicts) == len(verdicts)
    for sentence in verdicts.loc[verdicts["decided"], "sentence"]:
        assert sentence in decide  # every decided pair is said in words
    # a warning that applies to the whole table is said once, not per row
    assert decide.count("No pair can be decided") <= len(re.findall(r"^### ", decide, flags=re.M))


def section(md, title):
    """The text of one ``## title`` section of a markdown report."""
    return re.split(r"^## ", md.split(f"## {title}\n", 1)[1], maxsplit=1, flags=re.M)[0]


def md_tables(text):
    """Every markdown table in ``text``, as a list of {header: cell} rows."""
    tables, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].replace("|", "").strip()) <= set("-: "):
            if i > 0 and lines[i - 1].startswith("|"):
                continue
            header = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, (c.strip() for c in row.strip("|").split("|")))))
            tables.append(rows)
    return tables


def test_the_leaderboard_marks_the_best_of_each_column(synthetic_run, tmp_path):
    run = synthetic_run(variants=3, seeds=3, evals=2)
    md = build_report(run, tmp_path / "out", ["md"])["md"].read_text()
    quality, cost = md_tables(section(md, "Leaderboard"))
    by_variant = {row["variant"]: row for row in quality}
    # by construction v0 has the lowest fid_domain and the highest class_consistency, v2 the highest throughput
    assert by_variant["v0"]["fid_domain ↓"].startswith("**") and not by_variant["v2"]["fid_domain ↓"].startswith("**")
    assert by_variant["v0"]["class_consistency ↑"].startswith("**")
    assert {row["variant"]: row["train_img_per_s ↑"].startswith("**") for row in cost} == {
        "v0": False,
        "v1": False,
        "v2": True,
    }


def test_html_is_self_contained(synthetic_run, tmp_path):
    text = build_report(synthetic_run(variants=2, seeds=2, evals=2), tmp_path / "out", ["html"])["html"].read_text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not (tmp_path / "out" / "images").exists()


def test_formats_are_checked():
    assert parse_formats("md, html") == ("md", "html")
    with pytest.raises(UsageError, match="accepted: html, md"):
        parse_formats("pdf")


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(UsageError, match="is not a ganbench run"):
        build_report(tmp_path)


def test_building_a_report_imports_no_torch(synthetic_run, tmp_path):
    run = synthetic_run(variants=2, seeds=2, evals=2)
    code = (
        "import sys; from ganbench.report.render import build_report; "
        f"build_report({str(run)!r}, {str(tmp_path / 'out')!r}); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.slow
def test_report_html_opens_in_a_real_browser_with_every_image_and_no_request(real_run, tmp_path):
    from playwright import sync_api as playwright  # the test extra; Debian's chromium (installed by .ci/run)

    written = build_report(real_run, tmp_path / "out", ["html"])
    url = written["html"].resolve().as_uri()
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url)
        page.wait_for_load_state("load")
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        board_rows = page.evaluate(
            """() => {
                const h = [...document.querySelectorAll('h2')].find(h => h.textContent === 'Leaderboard');
                const first = h.parentElement.querySelector('table');  // the quality group
                return [...first.querySelectorAll('tbody tr')].map(r => r.cells[0].textContent);
            }"""
        )
        headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
        verdict_tables = page.evaluate(
            """() => {
                const h = [...document.querySelectorAll('h2')].find(h => h.textContent === 'What the seeds decide');
                return [...h.parentElement.querySelectorAll('h3')].map(c => c.textContent);
            }"""
        )
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert widths and all(w > 0 for w in widths), widths
    assert board_rows == ["dcgan", "cgan"]
    # the report opens with what the seeds decide, above the leaderboard, one matrix per main metric
    assert headings[0] == "What the seeds decide" and headings.index("Leaderboard") > 0
    assert "fid_domain ↓" in verdict_tables
    assert errors == []
    assert [r for r in requests if not r.startswith(("data:", url))] == []  # nothing leaves the file
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_run_with_a_failed_and_a_diverged_variant_still_renders_and_says_why(run_kwargs, fixtures_dir, tmp_path):
    result = ganbench.run(
        variants="failing,nan-gan,dcgan",
        plugin=[fixtures_dir / "plugin_failing.py", fixtures_dir / "plugin_nan.py"],
        set={"nan-gan": {"nan_at": 15}},
        **run_kwargs,
    )
    md = build_report(result.run_dir, tmp_path / "out")["md"].read_text()
    jobs = section(md, "Jobs")
    assert "2 of 3 jobs did not end ok" in jobs
    assert re.search(r"failing\s*\|\s*0\s*\|\s*failed\s*\|\s*0\s*\|\s*RuntimeError: out of cheese", jobs)
    assert re.search(r"nan-gan\s*\|\s*0\s*\|\s*diverged\s*\|\s*15\s*\|\s*non-finite loss at step 15", jobs)
    assert "| dcgan" in section(md, "Leaderboard")


@pytest.fixture
def better_cgan(real_run, copy_run):
    """A copy of the real run in which cgan's fid_domain is 10 lower for every seed and evaluation."""
    after = copy_run(real_run, "after")
    metrics = pd.read_csv(after / "metrics.csv")
    metrics.loc[metrics[C.VARIANT] == "cgan", C.FID_DOMAIN] -= 10
    metrics.to_csv(after / "metrics.csv", index=False)
    metrics.to_parquet(after / "metrics.parquet", index=False)
    record_tables(after)  # an edit on purpose: recorded in tables.json, or the report would refuse it as damage
    return after


@pytest.mark.slow
def test_compare_shows_a_known_difference_and_its_direction(real_run, better_cgan, tmp_path):
    md = build_comparison([real_run, better_cgan], tmp_path / "cmp", ["md"])["md"].read_text()
    (rows,) = md_tables(section(md, "after against run"))
    fid = {row["variant"]: row for row in rows if row["metric"] == "fid_domain ↓"}
    assert fid["cgan"]["change [95% CI]"].startswith("-10 ")  # the change, then its interval
    assert fid["cgan"]["P(better)"] == "1"  # both seeds of the later run beat both of the earlier ones
    assert fid["dcgan"]["change [95% CI]"].startswith("0 ")


@pytest.mark.slow
def test_compare_refuses_runs_on_other_datasets_or_feature_spaces(real_run, copy_run, tmp_path, ganbench_cli):
    other = copy_run(real_run, "other")
    record = json.loads((other / "config.json").read_text())
    record["classifier"]["weights_sha256"] = "0" * 64
    (other / "config.json").write_text(json.dumps(record))
    out = ganbench_cli("compare", real_run, other, "--out", tmp_path / "cmp")
    assert out.returncode == 2 and "were scored with different held-out classifiers" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "cmp").exists()
    record["dataset"]["name"] = "mnist"
    (other / "config.json").write_text(json.dumps(record))
    with pytest.raises(UsageError, match="is on fashion-mnist, .* on mnist"):
        build_comparison([real_run, other], tmp_path / "cmp")


@pytest.mark.slow
def test_the_report_command_and_run_report(real_run, tmp_path, ganbench_cli):
    out = ganbench_cli("report", real_run, "--out", tmp_path / "r", "--format", "md")
    assert out.returncode == 0, out.stderr
    assert f"report: {tmp_path / 'r' / 'report.md'}" in out.stdout and not (tmp_path / "r" / "report.html").exists()


@pytest.mark.slow
def test_run_with_report_writes_it_at_the_end(run_kwargs):
    result = ganbench.run(variants="cgan", report=True, **{**run_kwargs, "budget": "4steps", "evals": 1})
    assert (result.run_dir / "report" / "report.html").is_file() and (result.run_dir / "report" / "report.md").is_file()


def test_train_flops_is_shown_among_the_costs(synthetic_run, tmp_path):
    run = synthetic_run(variants=2, seeds=2, evals=2, name="flops")
    metrics = pd.read_csv(run / "metrics.csv")
    metrics[C.TRAIN_FLOPS] = metrics[C.STEP] * 9.4e9
    metrics.to_csv(run / "metrics.csv", index=False)
    md = build_report(run, tmp_path / "out", ["md"])["md"].read_text()
    quality, cost = md_tables(section(md, "Leaderboard"))
    assert "train_flops" in cost[0] and not any(c.startswith("train_flops") for c in quality[0])


class _Tables(HTMLParser):
    """Every <table> of an HTML fragment as rows of cell texts (the standard library's parser:
    pandas.read_html would need lxml)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _html_tables(fragment: str) -> list[pd.DataFrame]:
    parser = _Tables()
    parser.feed(fragment)
    return [pd.DataFrame(rows[1:], columns=rows[0]) for rows in parser.tables]


def _html_sections(html_text: str) -> dict[str, str]:
    """The report's sections by their heading: ``{title: the section's HTML}``."""
    parts = re.findall(r"<section>\s*<h2>(.*?)</h2>(.*?)</section>", html_text, flags=re.S)
    return {title: body for title, body in parts}


def _plugin_run(synthetic_run, old_layout=False):
    """A synthetic run of v0, v1 (2 seeds) with a plugin metric (``bright``, one column with a
    direction), a built-in probe (steering) and a plugin probe (``latent-walk``: a column, a table
    and a picture per job), recorded in config.json as a run records them."""
    from PIL import Image

    run_dir = synthetic_run(variants=2, seeds=2, evals=1, name="plugin-probe" + ("-old" if old_layout else ""))
    metrics = pd.read_csv(run_dir / "metrics.csv")
    trained = metrics[C.STATUS] == C.STATUS_OK
    metrics["bright_fraction"] = (0.2 + 0.1 * metrics[C.VARIANT].str.removeprefix("v").where(trained, "0").astype(int)
                                  + 0.01 * metrics[C.SEED]).where(trained, 0.615)  # fmt: skip
    metrics["walk_change"] = (0.05 + 0.001 * metrics[C.SEED]).where(trained)
    metrics.to_csv(run_dir / "metrics.csv", index=False)
    walk, steering = [], []
    for v in ("v0", "v1"):
        for s in (0, 1):
            walk += [
                {C.VARIANT: v, C.SEED: s, C.EVAL_INDEX: 1, "row": i, "step": i + 1, "change": 0.5 + s} for i in range(3)
            ]
            steering += [{C.VARIANT: v, C.SEED: s, C.EVAL_INDEX: 1, "row": 0, "target": "ink", "mode": "penalised",
                          "success": 0.5, "gain": 0.1, "leakage": 0.2, "disentanglement": 0.3}]  # fmt: skip
            job = run_dir / "probes" / f"{v}-seed{s}"
            walk_dir, steer_dir = (job, job) if old_layout else (job / "latent-walk", job / "steering")
            for folder, name, shade in ((walk_dir, "latent-walk-strip.png" if old_layout else "walk.png", 200),
                                        (steer_dir, "steering-ink.png", 40)):  # fmt: skip
                folder.mkdir(parents=True, exist_ok=True)
                Image.new("L", (16, 16), shade + s).save(folder / name)
    # a run from before config.json recorded a probe's tables: the table named like the probe is its
    pd.DataFrame(walk).to_csv(run_dir / ("latent_walk.csv" if old_layout else "walk.csv"), index=False)
    pd.DataFrame(steering).to_csv(run_dir / "steering.csv", index=False)
    record = json.loads((run_dir / "config.json").read_text())
    record["metrics"] = {
        "domain-fidelity": {"plugin": "ganbench.metrics", "columns": [C.FID_DOMAIN, C.KID_DOMAIN], "config": {}},
        "bright-fraction": {"plugin": "bright.py", "columns": ["bright_fraction"], "description": "bright pixels",
                            "config": {"threshold": 0.8}},
    }  # fmt: skip
    record["probes"] = {
        "steering": {"plugin": "ganbench.probes", "columns": [C.STEER_SUCCESS], "tables": ["steering"], "config": {}},
        "latent-walk": {"plugin": "walk.py", "columns": ["walk_change"], "description": "change along a latent walk",
                        "config": {"steps": 4}},
    }  # fmt: skip
    if old_layout:
        del record["probes"]["steering"]["tables"]
    else:
        record["probes"]["latent-walk"]["tables"] = ["walk"]
    record["columns"] = {
        "bright_fraction": {"direction": "higher", "kind": "metric", "source": "bright-fraction", "plugin": "bright.py"},
        "walk_change": {"direction": "lower", "kind": "probe", "source": "latent-walk", "plugin": "walk.py"},
    }  # fmt: skip
    record["plugins"] = {
        "ganbench.metrics": {"distribution": "ganbench", "version": "0.1.0"},
        "bright.py": {"file": "/plugins/bright.py", "sha256": "5e" * 32},
        "walk.py": {"file": "/plugins/walk.py", "sha256": "7a" * 32},
    }
    (run_dir / "config.json").write_text(json.dumps(record))
    return run_dir


@pytest.mark.parametrize("old_layout", [False, True], ids=["a-folder-per-probe", "older-run"])
def test_each_probes_table_and_pictures_are_under_its_own_heading(synthetic_run, tmp_path, old_layout):
    run_dir = _plugin_run(synthetic_run, old_layout)
    html = build_report(run_dir, tmp_path / "report", formats=("html",))["html"].read_text()
    sections = _html_sections(html)
    walk, steering = sections["Probe: latent-walk"], sections["Probe: steering"]
    assert "change along a latent walk" in walk
    # its table: the first seed of each variant at its last evaluation, the probe's own columns
    (table,) = _html_tables(walk)
    assert list(table.columns) == ["variant", "seed", "step", "change"]
    assert table["variant"].tolist() == ["v0"] * 3 + ["v1"] * 3 and set(table["seed"]) == {"0"}
    assert table["change"].tolist() == ["0.5"] * 6  # seed 0's rows (seed 1's change is 1.5)
    assert f"<h3>{'latent_walk' if old_layout else 'walk'}</h3>" in walk
    # its pictures (each variant's first seed) under its own heading, not under steering's
    walk_pictures = re.findall(r'alt="([^"]+)"', walk)
    name = "latent-walk-strip.png" if old_layout else "latent-walk/walk.png"
    assert walk_pictures == [f"v0-seed0/{name}", f"v1-seed0/{name}"]
    steering_pictures = re.findall(r'alt="([^"]+)"', steering)
    assert steering_pictures and all("steering-ink" in p for p in steering_pictures)
    assert "<h3>steering</h3>" in steering and "walk" not in steering


def test_a_plugins_values_options_and_code_are_in_what_was_run_and_the_leaderboard(synthetic_run, tmp_path):
    run_dir = _plugin_run(synthetic_run)
    html = build_report(run_dir, tmp_path / "report", formats=("html",))["html"].read_text()
    sections = _html_sections(html)
    tables = _html_tables(sections["What was run"])
    reference = next(t for t in tables if "bright_fraction ↑" in t.columns)
    assert reference.set_index("variant").loc["real-data", "bright_fraction ↑"] == "0.615"  # the reference row's value
    scorers = next(t for t in tables if "metric or probe" in t.columns).set_index("metric or probe")
    assert scorers.loc["bright-fraction", "code"] == "sha256 " + "5e" * 32
    assert scorers.loc["bright-fraction", "options"] == "threshold=0.8"
    assert scorers.loc["latent-walk", "kind"] == "probe" and scorers.loc["latent-walk", "code"] == "sha256 " + "7a" * 32
    assert scorers.loc["domain-fidelity", "code"] == "ganbench 0.1.0"
    # the leaderboard: a table per plugin metric or probe, in the built-ins' order, with arrows and the best in bold
    board = sections["Leaderboard"]
    captions = re.findall(r"<h3>(.*?)</h3>", board)
    assert captions == ["quality", "metric bright-fraction", "probe latent-walk", "cost"]
    bright = board.split("<h3>metric bright-fraction</h3>", 1)[1].split("<h3>", 1)[0]
    assert "bright_fraction ↑" in bright and re.search(r"<td><strong>0\.305", bright)  # v1: the higher mean
    assert "walk_change ↓" in board.split("<h3>probe latent-walk</h3>", 1)[1]
    assert "<h3>bright_fraction ↑</h3>" in sections["What the seeds decide"]
