"""Report pages: one self-contained ``report.html`` (every image embedded, nothing fetched) and
a ``report.md`` with its PNG files beside it, from jinja2 templates, pandas tables,
:mod:`.stats` and :mod:`.plots`."""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from ganbench import columns as C
from ganbench.errors import UsageError
from ganbench.harness.rundir import atomic_write_bytes, atomic_write_text
from ganbench.report import plots, stats
from ganbench.report.load import RunData, load_run

FORMATS = ("html", "md")
IMAGES_DIR = "images"
# Shown in the leaderboard when a run has them, one table per group (a plugin's own columns
# join the first group).
GROUPS = {
    "quality": (
        C.FID_DOMAIN, C.KID_DOMAIN, C.PRECISION_DOMAIN, C.RECALL_DOMAIN, C.FID_INCEPTION, C.CLASS_CONSISTENCY,
        C.CLASS_COVERAGE, C.PSNR, C.SSIM,
    ),
    "latent space": (
        C.STEER_SUCCESS, C.STEER_GAIN, C.STEER_LEAKAGE, C.STEER_DISENTANGLEMENT, C.STEER_VERIFIED_GAIN,
        C.SWAP_CONSISTENCY, C.PPL_DOMAIN,
    ),
    "cost": (C.TRAIN_FLOPS, C.TRAIN_IMG_PER_S, C.GEN_IMG_PER_S, C.PEAK_MEM_MB, C.STEP),
}  # fmt: skip
LEADERBOARD = tuple(c for group in GROUPS.values() for c in group)
# Compared variant against variant (pairwise) and run against run (deltas).
MAIN = (C.FID_DOMAIN, C.KID_DOMAIN, C.CLASS_CONSISTENCY, C.PSNR, C.STEER_DISENTANGLEMENT, C.TRAIN_IMG_PER_S)


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    chosen = tuple(dict.fromkeys(i.strip().lower() for i in items if i.strip()))
    wrong = [f for f in chosen if f not in FORMATS]
    if wrong or not chosen:
        raise UsageError(f"--format {','.join(items)}: accepted: html, md, or both (html,md)")
    return chosen


@dataclass
class Image:
    """A picture of the report: its file name under images/ and its PNG bytes."""

    name: str
    data: bytes
    caption: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.data).decode()

    @property
    def path(self) -> str:
        return f"{IMAGES_DIR}/{self.name}"


@dataclass
class Table:
    """A table for both formats: the same frame rendered as HTML and as Markdown."""

    frame: pd.DataFrame
    bold: pd.DataFrame | None = None  # True where a cell is the best of its column
    caption: str = ""

    def _cells(self, mark: str) -> pd.DataFrame:
        text = self.frame.astype(str)
        if self.bold is None:
            return text
        return text.where(~self.bold.reindex_like(text).fillna(False).astype(bool), mark + text + mark)

    @property
    def html(self) -> str:
        escaped = self.frame.astype(str).map(html.escape)
        if self.bold is not None:
            best = self.bold.reindex_like(escaped).fillna(False).astype(bool)
            escaped = escaped.where(~best, "<strong>" + escaped + "</strong>")
        return escaped.to_html(index=False, escape=False, border=0, classes="table", na_rep="")

    @property
    def markdown(self) -> str:
        cells = self._cells("**").map(lambda s: s.replace("|", "\\|"))
        return cells.to_markdown(index=False)


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- formatting -----------------------------------------------------------------------------------


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _mean_ci(row: pd.Series) -> str:
    if row["n"] == 0:
        return "–"
    text = _num(float(row["mean"]))
    if row["n"] > 1 and not math.isnan(row["ci_low"]):
        text += f" [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
    return text


def _header(metric: str) -> str:
    arrow = stats.arrow(metric)
    return f"{metric} {arrow}".rstrip()


def _shown(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c in frame and pd.to_numeric(frame[c], errors="coerce").notna().any()]


def _extra_columns(run: RunData) -> list[str]:
    """Columns a plugin's metric or probe added, after the built-in ones."""
    known = {*C.ID_COLUMNS, *C.METRIC_COLUMNS, *C.PROBE_COLUMNS, *C.COST_COLUMNS, C.NOTE}
    return [c for c in run.metrics.columns if c not in known]


# --- sections -------------------------------------------------------------------------------------


def what_was_run(run: RunData) -> Section:
    r = run.record
    options = r.get("run", {})
    env = r.get("environment", {})
    dataset = r.get("dataset", {})
    classifier = run.classifier
    rows = [
        ("dataset", f"{dataset.get('name')} ({dataset.get('train_size')} train / {dataset.get('test_size')} test images, from {dataset.get('source')})"),
        ("budget", f"{options.get('budget')} per variant and seed; {options.get('evals')} evaluations of {options.get('eval_samples')} samples"),
        ("seeds", ", ".join(map(str, options.get("seeds", [])))),
        ("device", f"{env.get('device')} ({env.get('gpu') or env.get('cpu')}, {env.get('torch_threads')} threads)"),
        ("versions", ", ".join(f"{k} {env[k]}" for k in ("ganbench", "torch", "torchvision", "torch_fidelity", "python") if k in env)),
        ("held-out classifier", f"{classifier.get('name')}: test accuracy {_num(classifier.get('test_accuracy'))}"),
        ("started", f"{r.get('started')}" + (f"; resumed {', '.join(r['resumed'])}" if r.get("resumed") else "")),
    ]  # fmt: skip
    judges = r.get("judges")
    if judges:
        rows.append(
            (
                "judge / steering classifier",
                f"class accuracy {_num(judges['judge'].get('class_accuracy'))} / {_num(judges['steering'].get('class_accuracy'))}; "
                f"mean attribute accuracy {_num(judges['judge'].get('mean_attribute_accuracy'))} / "
                f"{_num(judges['steering'].get('mean_attribute_accuracy'))}",
            )
        )
    facts = Table(pd.DataFrame(rows, columns=["", "value"]))
    variants = pd.DataFrame(
        [
            (name, v.get("plugin"), v.get("task"), "yes" if v.get("conditional") else "no", v.get("reference", ""))
            for name, v in r.get("variants", {}).items()
        ],
        columns=["variant", "plugin", "task", "conditional", "reference"],
    )
    section = Section("What was run", tables=[facts, Table(variants)])
    references = run.references
    shown = _shown(references, LEADERBOARD)
    if len(references) and shown:
        ref = references[[C.VARIANT, *shown, C.NOTE]].copy()
        ref[shown] = ref[shown].map(_num)
        section.tables.append(Table(ref.rename(columns={c: _header(c) for c in shown})))
        section.notes.append(
            "Reference rows are scored exactly like the variants: `real-data` is images of the train split (the floor "
            "a perfect generator would reach at this sample size); `bicubic-x2` upscales the degraded test images."
        )
    return section


def jobs_section(run: RunData) -> Section:
    """Every job that did not end ok: which, at what step, and why."""
    jobs = run.jobs
    if jobs.empty:  # an older run: read it from the stop rows
        jobs = run.finals[[C.VARIANT, C.SEED, C.STATUS, C.STEP, C.NOTE]]
    bad = jobs[jobs[C.STATUS] != C.STATUS_OK]
    section = Section("Jobs")
    total = len(jobs)
    if bad.empty:
        section.text = f"All {total} jobs (variant × seed) ended ok."
        return section
    section.text = (
        f"{len(bad)} of {total} jobs did not end ok; their last evaluation (if any) is what the tables below use."
    )
    section.tables.append(Table(bad[[C.VARIANT, C.SEED, C.STATUS, C.STEP, C.NOTE]].reset_index(drop=True)))
    return section


def leaderboard(finals: pd.DataFrame, label: str, columns: Sequence[str]) -> Section:
    """Mean [95% CI] over seeds per variant, one table per group of columns, the best in bold."""
    summary = stats.seed_summary(finals, columns).set_index(["variant", "metric"])
    variants = list(dict.fromkeys(finals[C.VARIANT]))
    seeds = finals.groupby(C.VARIANT, sort=False)[C.SEED].nunique().reindex(variants).tolist()
    section = Section(
        "Leaderboard",
        text="Mean over seeds of each job's last evaluation, with a 95% confidence interval of the mean (Student t; "
        "none with one seed). ↓: lower is better, ↑: higher is better; the best of each column is in bold.",
    )
    grouped = {name: [c for c in group if c in columns] for name, group in GROUPS.items()}
    grouped["quality"] += [c for c in columns if c not in LEADERBOARD]
    for name, shown in grouped.items():
        if not shown:
            continue
        cells = {_header(c): [_mean_ci(summary.loc[(v, c)]) for v in variants] for c in shown}
        best = {_header(c): [bool(summary.loc[(v, c), "best"]) for v in variants] for c in shown}
        frame = pd.DataFrame({label: variants, "seeds": seeds, **cells})
        bold = pd.DataFrame({label: False, "seeds": False, **best}, index=frame.index)
        section.tables.append(Table(frame, bold, caption=name))
    return section


def pairwise_section(finals: pd.DataFrame, columns: Sequence[str]) -> Section:
    variants = list(dict.fromkeys(finals[C.VARIANT]))
    section = Section("Pairwise comparisons")
    if len(variants) < 2:
        section.text = "One variant: nothing to compare."
        return section
    pairs = stats.pairwise(finals, variants, [c for c in columns if stats.higher_is_better(c) is not None])
    section.text = (
        "For each pair on the main metrics: the difference of the means with a 95% bootstrap confidence interval "
        "(scipy.stats.bootstrap) and the probability that the first variant beats the second on a random pair of "
        "seeds (Mann-Whitney U / (n_a n_b), the 'probability of improvement' of Agarwal et al. 2021)."
    )
    frame = pd.DataFrame(
        {
            "metric": [_header(m) for m in pairs["metric"]],
            "A": pairs["a"],
            "B": pairs["b"],
            "n (A, B)": [f"{a}, {b}" for a, b in zip(pairs["n_a"], pairs["n_b"])],
            "A − B [95% CI]": [
                f"{_num(d)} [{_num(lo)}, {_num(hi)}]"
                for d, lo, hi in zip(pairs["difference"], pairs["ci_low"], pairs["ci_high"])
            ],
            "P(A better)": [_num(p) for p in pairs["p_improvement"]],
            "warning": pairs["warning"].fillna(""),
        }
    )
    section.tables.append(Table(frame))
    return section


def _first_seed_pictures(run: RunData, folder: str) -> dict[str, Path]:
    """The pictures under ``folder`` of each variant's first seed, in the run's variant order:
    one set per variant keeps a report readable (the rest stay in the run directory)."""
    firsts = run.finals.groupby(C.VARIANT, sort=False)[C.SEED].min()
    chosen = {}
    for variant, seed in firsts.items():
        stem = f"{folder}/{variant}-seed{seed}"
        chosen.update({n: p for n, p in run.pictures.items() if n == f"{stem}.png" or n.startswith(f"{stem}/")})
    return chosen


def pictures_section(run: RunData) -> Section:
    section = Section("Samples")
    for name, path in _first_seed_pictures(run, "samples").items():
        section.images.append(Image(_flat(run, name), path.read_bytes(), f"{Path(name).stem}"))
    if len(run.record.get("run", {}).get("seeds", [])) > 1:
        section.notes.append("Each variant's first seed; every seed's grid is in the run directory's samples/.")
    if "srgan" in run.variants:
        section.notes.append(
            "Super-resolution grids: rows are the 2x-downsampled input, bicubic, the variant, the original."
        )
    return section


def probes_section(run: RunData) -> Section | None:
    steering = run.tables.get("steering")
    # each variant's first seed, attribute strips and label swap (class strips stay in the run directory)
    pictures = {n: p for n, p in _first_seed_pictures(run, "probes").items() if "steering-class-" not in n}
    if (steering is None or steering.empty) and not pictures:
        return None
    section = Section(
        "Steering and latent space",
        text="Latents pushed by gradient ascent on a steering classifier toward each attribute (plain, and penalised "
        "for changing the other attributes), scored by the held-out judge and, for pixel attributes, by the pixels "
        "(verified gain). Strips: rows are latents, columns the steps; plain rows above penalised. Definitions: "
        "docs/metrics.md.",
    )
    if steering is not None and not steering.empty:
        scores = ["success", "gain", "leakage", "disentanglement", "verified_gain", "latent_distance"]
        last = steering[steering[C.EVAL_INDEX] == steering.groupby([C.VARIANT, C.SEED])[C.EVAL_INDEX].transform("max")]
        table = last.groupby([C.VARIANT, "target", "mode"], sort=False)[scores].mean().reset_index()
        table[scores] = table[scores].map(_num)
        section.tables.append(Table(table))
    for name, path in pictures.items():
        section.images.append(Image(_flat(run, name), path.read_bytes(), name.removeprefix("probes/")))
    return section


def _flat(run: RunData, relative: str) -> str:
    """A picture's file name under images/: unique across runs and folders."""
    return f"{run.name}-{relative.replace('/', '-')}"


# --- assembling -------------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ganbench.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _write(out: Path, formats: Sequence[str], title: str, subtitle: str, sections: list[Section]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    env = _environment()
    written: dict[str, Path] = {}
    context = {
        "title": title,
        "subtitle": subtitle,
        "sections": [s for s in sections if s is not None],
        "generated": dt.datetime.now().isoformat(timespec="seconds"),
    }
    if "md" in formats:
        images = out / IMAGES_DIR
        if images.is_dir():  # pictures of an earlier report of this run: replaced, not mixed
            shutil.rmtree(images)
        for section in context["sections"]:
            for image in section.images:
                atomic_write_bytes(out / image.path, image.data)
        written["md"] = out / "report.md"
        atomic_write_text(written["md"], env.get_template("report.md.j2").render(**context))
    if "html" in formats:
        written["html"] = out / "report.html"
        atomic_write_text(written["html"], env.get_template("report.html.j2").render(**context))
    return written


def build_report(
    run_dir: Path | str, out: Path | str | None = None, formats: Sequence[str] = FORMATS
) -> dict[str, Path]:
    """The report of one run: ``<run_dir>/report/`` unless ``out`` says otherwise."""
    run = load_run(run_dir)
    finals = run.finals
    columns = [*_shown(finals, LEADERBOARD), *_shown(finals, _extra_columns(run))]
    plot_section = Section("Plots")
    for name, data in plots.run_plots(run).items():
        plot_section.images.append(Image(f"{run.name}-{name}", data, Path(name).stem))
    sections = [
        what_was_run(run),
        jobs_section(run),
        leaderboard(finals, C.VARIANT, columns),
        pairwise_section(finals, [c for c in MAIN if c in columns]),
        plot_section,
        pictures_section(run),
        probes_section(run),
    ]
    options = run.record.get("run", {})
    subtitle = (
        f"{', '.join(run.variants)} on {run.dataset}, budget {options.get('budget')}, seeds {options.get('seeds')}"
    )
    return _write(
        Path(out) if out else run.path / "report", formats, f"ganbench report: {run.name}", subtitle, sections
    )


def comparable(runs: Sequence[RunData]) -> None:
    """Runs on other datasets or scored in another feature space cannot be compared."""
    first = runs[0]
    for run in runs[1:]:
        if run.dataset != first.dataset:
            raise UsageError(
                f"runs are not comparable: {first.path} is on {first.dataset}, {run.path} on {run.dataset}; "
                "compare runs of one dataset"
            )
        a, b = first.classifier.get("weights_sha256"), run.classifier.get("weights_sha256")
        if a != b:
            raise UsageError(
                f"runs are not comparable: {first.path} and {run.path} were scored with different held-out classifiers "
                f"({(a or '?')[:12]} vs {(b or '?')[:12]}), so their metrics live in different feature spaces"
            )


def build_comparison(
    run_dirs: Sequence[Path | str], out: Path | str, formats: Sequence[str] = FORMATS
) -> dict[str, Path]:
    """One report across runs: every run's variants side by side, and each run's change
    against the first (per variant and metric, with its significance)."""
    if len(run_dirs) < 2:
        raise UsageError("compare needs at least two run directories")
    runs = [load_run(p) for p in run_dirs]
    names = [r.name for r in runs]
    if len(set(names)) < len(names):
        names = [str(r.path) for r in runs]
    comparable(runs)
    labelled = []
    for run, name in zip(runs, names):
        finals = run.finals.copy()
        finals[C.VARIANT] = finals[C.VARIANT] + " @ " + name
        labelled.append(finals)
    combined = pd.concat(labelled, ignore_index=True)
    columns = _shown(combined, LEADERBOARD)
    sections: list[Section] = []
    overview = pd.DataFrame(
        [
            (name, ", ".join(r.variants), r.record.get("run", {}).get("budget"), len(r.record.get("run", {}).get("seeds", [])),
             r.record.get("environment", {}).get("device"), r.record.get("started"))
            for r, name in zip(runs, names)
        ],
        columns=["run", "variants", "budget", "seeds", "device", "started"],
    )  # fmt: skip
    sections.append(
        Section(
            "Runs compared",
            text=f"{runs[0].dataset}, scored by the same held-out classifier ({runs[0].classifier.get('name')}).",
            tables=[Table(overview)],
        )
    )
    sections.append(leaderboard(combined, "variant @ run", columns))
    for run, name in zip(runs[1:], names[1:]):
        main = [c for c in MAIN if c in columns]
        delta = stats.deltas(runs[0].finals, run.finals, main)
        section = Section(f"{name} against {names[0]}")
        if delta.empty:
            section.text = "No variant is in both runs."
        else:
            section.text = (
                "Per variant in both runs: the change of the mean (after − before) with a 95% bootstrap interval, and "
                "the probability that a seed of the later run beats a seed of the earlier one."
            )
            frame = pd.DataFrame(
                {
                    "variant": delta["variant"],
                    "metric": [_header(m) for m in delta["metric"]],
                    f"{names[0]}": delta["before"].map(_num),
                    f"{name}": delta["after"].map(_num),
                    "change [95% CI]": [
                        f"{_num(d)} [{_num(lo)}, {_num(hi)}]"
                        for d, lo, hi in zip(delta["delta"], delta["ci_low"], delta["ci_high"])
                    ],
                    "P(better)": delta["p_improvement"].map(_num),
                    "n (before, after)": [f"{a}, {b}" for a, b in zip(delta["n_before"], delta["n_after"])],
                    "warning": delta["warning"].fillna(""),
                }
            )
            section.tables.append(Table(frame))
        sections.append(section)
    for run, name in zip(runs, names):
        plot_section = Section(f"Plots: {name}")
        for file, data in plots.run_plots(run).items():
            plot_section.images.append(Image(f"{run.name}-{file}", data, Path(file).stem))
        sections.append(plot_section)
    title = "ganbench comparison: " + " vs ".join(names)
    return _write(Path(out), formats, title, f"{len(runs)} runs on {runs[0].dataset}", sections)
