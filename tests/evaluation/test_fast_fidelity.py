"""The fast domain metrics equal torch-fidelity's own feature-to-metric functions: bit for bit
on the CPUs we could test (same features, same threads), and always within what a float32
path can promise (float32_tolerance.py)."""

import math

import pytest
import torch
from float32_tolerance import approx

from ganbench import columns as C
from ganbench.evaluation import cache, fast_fidelity
from ganbench.evaluation.fidelity import classifier_reference, domain_metrics, torch_fidelity_domain_metrics

COLUMNS = (C.FID_DOMAIN, C.KID_DOMAIN, C.PRECISION_DOMAIN, C.RECALL_DOMAIN)
REAL_NAME = "fashion-mnist-test-3000"


@pytest.fixture(scope="module")
def generated(classifier, fashion):
    """Features of noisy training images: near the test split, not on it (precision/recall in (0, 1))."""
    noise = torch.randn(1200, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 40
    images = (fashion.train_images[:1200].float() + noise).clamp(0, 255).round().to(torch.uint8)
    return classifier.features(images)


@pytest.fixture(scope="module")
def values(classifier, fashion, generated, tmp_path_factory):
    """Ours with an empty cache, ours with the cache it left, and torch-fidelity's."""
    cache_dir, real = tmp_path_factory.mktemp("fast"), fashion.test_images[:3000]
    cold = domain_metrics(classifier, generated, real, REAL_NAME, cache_dir)
    warm = domain_metrics(classifier, generated, real, REAL_NAME, cache_dir)
    real_features = classifier_reference(classifier, real, REAL_NAME, cache_dir)["features"]
    reference = torch_fidelity_domain_metrics(generated, real_features)
    return {"cold": cold, "warm": warm, "reference": reference, "real_features": real_features}


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("cache_state", ["cold", "warm"])
def test_metric_equals_torch_fidelity(values, generated, column, cache_state):
    reference = values["reference"][column]
    upper = 1 if column in (C.PRECISION_DOMAIN, C.RECALL_DOMAIN) else math.inf  # fractions; distances are unbounded
    assert 0 < reference < upper  # the samples are neither identical to the real ones nor disjoint from them
    assert values[cache_state][column] == approx(column, reference, values["real_features"], len(generated))


def test_real_side_is_cached_per_sample_count(classifier, fashion, generated, tmp_path):
    real = fashion.test_images[:3000]
    for n in (1100, 1200):
        domain_metrics(classifier, generated[:n], real, REAL_NAME, tmp_path)
    for n in (1100, 1200):
        side = cache.safe_load(cache.cache_path(tmp_path, f"{REAL_NAME}-{classifier.name}-n{n}"))
        assert side["identity"]["samples"] == n and side["tensors"]["prc_radii"].shape == (n,)


def test_cpu_needs_no_device_context():
    assert fast_fidelity.device_context(torch.device("cpu")).__class__.__name__ == "nullcontext"


def test_cuda_n_makes_device_n_current():
    # entering it needs a GPU; which device it selects is known without one
    assert fast_fidelity.device_context(torch.device("cuda:1")).idx == 1


def test_indexless_cuda_keeps_the_current_device():
    assert fast_fidelity.device_context(torch.device("cuda")).__class__.__name__ == "nullcontext"
