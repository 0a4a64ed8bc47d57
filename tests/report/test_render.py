"""`ganbench report` and `ganbench compare`: pages built from run directories alone."""

import json
import re
import subprocess
import sys

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
