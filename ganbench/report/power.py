"""How many seeds a comparison needs, and what difference the seeds at hand can detect.

The verdicts (:mod:`.verdicts`) decide a pair with a two-sided Mann-Whitney test, Holm-corrected
over the pairs of one metric. Its power has no closed form, so the estimate here is the
textbook one for the two-sample t-test (noncentral t, equal seeds per variant, the pooled seed
spread), converted to Mann-Whitney with its asymptotic relative efficiency under normal data,
3/π ≈ 0.955 (Lehmann 1975): Mann-Whitney needs about n_t / 0.955 seeds where the t-test needs
n_t. The level is Bonferroni's α / m, Holm's strictest step, so the estimate is on the safe
side. Two more facts bound it: with n seeds a side the smallest two-sided Mann-Whitney p-value
is 2 / C(2n, n), so no n below the one that reaches α / m can decide anything, whatever the
difference; and the observed difference and spread are plug-in estimates from few seeds, so
the number of seeds needed is itself uncertain (an estimate, and the report says so).
"""

from __future__ import annotations

import math

from scipy import optimize, stats

POWER = 0.8
# Asymptotic relative efficiency of Mann-Whitney to the t-test for normal data (Lehmann 1975).
MW_EFFICIENCY = 3 / math.pi
# Beyond this many seeds per variant the answer is "more than MAX_SEEDS": not a plan anyone runs.
MAX_SEEDS = 100_000


def t_power(effect: float, n: float, alpha: float) -> float:
    """Power of the two-sided two-sample t-test with ``n`` values per group (equal variances)
    to detect a standardised difference ``effect`` (Cohen's d) at level ``alpha``: with
    df = 2n − 2 and noncentrality d·√(n/2), P(|T| > t(1 − α/2, df)). ``n`` may be fractional
    (an effective sample size)."""
    if n < 2:
        return math.nan
    df = 2 * n - 2
    noncentrality = abs(effect) * math.sqrt(n / 2)
    critical = float(stats.t.ppf(1 - alpha / 2, df))
    upper = float(stats.nct.sf(critical, df, noncentrality))
    # The opposite tail is negligible for any useful power, and scipy's nct returns NaN for it
    # far out (noncentrality > ~10): count it as 0 there.
    lower = float(stats.nct.cdf(-critical, df, noncentrality))
    return min(1.0, (upper if math.isfinite(upper) else 1.0) + (lower if math.isfinite(lower) else 0.0))


def t_seeds(effect: float, alpha: float, power: float = POWER) -> int | None:
    """Smallest n per group with :func:`t_power` ≥ ``power`` (at least 2); None beyond
    :data:`MAX_SEEDS` or for no difference at all."""
    if not effect or not math.isfinite(effect):
        return 2 if effect and math.isinf(effect) else None
    if t_power(effect, MAX_SEEDS, alpha) < power:
        return None
    low, high = 2, MAX_SEEDS  # power grows with n: bisect on the integers
    while low < high:
        mid = (low + high) // 2
        if t_power(effect, mid, alpha) >= power:
            high = mid
        else:
            low = mid + 1
    return low


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided Mann-Whitney p-value of n_a against n_b values: 2 / C(n_a + n_b, n_a)."""
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def rank_floor(alpha: float) -> int:
    """The fewest seeds per variant with which Mann-Whitney can reach ``alpha`` at all."""
    n = 1
    while smallest_p(n, n) > alpha:
        n += 1
    return n


def seeds_needed(effect: float, alpha: float, power: float = POWER) -> int | None:
    """Seeds per variant for Mann-Whitney to detect a standardised difference ``effect`` with
    probability ``power`` at level ``alpha``: the t-test's n over :data:`MW_EFFICIENCY`, rounded
    up, and never below :func:`rank_floor`. None when the difference is 0 or needs more than
    :data:`MAX_SEEDS`."""
    n_t = t_seeds(effect, alpha, power)
    if n_t is None:
        return None
    return max(math.ceil(n_t / MW_EFFICIENCY), rank_floor(alpha))


def detectable_effect(n_a: int, n_b: int, alpha: float, power: float = POWER) -> float:
    """The smallest standardised difference that n_a against n_b seeds detect with probability
    ``power`` at level ``alpha`` (Mann-Whitney, through the t-test at the harmonic-mean group
    size times :data:`MW_EFFICIENCY`). Infinite when no difference can reach ``alpha`` (the
    smallest possible p-value is above it, or fewer than 2 seeds a side)."""
    if min(n_a, n_b) < 2 or smallest_p(n_a, n_b) > alpha:
        return math.inf
    n = MW_EFFICIENCY * 2 / (1 / n_a + 1 / n_b)
    if n < 2 or t_power(1e3, n, alpha) < power:
        return math.inf
    return float(optimize.brentq(lambda d: t_power(d, n, alpha) - power, 1e-9, 1e3, xtol=1e-10))


def pooled_sd(sd_a: float, n_a: int, sd_b: float, n_b: int) -> float:
    """√(((n_a − 1) s_a² + (n_b − 1) s_b²) / (n_a + n_b − 2)): the seed spread the effect size uses."""
    if n_a + n_b <= 2:
        return math.nan
    return math.sqrt(((n_a - 1) * sd_a**2 + (n_b - 1) * sd_b**2) / (n_a + n_b - 2))
