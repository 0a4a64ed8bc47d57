import math
import urllib.error
from unittest import mock

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity
from float32_tolerance import approx
from ganbench_plugins.metrics import CLASS_JUDGEMENT, DOMAIN_FIDELITY, compute_inception

from ganbench import columns as C
from ganbench.evaluation import Evaluation, fidelity, run_metrics
from ganbench.evaluation.fidelity import (
    ImageTensorDataset,
    InceptionWeights,
    domain_metrics,
    inception_fid,
    register_classifier_extractor,
    resolve_inception_weights,
)

CPU = torch.device("cpu")


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets, by scipy."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def scores(classifier, generated, real, cache_dir, name="fashion-mnist-test"):
    return domain_metrics(classifier, classifier.features(generated), real, name, cache_dir)


@pytest.mark.slow
def test_test_split_against_itself_is_zero(classifier, fashion, cache_dir):
    m = scores(classifier, fashion.test_images, fashion.test_images, cache_dir)
    assert abs(m["fid_domain"]) < 1e-6
    assert m["precision_domain"] == 1.0 and m["recall_domain"] == 1.0


@pytest.mark.slow
def test_disjoint_real_split_is_small_and_far_below_degenerate_samples(classifier, fashion, cache_dir):
    def fid(images):
        return scores(classifier, images, fashion.test_images, cache_dir)["fid_domain"]

    real = fid(fashion.train_images[:2000])
    one_class = fid(fashion.train_images[fashion.train_labels == 7][:2000])  # sneakers only: mode collapse
    noise = fid(torch.randint(0, 256, (2000, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    assert 0 < real < 1.0
    assert real < one_class / 50 and real < noise / 50


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # dead ReLU units: a singular covariance
def test_fid_domain_equals_a_direct_torch_fidelity_call_and_the_formula(classifier, fashion, cache_dir):
    generated = fashion.train_images[5000:6000]
    real = fashion.test_images[:1500]
    ours = scores(classifier, generated, real, cache_dir, "fashion-mnist-test-subset")
    direct = torch_fidelity.calculate_metrics(
        input1=ImageTensorDataset(generated),
        input2=ImageTensorDataset(real),
        feature_extractor=register_classifier_extractor(classifier),
        feature_extractor_weights_path=str(classifier.path),
        fid=True,
        cuda=False,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )
    # torch-fidelity as a user calls it: its own batches, the process's threads (float32_tolerance.py)
    assert ours["fid_domain"] == approx(C.FID_DOMAIN, direct[torch_fidelity.KEY_METRIC_FID], None, len(generated))
    by_formula = frechet(classifier.features(generated).double().numpy(), classifier.features(real).double().numpy())
    assert ours["fid_domain"] == pytest.approx(by_formula, rel=1e-3)


def test_kid_precision_and_recall_equal_a_direct_torch_fidelity_call(classifier, fashion, cache_dir):
    generated = fashion.train_images[:800]
    real = fashion.test_images[:1200]
    ours = scores(classifier, generated, real, cache_dir, "fashion-mnist-test-subset-1200")
    common = dict(
        input1=ImageTensorDataset(generated),
        feature_extractor=register_classifier_extractor(classifier),
        feature_extractor_weights_path=str(classifier.path),
        cuda=False,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )
    kid = torch_fidelity.calculate_metrics(input2=ImageTensorDataset(real), kid=True, kid_subset_size=800, **common)
    subset = torch.randperm(1200, generator=torch.Generator().manual_seed(0))[:800]  # the documented subset
    prc = torch_fidelity.calculate_metrics(input2=ImageTensorDataset(real[subset]), prc=True, **common)
    # torch-fidelity as a user calls it: its own batches, the process's threads (float32_tolerance.py)
    real_features, n = classifier.features(real), len(generated)
    assert ours["kid_domain"] == approx(C.KID_DOMAIN, kid[torch_fidelity.KEY_METRIC_KID_MEAN], real_features, n)
    assert ours["precision_domain"] == approx(C.PRECISION_DOMAIN, prc[torch_fidelity.KEY_METRIC_PRECISION], None, n)
    assert ours["recall_domain"] == approx(C.RECALL_DOMAIN, prc[torch_fidelity.KEY_METRIC_RECALL], None, n)
    assert 0 < ours["precision_domain"] < 1 and 0 < ours["recall_domain"] < 1  # not a trivial agreement


def test_evaluation_features_are_computed_once_and_shared_by_every_metric(fashion, classifier, cache_dir, monkeypatch):
    ev = Evaluation(
        "x", "generation", fashion.train_images[:300], fashion.train_labels[:300], fashion, classifier, CPU,
        cache_dir, False, lambda: InceptionWeights(None, "not needed"),
    )  # fmt: skip
    passes = []
    original = classifier.features_and_logits
    monkeypatch.setattr(classifier, "features_and_logits", lambda x: passes.append(len(x)) or original(x))
    monkeypatch.setattr(classifier, "logits", lambda x: pytest.fail("a second classifier pass"))
    result = run_metrics(ev, [DOMAIN_FIDELITY, CLASS_JUDGEMENT])
    assert passes == [300]
    assert result.values["fid_domain"] == scores(classifier, ev.samples, fashion.test_images, cache_dir)["fid_domain"]
    assert result.values["class_consistency"] > 0.5


def test_predictions_from_the_shared_pass_are_those_of_predict(fashion, classifier, cache_dir):
    images = fashion.test_images[:2500]  # several chunks of the classifier's batch
    ev = Evaluation(
        "x", "generation", images, None, fashion, classifier, CPU, cache_dir, False, lambda: InceptionWeights(None, "")
    )
    assert torch.equal(ev.features, classifier.features(images))
    assert torch.equal(ev.predicted, classifier.predict(images))


def test_registering_the_extractor_is_idempotent(classifier):
    assert register_classifier_extractor(classifier) == register_classifier_extractor(classifier) == classifier.name


# --- Inception FID: works with weights, NaN with a reason without them, never crashes ----------


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_no_weights_and_no_download_gives_a_reason(empty_hub):
    weights = resolve_inception_weights(None, download=False)
    assert weights.path is None and "pass --inception-weights FILE" in weights.reason


def test_a_failed_download_gives_a_reason_not_an_exception(empty_hub, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    weights = resolve_inception_weights(None, download=True)
    assert weights.path is None
    assert "download failed (URLError" in weights.reason and "--inception-weights" in weights.reason


def test_a_weights_file_with_the_wrong_hash_is_refused(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not inception")
    weights = resolve_inception_weights(path)
    assert weights.path is None and "sha256" in weights.reason and fidelity.INCEPTION_SHA256_PREFIX in weights.reason


def test_inception_metric_is_nan_with_its_reason(classifier, fashion, cache_dir):
    evaluation = Evaluation(
        "x", "generation", fashion.test_images[:60], None, fashion, classifier, CPU, cache_dir, True,
        lambda: InceptionWeights(None, "weights unavailable here"),
    )  # fmt: skip
    out = compute_inception(evaluation)
    assert math.isnan(out.values["fid_inception"]) and out.notes["fid_inception"] == "weights unavailable here"


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """Inception-v3 with random weights: the real network and code path, without the download."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.manual_seed(0)
    with mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", return_value=None), \
            mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None):  # fmt: skip
        extractor = FeatureExtractorInceptionV3(fidelity.INCEPTION_EXTRACTOR, ["2048"])
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(extractor.state_dict(), path)
    return path


@pytest.mark.slow
def test_inception_fid_with_a_given_weights_file(random_inception_weights, fashion, cache_dir, monkeypatch):
    digest = fidelity.sha256(random_inception_weights)
    monkeypatch.setattr(fidelity, "INCEPTION_SHA256_PREFIX", digest[:8])
    weights = resolve_inception_weights(random_inception_weights)
    assert weights.path == random_inception_weights and weights.reason == ""
    generated, real = fashion.train_images[:24], fashion.test_images[:24]  # Inception is slow on a CPU
    ours = inception_fid(weights.path, generated, real, "fashion-mnist-inception-test", cache_dir, CPU)
    direct = torch_fidelity.calculate_metrics(
        input1=ImageTensorDataset(generated, rgb=True),
        input2=ImageTensorDataset(real, rgb=True),
        feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(random_inception_weights),
        fid=True,
        cuda=False,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )
    assert math.isfinite(ours) and ours == approx(C.FID_INCEPTION, direct[torch_fidelity.KEY_METRIC_FID], None, 24)


def test_grayscale_is_repeated_to_three_channels(fashion):
    rgb = ImageTensorDataset(fashion.test_images[:2], rgb=True)[1]
    assert rgb.shape == (3, 28, 28) and torch.equal(rgb[0], rgb[2]) and rgb.dtype == torch.uint8
