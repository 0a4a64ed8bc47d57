"""density_domain and coverage_domain: the authors' prdc.compute_prdc on the same features, known
answers, and the real side shared with precision/recall (subset, features, cached radii)."""

import math

import numpy as np
import prdc
import pytest
import torch
from float32_tolerance import approx
from ganbench_plugins.metrics import DENSITY_COVERAGE, DOMAIN_FIDELITY
from prdc.prdc import compute_nearest_neighbour_distances

from ganbench import columns as C
from ganbench.evaluation import Evaluation, cache, fast_fidelity, run_metrics
from ganbench.evaluation.density_coverage import DC_NEIGHBORHOOD, neighbourhoods, one_pass
from ganbench.evaluation.fidelity import InceptionWeights, classifier_reference, domain_metrics, prc_subset

CPU = torch.device("cpu")
REAL_NAME = "fashion-mnist-test-3000"
N = 1200


@pytest.fixture(scope="module")
def real(fashion):
    return fashion.test_images[:3000]


@pytest.fixture(scope="module")
def real_features(classifier, real, tmp_path_factory):
    return classifier_reference(classifier, real, REAL_NAME, tmp_path_factory.mktemp("dc-real"))["features"]


@pytest.fixture(scope="module")
def points(real_features):
    """Precision/recall's real subset against N samples: what density and coverage compare with."""
    return real_features[prc_subset(len(real_features), N)]


@pytest.fixture(scope="module")
def generated(classifier, fashion):
    """Features of noisy training images: near the test split, not on it (both scores in (0, 1))."""
    noise = torch.randn(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 40
    images = (fashion.train_images[:N].float() + noise).clamp(0, 255).round().to(torch.uint8)
    return classifier.features(images)


@pytest.fixture(scope="module")
def values(classifier, real, generated, tmp_path_factory):
    """Ours with an empty cache and with the cache it left."""
    cache_dir = tmp_path_factory.mktemp("dc")
    cold = neighbourhoods(classifier, generated, real, REAL_NAME, cache_dir)
    warm = neighbourhoods(classifier, generated, real, REAL_NAME, cache_dir)
    return {"cold": cold, "warm": warm, "cache_dir": cache_dir}


@pytest.fixture(scope="module")
def reference(points, generated):
    """prdc 0.2, the authors' code, on the same features (it prints a line)."""
    return prdc.compute_prdc(points.numpy(), generated.numpy(), nearest_k=DC_NEIGHBORHOOD)


@pytest.mark.parametrize("cache_state", ["cold", "warm"])
def test_density_and_coverage_equal_prdc(values, reference, cache_state):
    ours = values[cache_state]
    assert 0.1 < reference["density"] < 1 and 0.1 < reference["coverage"] < 1  # not a trivial agreement
    assert ours.density == approx(C.DENSITY_DOMAIN, reference["density"], None, N)
    assert ours.coverage == approx(C.COVERAGE_DOMAIN, reference["coverage"], None, N)


def test_the_pass_gives_precision_bit_for_bit(values, classifier, real, generated):
    """Precision from the shared pass is domain_metrics' own (torch-fidelity's, see test_fast_fidelity)."""
    own = domain_metrics(classifier, generated, real, REAL_NAME, values["cache_dir"])
    assert values["cold"].precision == values["warm"].precision == own[C.PRECISION_DOMAIN]
    assert 0 < own[C.PRECISION_DOMAIN] < 1


def test_the_cached_radii_are_prdcs_k5_radii_of_precision_recalls_subset(values, points, classifier):
    side = cache.safe_load(cache.cache_path(values["cache_dir"], f"{REAL_NAME}-{classifier.name}-n{N}-k5"))
    assert side["identity"]["neighborhood"] == 5 and side["identity"]["samples"] == N
    expected = compute_nearest_neighbour_distances(points.numpy(), nearest_k=5)
    # float32 distances by two paths (torch.cdist, scikit-learn's), both through |x|^2 + |y|^2 - 2x.y:
    # a squared distance carries rounding of the squared norms, not of itself, so a small radius can
    # be off by more than rtol=1e-5 (1.8e-5 on a CI machine; 8.8e-6 here, 1.9 eps*max|x|^2). A
    # wrong neighbour count (k = 4) moves squared radii by 0.35 (median), 1,400 times this bound.
    ours = side["tensors"]["radii"].double().numpy()
    bound = 8 * np.finfo(np.float32).eps * float((points.double() ** 2).sum(1).max())
    np.testing.assert_allclose(ours**2, expected.astype(np.float64) ** 2, rtol=0, atol=bound)
    # and not precision/recall's k = 3 radii, cached beside them
    k3 = fast_fidelity.knn_radii(points, CPU)
    assert (side["tensors"]["radii"] > k3).float().mean() > 0.99


def pass_of(samples, points):
    """Precision (k = 3), density and coverage (k = 5) of ``samples`` against ``points``."""
    k3, k5 = fast_fidelity.knn_radii(points, CPU), fast_fidelity.knn_radii(points, CPU, DC_NEIGHBORHOOD)
    return one_pass(samples, points, k3, k5, CPU)


def test_the_same_features_cover_everything_with_density_one(points):
    found = pass_of(points, points)
    density = found.density
    assert found.coverage == 1.0 and found.precision == 1.0
    # Each real ball holds its point and the k - 1 nearer ones: k per ball, density 1. Not exactly:
    # a ball's k-th point lies on its boundary, a tie that float32 breaks either way (the radius
    # comes from the row of the ball's centre, the comparison from the row of the sample).
    assert density == pytest.approx(1.0, abs=0.005)


def test_features_shifted_far_away_have_density_and_coverage_zero(points):
    far = points + 10 * fast_fidelity.knn_radii(points, CPU, DC_NEIGHBORHOOD).max()
    found = pass_of(far, points)
    assert (found.density, found.coverage, found.precision) == (0.0, 0.0, 0.0)


def test_density_exceeds_one_where_samples_crowd_a_dense_region(points):
    """Every sample on one real point's nearest neighbour, in many real balls: density > 1 (it is
    not a fraction), while coverage sees only the few balls around that point."""
    radii = fast_fidelity.knn_radii(points, CPU, DC_NEIGHBORHOOD)
    d = torch.cdist(points, points)
    crowded = int(((d < radii[:, None]).sum(0)).argmax())  # the point inside most real balls
    found = pass_of(points[crowded].expand(len(points), -1).clone(), points)
    assert found.density > 1.5 and found.coverage < 0.05


def evaluation(fashion, classifier, cache_dir, n):
    return Evaluation(
        "x", "generation", fashion.train_images[:n], None, fashion, classifier, CPU, cache_dir, False,
        lambda: InceptionWeights(None, "not needed"),
    )  # fmt: skip


def test_the_metric_plugin_uses_precision_recalls_subset_and_caches_radii_per_sample_count(
    fashion, classifier, cache_dir
):
    for n in (300, 400):
        ev = evaluation(fashion, classifier, cache_dir, n)
        result = run_metrics(ev, [DENSITY_COVERAGE])
        assert not result.notes
        real_features = classifier_reference(classifier, fashion.test_images, "fashion-mnist-test", cache_dir)
        points = real_features["features"][prc_subset(len(fashion.test_images), n)]
        direct = prdc.compute_prdc(points.numpy(), ev.features.numpy(), nearest_k=DC_NEIGHBORHOOD)
        assert result.values[C.DENSITY_DOMAIN] == approx(C.DENSITY_DOMAIN, direct["density"], None, n)
        assert result.values[C.COVERAGE_DOMAIN] == approx(C.COVERAGE_DOMAIN, direct["coverage"], None, n)
        assert 0.5 < result.values[C.COVERAGE_DOMAIN] < 1 and math.isfinite(result.values[C.DENSITY_DOMAIN])
        path = cache.cache_path(cache_dir, f"fashion-mnist-test-{classifier.name}-n{n}-k5")
        assert cache.safe_load(path)["tensors"]["radii"].shape == (n,)


def test_domain_fidelity_and_density_coverage_share_one_pass_over_the_distances(
    fashion, classifier, cache_dir, monkeypatch
):
    n = 350
    run_metrics(evaluation(fashion, classifier, cache_dir, n), [DOMAIN_FIDELITY, DENSITY_COVERAGE])  # warm caches
    calls = []
    original = fast_fidelity._cdist
    monkeypatch.setattr(fast_fidelity, "_cdist", lambda a, b: calls.append(1) or original(a, b))

    def distance_passes(metrics):
        calls.clear()
        ev = evaluation(fashion, classifier, cache_dir, n)
        return run_metrics(ev, metrics), len(calls)

    both, passes = distance_passes([DOMAIN_FIDELITY, DENSITY_COVERAGE])
    assert passes == 3  # samples to real (precision, density, coverage); recall's radii and balls
    assert distance_passes([DENSITY_COVERAGE, DOMAIN_FIDELITY])[1] == 3  # whichever asks first
    assert distance_passes([DENSITY_COVERAGE])[1] == 1
    alone, passes = distance_passes([DOMAIN_FIDELITY])
    assert passes == 3 and not both.notes
    ev = evaluation(fashion, classifier, cache_dir, n)
    own = domain_metrics(classifier, ev.features, fashion.test_images, "fashion-mnist-test", cache_dir)
    for column in own:  # precision from the shared pass: torch-fidelity's value, bit for bit
        assert both.values[column] == alone.values[column] == own[column], column
