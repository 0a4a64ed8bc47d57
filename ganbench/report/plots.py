"""The plots of a run report, as PNG bytes.

Every figure is a :class:`matplotlib.figure.Figure` drawn by its own Agg canvas: no pyplot, no
global backend or state, so plots can be made from any thread on a headless machine. Sizes are
fixed (:func:`figure_size`) and drawn at :data:`DPI`, and the PNG carries no version or date,
so the same tables give the same bytes. Each variant keeps one colour in every plot of a report
(:func:`palette` of the run's variants, which :func:`run_plots` passes to each plot).

Each plot function returns PNG bytes, or None when its input has nothing to show (an empty
table, a missing column, only NaN). Rows without a value (a failed job's stop row, the NaN
metrics of a diverged one) are skipped, so a diverged variant's curve simply ends.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter

from ganbench import columns as C

DPI = 100
# Figure sizes in inches; the per-variant figures grow with the number of rows (figure_size).
_SIZES = {"curve": (8.0, 4.5), "cost": (8.0, 5.0), "heatmap": (10.0, 4.5), "throughput": (10.0, 4.5)}
_LOSS_COLUMNS, _LOSS_WIDTH, _LOSS_ROW = 3, 11.0, 2.5

# Metrics drawn against training time and images seen by run_plots, when the run has them.
CURVE_METRICS = (C.FID_DOMAIN, C.CLASS_CONSISTENCY, C.PSNR)
# Distance-like metrics (positive, lower is better): a log axis when they span over a decade.
LOG_METRICS = frozenset({C.FID_DOMAIN, C.KID_DOMAIN, C.IFID_DOMAIN, C.FID_INCEPTION, C.FD_DINOV2, C.PPL_DOMAIN})
# Columns of train_log.csv that are not losses.
NOT_LOSSES = frozenset({*C.ID_COLUMNS, C.NOTE, *C.TIMING_COLUMNS})
# Cost columns where less is better (for the other ones, more is).
_LOWER_COST = frozenset({C.EVAL_SECONDS, C.PROBE_SECONDS, C.TRAIN_SECONDS})  # times: no quality, but less is cheaper
_NEUTRAL = frozenset({C.STEER_LATENT_DISTANCE, C.STEER_PLAIN_LATENT_DISTANCE})

_LABELS = {
    C.FID_DOMAIN: "FID, held-out classifier features",
    C.KID_DOMAIN: "KID, held-out classifier features",
    C.PRECISION_DOMAIN: "precision (k-NN, classifier features)",
    C.RECALL_DOMAIN: "recall (k-NN, classifier features)",
    C.DENSITY_DOMAIN: "density (k-NN, classifier features)",
    C.COVERAGE_DOMAIN: "coverage (k-NN, classifier features)",
    C.IFID_DOMAIN: "intra-class FID, held-out classifier features",
    C.FID_INCEPTION: "FID, Inception features",
    C.FD_DINOV2: "FD, DINOv2 features",
    C.CLASS_CONSISTENCY: "class consistency (accuracy)",
    C.CLASS_COVERAGE: "class coverage (normalised entropy)",
    C.PSNR: "PSNR (dB)",
    C.SSIM: "SSIM",
    C.PPL_DOMAIN: "perceptual path length",
    C.TRAIN_IMG_PER_S: "training throughput (img/s)",
    C.GEN_IMG_PER_S: "generation throughput (img/s)",
    C.PEAK_MEM_MB: "peak memory (MB)",
    C.EVAL_SECONDS: "evaluation time (s)",
    C.PROBE_SECONDS: "probe time (s)",
}
_X_AXES = {C.TRAIN_SECONDS: "training time", C.IMAGES_SEEN: "images seen"}
# Reference rows: the real-data floor dashed, a baseline (bicubic) dotted.
_REFERENCE_STYLE = {C.REAL_DATA: ("#222222", "--")}
_BASELINE_STYLE = ("#777777", ":")
_LOSS_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))
_BAND = "min–max over seeds"
_THROUGHPUT_TITLES = {
    C.TRAIN_IMG_PER_S: "training: real images consumed per training second",
    C.GEN_IMG_PER_S: "generation: images sampled per second",
}


# --- shared pieces ------------------------------------------------------------------------------


def palette(variants: Sequence[str]) -> dict[str, str]:
    """A colour (hex) per variant, by position: tab10 up to 10 variants, tab20 (dark shades
    first) up to 20, evenly spaced turbo beyond. Build it once from the run's variants and pass
    it to every plot, so a variant missing from one plot does not shift the others' colours."""
    names = list(dict.fromkeys(variants))
    n = len(names)
    if n <= 10:
        colors = matplotlib.colormaps["tab10"].colors
    elif n <= 20:
        tab20 = matplotlib.colormaps["tab20"].colors
        colors = tab20[0::2] + tab20[1::2]
    else:
        turbo = matplotlib.colormaps["turbo"]
        colors = [turbo(0.05 + 0.9 * i / (n - 1)) for i in range(n)]
    return {name: to_hex(colors[i]) for i, name in enumerate(names)}


def figure_size(kind: str, rows: int = 1) -> tuple[float, float]:
    """Size in inches of a plot ("curve", "cost", "heatmap", "throughput", "losses"); the PNG
    is this times :data:`DPI` pixels. ``rows``: the heatmap's and the bar chart's rows, the
    number of variants of the loss panels (three to a row)."""
    if kind == "losses":
        return _LOSS_WIDTH, 0.8 + _LOSS_ROW * math.ceil(max(rows, 1) / _LOSS_COLUMNS)
    width, height = _SIZES[kind]
    if kind in ("heatmap", "throughput"):
        height = max(height, 1.5 + 0.35 * rows)  # keep rows legible when there are many
    return width, height


def label(column: str, direction: bool = True) -> str:
    """Axis label of a column: what it is, its unit, and (``direction``) which way is better."""
    text = _LABELS.get(column, column)
    if not direction or column in _NEUTRAL:
        return text
    if column in C.LOWER_IS_BETTER or column in _LOWER_COST:
        return f"{text}, lower is better"
    return f"{text}, higher is better"


def _figure(kind: str, rows: int = 1, **kwargs) -> Figure:
    return Figure(figsize=figure_size(kind, rows), dpi=DPI, layout="constrained", **kwargs)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)  # attaches itself: savefig then draws with Agg, whatever pyplot's backend
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})  # no version: same data, same bytes
    return buf.getvalue()


def _trained(frame: pd.DataFrame) -> pd.DataFrame:
    if C.STATUS not in frame:
        return frame
    return frame[frame[C.STATUS] != C.STATUS_REFERENCE]


def _finite(frame: pd.DataFrame, *cols: str) -> pd.DataFrame:
    """Rows where every one of ``cols`` is a finite number (an empty frame when one is missing)."""
    if frame.empty or any(c not in frame for c in cols):
        return frame.iloc[0:0]
    values = frame[list(cols)].apply(pd.to_numeric, errors="coerce")
    return frame[np.isfinite(values.to_numpy(dtype=float)).all(axis=1)]


def _colors(frame: pd.DataFrame, colors: Mapping[str, str] | None) -> Mapping[str, str]:
    """The given palette, completed for variants it lacks (after its own colours)."""
    given = dict(colors or {})
    missing = [v for v in dict.fromkeys(frame[C.VARIANT]) if v not in given] if C.VARIANT in frame else []
    extra = palette([*given, *missing]) if missing else {}
    return {**given, **{v: extra[v] for v in missing}}


def _stopped(frame: pd.DataFrame) -> dict[str, str]:
    """Per variant, how many of its jobs did not end ok, from each job's last row: "1/5 diverged"."""
    if frame.empty or C.STATUS not in frame or C.SEED not in frame:
        return {}
    jobs = frame.sort_values(C.EVAL_INDEX, kind="stable") if C.EVAL_INDEX in frame else frame
    last = jobs.groupby([C.VARIANT, C.SEED], sort=False).tail(1)
    notes = {}
    for variant, group in last.groupby(C.VARIANT, sort=False):
        bad = group[C.STATUS][group[C.STATUS] != C.STATUS_OK].value_counts()
        if len(bad):
            notes[variant] = ", ".join(f"{n}/{len(group)} {status}" for status, n in bad.items())
    return notes


def _named(variant: str, stopped: Mapping[str, str]) -> str:
    return f"{variant} ({stopped[variant]})" if variant in stopped else variant


def _not_evaluated(frame: pd.DataFrame, stopped: Mapping[str, str]) -> list[Line2D]:
    """A legend entry naming the variants whose jobs all stopped before any evaluation (no
    metric in any row), so that their absence from the plot reads as such."""
    metrics = [c for c in C.METRIC_COLUMNS if c in frame]
    scored = frame[C.VARIANT][frame[metrics].notna().any(axis=1)] if metrics else frame[C.VARIANT].iloc[0:0]
    missing = [_named(v, stopped) for v in stopped if v not in set(scored)]
    if not missing:
        return []
    return [Line2D([], [], linestyle="none", label="not evaluated:\n" + "\n".join(missing))]


def wants_log_scale(metric: str, values) -> bool:
    """A log y axis for a FID-like metric whose (positive, finite) values span over a decade."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return metric in LOG_METRICS and len(values) > 0 and values.min() > 0 and values.max() / values.min() > 10


def _reference_lines(ax, references: pd.DataFrame | None, metric: str) -> list:
    """Dashed horizontal lines at the reference rows' values (real-data floor, baselines)."""
    handles = []
    if references is None:
        return handles
    for _, row in _finite(references, metric).iterrows():
        name = str(row[C.VARIANT])
        color, style = _REFERENCE_STYLE.get(name, _BASELINE_STYLE)
        if name == C.REAL_DATA:
            what = "real-data floor" if metric in C.LOWER_IS_BETTER else "real data"
        else:
            what = f"{name} baseline"
        ax.axhline(float(row[metric]), color=color, linestyle=style, linewidth=1.2, zorder=1)
        handles.append(Line2D([], [], color=color, linestyle=style, linewidth=1.2, label=f"{what} ({row[metric]:.3g})"))
    return handles


def _time_scale(seconds: float) -> tuple[float, str]:
    """Divisor and unit that keep a time axis readable."""
    if seconds >= 3 * 3600:
        return 3600.0, "h"
    if seconds >= 900:
        return 60.0, "min"
    return 1.0, "s"


# --- the plots ----------------------------------------------------------------------------------


def quality_curve(
    metrics: pd.DataFrame,
    metric: str = C.FID_DOMAIN,
    x: str = C.TRAIN_SECONDS,
    colors: Mapping[str, str] | None = None,
) -> bytes | None:
    """A metric along training, one line per variant.

    Each point is an evaluation (``eval_index``): y is the mean over the seeds that have a value
    there, x the mean over those seeds of ``x`` (``train_seconds`` or ``images_seen``); the band
    spans the minimum to the maximum over seeds. The reference rows of ``metrics`` (real-data
    floor, bicubic baseline) are dashed horizontal lines. FID-like metrics get a log y axis
    when the variants' values span more than a decade. None when no variant has a value.
    """
    if x not in _X_AXES:
        raise ValueError(f"x must be one of {', '.join(_X_AXES)}, not {x!r}")
    trained = _trained(metrics)
    rows = _finite(trained, metric, x)
    if rows.empty:
        return None
    colors = _colors(trained, colors)
    points = (
        rows.groupby([C.VARIANT, C.EVAL_INDEX], sort=False)
        .agg(x=(x, "mean"), mean=(metric, "mean"), lo=(metric, "min"), hi=(metric, "max"), n=(metric, "size"))
        .reset_index()
    )
    divisor, unit = _time_scale(points["x"].max()) if x == C.TRAIN_SECONDS else (1.0, "")
    stopped = _stopped(trained)

    fig = _figure("curve")
    ax = fig.add_subplot()
    handles = []
    for variant, p in points.groupby(C.VARIANT, sort=False):
        p = p.sort_values(C.EVAL_INDEX)
        color, xs = colors[variant], p["x"].to_numpy() / divisor
        if (p["n"] > 1).any():
            ax.fill_between(xs, p["lo"], p["hi"], color=color, alpha=0.2, linewidth=0, zorder=2)
        (line,) = ax.plot(xs, p["mean"], color=color, marker="o", markersize=5, linewidth=1.8, zorder=3)
        line.set_label(_named(variant, stopped))
        handles.append(line)
    handles += _reference_lines(ax, metrics[metrics[C.STATUS] == C.STATUS_REFERENCE], metric)
    if (points["n"] > 1).any():
        handles.append(Patch(facecolor="#888888", alpha=0.3, label=_BAND))
    handles += _not_evaluated(trained, stopped)
    if wants_log_scale(metric, points[["lo", "hi"]].to_numpy().ravel()):
        ax.set_yscale("log")
    if x == C.IMAGES_SEEN:
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlabel("images seen (real training images)")
    else:
        ax.set_xlabel(f"training time ({unit})")
    ax.set_ylabel(label(metric))
    ax.set_title(f"{metric} against {_X_AXES[x]} (mean over seeds)")
    ax.grid(True, alpha=0.3)
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    return _png(fig)


def quality_vs_cost(
    finals: pd.DataFrame,
    metric: str = C.FID_DOMAIN,
    cost: str = C.TRAIN_IMG_PER_S,
    colors: Mapping[str, str] | None = None,
    references: pd.DataFrame | None = None,
) -> bytes | None:
    """Final quality against cost: one point per variant at the mean over seeds of its last
    evaluation, error bars ± one standard deviation over seeds on both axes, each point named.
    Axis labels say which way is better; ``references`` (the run's reference rows) add the
    real-data floor. None when no variant has both values."""
    trained = _trained(finals)
    rows = _finite(trained, metric, cost)
    if rows.empty:
        return None
    colors = _colors(trained, colors)
    stats = rows.groupby(C.VARIANT, sort=False)[[metric, cost]].agg(["mean", "std"]).fillna(0.0)
    stopped = _stopped(trained)

    fig = _figure("cost")
    ax = fig.add_subplot()
    for variant, s in stats.iterrows():
        x, y = s[(cost, "mean")], s[(metric, "mean")]
        ax.errorbar(
            x, y, xerr=s[(cost, "std")], yerr=s[(metric, "std")], color=colors[variant],
            marker="o", markersize=8, capsize=3, linewidth=1.2, zorder=3,
        )  # fmt: skip
        ax.annotate(_named(variant, stopped), (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9)
    handles = _reference_lines(ax, references, metric) + _not_evaluated(trained, stopped)
    if handles:
        ax.legend(handles=handles, loc="best", fontsize=8)
    if wants_log_scale(metric, rows[metric].to_numpy(dtype=float)):
        ax.set_yscale("log")
    ax.margins(x=0.15, y=0.1)  # room for the names
    ax.set_xlabel(label(cost) + (" ←" if cost in _LOWER_COST else " →"))
    ax.set_ylabel(label(metric) + (" ↓" if metric in C.LOWER_IS_BETTER else " ↑"))
    ax.set_title(f"{metric} against {cost} (last evaluation, mean ± std over seeds)")
    ax.grid(True, alpha=0.3)
    return _png(fig)


def class_heatmap(per_class: pd.DataFrame, class_names: Sequence[str] | None = None) -> bytes | None:
    """Class consistency per requested class: rows are the variants, columns the classes, each
    cell the mean over seeds of the last evaluation's value, written in the cell. Variants with
    no per-class value (unconditional, or failed) are left out; the real-data reference, when
    present, is the last row. ``class_names``: by class index (the dataset's names), else the
    table's ``class_name``. None when no trained variant has a value."""
    rows = _finite(per_class, C.CLASS_CONSISTENCY)
    if rows.empty or C.SEED not in rows:
        return None
    trained, reference = rows[rows[C.SEED] >= 0], rows[rows[C.SEED] < 0]
    if trained.empty:
        return None
    last = trained.groupby([C.VARIANT, C.SEED], sort=False)[C.EVAL_INDEX].transform("max")
    final = pd.concat([trained[trained[C.EVAL_INDEX] == last], reference])
    table = final.groupby([C.VARIANT, C.CLASS_INDEX], sort=False)[C.CLASS_CONSISTENCY].mean().unstack()
    variants = list(dict.fromkeys(final[C.VARIANT]))
    table = table.reindex(index=variants, columns=sorted(table.columns))
    names = dict(zip(rows[C.CLASS_INDEX], rows[C.CLASS_NAME])) if C.CLASS_NAME in rows else {}
    if class_names is not None:
        names.update(enumerate(class_names))
    refs = set(reference[C.VARIANT])
    ylabels = [f"{v} (reference)" if v in refs else v for v in variants]
    values = table.to_numpy(dtype=float)

    fig = _figure("heatmap", len(variants))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#eeeeee")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        dark = np.isfinite(v) and v < 0.6  # viridis is dark below ~0.6: white text there
        text = f"{v:.2f}" if np.isfinite(v) else "–"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    if refs and len(refs) < len(variants):
        ax.axhline(len(variants) - len(refs) - 0.5, color="white", linewidth=3)
    ax.set_xticks(range(len(table.columns)), [str(names.get(c, c)) for c in table.columns])
    ax.tick_params(axis="x", labelrotation=30)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
    ax.set_yticks(range(len(variants)), ylabels)
    ax.set_xlabel("requested class")
    ax.set_title("class consistency per class (last evaluation, mean over seeds; higher is better)")
    fig.colorbar(image, ax=ax, label="held-out classifier accuracy", fraction=0.04)
    return _png(fig)


def throughput_bars(finals: pd.DataFrame, colors: Mapping[str, str] | None = None) -> bytes | None:
    """Throughput per variant at its last evaluation: real images consumed per training
    second (left) and images sampled per second (right), bars at the mean over seeds with
    ± one standard deviation. None when neither is known."""
    trained = _trained(finals)
    panels = [c for c in (C.TRAIN_IMG_PER_S, C.GEN_IMG_PER_S) if not _finite(trained, c).empty]
    if not panels:
        return None
    colors = _colors(trained, colors)
    variants = list(dict.fromkeys(_finite(trained, panels[0])[C.VARIANT]))
    for column in panels[1:]:
        variants += [v for v in dict.fromkeys(_finite(trained, column)[C.VARIANT]) if v not in variants]

    fig = _figure("throughput", len(variants))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    ys = np.arange(len(variants))
    for ax, column in zip(axes, panels):
        stats = _finite(trained, column).groupby(C.VARIANT)[column].agg(["mean", "std"]).reindex(variants)
        means, stds = stats["mean"].to_numpy(dtype=float), stats["std"].fillna(0.0).to_numpy(dtype=float)
        ax.barh(
            ys, np.nan_to_num(means), xerr=stds, color=[colors[v] for v in variants], capsize=3,
            error_kw={"linewidth": 1}, height=0.7,
        )  # fmt: skip
        for y, mean, std in zip(ys, means, stds):
            text, at = (f"{mean:,.0f}", mean + std) if np.isfinite(mean) else ("no value", 0.0)
            ax.annotate(text, (at, y), xytext=(5, 0), textcoords="offset points", va="center", fontsize=9)
        ax.margins(x=0.15)  # room for the values
        ax.set_title(_THROUGHPUT_TITLES[column], fontsize=10)
        ax.set_xlabel("img/s, mean ± std over seeds (higher is better)")
        ax.grid(True, axis="x", alpha=0.3)
    stopped = _stopped(trained)
    axes[0].set_yticks(ys, [_named(v, stopped) for v in variants])
    axes[0].invert_yaxis()  # the run's order from the top
    fig.suptitle("throughput (last evaluation)")
    return _png(fig)


def training_losses(train_log: pd.DataFrame, colors: Mapping[str, str] | None = None) -> bytes | None:
    """The training losses, one panel per variant (its own y scale: losses differ in kind), x
    the generator step, y the mean over seeds at each log point; every numeric column that is
    not an id or a timing is a loss, and a panel draws those the variant logged (line styles
    tell them apart, the colour is the variant's). Non-finite values are skipped. None when
    there is no loss to draw."""
    if train_log.empty or C.VARIANT not in train_log or C.STEP not in train_log:
        return None
    losses = [c for c in train_log.columns if c not in NOT_LOSSES and pd.api.types.is_numeric_dtype(train_log[c])]
    log = train_log.replace([np.inf, -np.inf], np.nan)
    curves = {}
    for variant, group in log.groupby(C.VARIANT, sort=False):
        mean = group.groupby(C.STEP)[losses].mean().sort_index()
        mean = mean.loc[:, mean.notna().any()]
        if not mean.empty and mean.shape[1]:
            curves[variant] = mean
    if not curves:
        return None
    colors = _colors(log, colors)

    fig = _figure("losses", len(curves))
    rows = math.ceil(len(curves) / _LOSS_COLUMNS)
    axes = fig.subplots(rows, _LOSS_COLUMNS, squeeze=False).ravel()
    for ax, (variant, mean) in zip(axes, curves.items()):
        for i, column in enumerate(mean.columns):
            style = _LOSS_STYLES[i % len(_LOSS_STYLES)]
            marker = "o" if len(mean) <= 3 else None  # a line of one or two points is hard to see
            ax.plot(
                mean.index, mean[column], color=colors[variant], linestyle=style, linewidth=1.3, marker=marker,
                markersize=4, label=column,
            )  # fmt: skip
        ax.set_title(variant, color=colors[variant], fontsize=10, fontweight="bold")
        ax.set_xlabel("generator step")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    fig.suptitle("training losses (mean over seeds at each log point)")
    return _png(fig)


def run_plots(run) -> dict[str, bytes]:
    """Every plot that applies to a run (a :class:`~ganbench.report.load.RunData`), by file name:

    - ``<metric>-vs-time.png`` and ``<metric>-vs-images.png`` for ``fid_domain``,
      ``class_consistency`` (conditional variants) and ``psnr`` (super-resolution), each when
      some variant has a value;
    - ``quality-vs-cost.png``: ``fid_domain`` (else ``psnr``) against training throughput;
    - ``class-consistency-per-class.png`` when a conditional variant has per-class values;
    - ``throughput.png``, and ``losses.png`` when train_log.csv has losses.

    Plots whose inputs are empty or all NaN are left out; every plot shares one palette.
    """
    colors = palette(run.variants)
    finals, references = run.finals, run.references
    made: dict[str, bytes | None] = {}
    for metric in CURVE_METRICS:
        for x, name in ((C.TRAIN_SECONDS, "time"), (C.IMAGES_SEEN, "images")):
            made[f"{metric}-vs-{name}.png"] = quality_curve(run.metrics, metric, x, colors)
    quality = next((m for m in (C.FID_DOMAIN, C.PSNR) if not _finite(_trained(finals), m).empty), None)
    if quality is not None:
        made["quality-vs-cost.png"] = quality_vs_cost(finals, quality, C.TRAIN_IMG_PER_S, colors, references)
    class_names = (run.record.get("dataset") or {}).get("class_names")
    made["class-consistency-per-class.png"] = class_heatmap(run.per_class, class_names)
    made["throughput.png"] = throughput_bars(finals, colors)
    made["losses.png"] = training_losses(run.train_log, colors)
    return {name: data for name, data in made.items() if data is not None}
