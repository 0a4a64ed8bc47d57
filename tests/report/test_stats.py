"""ganbench.report.stats against values computed by hand on small fixed samples.

Quantiles used below (from a t table): t(0.975, 1) = 12.706205, t(0.975, 2) = 4.302653.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from ganbench import columns as C
from ganbench.report import stats

# The statistics must not spill warnings (empty means, degenerate bootstraps) into a report.
pytestmark = pytest.mark.filterwarnings("error")

REPO = Path(__file__).resolve().parents[2]
T_975_1 = 12.706205


def finals(values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """A finals table: {variant: {column: one value per seed}}."""
    rows = []
    for variant, cols in values.items():
        n = len(next(iter(cols.values())))
        for seed in range(n):
            rows.append({C.VARIANT: variant, C.SEED: seed, **{c: v[seed] for c, v in cols.items()}})
    return pd.DataFrame(rows)


# a: fid [1, 2, 3], class_consistency [0.5, 0.6, 0.7]; b: fid [2, 4, 6], class_consistency [0.7, 0.8, 0.9].
AB = finals(
    {
        "a": {C.FID_DOMAIN: [1.0, 2.0, 3.0], C.CLASS_CONSISTENCY: [0.5, 0.6, 0.7], C.TRAIN_IMG_PER_S: [100, 200, 300]},
        "b": {C.FID_DOMAIN: [2.0, 4.0, 6.0], C.CLASS_CONSISTENCY: [0.7, 0.8, 0.9], C.TRAIN_IMG_PER_S: [400, 500, 600]},
    }
)
SUMMARY_METRICS = [C.FID_DOMAIN, C.CLASS_CONSISTENCY, C.TRAIN_IMG_PER_S]


def row(table: pd.DataFrame, variant: str, metric: str) -> pd.Series:
    match = table[(table["variant"] == variant) & (table["metric"] == metric)]
    assert len(match) == 1
    return match.iloc[0]


# --- direction ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metric, expected",
    [
        (C.FID_DOMAIN, False),
        (C.KID_DOMAIN, False),
        (C.STEER_LEAKAGE, False),
        (C.PPL_DOMAIN, False),
        (C.CLASS_CONSISTENCY, True),
        (C.PRECISION_DOMAIN, True),
        (C.STEER_SUCCESS, True),
        (C.SWAP_CONSISTENCY, True),
        (C.STEER_LATENT_DISTANCE, None),
        (C.STEER_PLAIN_LATENT_DISTANCE, None),
        (C.TRAIN_IMG_PER_S, True),
        (C.PEAK_MEM_MB, False),
        (C.TRAIN_SECONDS, None),
        (C.SEED, None),
        (C.STEP, None),
        ("a_plugin_column", None),
    ],
)
def test_higher_is_better(metric, expected):
    assert stats.higher_is_better(metric) is expected


def test_arrows():
    assert [stats.arrow(m) for m in (C.CLASS_CONSISTENCY, C.FID_DOMAIN, C.EVAL_SECONDS)] == ["↑", "↓", ""]


# --- seed_summary ---------------------------------------------------------------------------------


def test_seed_summary_mean_std_and_t_interval():
    table = stats.seed_summary(AB, SUMMARY_METRICS)
    a = row(table, "a", C.FID_DOMAIN)
    # a = [1, 2, 3]: mean 2; std = sqrt((1 + 0 + 1) / 2) = 1; CI = 2 ± t(0.975, 2) · 1/√3 = 2 ± 2.484138
    assert (a["n"], a["n_missing"]) == (3, 0)
    assert (a["mean"], a["std"]) == pytest.approx((2.0, 1.0))
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-5)
    b = row(table, "b", C.FID_DOMAIN)
    # b = [2, 4, 6]: mean 4; std = sqrt((4 + 0 + 4) / 2) = 2; CI = 4 ± t(0.975, 2) · 2/√3 = 4 ± 4.968276
    assert (b["mean"], b["std"]) == pytest.approx((4.0, 2.0))
    assert (b["ci_low"], b["ci_high"]) == pytest.approx((4 - 4.968276, 4 + 4.968276), abs=1e-5)


def test_seed_summary_rows_follow_variant_then_metric_order():
    table = stats.seed_summary(AB, SUMMARY_METRICS)
    assert list(zip(table["variant"], table["metric"])) == [(v, m) for v in ("a", "b") for m in SUMMARY_METRICS]


def test_seed_summary_best_lower_is_better():
    table = stats.seed_summary(AB, SUMMARY_METRICS)
    # fid: a's mean 2 < b's 4, and lower is better
    assert [row(table, v, C.FID_DOMAIN)["best"] for v in ("a", "b")] == [True, False]


def test_seed_summary_best_higher_is_better():
    table = stats.seed_summary(AB, SUMMARY_METRICS)
    # class_consistency: a's mean 0.6 < b's 0.8, and higher is better
    assert [row(table, v, C.CLASS_CONSISTENCY)["best"] for v in ("a", "b")] == [False, True]


def test_seed_summary_marks_no_best_without_a_direction():
    table = stats.seed_summary(
        finals({"a": {C.TRAIN_SECONDS: [1.0, 2.0]}, "b": {C.TRAIN_SECONDS: [3.0, 4.0]}}), [C.TRAIN_SECONDS]
    )
    assert table["best"].tolist() == [False, False]


def test_seed_summary_marks_the_fastest_variant_best():
    table = stats.seed_summary(AB, SUMMARY_METRICS)
    assert table.loc[table["metric"] == C.TRAIN_IMG_PER_S, "best"].tolist() == [False, True]


def test_seed_summary_ignores_and_counts_nan():
    table = stats.seed_summary(finals({"c": {C.FID_DOMAIN: [1.0, math.nan, 3.0]}}), [C.FID_DOMAIN])
    c = row(table, "c", C.FID_DOMAIN)
    # finite values [1, 3]: mean 2; std = sqrt((1 + 1) / 1) = √2; CI = 2 ± t(0.975, 1) · √2/√2 = 2 ± 12.706205
    assert (c["n"], c["n_missing"]) == (2, 1)
    assert (c["mean"], c["std"]) == pytest.approx((2.0, math.sqrt(2)))
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((2 - T_975_1, 2 + T_975_1), abs=1e-5)


def test_seed_summary_one_seed_has_no_std_or_interval():
    c = row(stats.seed_summary(finals({"c": {C.FID_DOMAIN: [5.0, math.nan]}}), [C.FID_DOMAIN]), "c", C.FID_DOMAIN)
    assert (c["n"], c["n_missing"], c["mean"]) == (1, 1, 5.0)
    assert math.isnan(c["std"]) and math.isnan(c["ci_low"]) and math.isnan(c["ci_high"])


# --- compare --------------------------------------------------------------------------------------


def test_compare_difference_of_means():
    result = stats.compare([1, 2, 3], [2, 4, 6])
    # mean(a) − mean(b) = 2 − 4
    assert (result.mean_a, result.mean_b, result.difference) == (2.0, 4.0, -2.0)


def test_probability_of_improvement_counts_ties_as_half():
    # higher is better; of the 9 pairs (a_i, b_j), a > b only for (3, 2), and (2, 2) ties:
    # U = 1 + 0.5 = 1.5, P(a better) = 1.5 / 9 = 1/6
    assert stats.compare([1, 2, 3], [2, 4, 6], higher=True).p_improvement == pytest.approx(1 / 6)


def test_probability_of_improvement_lower_is_better():
    # lower is better: a < b in 7 pairs (1<2, 1<4, 1<6, 2<4, 2<6, 3<4, 3<6), (2, 2) ties:
    # (7 + 0.5) / 9 = 5/6
    assert stats.compare([1, 2, 3], [2, 4, 6], higher=False).p_improvement == pytest.approx(5 / 6)


def test_better_respects_direction():
    assert stats.compare([1, 2, 3], [2, 4, 6], higher=True).better == "B"
    assert stats.compare([1, 2, 3], [2, 4, 6], higher=False).better == "A"


def test_no_direction_has_no_probability_or_better():
    result = stats.compare([1, 2, 3], [2, 4, 6], higher=None)
    assert math.isnan(result.p_improvement) and result.better is None


def test_p_value_is_the_exact_permutation_p_value_with_ties():
    # pooled [1, 2, 3, 2, 4, 6]: of the 20 ways to split it 3 + 3, 6 give a U as far from its
    # mean 4.5 as the observed 1.5 (U in {0, 1.5, 1.5, 7.5, 7.5, 9}): p = 6/20. scipy's default
    # (normal approximation, because of the tie) would say 0.268.
    assert stats.compare([1, 2, 3], [2, 4, 6]).p_value == pytest.approx(0.3)


def test_p_value_matches_scipy_without_ties():
    a, b = [0.3, 1.7, 2.2, 3.9, 5.1], [2.0, 4.4, 6.1, 7.5, 8.2]
    expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue
    assert stats.compare(a, b).p_value == pytest.approx(expected)


def test_smallest_p_value():
    # 2 / C(n_a + n_b, n_a): 2/6, 2/20, 2/35, 2/70
    got = [stats.smallest_p_value(n, m) for n, m in ((2, 2), (3, 3), (3, 4), (4, 4))]
    assert got == pytest.approx([1 / 3, 0.1, 2 / 35, 2 / 70])


def test_two_vs_two_separated_samples_reach_only_p_one_third():
    # pooled [1, 2, 3, 4], 6 splits; only [1, 2] | [3, 4] and [3, 4] | [1, 2] are as extreme: 2/6
    assert stats.compare([1, 2], [3, 4]).p_value == pytest.approx(1 / 3)


def test_summary_line():
    result = stats.compare([1, 2, 3], [2, 4, 6], higher=False, name_a="cgan", name_b="acgan")
    # the interval lies in [1 − 6, 3 − 2] = [−5, 1]; formatted between the brackets
    assert result.summary.startswith("cgan − acgan = −2 [")
    assert result.summary.endswith("], P(cgan better) = 0.83, n = 3 vs 3")


def test_compare_drops_nan_values():
    result = stats.compare([1, math.nan, 3], [2, 4, 6])
    assert (result.n_a, result.n_b, result.mean_a) == (2, 3, 2.0)


# --- bootstrap interval ---------------------------------------------------------------------------

A5 = [0.3, 1.7, 2.2, 3.9, 5.1]  # mean 13.2 / 5 = 2.64
B5 = [10.4, 11.1, 12.8, 13.5, 14.9]  # mean 62.7 / 5 = 12.54


def test_bootstrap_interval_contains_the_observed_difference_within_possible_range():
    result = stats.compare(A5, B5, interval="bootstrap")
    assert result.difference == pytest.approx(2.64 - 12.54)
    # a resampled difference of means lies in [min a − max b, max a − min b] = [−14.6, −5.3]
    assert -14.6 <= result.ci_low < -9.9 < result.ci_high <= -5.3


def test_bootstrap_interval_covers_the_population_difference():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 1.0, 20), rng.normal(3.0, 1.0, 20)  # population difference −3
    result = stats.compare(a, b, interval="bootstrap")
    assert result.ci_low < -3 < result.ci_high
    assert result.ci_high < 0


def test_bootstrap_interval_is_reproducible_with_the_same_seed():
    first, again = stats.compare(A5, B5, seed=7, interval="bootstrap"), stats.compare(A5, B5, seed=7, interval="bootstrap")
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)


def test_bootstrap_interval_depends_on_the_seed():
    assert stats.compare(A5, B5, seed=0, interval="bootstrap").ci_low != stats.compare(A5, B5, seed=1, interval="bootstrap").ci_low


def test_constant_groups_have_no_interval():
    result = stats.compare([1, 1, 1], [2, 2, 2], interval="bootstrap")
    assert math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert "no spread to resample" in result.warning


def test_failed_bca_falls_back_to_percentile(monkeypatch):
    real = scipy_stats.bootstrap

    @functools.wraps(real)
    def bca_fails(*args, **kwargs):
        result = real(*args, **kwargs)
        if kwargs["method"] == "BCa":
            undefined = type(result.confidence_interval)(math.nan, math.nan)
            result = dataclasses.replace(result, confidence_interval=undefined)
        return result

    expected = stats.compare(A5, B5, method="percentile", interval="bootstrap")
    monkeypatch.setattr(scipy_stats, "bootstrap", bca_fails)
    result = stats.compare(A5, B5, method="BCa", interval="bootstrap")
    assert (result.ci_low, result.ci_high) == (expected.ci_low, expected.ci_high)
    assert "BCa interval undefined, percentile interval shown" in result.warning


def test_bootstrap_says_it_under_covers_at_four_seeds_or_fewer():
    result = stats.compare([1.0, 2.0, 3.5, 4.0], [7.0, 8.5, 9.0, 10.0], interval="bootstrap")
    assert "a percentile bootstrap of 4 seeds covers well under 95%" in result.warning
    assert "under" not in stats.compare(A5, B5, interval="bootstrap").warning


# --- Welch interval (the default) -------------------------------------------------------------------


def test_welch_interval_by_hand():
    # a = [1, 2, 3], b = [2, 4, 6]: var/n = 1/3 and 4/3, se = √(5/3); ν = (5/3)² / ((1/3)²/2 + (4/3)²/2) = 2.941
    low, high, reason = stats.welch_interval(np.array([1.0, 2, 3]), np.array([2.0, 4, 6]))
    df = (5 / 3) ** 2 / ((1 / 3) ** 2 / 2 + (4 / 3) ** 2 / 2)
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(5 / 3)
    assert reason == "" and (low, high) == pytest.approx((-2 - half, -2 + half))
    # scipy's own Welch test gives the same interval
    expected = scipy_stats.ttest_ind([1, 2, 3], [2, 4, 6], equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((expected.low, expected.high))


def test_welch_interval_is_the_default_and_covers_at_small_n():
    # Under normal data the Welch interval covers close to 95% even at 3 seeds a side; a percentile
    # bootstrap of 3 seeds covers far less (its resampled means ignore the t correction).
    rng = np.random.default_rng(0)
    trials, covered_welch, covered_boot = 300, 0, 0
    for _ in range(trials):
        a, b = rng.normal(0.0, 1.0, 3), rng.normal(1.0, 2.0, 3)
        w = stats.compare(a, b)
        bt = stats.compare(a, b, interval="bootstrap", resamples=999)
        covered_welch += w.ci_low <= -1 <= w.ci_high
        covered_boot += bt.ci_low <= -1 <= bt.ci_high
    assert covered_welch / trials >= 0.9
    assert covered_boot / trials < 0.85


def test_welch_constant_groups_have_no_interval():
    result = stats.compare([1, 1, 1], [2, 2, 2])
    assert math.isnan(result.ci_low) and "no spread" in result.warning


def test_unknown_interval_is_refused():
    with pytest.raises(ValueError, match="accepted: welch, bootstrap"):
        stats.compare([1, 2], [3, 4], interval="bca")


# --- warnings -------------------------------------------------------------------------------------


def test_warning_two_vs_two_seeds():
    # Welch: −2 ± t(0.975, 2) · √(1/4 + 1/4) = −2 ± 3.04, so the interval also includes 0
    assert stats.compare([1, 2], [3, 4]).warning == (
        "2 seeds each: too few to tell; the interval is wide, and the smallest possible two-sided "
        "p-value is 0.33; the interval includes 0: the difference is within seed noise"
    )


def test_warning_three_vs_three_seeds_cannot_reach_significance():
    # every resampled difference is ≤ 3 − 7 = −4, so the interval excludes 0; 2/20 = 0.10 > 0.05
    assert stats.compare([1, 2, 3], [7, 8, 9]).warning == (
        "3 seeds each: the smallest possible two-sided p-value is 0.10, so no difference can reach p < 0.05"
    )


def test_warning_interval_includes_zero():
    # means 3 and 15.5 / 5 = 3.1: difference −0.1, far inside the seeds' spread (about ±1.5)
    result = stats.compare([1, 2, 3, 4, 5], [1.2, 2.6, 3.1, 3.9, 4.7])
    assert result.ci_low < 0 < result.ci_high
    assert result.warning == "the interval includes 0: the difference is within seed noise"


def test_no_warning_for_a_clear_difference_with_five_seeds():
    assert stats.compare(A5, B5).warning == ""


def test_one_seed_has_no_interval_and_says_so():
    result = stats.compare([1], [2, 3, 4])
    assert math.isnan(result.ci_low) and math.isnan(result.ci_high)
    # 2 / C(4, 1) = 0.5
    assert (
        result.warning
        == "1 vs 3 seeds: too few to tell; no interval, and the smallest possible two-sided p-value is 0.50"
    )
    assert result.p_improvement == 0.0  # 1 is below each of 2, 3, 4 and higher is better


def test_empty_sample_compares_nothing():
    result = stats.compare([math.nan], [2, 3])
    assert result.n_a == 0 and math.isnan(result.difference) and math.isnan(result.p_value)
    assert result.warning == "no values for A: nothing to compare"


# --- pairwise and deltas --------------------------------------------------------------------------

ABC = finals(
    {
        "a": {C.FID_DOMAIN: [1.0, 2.0, 3.0], C.CLASS_CONSISTENCY: [0.5, 0.6, 0.7]},
        "b": {C.FID_DOMAIN: [2.0, 4.0, 6.0], C.CLASS_CONSISTENCY: [0.7, 0.8, 0.9]},
        "c": {C.FID_DOMAIN: [5.0, 6.0, 7.0], C.CLASS_CONSISTENCY: [0.2, 0.3, 0.4]},
    }
)


def test_pairwise_rows_and_order():
    table = stats.pairwise(ABC, ["a", "b", "c"], [C.FID_DOMAIN, C.CLASS_CONSISTENCY])
    assert list(zip(table["metric"], table["a"], table["b"])) == [
        (C.FID_DOMAIN, "a", "b"),
        (C.FID_DOMAIN, "a", "c"),
        (C.FID_DOMAIN, "b", "c"),
        (C.CLASS_CONSISTENCY, "a", "b"),
        (C.CLASS_CONSISTENCY, "a", "c"),
        (C.CLASS_CONSISTENCY, "b", "c"),
    ]


def test_pairwise_values_use_the_metric_direction():
    table = stats.pairwise(ABC, ["a", "b", "c"], [C.FID_DOMAIN, C.CLASS_CONSISTENCY])
    fid = table.iloc[0]
    # fid (lower is better), a = [1, 2, 3] vs b = [2, 4, 6]: difference −2, P(a better) = 7.5 / 9
    assert (fid["difference"], fid["n_a"], fid["n_b"], fid["better"]) == (-2.0, 3, 3, "a")
    assert fid["p_improvement"] == pytest.approx(5 / 6)
    consistency = table.iloc[3]
    # class_consistency (higher is better), a = [0.5, 0.6, 0.7] vs b = [0.7, 0.8, 0.9]: 0.6 − 0.8,
    # a > b in no pair, (0.7, 0.7) ties: P(a better) = 0.5 / 9
    assert consistency["difference"] == pytest.approx(-0.2)
    assert consistency["p_improvement"] == pytest.approx(0.5 / 9)
    assert consistency["better"] == "b"


def test_deltas_per_variant_in_both_runs():
    before = finals({"a": {C.FID_DOMAIN: [1.0, 2.0, 3.0]}, "b": {C.FID_DOMAIN: [2.0, 4.0, 6.0]}})
    after = finals({"c": {C.FID_DOMAIN: [9.0, 9.5]}, "b": {C.FID_DOMAIN: [1.0, 2.0, 3.0]}})
    table = stats.deltas(before, after, [C.FID_DOMAIN])
    assert list(table["variant"]) == ["b"]
    b = table.iloc[0]
    # b's fid: before [2, 4, 6] (mean 4), after [1, 2, 3] (mean 2): delta = 2 − 4 = −2; fid is
    # lower-is-better, after < before in 7 of 9 pairs and (2, 2) ties: P(after better) = 7.5 / 9
    assert (b["before"], b["after"], b["delta"], b["n_before"], b["n_after"]) == (4.0, 2.0, -2.0, 3, 3)
    assert b["p_improvement"] == pytest.approx(5 / 6)
    assert b["better"] == "after"
    assert b["ci_low"] <= -2 <= b["ci_high"]


def test_deltas_without_a_common_variant_is_empty():
    before = finals({"a": {C.FID_DOMAIN: [1.0, 2.0]}})
    after = finals({"b": {C.FID_DOMAIN: [1.0, 2.0]}})
    table = stats.deltas(before, after, [C.FID_DOMAIN])
    assert table.empty and "delta" in table.columns


# --- no torch -------------------------------------------------------------------------------------


def test_stats_do_not_import_torch():
    code = (
        "import sys, pandas as pd, ganbench.report.stats as s\n"
        "f = pd.DataFrame({'variant': ['a'] * 3 + ['b'] * 3, 'seed': [0, 1, 2] * 2,\n"
        "                  'fid_domain': [1.0, 2.0, 3.0, 2.0, 4.0, 6.0]})\n"
        "s.seed_summary(f, ['fid_domain']); s.pairwise(f, ['a', 'b'], ['fid_domain'])\n"
        "s.deltas(f, f, ['fid_domain']); s.compare([1, 2, 3], [2, 4, 6])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
