"""Verdicts, seeds needed and the split of the noise, against known answers: Holm on constructed
p-values, textbook power-calculation values, and a synthetic layout whose variances are set."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from ganbench import columns as C
from ganbench.report import noise, power, verdicts

pytestmark = pytest.mark.filterwarnings("error")


def finals(values: dict[str, list[float]], metric: str = C.FID_DOMAIN, status: dict | None = None) -> pd.DataFrame:
    """A finals table: {variant: one value per seed}; ``status`` = {(variant, seed): status}."""
    rows = []
    for variant, seeds in values.items():
        for seed, value in enumerate(seeds):
            st = (status or {}).get((variant, seed), C.STATUS_OK)
            rows.append({C.VARIANT: variant, C.SEED: seed, C.STATUS: st, metric: value})
    return pd.DataFrame(rows)


# --- Holm -----------------------------------------------------------------------------------------


def test_holm_on_a_constructed_family():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> raised to 0.06 (monotone)
    assert verdicts.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_nan_out_of_the_family():
    # m = 2: 0.6·2 = 1.2 -> capped at 1; 0.7·1 = 0.7 -> raised to 1 (monotone)
    adjusted = verdicts.holm([0.7, math.nan, 0.6])
    assert adjusted[0] == pytest.approx(1.0) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(1.0)
    assert verdicts.holm([0.6, math.nan, 0.01, 0.4]) == pytest.approx([0.8, math.nan, 0.03, 0.8], nan_ok=True)


def test_holm_single_p_value_is_unchanged():
    assert verdicts.holm([0.037]) == pytest.approx([0.037])


# --- power: textbook values -----------------------------------------------------------------------


@pytest.mark.parametrize("effect, n", [(0.2, 394), (0.5, 64), (0.8, 26), (1.0, 17)])
def test_t_test_seeds_match_cohens_table(effect, n):
    # Cohen (1988) / G*Power: two-sided two-sample t-test, alpha 0.05, power 0.80, n per group
    assert power.t_seeds(effect, 0.05, 0.8) == n


def test_t_power_at_the_textbook_point():
    assert power.t_power(0.5, 64, 0.05) == pytest.approx(0.8015, abs=5e-4)


def test_seeds_needed_divides_by_mann_whitney_efficiency_and_respects_the_rank_floor():
    assert power.seeds_needed(0.5, 0.05) == math.ceil(64 / (3 / math.pi))
    # a huge difference still needs the seeds whose smallest p-value reaches alpha: 2/C(8,4) = 0.029
    assert power.rank_floor(0.05) == 4 and power.seeds_needed(50.0, 0.05) == 4
    assert power.rank_floor(0.05 / 6) == 5  # 2/C(10,5) = 0.0079 < 0.0083
    assert power.seeds_needed(0.0, 0.05) is None


def test_detectable_effect_inverts_power():
    d = power.detectable_effect(10, 10, 0.05)
    assert power.t_power(d, 10 * power.MW_EFFICIENCY, 0.05) == pytest.approx(0.8, abs=1e-6)
    assert math.isinf(power.detectable_effect(3, 3, 0.05))  # smallest p 0.10
    assert power.detectable_effect(20, 20, 0.05) < d


def test_seeds_needed_are_enough_in_simulation():
    # Plan with the estimate, then check by simulation that Mann-Whitney reaches about 80% power.
    effect, alpha = 1.2, 0.05
    n = power.seeds_needed(effect, alpha)
    rng = np.random.default_rng(3)
    hits = sum(
        scipy_stats.mannwhitneyu(rng.normal(0, 1, n), rng.normal(effect, 1, n), method="exact").pvalue < alpha
        for _ in range(1000)
    )
    assert 0.75 <= hits / 1000 <= 0.92


# --- verdicts -------------------------------------------------------------------------------------


def test_separated_seeds_are_decided_with_every_seed_beating():
    table = verdicts.verdicts(finals({"a": [10, 11, 12, 13, 14], "b": [1, 2, 3, 4, 5]}), ["a", "b"], [C.FID_DOMAIN])
    row = table.iloc[0]
    # exact two-sided Mann-Whitney p of 5 vs 5 with complete separation: 2 / C(10, 5)
    assert row["p_value"] == pytest.approx(2 / 252) and row["p_holm"] == pytest.approx(2 / 252)
    assert row["decided"] and row["winner"] == "b" and row["loser"] == "a"
    assert row["sentence"].startswith("b beats a on fid_domain ↓ (3 vs 12): every one of its 5 seeds beats every one")
    assert "after Holm over 1 pair." in row["sentence"]


def test_holm_over_the_pairs_of_one_metric_can_undecide():
    # three variants, 4 seeds: each separated pair has p = 2/70 = 0.029 < 0.05 alone, but Holm over 3
    # pairs multiplies the smallest by 3 -> 0.086: nothing decided
    f = finals({"a": [1, 2, 3, 4], "b": [11, 12, 13, 14], "c": [21, 22, 23, 24]})
    table = verdicts.verdicts(f, ["a", "b", "c"], [C.FID_DOMAIN])
    assert len(table) == 3 and (table["pairs"] == 3).all()
    assert (table["p_value"] < 0.05).all() and not table["decided"].any()
    warnings = verdicts.family_warnings(table, f, ["a", "b", "c"], C.FID_DOMAIN)
    assert any("No pair can be decided with these seeds" in w and "5 seeds per variant" in w for w in warnings)


def test_a_diverged_seed_ranks_worst_and_is_named():
    values = {"a": [1.0, 2, 3, 4, 5, 6], "b": [1.5, 2.5, 3.5, 4.5, 5.5, math.nan]}
    f = finals(values, status={("b", 5): C.STATUS_DIVERGED})
    row = verdicts.verdicts(f, ["a", "b"], [C.FID_DOMAIN]).iloc[0]
    assert (row["n_b"], row["failed_b"]) == (6, 1)
    # with b's diverged seed ranked worst (+inf for a lower-is-better metric), U counts it
    ranked = [1.5, 2.5, 3.5, 4.5, 5.5, math.inf]
    expected = scipy_stats.mannwhitneyu(values["a"], ranked, method="exact").pvalue
    assert row["p_value"] == pytest.approx(expected)
    assert row["mean_b"] == pytest.approx(3.5)  # means from finished seeds only
    assert any("1 failed or diverged" in w for w in verdicts.family_warnings(
        verdicts.verdicts(f, ["a", "b"], [C.FID_DOMAIN]), f, ["a", "b"], C.FID_DOMAIN))  # fmt: skip


def test_nan_of_a_finished_job_is_counted_and_named_not_silently_dropped():
    f = finals({"a": [1.0, 2, math.nan], "b": [3.0, 4, 5]})
    table = verdicts.verdicts(f, ["a", "b"], [C.FID_DOMAIN])
    assert table.iloc[0]["n_a"] == 2
    warnings = verdicts.family_warnings(table, f, ["a", "b"], C.FID_DOMAIN)
    assert "a: seed(s) 2 finished without a fid_domain value: left out." in warnings


def test_a_metric_one_variant_lacks_makes_no_rows():
    f = finals({"a": [0.5, 0.6, 0.7], "b": [math.nan] * 3, "c": [0.8, 0.9, 0.95]}, C.CLASS_CONSISTENCY)
    table = verdicts.verdicts(f, ["a", "b", "c"], [C.CLASS_CONSISTENCY])
    assert list(zip(table["a"], table["b"])) == [("a", "c")]
    assert "b has no class_consistency value: not compared on it." in verdicts.family_warnings(
        table, f, ["a", "b", "c"], C.CLASS_CONSISTENCY
    )


def test_metrics_without_direction_are_not_judged():
    f = finals({"a": [1, 2, 3], "b": [4, 5, 6]}, C.TRAIN_SECONDS)
    assert verdicts.verdicts(f, ["a", "b"], [C.TRAIN_SECONDS]).empty


def test_undecided_pair_gets_seeds_needed_and_detectable_difference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 1, 5), rng.normal(10.8, 1, 5)
    row = verdicts.verdicts(finals({"a": list(a), "b": list(b)}), ["a", "b"], [C.FID_DOMAIN]).iloc[0]
    assert not row["decided"]
    sd = power.pooled_sd(np.std(a, ddof=1), 5, np.std(b, ddof=1), 5)
    assert row["effect_size"] == pytest.approx(abs(a.mean() - b.mean()) / sd)
    assert row["seeds_needed"] == power.seeds_needed(row["effect_size"], 0.05)
    assert row["detectable_difference"] == pytest.approx(power.detectable_effect(5, 5, 0.05) * sd)
    assert "seeds each would detect this difference" in row["sentence"]
    seeds = verdicts.seeds_table(verdicts.verdicts(finals({"a": list(a), "b": list(b)}), ["a", "b"], [C.FID_DOMAIN]))
    assert list(seeds.columns) == list(verdicts.SEEDS_COLUMNS) and len(seeds) == 1


def test_matrix_cells_read_from_the_row_variant():
    f = finals({"a": [10, 11, 12, 13, 14], "b": [1, 2, 3, 4, 5]})
    m = verdicts.matrix(verdicts.verdicts(f, ["a", "b"], [C.FID_DOMAIN]), C.FID_DOMAIN, ["a", "b"])
    assert m.loc["b", "a"].startswith("better, P 1.00") and m.loc["a", "b"].startswith("worse, P 0.00")
    assert m.loc["a", "a"] == "–"


def test_change_verdicts_across_runs():
    before = finals({"a": [10, 11, 12, 13, 14], "b": [1, 2, 3, 4, 5]})
    after = finals({"a": [1, 2, 3, 4, 5], "b": [1.1, 2.1, 2.9, 4.2, 4.8]})
    table = verdicts.change_verdicts(before, after, [C.FID_DOMAIN])
    a, b = table.set_index("variant").loc["a"], table.set_index("variant").loc["b"]
    assert a["decided"] and a["direction"] == "better" and a["variants"] == 2
    assert not b["decided"] and b["direction"] == "not decided"


def test_console_lines_say_what_to_run_with_one_seed():
    lines = verdicts.summary_lines(finals({"a": [1.0], "b": [2.0]}), [C.FID_DOMAIN], "results/x")
    assert lines == [
        "What the seeds decide: nothing; one seed per variant has no spread to judge a difference by. "
        "Add seeds: ganbench run --resume results/x --seeds 0-3"
    ]


# --- noise ----------------------------------------------------------------------------------------


def test_noise_components_recover_set_variances():
    # 300 training seeds, 2 sampling draws each: sigma_train = 2, sigma_sampling = 0.5
    rng = np.random.default_rng(7)
    groups = [rng.normal(rng.normal(0.0, 2.0), 0.5, 2) for _ in range(300)]
    var_t, var_s = noise.components(groups)
    assert var_t == pytest.approx(4.0, rel=0.2) and var_s == pytest.approx(0.25, rel=0.2)


def test_noise_components_by_hand():
    # seeds [1, 3] and [5, 7]: MSW = (1 + 1 + 1 + 1) / 2 = 2; means 2 and 6, MSB = 2·((2−4)² + (6−4)²) / 1 = 16
    assert noise.components([np.array([1.0, 3.0]), np.array([5.0, 7.0])]) == pytest.approx((7.0, 2.0))


def test_noise_table_from_a_sampling_table():
    rng = np.random.default_rng(1)
    rows = []
    for variant, (st, ss) in {"a": (3.0, 0.1), "b": (0.1, 3.0)}.items():
        for seed in range(40):
            centre = rng.normal(10, st)
            for draw in (0, 1):
                rows.append({C.VARIANT: variant, C.SEED: seed, noise.DRAW: draw, C.FID_DOMAIN: rng.normal(centre, ss)})
    table = noise.noise_table(pd.DataFrame(rows), [C.FID_DOMAIN]).set_index("variant")
    assert table.loc["a", "dominant"] == "training seeds" and table.loc["b", "dominant"] == "sampling"
    assert table.loc["a", "seeds"] == 40 and table.loc["a", "draws"] == 80
    assert list(noise.noise_table(pd.DataFrame(), [C.FID_DOMAIN]).columns) == list(noise.NOISE_COLUMNS)


def test_eight_seeds_a_side_get_the_exact_p_value_not_a_sampled_one():
    # C(16, 8) = 12,870 orderings: complete separation has p = 2 / 12,870 exactly (a sampled
    # permutation test of 9,999 splits could not go below 1 / 10,000), with and without ties
    separated = verdicts.verdicts(finals({"a": list(range(8)), "b": list(range(10, 18))}), ["a", "b"], [C.FID_DOMAIN])
    assert separated.iloc[0]["p_value"] == pytest.approx(2 / 12870, rel=1e-12)
    tied = finals({"a": [0, 1, 1, 2, 3, 4, 5, 6], "b": [10, 11, 11, 12, 13, 14, 15, 16]})
    assert verdicts.verdicts(tied, ["a", "b"], [C.FID_DOMAIN]).iloc[0]["p_value"] == pytest.approx(2 / 12870)


def test_two_variants_with_the_same_constant_value_need_no_seeds_not_infinitely_many():
    """Every seed of both at 0 (no memorised sample anywhere): the table says the means are equal,
    not "> 100,000" seeds (the effect size is 0 / 0 there)."""
    from ganbench.report.render import _seeds_needed

    assert _seeds_needed(math.nan, 0.0, math.nan, 0.0) == "none can: equal means"
    assert _seeds_needed(math.nan, 0.1, 1e-6, 1e-7) == f"> {power.MAX_SEEDS:,}"
    assert _seeds_needed(math.nan, math.nan, math.nan, 0.5) == "unknown (no spread yet)"
