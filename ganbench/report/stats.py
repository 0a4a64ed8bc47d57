"""Statistics of a report: per-variant summaries over seeds and comparisons of two samples.

Pure functions on pandas/numpy inputs, with scipy; no torch. A sample is the seeds of one
variant: each (variant, seed) job's last evaluation (:attr:`RunData.finals`). Values that are
not finite (NaN: a metric that does not apply, a job that stopped before its first evaluation)
are left out of every statistic and counted (``n_missing``).

With the few seeds a benchmark can afford, every interval here is wide and approximate: the
functions say so in a ``warning`` rather than hide it (thresholds below). The interval of a
difference is Welch's t interval by default: under normal seed values its coverage is close to
the nominal 95% at any n >= 2 (Welch-Satterthwaite degrees of freedom), where a percentile
bootstrap of 3 or 4 seeds covers far less than it says (it ignores the t correction); the
bootstrap stays available (``interval="bootstrap"``) and says so when n <= 4. Decisions
(:mod:`.verdicts`) and seeds needed (:mod:`.power`) are built on these.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from scipy import stats

from ganbench import columns as C
from ganbench.specs import HIGHER, LOWER, NEITHER

CONFIDENCE = 0.95
# scipy's default; a percentile bootstrap of seed means is cheap (vectorized, n <= 10).
RESAMPLES = 9999
# Percentile rather than BCa: BCa's bias and acceleration corrections only pay off with tens
# of observations, its jackknife acceleration has 2 to 5 leave-one-out values to go on here,
# and it returns NaN (with a warning) whenever the bootstrap distribution has no spread in a
# group. The percentile interval is always defined when the data vary; neither method covers
# 95% with 3 seeds (the bootstrap ignores the t correction), hence the warnings.
BOOTSTRAP_METHOD = "percentile"
# The interval of a difference of means: "welch" (Welch's t interval) or "bootstrap".
INTERVALS = ("welch", "bootstrap")
# At or below this many seeds a percentile bootstrap interval under-covers badly (its
# resamples of n values take at most C(2n - 1, n) distinct means; it has no t correction).
BOOTSTRAP_UNDERCOVERS = 4
# Fewer seeds than this in either group: "too few to tell".
MIN_SEEDS = 3
# The conventional significance level: with n_a vs n_b seeds the smallest possible two-sided
# Mann-Whitney p-value is 2 / C(n_a + n_b, n_a) (the two most extreme orderings): 0.33 for
# 2 vs 2, 0.10 for 3 vs 3, 0.057 for 3 vs 4, 0.029 for 4 vs 4. Above ALPHA, say so.
ALPHA = 0.05

SUMMARY_COLUMNS = ("variant", "metric", "n", "n_missing", "mean", "std", "ci_low", "ci_high", "best")


def higher_is_better(metric: str, directions: Mapping[str, str] | None = None) -> bool | None:
    """True when a higher value of ``metric`` is better, False when lower is, None when neither.

    ``directions`` is a run's record, ``{column: "higher" | "lower" | "neither"}``
    (:attr:`.load.RunData.directions`: what each metric's and probe's spec declared). A column it
    does not name (the host's own cost columns, and every column of a run written before the
    record existed) takes its direction from :mod:`ganbench.columns`; a column neither knows
    (ids, times, a plugin column of an older run) has none: a guessed one would mark the wrong
    "best"."""
    word = (directions or {}).get(metric)
    if word is None:
        word = LOWER if metric in C.LOWER_IS_BETTER else HIGHER if metric in C.HIGHER_IS_BETTER else NEITHER
    return {HIGHER: True, LOWER: False}.get(word)


def arrow(metric: str, directions: Mapping[str, str] | None = None) -> str:
    """ "↑" (higher is better), "↓" (lower is better) or "" for a report's column header."""
    return {True: "↑", False: "↓", None: ""}[higher_is_better(metric, directions)]


def finite(values) -> np.ndarray:
    """The finite values of a column (non-numbers count as missing), as float64."""
    array = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    return array[np.isfinite(array)]


def mean_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student t interval of the mean: mean ± t((1 + confidence) / 2, n − 1) · s / √n, with s
    the ddof=1 standard deviation; NaN bounds below 2 values."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    mean = float(np.mean(values))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * float(np.std(values, ddof=1)) / math.sqrt(n)
    return mean - half, mean + half


def seed_summary(
    finals: pd.DataFrame,
    metrics: Sequence[str],
    confidence: float = CONFIDENCE,
    directions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per variant (in the order they appear) and metric (in the given order): ``n`` finite
    seed values, ``n_missing`` rows without one (NaN, infinite, or the column is absent: left
    out), their ``mean``, ``std`` (ddof=1; NaN below 2 values), the Student t confidence
    interval of the mean (``ci_low``, ``ci_high``; NaN below 2 values) and ``best``: whether
    the mean is the best of the metric over variants (ties all marked; none when the metric
    has no direction, :func:`higher_is_better` with the run's ``directions``)."""
    rows = []
    if finals.empty or C.VARIANT not in finals:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    for variant, group in finals.groupby(C.VARIANT, sort=False):
        for metric in metrics:
            values = finite(group[metric]) if metric in group else np.array([])
            n = len(values)
            low, high = mean_interval(values, confidence)
            rows.append(
                {
                    "variant": variant,
                    "metric": metric,
                    "n": n,
                    "n_missing": len(group) - n,
                    "mean": float(np.mean(values)) if n else math.nan,
                    "std": float(np.std(values, ddof=1)) if n > 1 else math.nan,
                    "ci_low": low,
                    "ci_high": high,
                    "best": False,
                }
            )
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    for metric in metrics:
        higher = higher_is_better(metric, directions)
        means = table.loc[table["metric"] == metric, "mean"]
        if higher is None or means.isna().all():
            continue
        target = means.max() if higher else means.min()
        table.loc[means.index[means == target], "best"] = True
    return table


@dataclass(frozen=True)
class Comparison:
    """Sample A against sample B on one metric (see :func:`compare`).

    Attributes:
        n_a, n_b: finite values in each.
        mean_a, mean_b: their means.
        difference: mean_a − mean_b.
        ci_low, ci_high: confidence interval of the difference (Welch by default; NaN when it cannot
            be computed; ``warning`` says why).
        p_improvement: P(A better than B) for a random pair of values, ties counting 1/2:
            Mann-Whitney U / (n_a n_b), oriented by ``higher`` (NaN without a direction).
        p_value: two-sided Mann-Whitney p-value (NaN when a sample is empty).
        better: the name of the better sample by the mean, None on a tie, without a
            direction or without values.
        warning: plain-language caveats, ``"; "``-separated; "" when there is none.
        summary: one line for a report.
    """

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_improvement: float
    p_value: float
    better: str | None
    warning: str
    summary: str

    def as_dict(self) -> dict:
        return asdict(self)


COMPARISON_FIELDS = tuple(f.name for f in fields(Comparison))


def _rng(function, seed: int) -> dict:
    # scipy >= 1.15 takes `rng`, older releases `random_state`; a Generator means the same in both.
    keyword = "rng" if "rng" in inspect.signature(function).parameters else "random_state"
    return {keyword: np.random.default_rng(seed)}


def _difference_of_means(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, str]:
    """Welch's t interval of mean(a) − mean(b): the difference ± t((1 + confidence) / 2, ν) · se,
    se = √(s_a²/n_a + s_b²/n_b), ν the Welch-Satterthwaite degrees of freedom. The seeds of two
    variants are not paired (the same seed number drives different networks), and their
    variances need not be equal. Returns (low, high, reason): NaN bounds and why when it
    cannot be computed."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan, "a single seed has no spread, so there is no interval"
    va, vb = float(np.var(a, ddof=1)) / len(a), float(np.var(b, ddof=1)) / len(b)
    if va + vb == 0:
        return math.nan, math.nan, "every seed gave the same value in each group: no spread, no interval"
    df = (va + vb) ** 2 / ((va**2 / (len(a) - 1) if va else 0.0) + (vb**2 / (len(b) - 1) if vb else 0.0))
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * math.sqrt(va + vb)
    difference = float(np.mean(a) - np.mean(b))
    return difference - half, difference + half, ""


def bootstrap_interval(
    a: np.ndarray,
    b: np.ndarray,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
    method: str = BOOTSTRAP_METHOD,
) -> tuple[float, float, str]:
    """Bootstrap interval of mean(a) − mean(b), resampling each sample on its own (the seeds of
    two variants are not paired: the same seed number drives different networks). Returns
    (low, high, reason): NaN bounds and why when it cannot be computed. A BCa interval that
    fails falls back to the percentile one, and says so."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan, "a single seed has no spread, so there is no interval"
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return math.nan, math.nan, "every seed gave the same value in each group: no spread to resample, no interval"
    result = stats.bootstrap(
        (a, b),
        _difference_of_means,
        vectorized=True,
        paired=False,
        confidence_level=confidence,
        n_resamples=resamples,
        method=method,
        **_rng(stats.bootstrap, seed),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)) and method.lower() != "percentile":
        low, high, reason = bootstrap_interval(a, b, confidence, resamples, seed, "percentile")
        return low, high, reason or f"{method} interval undefined, percentile interval shown"
    return low, high, ""


# Up to this many splits of the pooled seeds, a tied sample's permutation test enumerates them
# all (exact; C(16, 8) = 12,870 for 8 seeds a side, about 0.2 s); beyond, it samples `resamples`.
EXACT_SPLITS = 100_000


def _mann_whitney(a: np.ndarray, b: np.ndarray, resamples: int, seed: int):
    pooled = np.concatenate([a, b])
    if len(a) < 2 or len(b) < 2 or len(np.unique(pooled)) == len(pooled):
        # Without ties scipy's exact null distribution of U is exact at any size (and one value
        # a side has no ties to mishandle).
        return stats.mannwhitneyu(a, b, alternative="two-sided", method="exact")
    # With ties: a permutation test over the splits of the pooled values, every split when
    # there are at most EXACT_SPLITS (exact), else `resamples` of them. scipy's "auto" would
    # fall back to the normal approximation, which at 2 vs 2 gives p = 0.19, below the 0.33 any
    # ordering of 4 values can reach.
    splits = math.comb(len(pooled), len(a))
    n = splits if splits <= EXACT_SPLITS else resamples
    permutation = stats.PermutationMethod(n_resamples=n, **_rng(stats.PermutationMethod, seed))
    return stats.mannwhitneyu(a, b, alternative="two-sided", method=permutation)


def smallest_p_value(n_a: int, n_b: int) -> float:
    """The smallest two-sided Mann-Whitney p-value n_a vs n_b values can give: the two most
    extreme of the C(n_a + n_b, n_a) equally likely orderings."""
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def _seeds(n_a: int, n_b: int) -> str:
    if n_a == n_b:
        return f"{n_a} seed each" if n_a == 1 else f"{n_a} seeds each"
    return f"{n_a} vs {n_b} seeds"


def _fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3g}".replace("-", "−")


def compare(
    a,
    b,
    higher: bool | None = True,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
    *,
    name_a: str = "A",
    name_b: str = "B",
    method: str = BOOTSTRAP_METHOD,
    interval: str = "welch",
) -> Comparison:
    """Compare two samples of one metric (the seed values of variants A and B).

    Args:
        a, b: the values; non-finite ones are left out.
        higher: True when higher is better, False when lower is, None when neither (then
            ``p_improvement`` is NaN and ``better`` None).
        confidence: of the interval.
        resamples: bootstrap resamples (and permutations, beyond which the p-value's
            permutation test samples instead of enumerating).
        seed: of the resampling; the same seed gives the same interval.
        name_a, name_b: names in ``better`` and ``summary``.
        method: ``scipy.stats.bootstrap``'s method (see :data:`BOOTSTRAP_METHOD`).
        interval: ``"welch"`` (Welch's t interval, :func:`welch_interval`) or ``"bootstrap"``
            (:func:`bootstrap_interval`, which warns that it under-covers at n <= 4).

    The probability of improvement (Agarwal et al. 2021, "Deep RL at the edge of the statistical
    precipice") is U / (n_a n_b), with U from ``scipy.stats.mannwhitneyu``: the share of (a, b)
    pairs in which a beats b, ties counting 1/2; for lower-is-better metrics a beats b when
    smaller. Warnings: fewer than :data:`MIN_SEEDS` seeds in either group; a smallest possible
    p-value above :data:`ALPHA`; an interval that includes 0; an undefined interval; a
    bootstrap interval at n <= :data:`BOOTSTRAP_UNDERCOVERS`.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval {interval!r}: accepted: {', '.join(INTERVALS)}")
    a, b = finite(a), finite(b)
    n_a, n_b = len(a), len(b)
    if n_a == 0 or n_b == 0:
        empty = ", ".join(name for name, n in ((name_a, n_a), (name_b, n_b)) if n == 0)
        warning = f"no values for {empty}: nothing to compare"
        mean_a = float(np.mean(a)) if n_a else math.nan
        mean_b = float(np.mean(b)) if n_b else math.nan
        nan = math.nan
        return Comparison(n_a, n_b, mean_a, mean_b, nan, nan, nan, nan, nan, None, warning, warning)

    mean_a, mean_b = float(np.mean(a)), float(np.mean(b))
    difference = mean_a - mean_b
    if interval == "welch":
        low, high, reason = welch_interval(a, b, confidence)
    else:
        low, high, reason = bootstrap_interval(a, b, confidence, resamples, seed, method)
    test = _mann_whitney(a, b, resamples, seed)
    share_greater = float(test.statistic) / (n_a * n_b)  # U of a: pairs with a > b, ties 1/2
    p_improvement = math.nan if higher is None else (share_greater if higher else 1 - share_greater)
    better = None
    if higher is not None and difference != 0:
        better = name_a if (difference > 0) == higher else name_b

    warnings = []
    smallest = smallest_p_value(n_a, n_b)
    if min(n_a, n_b) < MIN_SEEDS:
        spread = "no interval" if min(n_a, n_b) < 2 else "the interval is wide"
        warnings.append(
            f"{_seeds(n_a, n_b)}: too few to tell; {spread}, and the smallest possible two-sided p-value is "
            f"{smallest:.2f}"
        )
    elif smallest > ALPHA:
        warnings.append(
            f"{_seeds(n_a, n_b)}: the smallest possible two-sided p-value is {smallest:.2f}, so no difference can "
            f"reach p < {ALPHA}"
        )
    if reason and min(n_a, n_b) >= 2:
        warnings.append(reason)
    elif interval == "bootstrap" and min(n_a, n_b) <= BOOTSTRAP_UNDERCOVERS and math.isfinite(low):
        warnings.append(
            f"a percentile bootstrap of {min(n_a, n_b)} seeds covers well under {confidence:.0%}: read the interval as "
            "narrower than it should be"
        )
    if low <= 0 <= high:
        warnings.append("the interval includes 0: the difference is within seed noise")
    warning = "; ".join(warnings)

    interval = f"[{_fmt(low)}, {_fmt(high)}]" if math.isfinite(low) else "[no interval]"
    summary = f"{name_a} − {name_b} = {_fmt(difference)} {interval}"
    if higher is not None:
        summary += f", P({name_a} better) = {p_improvement:.2f}"
    summary += f", n = {n_a} vs {n_b}"
    return Comparison(
        n_a, n_b, mean_a, mean_b, difference, low, high, p_improvement, float(test.pvalue), better, warning, summary
    )


def _values(finals: pd.DataFrame, variant: str, metric: str) -> np.ndarray:
    if finals.empty or metric not in finals:
        return np.array([])
    return finite(finals.loc[finals[C.VARIANT] == variant, metric])


def pairwise(
    finals: pd.DataFrame,
    variants: Sequence[str],
    metrics: Sequence[str],
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
    directions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per metric (in order) and pair of variants (A before B in ``variants``' order):
    ``metric``, ``a``, ``b`` and the fields of :class:`Comparison` (A − B, P(A better)), with
    each metric's direction from :func:`higher_is_better` (the run's ``directions``)."""
    rows = []
    for metric in metrics:
        higher = higher_is_better(metric, directions)
        for i, first in enumerate(variants):
            for second in variants[i + 1 :]:
                result = compare(
                    _values(finals, first, metric),
                    _values(finals, second, metric),
                    higher,
                    confidence,
                    resamples,
                    seed,
                    name_a=first,
                    name_b=second,
                )
                rows.append({"metric": metric, "a": first, "b": second, **result.as_dict()})
    return pd.DataFrame(rows, columns=["metric", "a", "b", *COMPARISON_FIELDS])


DELTA_COLUMNS = (
    "variant", "metric", "before", "after", "delta", "ci_low", "ci_high", "p_improvement", "p_value", "n_before",
    "n_after", "better", "warning", "summary",
)  # fmt: skip


def deltas(
    finals_before: pd.DataFrame,
    finals_after: pd.DataFrame,
    metrics: Sequence[str],
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
    directions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Across two runs (``ganbench compare``): per variant in both (in the earlier run's order)
    and metric, the ``before`` and ``after`` means, ``delta`` = after − before with its
    Welch interval, ``p_improvement`` = P(a seed of the later run beats one of the earlier
    run), the p-value, ``n_before``, ``n_after``, ``better`` ("after", "before" or None) and the
    warning and summary of :func:`compare`."""
    rows = []
    if finals_before.empty or finals_after.empty:
        return pd.DataFrame(columns=list(DELTA_COLUMNS))
    after_variants = set(finals_after[C.VARIANT])
    for variant in dict.fromkeys(finals_before[C.VARIANT]):
        if variant not in after_variants:
            continue
        for metric in metrics:
            r = compare(
                _values(finals_after, variant, metric),
                _values(finals_before, variant, metric),
                higher_is_better(metric, directions),
                confidence,
                resamples,
                seed,
                name_a="after",
                name_b="before",
            )
            rows.append(
                {
                    "variant": variant,
                    "metric": metric,
                    "before": r.mean_b,
                    "after": r.mean_a,
                    "delta": r.difference,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "p_improvement": r.p_improvement,
                    "p_value": r.p_value,
                    "n_before": r.n_b,
                    "n_after": r.n_a,
                    "better": r.better,
                    "warning": r.warning,
                    "summary": r.summary,
                }
            )
    return pd.DataFrame(rows, columns=list(DELTA_COLUMNS))
