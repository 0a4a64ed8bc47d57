"""ifid_domain: per class, the FID of the samples requested with it against its test images; a
direct per-class computation (torch-fidelity's functions, scipy's formula), known answers, the
per-class statistics cache and the metric plugin (per-class values, unconditional NaN)."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from float32_tolerance import FID_REL
from ganbench_plugins.metrics import INTRA_CLASS_FID
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from ganbench import columns as C
from ganbench.evaluation import Evaluation, cache, run_metrics
from ganbench.evaluation.fidelity import InceptionWeights
from ganbench.evaluation.intra_class import intra_class_fid

CPU = torch.device("cpu")
K = 10
REAL_NAME = "fashion-mnist-test"


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets, by scipy."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def ifid(classifier, fashion, cache_dir, images, labels):
    return intra_class_fid(
        classifier, classifier.features(images), labels, fashion.test_images, fashion.test_labels, K, REAL_NAME,
        cache_dir,
    )  # fmt: skip


@pytest.fixture(scope="module")
def train_part(fashion):
    """3,000 train images with their labels: real images of each class, not the test split's."""
    return fashion.train_images[:3000], fashion.train_labels[:3000]


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # dead ReLU units: a singular covariance
def test_each_class_is_the_fid_of_a_direct_computation_and_the_score_their_mean(
    classifier, fashion, cache_dir, train_part
):
    images, labels = train_part
    overall, per_class = ifid(classifier, fashion, cache_dir, images, labels)
    generated = classifier.features(images)
    real = classifier.features(fashion.test_images)
    assert len(per_class) == K
    for k in range(K):
        g, r = generated[labels == k], real[fashion.test_labels == k]
        direct = fid_statistics_to_metric(fid_features_to_statistics(g), fid_features_to_statistics(r), False)
        assert per_class[k] == pytest.approx(direct["frechet_inception_distance"], rel=FID_REL)
        assert per_class[k] == pytest.approx(frechet(g.double().numpy(), r.double().numpy()), rel=1e-3)
    assert overall == pytest.approx(np.mean(per_class), rel=1e-12)
    assert all(0 < v < 10 for v in per_class)  # real images of the right class: small, not zero


def test_a_class_against_its_own_test_images_is_zero(classifier, fashion, cache_dir):
    overall, per_class = ifid(classifier, fashion, cache_dir, fashion.test_images, fashion.test_labels)
    assert max(abs(v) for v in per_class) < 1e-3 and abs(overall) < 1e-3


def test_the_right_images_under_the_wrong_labels_are_far(classifier, fashion, cache_dir, train_part):
    images, labels = train_part
    right, _ = ifid(classifier, fashion, cache_dir, images, labels)
    wrong, per_class = ifid(classifier, fashion, cache_dir, images, (labels + 1) % K)
    assert wrong > 50 * right and min(per_class) > 10 * right


def test_a_class_without_two_samples_is_nan_and_left_out_of_the_mean(classifier, fashion, cache_dir, train_part):
    images, labels = train_part
    keep = labels != 3  # no sample of class 3, one of class 5
    keep[(labels == 5).nonzero()[1:, 0]] = False
    overall, per_class = ifid(classifier, fashion, cache_dir, images[keep], labels[keep])
    assert math.isnan(per_class[3]) and math.isnan(per_class[5])
    scored = [v for k, v in enumerate(per_class) if k not in (3, 5)]
    assert all(math.isfinite(v) for v in scored) and overall == pytest.approx(np.mean(scored), rel=1e-12)


def test_the_per_class_statistics_are_cached_for_the_split(classifier, fashion, tmp_path, train_part, monkeypatch):
    images, labels = train_part
    cold = ifid(classifier, fashion, tmp_path, images, labels)
    stored = cache.safe_load(cache.cache_path(tmp_path, f"{REAL_NAME}-{classifier.name}-classes"))
    assert stored["identity"]["classes"] == K
    assert stored["tensors"]["count"].tolist() == torch.bincount(fashion.test_labels, minlength=K).tolist()
    assert stored["tensors"]["mu"].shape == (K, 128) and stored["tensors"]["sigma"].shape == (K, 128, 128)
    from ganbench.evaluation import intra_class

    monkeypatch.setattr(intra_class, "_statistics", lambda f: pytest.fail("the real statistics again"))
    assert ifid(classifier, fashion, tmp_path, images, labels) == cold  # from the cache, the same values


def test_the_metric_plugin_gives_per_class_values_and_nan_for_an_unconditional_variant(
    classifier, fashion, cache_dir, train_part
):
    images, labels = train_part

    def evaluate(labels):
        ev = Evaluation(
            "x", "generation", images, labels, fashion, classifier, CPU, cache_dir, False,
            lambda: InceptionWeights(None, "not needed"),
        )  # fmt: skip
        return run_metrics(ev, [INTRA_CLASS_FID])

    conditional = evaluate(labels)
    overall, per_class = ifid(classifier, fashion, cache_dir, images, labels)
    assert conditional.values[C.IFID_DOMAIN] == overall and conditional.per_class[C.IFID_DOMAIN] == per_class
    assert not conditional.notes
    unconditional = evaluate(None)
    assert math.isnan(unconditional.values[C.IFID_DOMAIN]) and not unconditional.per_class
    assert unconditional.notes == {C.IFID_DOMAIN: "unconditional variant"}
