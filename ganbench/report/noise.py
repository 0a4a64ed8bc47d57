"""Where the noise comes from: training seeds against the sampling of one trained generator.

A run with resampling (``--resample``, the default) scores each job's final generator twice,
on two independent draws of latents (``sampling.csv``: ``draw`` 0 is the evaluation in
metrics.csv, ``draw`` 1 the independent one). Per variant and metric that is a one-way
random-effects layout, seeds × draws, and the method-of-moments (ANOVA) estimators split the
variance of one reported value into

- sampling variance σ²_s: the within-seed mean square, MSW = Σ (x_ij − x̄_i)² / (N − k);
- training-seed variance σ²_t: (MSB − MSW) / n₀, floored at 0, with MSB = Σ n_i (x̄_i − x̄)² / (k − 1)
  and n₀ = (N − Σ n_i² / N) / (k − 1) (= the draws per seed when every seed has as many).

With k seeds and 2 draws each both estimates are rough (σ²_s has k degrees of freedom, σ²_t
k − 1); the table says k. Pure pandas/numpy; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ganbench import columns as C

DRAW = "draw"
NOISE_COLUMNS = (
    "variant", "metric", "seeds", "draws", "var_training", "var_sampling", "share_training", "dominant",
)  # fmt: skip


def components(groups: Sequence[np.ndarray]) -> tuple[float, float]:
    """(σ²_training, σ²_sampling) of one-way random-effects data: one array of draws per seed.
    Seeds with fewer than 2 finite draws inform σ²_t only through their mean, so they are left
    out; NaN when fewer than 2 seeds remain."""
    groups = [g[np.isfinite(g)] for g in (np.asarray(g, dtype=float) for g in groups)]
    groups = [g for g in groups if len(g) >= 2]
    k = len(groups)
    if k < 2:
        return math.nan, math.nan
    sizes = np.array([len(g) for g in groups], dtype=float)
    total = sizes.sum()
    grand = np.concatenate(groups).mean()
    within = sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / (total - k)
    between = sum(n * (g.mean() - grand) ** 2 for n, g in zip(sizes, groups)) / (k - 1)
    n0 = (total - (sizes**2).sum() / total) / (k - 1)
    return max(0.0, float((between - within) / n0)), float(within)


def noise_table(sampling: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per variant (in order) and metric: the seeds and draws used, σ²_training, σ²_sampling,
    the training seeds' share of their sum and which ``dominant`` ("training seeds",
    "sampling" or "" when unknown). Columns: :data:`NOISE_COLUMNS`."""
    rows = []
    if sampling is None or sampling.empty or DRAW not in sampling:
        return pd.DataFrame(columns=list(NOISE_COLUMNS))
    for variant, group in sampling.groupby(C.VARIANT, sort=False):
        for metric in metrics:
            if metric not in group:
                continue
            values = pd.to_numeric(group[metric], errors="coerce")
            per_seed = [values[group[C.SEED] == s].to_numpy(dtype=float) for s in dict.fromkeys(group[C.SEED])]
            if not any(np.isfinite(v).sum() >= 2 for v in per_seed):
                continue
            var_t, var_s = components(per_seed)
            used = [v[np.isfinite(v)] for v in per_seed if np.isfinite(v).sum() >= 2]
            total = var_t + var_s
            share = var_t / total if total > 0 else math.nan
            dominant = "" if math.isnan(share) else ("training seeds" if share > 0.5 else "sampling")
            rows.append(
                {
                    "variant": variant, "metric": metric, "seeds": len(used),
                    "draws": int(sum(len(v) for v in used)), "var_training": var_t, "var_sampling": var_s,
                    "share_training": share, "dominant": dominant,
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(NOISE_COLUMNS))
