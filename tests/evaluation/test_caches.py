"""Caches are data, never code: a planted pickle never runs, and a damaged cache is rebuilt."""

import copy
import dataclasses
import logging
import math
import shutil
from pathlib import Path

import pytest
import torch

import ganbench
from ganbench.evaluation import cache, fidelity
from ganbench.evaluation import classifier as clf_module
from ganbench.evaluation.fidelity import domain_metrics, inception_fid, resolve_inception_weights

CPU = torch.device("cpu")
OLD_FIDELITY_CACHES = (  # the names torch-fidelity's caches had under <cache>/fidelity/
    "ganbench-fashion-mnist-test-c2df23e9d135-ganbench-fashion-mnist-classifier-c2df23e9d135-v1-features-features",
    "ganbench-fashion-mnist-test-c2df23e9d135-ganbench-fashion-mnist-classifier-c2df23e9d135-v1-stat-fid-features",
    "ganbench-fashion-mnist-test-rgb-inception-v3-compat-stat-fid-2048",
)


class Planted:
    """Unpickling it creates ``marker``: what a crafted cache file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def plant(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(Planted(marker), path)


def test_a_planted_pickle_runs_code_when_loaded_unsafely(tmp_path):
    """The threat, and proof that the planted files below would show it."""
    marker = tmp_path / "ran"
    plant(tmp_path / "x.pt", marker)
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert marker.exists()


def _run(cache_dir: Path, out: Path):
    return ganbench.run(
        variants="cgan", budget="3steps", evals=1, eval_samples=100, device="cpu", download=False,
        cache_dir=cache_dir, out=out, probes=(),  # the probes' judges have their own broken-cache test
    )  # fmt: skip


@pytest.mark.slow
def test_pickles_planted_in_every_cache_location_never_run(classifier, tmp_path, monkeypatch):
    cache_dir, hub, marker = tmp_path / "cache", tmp_path / "hub", tmp_path / "ran"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    (cache_dir / "classifiers").mkdir(parents=True)
    shutil.copy(classifier.path, cache_dir / "classifiers")  # the session's: no 2-minute training
    _run(cache_dir, tmp_path / "clean")  # finds which files a run reads: plant over each of them
    read_by_a_run = sorted(cache_dir.glob("classifiers/*.pt")) + sorted(cache_dir.glob("features/*.pt"))
    assert any(p.parent.name == "features" for p in read_by_a_run)
    hub_weights = hub / "checkpoints" / fidelity.INCEPTION_URL.rsplit("/", 1)[1]
    old = [cache_dir / "fidelity" / f"{name}.pt" for name in OLD_FIDELITY_CACHES]
    for path in [*read_by_a_run, *old, hub_weights]:
        plant(path, marker)
    # the planted Inception file passes the hash check: only the safe load stands in its way
    monkeypatch.setattr(fidelity, "INCEPTION_SHA256_PREFIX", fidelity.sha256(hub_weights)[:8])
    retrained, original_train = [], clf_module.train

    def quick_train(splits, device, **kwargs):  # the refused classifier is retrained: on a fraction, for speed
        retrained.append(splits.name)
        small = dataclasses.replace(
            splits, train_images=splits.train_images[:2000], train_labels=splits.train_labels[:2000]
        )
        return original_train(small, device, epochs=1)

    monkeypatch.setattr(clf_module, "train", quick_train)

    metrics = _run(cache_dir, tmp_path / "planted").metrics
    assert not marker.exists()
    row = metrics[metrics["variant"] == "cgan"].iloc[-1]
    assert math.isfinite(row["fid_domain"])
    assert retrained == ["fashion-mnist"]
    assert math.isnan(row["fid_inception"]) and "cannot be loaded safely (UnpicklingError" in row["note"]
    for path in read_by_a_run:  # each planted file was read, refused and replaced by a sound one
        assert isinstance(cache.safe_load(path), dict)


# --- a damaged feature cache: one warning line, rebuilt, the same values ---------------------------


def scores(classifier, fashion, cache_dir):
    generated = classifier.features(fashion.train_images[:200])
    return domain_metrics(classifier, generated, fashion.test_images[:600], "test-part", cache_dir)


@pytest.fixture(scope="module")
def clean(classifier, fashion, tmp_path_factory):
    """Values from a fresh cache, and the file it wrote."""
    cache_dir = tmp_path_factory.mktemp("clean")
    values = scores(classifier, fashion, cache_dir)
    path = cache.cache_path(cache_dir, f"test-part-{classifier.name}")  # the features (beside the real side)
    assert path.is_file()
    return values, path


def random_bytes(path, clean_file):
    path.write_bytes(
        torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0)).byte().numpy().tobytes()
    )


def truncated(path, clean_file):
    path.write_bytes(clean_file.read_bytes()[: clean_file.stat().st_size // 2])


def empty(path, clean_file):
    path.write_bytes(b"")


def one_flipped_byte(path, clean_file):
    data = bytearray(clean_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the stored features
    path.write_bytes(bytes(data))


def planted_pickle(path, clean_file):
    plant(path, path.parent / "ran")


def made_for_other_images(path, clean_file):
    cache.write(path, {"images_sha256": "another split"}, {"features": torch.zeros(3, 128)})


@pytest.mark.parametrize(
    "damage", [random_bytes, truncated, empty, one_flipped_byte, planted_pickle, made_for_other_images]
)
def test_a_damaged_feature_cache_is_rebuilt_with_one_warning_line(damage, classifier, fashion, clean, tmp_path, caplog):
    values, clean_file = clean
    path = tmp_path / "features" / clean_file.name
    path.parent.mkdir()
    damage(path, clean_file)
    with caplog.at_level(logging.WARNING):
        assert scores(classifier, fashion, tmp_path) == values
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert str(path) in warning and warning.endswith("; rebuilding it") and "\n" not in warning
    assert not (tmp_path / "features" / "ran").exists()
    caplog.clear()
    assert scores(classifier, fashion, tmp_path) == values and not caplog.records  # rebuilt: read without complaint


def test_a_crafted_inception_weights_file_is_refused_even_when_its_hash_matches(fashion, tmp_path, monkeypatch):
    marker, weights = tmp_path / "ran", tmp_path / "weights.pth"
    plant(weights, marker)
    monkeypatch.setattr(fidelity, "INCEPTION_SHA256_PREFIX", fidelity.sha256(weights)[:8])
    resolved = resolve_inception_weights(weights)
    assert resolved.path == weights
    with pytest.raises(ValueError, match=r"cannot be loaded safely \(UnpicklingError: Unsupported global") as info:
        inception_fid(weights, fashion.test_images[:4], fashion.test_images[:4], "x", tmp_path, CPU)
    assert "\n" not in str(info.value) and not marker.exists()


def test_a_classifier_with_other_weights_and_the_same_name_does_not_reuse_the_cache(
    classifier, fashion, tmp_path, caplog
):
    before = scores(classifier, fashion, tmp_path)
    net = copy.deepcopy(classifier.net)  # as if retrained elsewhere: same data, same name, other weights
    with torch.no_grad():
        net.fc[0].weight.mul_(1.5)
    other = dataclasses.replace(classifier, net=net)
    assert other.name == classifier.name
    with caplog.at_level(logging.WARNING):
        after = scores(other, fashion, tmp_path)
    assert "made for other inputs (weights_sha256 differ)" in caplog.text
    assert after["fid_domain"] != before["fid_domain"]
