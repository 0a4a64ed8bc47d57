"""Report pages: one self-contained ``report.html`` (every image embedded, nothing fetched) and
a ``report.md`` with its PNG files beside it, from jinja2 templates, pandas tables,
:mod:`.stats` and :mod:`.plots`."""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from ganbench import columns as C
from ganbench.errors import UsageError, describe
from ganbench.files import atomic_write_bytes, atomic_write_text, remove_dead_temporaries
from ganbench.report import noise, plots, stats, verdicts
from ganbench.report.load import RunData, load_run

FORMATS = ("html", "md")
IMAGES_DIR = "images"
# Shown in the leaderboard when a run has them, one table per group. A plugin's own columns get a
# table per metric or probe that filled them (config.json's "columns" says which), a metric's after
# the built-in metrics, a probe's after the built-in probes; in a run without that record they
# join the first group.
GROUPS = {
    "quality": (
        C.FID_DOMAIN, C.KID_DOMAIN, C.PRECISION_DOMAIN, C.RECALL_DOMAIN, C.FID_INCEPTION, C.FD_DINOV2,
        C.CLASS_CONSISTENCY, C.CLASS_COVERAGE, C.DENSITY_DOMAIN, C.COVERAGE_DOMAIN, C.IFID_DOMAIN, C.PSNR, C.SSIM,
    ),
    "latent space": (
        C.STEER_SUCCESS, C.STEER_GAIN, C.STEER_LEAKAGE, C.STEER_DISENTANGLEMENT, C.STEER_VERIFIED_GAIN,
        C.SWAP_CONSISTENCY, C.PPL_DOMAIN,
    ),
    "samples as data": (
        C.CAS, C.MEMORISED_SHARE_DOMAIN, C.MEMORISED_SHARE_PIXEL, C.NN_RATIO_DOMAIN, C.NN_RATIO_PIXEL,
    ),
    "cost": (C.TRAIN_FLOPS, C.TRAIN_IMG_PER_S, C.GEN_IMG_PER_S, C.PEAK_MEM_MB, C.STEP),
}  # fmt: skip
LEADERBOARD = tuple(c for group in GROUPS.values() for c in group)
# Compared variant against variant (verdicts, pairwise) and run against run (deltas).
MAIN = verdicts.MAIN


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
    notes: list[str] = field(default_factory=list)  # shown right under the table
    index: bool = False  # show the frame's index (a matrix's row labels)

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
        return escaped.to_html(index=self.index, escape=False, border=0, classes="table", na_rep="")

    @property
    def markdown(self) -> str:
        cells = self._cells("**").map(lambda s: s.replace("|", "\\|"))
        return cells.to_markdown(index=self.index)


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


def _header(metric: str, directions: Mapping[str, str] | None = None) -> str:
    arrow = stats.arrow(metric, directions)
    return f"{metric} {arrow}".rstrip()


def _shown(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c in frame and pd.to_numeric(frame[c], errors="coerce").notna().any()]


def _extra_columns(run: RunData) -> list[str]:
    """Columns a plugin's metric or probe added, after the built-in ones."""
    known = {*C.ID_COLUMNS, *C.METRIC_COLUMNS, *C.PROBE_COLUMNS, *C.COST_COLUMNS, C.NOTE}
    return [c for c in run.metrics.columns if c not in known]


def main_metrics(columns: Sequence[str], directions: Mapping[str, str] | None = None) -> list[str]:
    """What verdicts and pairwise comparisons decide on, of the shown ``columns``: the built-in
    main metrics (:data:`MAIN`), then every column the leaderboard does not list by name (a
    plugin's metric or probe) that has a direction in the run's ``directions``."""
    chosen = [c for c in MAIN if c in columns] + [c for c in columns if c not in LEADERBOARD and c not in MAIN]
    return [c for c in chosen if stats.higher_is_better(c, directions) is not None]


# --- sections -------------------------------------------------------------------------------------


def _known(value: Any) -> str:
    """A value of config.json as shown: a missing one is "unknown"."""
    return "unknown" if value is None or value == "" else str(value)


def _code(sources: Mapping[str, Any], plugin: Any) -> str:
    """Which code a plugin is, as config.json's ``plugins`` records it: an installed
    distribution's name and version, or a local file's SHA-256."""
    source = sources.get(plugin) if isinstance(plugin, str) else None
    if not source:
        return "unknown"
    if source.get("version") is not None:
        return f"{source.get('distribution', plugin)} {source['version']}"
    if source.get("sha256"):
        return f"sha256 {source['sha256']}"
    return "unknown"


def _options(config: Any) -> str:
    """A metric's or probe's options as ``key=value`` pairs (``–`` when it has none)."""
    if not config:
        return "–"
    return ", ".join(f"{k}={_num(v)}" for k, v in config.items())


def what_was_run(run: RunData) -> Section:
    r = run.record  # its sections' shapes are checked by load_run; any of them may be missing
    options = r.get("run") or {}
    env = r.get("environment") or {}
    dataset = r.get("dataset") or {}
    classifier = run.classifier
    rows = [
        ("dataset", f"{_known(dataset.get('name'))} ({_known(dataset.get('train_size'))} train / {_known(dataset.get('test_size'))} test images, from {_known(dataset.get('source'))})"),
        ("budget", f"{_known(options.get('budget'))} per variant and seed; {_known(options.get('evals'))} evaluations of {_known(options.get('eval_samples'))} samples"),
        ("seeds", ", ".join(map(str, options.get("seeds") or [])) or "unknown"),
        ("device", f"{_known(env.get('device'))} ({_known(env.get('gpu') or env.get('cpu'))}, {_known(env.get('torch_threads'))} threads)"),
        ("versions", ", ".join(f"{k} {env[k]}" for k in ("ganbench", "torch", "torchvision", "torch_fidelity", "python") if env.get(k) is not None) or "unknown"),
        ("held-out classifier", f"{_known(classifier.get('name'))}: test accuracy {_num(classifier.get('test_accuracy'))}"),
        ("started", f"{_known(r.get('started'))}" + (f"; resumed {', '.join(map(str, r['resumed']))}" if r.get("resumed") else "")),
    ]  # fmt: skip
    judges = r.get("judges")
    if judges:
        judge, steering = judges.get("judge") or {}, judges.get("steering") or {}
        rows.append(
            (
                "judge / steering classifier",
                f"class accuracy {_num(judge.get('class_accuracy'))} / {_num(steering.get('class_accuracy'))}; "
                f"mean attribute accuracy {_num(judge.get('mean_attribute_accuracy'))} / "
                f"{_num(steering.get('mean_attribute_accuracy'))}",
            )
        )
    facts = Table(pd.DataFrame(rows, columns=["", "value"]))
    sources = r.get("plugins") or {}
    variants = pd.DataFrame(
        [
            (name, v.get("plugin"), _code(sources, v.get("plugin")), v.get("task"),
             "yes" if v.get("conditional") else "no", v.get("reference", ""))
            for name, v in ((name, v or {}) for name, v in (r.get("variants") or {}).items())
        ],
        columns=["variant", "plugin", "code", "task", "conditional", "reference"],
    )  # fmt: skip
    section = Section("What was run", tables=[facts, Table(variants)])
    scorers = pd.DataFrame(
        [
            (name, kind, entry.get("plugin"), _code(sources, entry.get("plugin")), ", ".join(entry.get("columns") or []),
             _options(entry.get("config")), entry.get("description") or "")
            for kind, key in (("metric", "metrics"), ("probe", "probes"))
            for name, entry in ((name, e or {}) for name, e in (r.get(key) or {}).items())
        ],
        columns=["metric or probe", "kind", "plugin", "code", "columns", "options", "description"],
    )  # fmt: skip
    if len(scorers):
        section.tables.append(Table(scorers))
    if run.notices:  # how the tables were read (a damaged metrics.csv replaced by its intact copy): said first
        section.text = " ".join(f"Note: {notice}" for notice in run.notices)
    references = run.references
    shown = [*_shown(references, LEADERBOARD), *_shown(references, _extra_columns(run))]
    if len(references) and shown:
        ref = references[[C.VARIANT, *shown, C.NOTE]].copy()
        ref[shown] = ref[shown].map(_num)
        section.tables.append(Table(ref.rename(columns={c: _header(c, run.directions) for c in shown})))
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


def column_groups(
    columns: Sequence[str], owners: Mapping[str, tuple[str, str]] | None = None
) -> dict[str, list[str]]:
    """The leaderboard's tables, ``{caption: columns}``, of the shown ``columns``: the built-in
    groups (:data:`GROUPS`), with every other column in a table of the metric or probe that
    filled it (``owners``: ``{column: (kind, name)}``, :attr:`.RunData.owners`), captioned
    ``metric NAME`` or ``probe NAME``: a metric's after the built-in metrics, a probe's after the
    built-in probes. A column no record owns joins the first group."""
    owners = owners or {}
    grouped = {name: [c for c in group if c in columns] for name, group in GROUPS.items()}
    own: dict[str, dict[str, list[str]]] = {"metric": {}, "probe": {}}
    for c in columns:
        if c in LEADERBOARD:
            continue
        kind, source = owners.get(c, ("", ""))
        if kind in own:
            own[kind].setdefault(f"{kind} {source}", []).append(c)
        else:
            grouped["quality"].append(c)
    names = list(GROUPS)
    order = [names[0], *own["metric"], names[1], *own["probe"], *names[2:]]
    merged = {**grouped, **own["metric"], **own["probe"]}
    return {name: merged[name] for name in order if merged.get(name)}


def leaderboard(
    finals: pd.DataFrame,
    label: str,
    columns: Sequence[str],
    directions: Mapping[str, str] | None = None,
    owners: Mapping[str, tuple[str, str]] | None = None,
) -> Section:
    """Mean [95% CI] over seeds per variant, one table per group of columns (:func:`column_groups`),
    the best in bold (by the run's ``directions``, :func:`.stats.higher_is_better`)."""
    summary = stats.seed_summary(finals, columns, directions=directions).set_index(["variant", "metric"])
    variants = list(dict.fromkeys(finals[C.VARIANT]))
    seeds = finals.groupby(C.VARIANT, sort=False)[C.SEED].nunique().reindex(variants).tolist()
    section = Section(
        "Leaderboard",
        text="Mean over seeds of each job's last evaluation, with a 95% confidence interval of the mean (Student t; "
        "none with one seed). ↓: lower is better, ↑: higher is better; the best of each column is in bold.",
    )
    for name, shown in column_groups(columns, owners).items():
        cells = {_header(c, directions): [_mean_ci(summary.loc[(v, c)]) for v in variants] for c in shown}
        best = {_header(c, directions): [bool(summary.loc[(v, c), "best"]) for v in variants] for c in shown}
        frame = pd.DataFrame({label: variants, "seeds": seeds, **cells})
        bold = pd.DataFrame({label: False, "seeds": False, **best}, index=frame.index)
        section.tables.append(Table(frame, bold, caption=name))
    return section


VERDICTS_TEXT = (
    "Each main metric's pairs of variants, decided or not. Test: two-sided Mann-Whitney U on the seeds' final values "
    "(exact, or a permutation test when values tie), p-values adjusted by Holm's method over the pairs of one metric; a "
    "pair is decided when its adjusted p is below {alpha}. P = the probability that a seed of the row variant beats a "
    "seed of the column variant (ties count 1/2). A job that failed or diverged ranks as that variant's worst seed. "
    "Seeds needed: an estimate for 80% power from the observed difference and seed spread (two-sample t-test power via "
    "the noncentral t, divided by Mann-Whitney's efficiency 3/π, at Bonferroni's α/m); see docs/reports.md."
)


def verdict_section(
    finals: pd.DataFrame,
    columns: Sequence[str],
    table: pd.DataFrame | None = None,
    directions: Mapping[str, str] | None = None,
) -> Section:
    """"What the seeds decide": per main metric a variants × variants matrix, one sentence per
    decided pair, warnings said once per metric; then the seeds needed for the undecided pairs."""
    variants = list(dict.fromkeys(finals[C.VARIANT])) if len(finals) else []
    section = Section("What the seeds decide")
    metrics = [c for c in columns if stats.higher_is_better(c, directions) is not None]
    if len(variants) < 2:
        section.text = "One variant: nothing to compare."
        return section
    if table is None:
        table = verdicts.verdicts(finals, variants, metrics, directions=directions)
    section.text = VERDICTS_TEXT.format(alpha=verdicts.ALPHA)
    for metric in metrics:
        rows = table[table["metric"] == metric]
        warnings = verdicts.family_warnings(table, finals, variants, metric)
        if rows.empty:
            if warnings:
                section.notes.append(f"{_header(metric, directions)}: " + " ".join(warnings))
            continue
        notes = [s for s in rows.loc[rows["decided"].astype(bool), "sentence"]]
        if not notes:
            notes.append("No pair is decided on this metric.")
        section.tables.append(
            Table(
                verdicts.matrix(table, metric, variants),
                caption=_header(metric, directions),
                notes=notes + warnings,
                index=True,
            )
        )
    undecided = verdicts.seeds_table(table)
    if len(undecided):
        frame = pd.DataFrame(
            {
                "metric": [_header(m, directions) for m in undecided["metric"]],
                "A": undecided["a"],
                "B": undecided["b"],
                "seeds (A, B)": [f"{a}, {b}" for a, b in zip(undecided["n_a"], undecided["n_b"])],
                "A − B": undecided["difference"].map(_num),
                "seed sd": undecided["pooled_sd"].map(_num),
                "seeds needed each": [
                    _seeds_needed(n, sd, e, d)
                    for n, sd, e, d in zip(undecided["seeds_needed"], undecided["pooled_sd"],
                                           undecided["effect_size"], undecided["difference"])
                ],
                "detectable now": [_detectable(d) for d in undecided["detectable_difference"]],
            }
        )
        section.tables.append(
            Table(
                frame,
                caption="Not decided: seeds needed",
                notes=[
                    "Seeds needed each: per variant, to detect the observed difference with 80% power (an estimate from "
                    "few seeds: the observed difference and spread are themselves uncertain). Detectable now: the "
                    "smallest difference the current seeds detect with 80% power. Add seeds to a run with "
                    "`ganbench run --resume RUN_DIR --seeds 0-N`."
                ],
            )
        )
    return section


def change_section(
    runs: Sequence[RunData],
    names: Sequence[str],
    columns: Sequence[str],
    directions: Mapping[str, str] | None = None,
) -> Section:
    """A comparison's "What the seeds decide": per later run, per main metric and variant in both
    runs, whether the change from the first run is decided (Mann-Whitney, Holm over the
    variants of one metric)."""
    section = Section(
        "What the seeds decide",
        text="For each variant in both runs and each main metric: is the later run's seed sample better or worse than "
        f"the first run's? Two-sided Mann-Whitney U on the seeds' final values, Holm-adjusted over the variants of one "
        f"metric; decided when the adjusted p is below {verdicts.ALPHA}. A failed or diverged job ranks as its run's "
        "worst seed.",
    )
    main = main_metrics(columns, directions)
    for run, name in zip(runs[1:], names[1:]):
        table = verdicts.change_verdicts(runs[0].finals, run.finals, main, names=(names[0], name), directions=directions)
        if table.empty:
            section.notes.append(f"{name}: no variant is in both runs with a main metric: nothing to decide.")
            continue
        frame = pd.DataFrame(
            {
                "variant": table["variant"],
                "metric": [_header(m, directions) for m in table["metric"]],
                "seeds (before, after)": [f"{a}, {b}" for a, b in zip(table["n_before"], table["n_after"])],
                f"{names[0]} → {name}": [f"{_num(a)} → {_num(b)}" for a, b in zip(table["before"], table["after"])],
                "P(after better)": table["p_improvement"].map(_num),
                "p (Holm)": table["p_holm"].map(_num),
                "verdict": table["direction"],
            }
        )
        decided = list(table.loc[table["decided"].astype(bool), "sentence"])
        section.tables.append(
            Table(frame, caption=f"{names[0]} → {name}", notes=decided or ["No change is decided."])
        )
    return section


def _seeds_needed(n: float, sd: float, effect: float, difference: float = math.nan) -> str:
    if math.isfinite(n):
        return str(int(n))
    if effect == 0 or difference == 0:  # 0 / 0 when every seed of both has the same value
        return "none can: equal means"
    if not sd == sd:
        return "unknown (no spread yet)"
    return f"> {verdicts.P.MAX_SEEDS:,}"


def _detectable(value: float) -> str:
    if math.isinf(value):
        return "none (too few seeds)"
    return _num(value)


def pairwise_section(
    finals: pd.DataFrame,
    columns: Sequence[str],
    table: pd.DataFrame | None = None,
    directions: Mapping[str, str] | None = None,
) -> Section:
    """Every compared pair in detail: means, the difference with Welch's interval, P(A better),
    the raw and Holm-adjusted p-values, and the verdict."""
    variants = list(dict.fromkeys(finals[C.VARIANT]))
    section = Section("Pairwise comparisons")
    if len(variants) < 2:
        section.text = "One variant: nothing to compare."
        return section
    if table is None:
        metrics = [c for c in columns if stats.higher_is_better(c, directions) is not None]
        table = verdicts.verdicts(finals, variants, metrics, directions=directions)
    section.text = (
        "For each pair on the main metrics: the difference of the means with a 95% Welch t interval (seeds of two "
        "variants are independent samples with their own spread), the probability that the first variant beats the "
        "second on a random pair of seeds (Mann-Whitney U / (n_a n_b), the 'probability of improvement' of Agarwal et "
        "al. 2021), the Mann-Whitney p-value and the same after Holm's correction over the metric's pairs."
    )
    frame = pd.DataFrame(
        {
            "metric": [_header(m, directions) for m in table["metric"]],
            "A": table["a"],
            "B": table["b"],
            "n (A, B)": [f"{a}, {b}" for a, b in zip(table["n_a"], table["n_b"])],
            "A − B [95% CI]": [
                f"{_num(d)} [{_num(lo)}, {_num(hi)}]"
                for d, lo, hi in zip(table["difference"], table["ci_low"], table["ci_high"])
            ],
            "P(A better)": [_num(p) for p in table["p_improvement"]],
            "p": [_num(p) for p in table["p_value"]],
            "p (Holm)": [_num(p) for p in table["p_holm"]],
            "verdict": [
                f"{w} better" if d else "not decided" for w, d in zip(table["winner"], table["decided"].astype(bool))
            ],
        }
    )
    section.tables.append(Table(frame))
    return section


def noise_section(run: RunData, columns: Sequence[str]) -> tuple[Section | None, pd.DataFrame]:
    """Training-seed against sampling variance per variant and metric, from ``sampling.csv``."""
    sampling = run.tables.get("sampling")
    directions = run.directions
    main = main_metrics(columns, directions)
    table = noise.noise_table(sampling, [c for c in columns if c in main or c in MAIN or c in LEADERBOARD[:7]])
    if table.empty:
        return None, table
    section = Section(
        "Where the noise comes from",
        text="Each job's final generator was scored twice, on two independent draws of latents (sampling.csv). Per "
        "variant and metric, the variance of one reported value splits into training-seed variance (retraining with "
        "another seed) and sampling variance (redrawing the samples of one trained network): one-way random-effects "
        "ANOVA estimators, seeds × draws (docs/reports.md). Few seeds make both estimates rough.",
    )
    frame = pd.DataFrame(
        {
            "variant": table["variant"],
            "metric": [_header(m, directions) for m in table["metric"]],
            "seeds": table["seeds"],
            "training sd": [_num(math.sqrt(v)) if v == v else "–" for v in table["var_training"]],
            "sampling sd": [_num(math.sqrt(v)) if v == v else "–" for v in table["var_sampling"]],
            "training share": [f"{v:.0%}" if v == v else "–" for v in table["share_training"]],
            "dominant": table["dominant"],
        }
    )
    section.tables.append(Table(frame))
    for metric, group in table.groupby("metric", sort=False):
        shares = group["share_training"].dropna()
        if len(shares):
            who = "training seeds dominate" if (shares > 0.5).all() else (
                "sampling dominates" if (shares <= 0.5).all() else "the dominant source differs by variant")
            section.notes.append(
                f"{_header(metric, directions)}: {who} (training share {shares.min():.0%}–{shares.max():.0%} over "
                f"{len(shares)} variant{'s' if len(shares) != 1 else ''})."
            )  # fmt: skip
    return section, table


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


STEERING_TEXT = (
    "Latents pushed by gradient ascent on a steering classifier toward each attribute (plain, and penalised for "
    "changing the other attributes), scored by the held-out judge and, for pixel attributes, by the pixels (verified "
    "gain). Strips: rows are latents, columns the steps; plain rows above penalised. Definitions: docs/metrics.md."
)
PROBE_TABLE_ROWS = 40  # rows of a probe's table shown in a report; the run directory has every row


def probe_sections(run: RunData) -> list[Section]:
    """One section per probe that wrote tables or pictures, under its own heading: its tables
    (each variant's first seed at its last evaluation; steering's as means over seeds) and its
    pictures (each variant's first seed). A built-in probe and a plugin's are shown alike."""
    firsts = _first_seed_pictures(run, "probes")  # in the run's variant order
    sections = []
    for probe in run.probe_names:
        entry = (run.record.get("probes") or {}).get(probe) or {}
        section = Section(f"Probe: {probe}", text=STEERING_TEXT if probe == "steering" else entry.get("description") or "")
        for name in run.probe_tables(probe):
            frame = run.tables[name]
            if frame.empty:
                continue
            section.tables.append(_steering_table(frame) if name == "steering" else _probe_table(name, frame))
        own = run.probe_pictures(probe)
        for name, path in firsts.items():
            if name in own and "steering-class-" not in name:  # class strips stay in the run directory
                section.images.append(Image(_flat(run, name), path.read_bytes(), name.removeprefix("probes/")))
        if section.tables or section.images:
            if section.images and len(run.record.get("run", {}).get("seeds", [])) > 1:
                section.notes.append("Pictures: each variant's first seed; every seed's are in the run directory's probes/.")
            sections.append(section)
    return sections


def _last_evaluation(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each job's last evaluation (a probe runs at a job's final one)."""
    if C.EVAL_INDEX not in frame or C.VARIANT not in frame or C.SEED not in frame:
        return frame
    last = frame.groupby([C.VARIANT, C.SEED])[C.EVAL_INDEX].transform("max")
    return frame[frame[C.EVAL_INDEX] == last]


def _steering_table(steering: pd.DataFrame) -> Table:
    scores = [c for c in ("success", "gain", "leakage", "disentanglement", "verified_gain", "latent_distance") if c in steering]
    table = _last_evaluation(steering).groupby([C.VARIANT, "target", "mode"], sort=False)[scores].mean().reset_index()
    table[scores] = table[scores].map(_num)
    return Table(table, caption="steering", notes=["Means over seeds of each job's last evaluation (steering.csv)."])


def _probe_table(name: str, frame: pd.DataFrame) -> Table:
    """A probe's table as the report shows it: each variant's first seed at its last evaluation,
    the probe's own columns after variant and seed, at most :data:`PROBE_TABLE_ROWS` rows."""
    rows = _last_evaluation(frame)
    if C.SEED in rows and C.VARIANT in rows:
        rows = rows[rows[C.SEED] == rows.groupby(C.VARIANT, sort=False)[C.SEED].transform("min")]
    bookkeeping = {C.DATASET, C.EVAL_INDEX, "row"}
    columns = [c for c in (C.VARIANT, C.SEED) if c in rows] + [
        c for c in rows.columns if c not in bookkeeping and c not in (C.VARIANT, C.SEED)
    ]
    shown = rows[columns].head(PROBE_TABLE_ROWS).reset_index(drop=True).map(_num)
    note = f"Each variant's first seed, at its last evaluation; every row is in {name}.csv in the run directory."
    if len(rows) > PROBE_TABLE_ROWS:
        note = f"The first {PROBE_TABLE_ROWS} of {len(rows)} rows of each variant's first seed at its last evaluation; every row is in {name}.csv."
    return Table(shown, caption=name, notes=[note])


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


def _write(
    out: Path,
    formats: Sequence[str],
    title: str,
    subtitle: str,
    sections: list[Section | None],
    data: dict[str, pd.DataFrame] | None = None,
) -> dict[str, Path]:
    """Write the pages (and the ``data`` tables, as CSV) into ``out``; a directory that cannot
    be written is one line (UsageError)."""
    try:
        if out.exists() and not out.is_dir():
            raise UsageError(
                f"cannot write the report to {out}: it is a file, not a directory; choose another --out DIR"
            )
        written = _write_pages(out, formats, title, subtitle, sections)
        for name, frame in (data or {}).items():
            atomic_write_text(out / name, frame.to_csv(index=False))
        return written
    except OSError as exc:
        reason = exc.strerror or describe(exc)
        raise UsageError(
            f"cannot write the report to {out} ({reason}); give a directory you can write to with --out DIR"
        ) from None


def _write_pages(
    out: Path, formats: Sequence[str], title: str, subtitle: str, sections: list[Section | None]
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, out / IMAGES_DIR):  # half-written files of a report that was killed
        remove_dead_temporaries(folder)
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


@dataclass(frozen=True)
class Decisions:
    """The statistics a report decides with, as tables (also written beside the report as
    ``verdicts.csv``, ``seeds_needed.csv`` and ``noise.csv``).

    Attributes:
        verdicts: one row per main metric and pair of variants (:data:`.verdicts.VERDICT_COLUMNS`).
        seeds_needed: the undecided pairs: seeds needed and the detectable difference (:data:`.verdicts.SEEDS_COLUMNS`).
        noise: training-seed against sampling variance per variant and metric (:data:`.noise.NOISE_COLUMNS`);
            empty when the run was not resampled.
    """

    verdicts: pd.DataFrame
    seeds_needed: pd.DataFrame
    noise: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"verdicts.csv": self.verdicts, "seeds_needed.csv": self.seeds_needed, "noise.csv": self.noise}


def decide(run: RunData | Path | str) -> Decisions:
    """What the seeds of a run decide (the API behind a report's first section)."""
    run = run if isinstance(run, RunData) else load_run(run)
    finals = run.finals
    columns = [*_shown(finals, LEADERBOARD), *_shown(finals, _extra_columns(run))]
    main = main_metrics(columns, run.directions)
    table = verdicts.verdicts(finals, run.variants, main, directions=run.directions)
    _, noise_frame = noise_section(run, columns)
    return Decisions(table, verdicts.seeds_table(table), noise_frame)


def run_sections(run: RunData) -> tuple[list[Section | None], Decisions, str]:
    """A run's report: its sections in order, the decisions behind the first, and the subtitle
    (shared by ``ganbench report`` and the tuned report, whose phase 2 is an ordinary run)."""
    finals = run.finals
    columns = [*_shown(finals, LEADERBOARD), *_shown(finals, _extra_columns(run))]
    directions = run.directions
    main = main_metrics(columns, directions)
    decisions = decide(run)
    plot_section = Section("Plots")
    for name, data in plots.run_plots(run).items():
        plot_section.images.append(Image(f"{run.name}-{name}", data, Path(name).stem))
    noise_part, _ = noise_section(run, columns)
    sections = [
        verdict_section(finals, main, decisions.verdicts, directions),
        what_was_run(run),
        jobs_section(run),
        leaderboard(finals, C.VARIANT, columns, directions, run.owners),
        pairwise_section(finals, main, decisions.verdicts, directions),
        noise_part,
        plot_section,
        pictures_section(run),
        *probe_sections(run),
    ]
    options = run.record.get("run") or {}
    subtitle = (
        f"{', '.join(run.variants)} on {_dataset_name(run)}, budget {options.get('budget')}, "
        f"seeds {options.get('seeds')}"
    )
    return sections, decisions, subtitle


def build_report(
    run_dir: Path | str, out: Path | str | None = None, formats: Sequence[str] = FORMATS
) -> dict[str, Path]:
    """The report of one run: ``<run_dir>/report/`` unless ``out`` says otherwise. It opens with
    what the seeds decide; the tables behind that section are written beside the pages."""
    run = load_run(run_dir)
    sections, decisions, subtitle = run_sections(run)
    target = Path(out) if out else run.path / "report"
    return _write(target, formats, f"ganbench report: {run.name}", subtitle, sections, decisions.tables())


def _dataset_name(run: RunData) -> str:
    """The run's dataset in words, also when its config.json names none."""
    return run.dataset or "an unnamed dataset (its config.json names none)"


def comparable(runs: Sequence[RunData]) -> None:
    """Runs on other datasets or scored in another feature space cannot be compared."""
    first = runs[0]
    for run in runs[1:]:
        if run.dataset != first.dataset:
            raise UsageError(
                f"runs are not comparable: {first.path} is on {_dataset_name(first)}, {run.path} on "
                f"{_dataset_name(run)}; compare runs of one dataset"
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
    extras = list(dict.fromkeys(c for r in runs for c in _extra_columns(r)))
    columns = [*_shown(combined, LEADERBOARD), *_shown(combined, extras)]
    directions: dict[str, str] = {}
    owners: dict[str, tuple[str, str]] = {}
    for run in reversed(runs):  # each column as its earliest run that records it says
        directions.update(run.directions)
        owners.update(run.owners)
    sections: list[Section] = [change_section(runs, names, columns, directions)]
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
            text=f"{runs[0].dataset or 'An unnamed dataset'}, scored by the same held-out classifier "
            f"({runs[0].classifier.get('name') or 'unnamed'}).",
            tables=[Table(overview)],
        )
    )
    sections.append(leaderboard(combined, "variant @ run", columns, directions, owners))
    for run, name in zip(runs[1:], names[1:]):
        main = main_metrics(columns, directions)
        delta = stats.deltas(runs[0].finals, run.finals, main, directions=directions)
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
                    "metric": [_header(m, directions) for m in delta["metric"]],
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
    dataset = runs[0].dataset or "an unnamed dataset"
    return _write(Path(out), formats, title, f"{len(runs)} runs on {dataset}", sections)
