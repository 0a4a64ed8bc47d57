"""The tuned report of a ``ganbench tune`` directory: how each variant's search went, what it
chose, how sensitive its score is to each hyperparameter, then phase 2's ordinary report
(verdicts first), labelled with the tuning effort behind it.

Reads tune.json and trials.csv (JSON and pandas: the report never imports torch).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganbench import columns as C
from ganbench.errors import UsageError
from ganbench.report import plots
from ganbench.report.load import load_run
from ganbench.report.render import FORMATS, Image, Section, Table, _write, run_sections

TUNE_JSON = "tune.json"  # the names ganbench.harness.tune writes (not imported: it imports torch)
TRIALS_CSV = "trials.csv"
FINAL_DIR = "final"
EXPECTED_COLUMNS = ("variant", "k", "expected_best", "sd", "p_no_score")


def expected_best(scores: Sequence[float], k: int, lower: bool) -> tuple[float, float, float]:
    """Dodge et al. 2019's expected maximum validation performance: the expected best score of
    ``k`` settings drawn (with replacement) from the ``N`` trials that were run, its standard
    deviation, and the probability that none of the ``k`` gave a score.

    With the scored trials sorted worst to best, v_(1..n), and the ``N - n`` trials without a
    score (failed, diverged) below them all, P(best of k = v_(i)) = ((f+i)/N)^k - ((f+i-1)/N)^k,
    f = N - n. The expectation is conditional on some score among the k (NaN when none can)."""
    values = np.asarray(scores, dtype=float)
    total = len(values)
    good = np.sort(values[np.isfinite(values)])
    if lower:
        good = good[::-1]  # worst first: the largest distance
    failed = total - len(good)
    p_none = (failed / total) ** k if total else 1.0
    if not len(good) or p_none >= 1.0:
        return math.nan, math.nan, p_none
    ranks = failed + np.arange(1, len(good) + 1)
    weights = (ranks / total) ** k - ((ranks - 1) / total) ** k
    weights = weights / weights.sum()
    mean = float((weights * good).sum())
    sd = float(math.sqrt(max(0.0, (weights * good**2).sum() - mean**2)))
    return mean, sd, p_none


def expected_table(trials: pd.DataFrame, lower: bool) -> pd.DataFrame:
    """``expected_best`` for every variant and k = 1..N (expected_best.csv)."""
    rows = []
    for variant, group in trials.groupby(C.VARIANT, sort=False):
        scores = group["score"].astype(float).tolist()
        for k in range(1, len(scores) + 1):
            mean, sd, p_none = expected_best(scores, k, lower)
            rows.append((variant, k, mean, sd, p_none))
    return pd.DataFrame(rows, columns=list(EXPECTED_COLUMNS))


def _shown_ks(n: int) -> list[int]:
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096) if k < n]
    return [*ks, n]


def _num(value: Any) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _expected_plot(table: pd.DataFrame, select: str, colors: dict[str, str]) -> bytes:
    fig = plots._figure("curve")
    ax = fig.add_subplot()
    for variant, group in table.groupby("variant", sort=False):
        color = colors[str(variant)]
        ax.plot(group.k, group.expected_best, color=color, label=str(variant), marker="o", markersize=3)
        ax.fill_between(
            group.k, group.expected_best - group.sd, group.expected_best + group.sd, color=color, alpha=0.15, lw=0
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("settings tried per variant (k)")
    ax.set_ylabel(f"expected best {plots.label(select)}")
    ax.set_title("expected best score after k trials (Dodge et al. 2019), ±1 sd")
    ax.legend()
    return plots._png(fig)


def _sensitivity_plot(trials: pd.DataFrame, key: str, log_x: bool, select: str, colors: dict[str, str]) -> bytes:
    fig = plots._figure("curve")
    ax = fig.add_subplot()
    for variant, group in trials.groupby(C.VARIANT, sort=False):
        group = group[group[key].notna()]
        if not len(group):
            continue
        x = pd.to_numeric(group[key], errors="coerce")
        color = colors[str(variant)]
        scored = group["score"].notna()
        ax.scatter(x[scored], group.score[scored], color=color, label=str(variant), s=18)
        chosen = group["selected"].astype(bool)
        ax.scatter(x[chosen], group.score[chosen], facecolors="none", edgecolors=color, s=90, linewidths=1.5)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel(plots.label(select))
    ax.set_title(f"{select} of each trial against {key} (circled: the chosen setting)")
    ax.legend()
    return plots._png(fig)


def read_tune(tune_dir: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    try:
        record = json.loads((tune_dir / TUNE_JSON).read_text())
        trials = pd.read_csv(tune_dir / TRIALS_CSV)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, pd.errors.EmptyDataError) as exc:
        raise UsageError(
            f"{tune_dir} is not a finished ganbench tune ({type(exc).__name__}: {exc}); "
            f"accepted: a directory `ganbench tune` wrote, with {TUNE_JSON} and {TRIALS_CSV}"
        ) from None
    if not isinstance(record, dict) or "tune" not in record:
        raise UsageError(f"{tune_dir / TUNE_JSON} is not a ganbench tune record")
    return record, trials


def tune_sections(record: dict[str, Any], trials: pd.DataFrame) -> tuple[list[Section], pd.DataFrame]:
    """The tuning sections of the report, and the expected-best table behind the first."""
    options = record["tune"]
    run = options["run"]
    select, lower = options["select"], record.get("direction") == "lower"
    n, seeds = int(options["trials"]), run["seeds"]
    variants = list(dict.fromkeys(trials[C.VARIANT]))
    colors = plots.palette(variants)
    spaces: dict[str, dict[str, str]] = record.get("space", {})
    how = Section(
        "How the variants were tuned",
        text=(
            f"Each variant tried {n} settings, taken at the same positions of one scrambled Sobol sequence (scipy.stats.qmc, "
            f"seed {options['sobol_seed']}) mapped onto its own declared search space; each setting was trained once "
            f"(seed {record['trial_seeds'][0]} + trial) under the same budget ({run['budget']}). Each trial was scored by "
            f"{select} ({'lower' if lower else 'higher'} is better) against {options['holdout']} training images held out "
            f"of its training; the test split was never read to choose. Each variant's best trial was then trained on "
            f"the fresh seeds {seeds} under the same budget, with every training image, and scored on the test split: "
            "the leaderboard and verdicts below are that phase's only. Equal trials mean equal tuning effort "
            "(Lucic et al. 2018)."
        ),
    )
    table = expected_table(trials, lower)
    shown = table[table.k.isin(_shown_ks(n))]
    wide = shown.assign(
        cell=[
            f"{_num(m)} ± {_num(s)}" + (f" (P no score {p:.2f})" if p > 0.005 else "")
            for m, s, p in zip(shown.expected_best, shown.sd, shown.p_no_score)
        ]
    ).pivot(index="k", columns="variant", values="cell")[variants]
    expected = Section(
        "Expected best score after k trials",
        text=(
            f"The expected best {select} among k settings drawn from the {n} tried, ±1 standard deviation "
            "(Dodge et al. 2019, 'Show your work'). A variant whose curve is still falling at k = "
            f"{n} would gain from more trials; curves that cross say the ranking depends on the tuning budget. "
            "Trials without a score (failed, diverged) count as the worst draws."
        ),
        tables=[Table(wide.reset_index())],
        images=[Image("tune-expected-best.png", _expected_plot(table, select, colors), "expected best vs trials")],
    )
    rows = []
    defaults = record.get("defaults", {})
    for variant in variants:
        mine = trials[trials[C.VARIANT] == variant]
        best = mine[mine["selected"].astype(bool)]
        ok = int((mine[C.STATUS] == C.STATUS_OK).sum())
        for key, text in spaces.get(variant, {}).items():
            chosen = best[key].iloc[0] if len(best) else math.nan
            rows.append(
                {
                    "variant": variant,
                    "hyperparameter": key,
                    "range": text,
                    "default": _num(defaults.get(variant, {}).get(key)),
                    "chosen": _num(chosen),
                    f"chosen trial's {select}": _num(float(best["score"].iloc[0])) if len(best) else "none",
                    "trials ok": f"{ok} of {len(mine)}",
                }
            )
    chosen = Section(
        "Chosen settings",
        text="Per variant and searched hyperparameter: its search range, its default and the setting phase 2 trained.",
        tables=[Table(pd.DataFrame(rows))] if rows else [],
    )
    sensitivity = Section(
        "Sensitivity",
        text=(
            f"Each trial's {select} against each searched hyperparameter, one colour per variant; a flat cloud "
            "says the score hardly depends on it within the range, a clear trend that the range or the default matters."
        ),
    )
    keys = sorted({k for space in spaces.values() for k in space})
    for key in keys:
        log_x = any(space.get(key, "").startswith("log(") for space in spaces.values())
        numeric = pd.to_numeric(trials[key], errors="coerce") if key in trials else pd.Series(dtype=float)
        if numeric.notna().any():
            image = _sensitivity_plot(trials, key, log_x, select, colors)
            sensitivity.images.append(Image(f"tune-sensitivity-{key}.png", image, key))
    listing = trials.copy()
    listing["score"] = listing["score"].map(_num)
    every = Section("All trials", tables=[Table(listing.drop(columns=["run"], errors="ignore"))])
    return [how, expected, chosen, sensitivity, every], table


def build_tune_report(
    tune_dir: Path | str, out: Path | str | None = None, formats: Sequence[str] = FORMATS
) -> dict[str, Path]:
    """The tuned report: ``<tune_dir>/report/`` unless ``out`` says otherwise."""
    tune_dir = Path(tune_dir)
    record, trials = read_tune(tune_dir)
    final = tune_dir / FINAL_DIR
    if not (final / "config.json").exists():
        raise UsageError(
            f"{tune_dir}: phase 2 has not run yet (no {final}); resume the tune: ganbench tune --resume {tune_dir}"
        )
    run = load_run(final)
    tuning, expected = tune_sections(record, trials)
    sections, decisions, subtitle = run_sections(run)
    options = record["tune"]
    label = f"tuned: {options['trials']} trials each, {len(options['run']['seeds'])} seeds"
    sections = [sections[0], *tuning, *sections[1:]]
    data = {**decisions.tables(), "expected_best.csv": expected}
    target = Path(out) if out else tune_dir / "report"
    return _write(target, formats, f"ganbench tuned report: {tune_dir.name}", f"{label}. {subtitle}", sections, data)


def is_tune(path: Path | str) -> bool:
    return (Path(path) / TUNE_JSON).is_file()
