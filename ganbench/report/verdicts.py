"""What the seeds decide: for each metric with a direction, every pair of variants either
decided (one is better) or not, with multiple comparisons controlled.

The test is two-sided Mann-Whitney on the seeds' final values (exact, or a permutation test
with ties; :func:`.stats.compare`), and the p-values of the pairs of one metric are adjusted
by Holm's step-down method (Holm 1979), which controls the chance of any false "better" among
them at α without assuming the tests are independent. A pair is decided when its adjusted
p-value is below α. Rank tests let a failed seed count without inventing a value: a job that
diverged or failed ranks below every finished seed of the metric (it is counted, and named).
A job that did not finish (interrupted, still running) is left out, and named. For a pair that
is not decided, :mod:`.power` estimates the seeds needed to detect the observed difference and
the smallest difference the seeds at hand detect.

Pure pandas/numpy/scipy; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ganbench import columns as C
from ganbench.report import power as P
from ganbench.report import stats

ALPHA = stats.ALPHA
FAILED_STATUSES = frozenset({C.STATUS_DIVERGED, C.STATUS_FAILED})

VERDICT_COLUMNS = (
    "metric", "a", "b", "n_a", "n_b", "failed_a", "failed_b", "mean_a", "mean_b", "difference", "ci_low", "ci_high",
    "p_improvement", "p_value", "p_holm", "pairs", "decided", "winner", "loser", "effect_size", "seeds_needed",
    "detectable_difference", "sentence",
)  # fmt: skip
# The metrics a report and the console decide on: one per concern, each with a direction
# (distance to the data, fidelity and diversity apart, per-class quality, the labels obeyed,
# usefulness as training data, copies of the training set, super-resolution, the latent space,
# speed). The report adds every other column with a direction that the leaderboard does not name.
MAIN = (
    C.FID_DOMAIN, C.KID_DOMAIN, C.DENSITY_DOMAIN, C.COVERAGE_DOMAIN, C.IFID_DOMAIN, C.CLASS_CONSISTENCY, C.CAS,
    C.MEMORISED_SHARE_DOMAIN, C.PSNR, C.STEER_DISENTANGLEMENT, C.TRAIN_IMG_PER_S,
)  # fmt: skip
SEEDS_COLUMNS = ("metric", "a", "b", "n_a", "n_b", "difference", "pooled_sd", "effect_size", "alpha", "seeds_needed",
                 "detectable_difference")  # fmt: skip


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order: sorted ascending, the i-th
    (from 0) is multiplied by m − i, made non-decreasing, capped at 1. NaN entries are left
    out of the family (m counts the finite ones) and stay NaN."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        adjusted[index] = running
    return adjusted


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:.4g}".replace("-", "−")


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:.2g}" if value < 0.01 else f"{value:.2f}"


class Seeds:
    """One variant's seeds on one metric: the finite values of finished jobs, how many jobs
    failed or diverged (ranked worst), and which seeds are left out and why."""

    def __init__(self, finals: pd.DataFrame, variant: str, metric: str):
        rows = finals[finals[C.VARIANT] == variant] if len(finals) else finals
        status = rows[C.STATUS].astype(str) if C.STATUS in rows else pd.Series("ok", index=rows.index)
        values = pd.to_numeric(rows[metric], errors="coerce") if metric in rows else pd.Series(math.nan, rows.index)
        failed = status.isin(FAILED_STATUSES)
        ok = status == C.STATUS_OK
        finite = np.isfinite(values.to_numpy(dtype=float))
        self.values = values[ok & finite].to_numpy(dtype=float)
        self.failed = int(failed.sum())
        seeds = rows[C.SEED].tolist() if C.SEED in rows else list(range(len(rows)))
        self.missing = [s for s, o, f in zip(seeds, ok, finite) if o and not f]  # finished, no value
        self.unfinished = [s for s, o, f in zip(seeds, ok, failed) if not o and not f]

    @property
    def n(self) -> int:
        return len(self.values) + self.failed

    def ranked(self, worst: float) -> np.ndarray:
        """Values with failed jobs as ``worst`` (for the rank test only: a value beyond every
        finished seed of the pair, :func:`_worst`)."""
        return np.concatenate([self.values, np.full(self.failed, worst)])


def _worst(higher: bool, *samples: Seeds) -> float:
    """A finite value worse than every finished seed of ``samples``: what a failed job ranks as
    (finite, because the comparison leaves non-finite values out)."""
    values = np.concatenate([s.values for s in samples])
    if not len(values):
        return 0.0
    span = float(np.ptp(values)) + 1.0
    return float(values.min() - span) if higher else float(values.max() + span)


def _sentence(metric: str, row: dict, higher: bool, directions: Mapping[str, str] | None = None) -> str:
    header = f"{metric} {stats.arrow(metric, directions)}".rstrip()
    a, b = row["a"], row["b"]
    if row["decided"]:
        w, lo = row["winner"], row["loser"]
        mean_w, mean_l = (row["mean_a"], row["mean_b"]) if w == a else (row["mean_b"], row["mean_a"])
        n_w, n_l = (row["n_a"], row["n_b"]) if w == a else (row["n_b"], row["n_a"])
        share = row["p_improvement"] if w == a else 1 - row["p_improvement"]
        if share >= 1:
            how = f"every one of its {n_w} seeds beats every one of {lo}'s {n_l}"
        else:
            how = f"a seed of {w} beats a seed of {lo} with probability {share:.2f} ({n_w} vs {n_l} seeds)"
        return (
            f"{w} beats {lo} on {header} ({_fmt(mean_w)} vs {_fmt(mean_l)}): {how}, "
            f"p = {_p(row['p_holm'])} after Holm over {_pairs(row['pairs'])}."
        )
    text = (
        f"{a} vs {b} on {header}: not decided ({_fmt(row['mean_a'])} vs {_fmt(row['mean_b'])}, "
        f"p = {_p(row['p_holm'])} after Holm over {_pairs(row['pairs'])})"
    )
    needed, detectable = row["seeds_needed"], row["detectable_difference"]
    if row["difference"] == 0 or row["effect_size"] == 0:
        text += "; the means are equal"
    elif not row["pooled_sd"] == row["pooled_sd"]:
        text += "; one seed each has no spread, so the seeds needed cannot be estimated"
    elif needed is None or (isinstance(needed, float) and math.isnan(needed)):
        text += f"; more than {P.MAX_SEEDS:,} seeds each would be needed to detect this difference"
    else:
        text += f"; about {int(needed)} seeds each would detect this difference with 80% power (an estimate)"
    if math.isfinite(detectable):
        text += f"; {min(row['n_a'], row['n_b'])} seeds detect differences of about {_fmt(detectable)} or more"
    else:
        text += f"; with {row['n_a']} vs {row['n_b']} seeds no difference can be decided"
    return text + "."


def verdicts(
    finals: pd.DataFrame,
    variants: Sequence[str],
    metrics: Sequence[str],
    alpha: float = ALPHA,
    power: float = P.POWER,
    seed: int = 0,
    directions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per metric with a direction (:func:`.stats.higher_is_better` with the run's
    ``directions``) and pair of variants (A before B in ``variants``' order) that both have the metric: the Mann-Whitney comparison, the Holm-adjusted p-value
    over that metric's pairs (``pairs`` = m), whether it is ``decided`` (adjusted p < ``alpha``)
    and for whom, and for an undecided pair ``seeds_needed`` per variant and the
    ``detectable_difference`` (in the metric's units) of the seeds at hand (:mod:`.power`, at
    level α / m). ``sentence`` says it in words. Columns: :data:`VERDICT_COLUMNS`."""
    rows: list[dict] = []
    for metric in metrics:
        higher = stats.higher_is_better(metric, directions)
        if higher is None:
            continue
        seeds = {v: Seeds(finals, v, metric) for v in variants}
        present = [v for v in variants if len(seeds[v].values)]  # a variant without the metric has no pairs
        family = []
        for i, a in enumerate(present):
            for b in present[i + 1 :]:
                sa, sb = seeds[a], seeds[b]
                worst = _worst(higher, sa, sb)
                r = stats.compare(sa.ranked(worst), sb.ranked(worst), higher, seed=seed, name_a=a, name_b=b)
                # means, interval and spread from the finite values only (a failed job has none)
                c = stats.compare(sa.values, sb.values, higher, seed=seed, name_a=a, name_b=b)
                sd = P.pooled_sd(*_sd_n(sa.values), *_sd_n(sb.values))
                family.append(
                    {
                        "metric": metric, "a": a, "b": b, "n_a": sa.n, "n_b": sb.n, "failed_a": sa.failed,
                        "failed_b": sb.failed, "mean_a": c.mean_a, "mean_b": c.mean_b, "difference": c.difference,
                        "ci_low": c.ci_low, "ci_high": c.ci_high, "p_improvement": r.p_improvement,
                        "p_value": r.p_value, "pooled_sd": sd,
                    }
                )  # fmt: skip
        adjusted = holm([row["p_value"] for row in family])
        m = len(family)
        for row, p_holm in zip(family, adjusted):
            decided = bool(p_holm < alpha) and row["p_improvement"] != 0.5
            a_wins = row["p_improvement"] > 0.5
            effect = abs(row["difference"]) / row["pooled_sd"] if row["pooled_sd"] > 0 else math.nan
            if row["pooled_sd"] == 0 and row["difference"] != 0:
                effect = math.inf
            needed = math.nan
            if not decided and math.isfinite(row["difference"]):
                found = P.seeds_needed(effect, alpha / m, power) if effect == effect else None
                needed = math.nan if found is None else float(found)
            detectable = P.detectable_effect(row["n_a"], row["n_b"], alpha / m, power)
            detectable_difference = detectable * row["pooled_sd"] if math.isfinite(detectable) else math.inf
            if math.isfinite(detectable) and not row["pooled_sd"] > 0:
                detectable_difference = math.nan
            row.update(
                p_holm=float(p_holm),
                pairs=m,
                decided=decided,
                winner=(row["a"] if a_wins else row["b"]) if decided else "",
                loser=(row["b"] if a_wins else row["a"]) if decided else "",
                effect_size=effect,
                seeds_needed=needed,
                detectable_difference=detectable_difference,
            )
            row["sentence"] = _sentence(metric, row, higher, directions)
            rows.append(row)
    return pd.DataFrame(rows, columns=[*VERDICT_COLUMNS, "pooled_sd"])


def _sd_n(values: np.ndarray) -> tuple[float, int]:
    return (float(np.std(values, ddof=1)) if len(values) > 1 else 0.0), len(values)


def seeds_table(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """The undecided pairs of a :func:`verdicts` table: the observed difference and seed spread,
    the standardised effect, the level used (α / m), the estimated ``seeds_needed`` per
    variant and the ``detectable_difference`` of the current seeds. Columns: :data:`SEEDS_COLUMNS`."""
    undecided = table[~table["decided"].astype(bool)].copy()
    undecided["alpha"] = alpha / undecided["pairs"].clip(lower=1)
    return undecided[list(SEEDS_COLUMNS)].reset_index(drop=True)


def matrix(table: pd.DataFrame, metric: str, variants: Sequence[str]) -> pd.DataFrame:
    """The verdicts of one metric as a variants × variants table of text cells: the row variant
    is "better", "worse" or "not decided" against the column variant, with P(row better) and
    the Holm-adjusted p-value; "–" on the diagonal and for pairs without a comparison."""
    rows = table[table["metric"] == metric]
    shown = [v for v in variants if v in set(rows["a"]) | set(rows["b"])]
    cells = pd.DataFrame("–", index=shown, columns=shown, dtype=object)
    for _, r in rows.iterrows():
        for row_v, col_v, share in ((r["a"], r["b"], r["p_improvement"]), (r["b"], r["a"], 1 - r["p_improvement"])):
            if r["decided"]:
                word = "better" if r["winner"] == row_v else "worse"
            else:
                word = "not decided"
            cells.loc[row_v, col_v] = f"{word}, P {share:.2f}, p {_p(r['p_holm'])}"
    return cells


def family_warnings(table: pd.DataFrame, finals: pd.DataFrame, variants: Sequence[str], metric: str,
                    alpha: float = ALPHA) -> list[str]:  # fmt: skip
    """What applies to a whole metric's table, said once: seeds too few to decide anything,
    failed jobs counted as worst, seeds left out, variants without the metric."""
    rows = table[table["metric"] == metric]
    out = []
    if len(rows):
        m = int(rows["pairs"].iloc[0])
        best = min(P.smallest_p(int(a), int(b)) for a, b in zip(rows["n_a"], rows["n_b"]))
        if m * best >= alpha:
            out.append(
                f"No pair can be decided with these seeds: the smallest possible Mann-Whitney p-value "
                f"({_p(best)}) times the {_pairs(m)} (Holm's first step) is not below {alpha}. "
                f"{P.rank_floor(alpha / m)} seeds per variant is the fewest that can decide a pair here."
            )
    for v in variants:
        s = Seeds(finals, v, metric)
        if not len(s.values) and metric in finals and len(finals[finals[C.VARIANT] == v]):
            out.append(f"{v} has no {metric} value: not compared on it.")
            continue
        if s.failed:
            out.append(f"{v}: {s.failed} failed or diverged job(s) counted as its worst seeds.")
        if s.missing:
            out.append(f"{v}: seed(s) {', '.join(map(str, s.missing))} finished without a {metric} value: left out.")
        if s.unfinished:
            out.append(f"{v}: seed(s) {', '.join(map(str, s.unfinished))} did not finish: left out.")
    return out


def _pairs(m: int) -> str:
    return "1 pair" if m == 1 else f"{m} pairs"


CHANGE_COLUMNS = (
    "metric", "variant", "n_before", "n_after", "before", "after", "change", "ci_low", "ci_high", "p_improvement",
    "p_value", "p_holm", "variants", "decided", "direction", "sentence",
)  # fmt: skip


def change_verdicts(
    finals_before: pd.DataFrame,
    finals_after: pd.DataFrame,
    metrics: Sequence[str],
    alpha: float = ALPHA,
    seed: int = 0,
    names: tuple[str, str] = ("before", "after"),
    directions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Across two runs (``ganbench compare``): per metric with a direction and variant in both
    runs, whether the later run's seeds are decidedly better or worse than the earlier run's
    (Mann-Whitney, failed jobs ranked worst, Holm over the variants of one metric). Columns:
    :data:`CHANGE_COLUMNS`."""
    rows: list[dict] = []
    if finals_before.empty or finals_after.empty:
        return pd.DataFrame(columns=list(CHANGE_COLUMNS))
    after_variants = set(finals_after[C.VARIANT])
    variants = [v for v in dict.fromkeys(finals_before[C.VARIANT]) if v in after_variants]
    for metric in metrics:
        higher = stats.higher_is_better(metric, directions)
        if higher is None:
            continue
        family = []
        for v in variants:
            sb, sa = Seeds(finals_before, v, metric), Seeds(finals_after, v, metric)
            if not (len(sb.values) and len(sa.values)):
                continue
            worst = _worst(higher, sa, sb)
            r = stats.compare(sa.ranked(worst), sb.ranked(worst), higher, seed=seed)
            c = stats.compare(sa.values, sb.values, higher, seed=seed)
            family.append(
                {
                    "metric": metric, "variant": v, "n_before": sb.n, "n_after": sa.n, "before": c.mean_b,
                    "after": c.mean_a, "change": c.difference, "ci_low": c.ci_low, "ci_high": c.ci_high,
                    "p_improvement": r.p_improvement, "p_value": r.p_value,
                }
            )  # fmt: skip
        for row, p_holm in zip(family, holm([r["p_value"] for r in family])):
            decided = bool(p_holm < alpha) and row["p_improvement"] != 0.5
            direction = ("better" if row["p_improvement"] > 0.5 else "worse") if decided else "not decided"
            header = f"{metric} {stats.arrow(metric, directions)}".rstrip()
            where = f"{row['variant']} on {header}, {names[0]} → {names[1]} ({_fmt(row['before'])} → {_fmt(row['after'])})"
            p_text = f"p = {_p(float(p_holm))} after Holm over {len(family)} variant{'s' if len(family) != 1 else ''}"
            if decided:
                sentence = (
                    f"{where}: {direction}; P(a {names[1]} seed beats a {names[0]} seed) = "
                    f"{row['p_improvement']:.2f}, {row['n_before']} vs {row['n_after']} seeds, {p_text}."
                )
            else:
                sentence = f"{where}: not decided ({p_text}, {row['n_before']} vs {row['n_after']} seeds)."
            row.update(p_holm=float(p_holm), variants=len(family), decided=decided, direction=direction,
                       sentence=sentence)  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))


def summary_lines(
    finals: pd.DataFrame, metrics: Sequence[str], run_dir=None, directions: Mapping[str, str] | None = None
) -> list[str]:
    """The console's verdicts after ``ganbench run``: a sentence per decided pair, one line per
    metric for the undecided ones (with the seeds each would need), and what to run when the
    seeds are too few to decide anything. ``directions``: the run's (:func:`.stats.higher_is_better`)."""
    if finals.empty:
        return []
    variants = list(dict.fromkeys(finals[C.VARIANT]))
    if len(variants) < 2:
        return []
    shown = [m for m in metrics if m in finals and pd.to_numeric(finals[m], errors="coerce").notna().any()]
    table = verdicts(finals, variants, shown, directions=directions)
    if table.empty:
        return []
    where = str(run_dir) if run_dir is not None else "RUN_DIR"
    floor = P.rank_floor(ALPHA / max(1, int(table["pairs"].max())))
    most = int(finals.groupby(C.VARIANT, sort=False)[C.SEED].nunique().max())
    if most < 2:
        return [
            "What the seeds decide: nothing; one seed per variant has no spread to judge a difference by. "
            f"Add seeds: ganbench run --resume {where} --seeds 0-{floor - 1}"
        ]
    lines = ["What the seeds decide (Mann-Whitney, Holm-corrected per metric):"]
    lines += [f"  {s}" for s in table.loc[table["decided"].astype(bool), "sentence"]]
    for metric, group in table[~table["decided"].astype(bool)].groupby("metric", sort=False):
        pairs = ", ".join(
            f"{a} vs {b}" + ("" if n != n else f" (~{int(n)} seeds)")
            for a, b, n in zip(group["a"], group["b"], group["seeds_needed"])
        )
        lines.append(f"  {metric} {stats.arrow(metric, directions)}: not decided: {pairs}")
    if most < floor:
        lines.append(
            f"  With {most} seeds per variant no pair can be decided after Holm's correction; {floor} is the fewest "
            f"that can: ganbench run --resume {where} --seeds 0-{floor - 1}"
        )
    return lines
