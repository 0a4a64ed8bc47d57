import logging

import pytest
import torch

from ganbench.data import DatasetSplits
from ganbench.evaluation import classifier as clf_module
from ganbench.evaluation.classifier import cache_path, fingerprint, load_or_train, load_weights_file
from ganbench.harness.provenance import classifier_record


def test_held_out_classifier_reaches_the_required_test_accuracy(classifier, fashion):
    correct = 0
    with torch.no_grad():  # the network itself, in its own batches: not the code that computed the cached value
        for images, labels in zip(fashion.test_images.split(250), fashion.test_labels.split(250)):
            correct += (classifier.net(images).argmax(1) == labels).sum().item()
    accuracy = correct / len(fashion.test_labels)
    assert accuracy >= 0.91
    assert classifier.test_accuracy == pytest.approx(accuracy, abs=1e-4)  # one image in 10,000


def test_cached_weights_load_with_weights_only_and_are_reused(classifier, fashion, cache_dir, monkeypatch):
    state = torch.load(classifier.path, map_location="cpu", weights_only=True)
    assert state["test_accuracy"] == classifier.test_accuracy
    assert state["dataset"] == "fashion-mnist" and state["fingerprint"] == fingerprint(fashion)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been reused")

    monkeypatch.setattr(clf_module, "train", no_training)
    again = load_or_train(fashion, cache_dir, torch.device("cpu"))
    assert again.path == classifier.path and again.test_accuracy == classifier.test_accuracy
    assert torch.equal(again.logits(fashion.test_images[:50]), classifier.logits(fashion.test_images[:50]))


def test_features_are_the_penultimate_layer(classifier, fashion):
    net, _ = load_weights_file(classifier.path)
    x = fashion.test_images[:8]
    feats = classifier.features(x)
    assert feats.shape == (8, clf_module.FEATURE_DIM)
    with torch.no_grad():
        assert torch.allclose(net.head(feats), classifier.logits(x), atol=1e-5)


def _tiny(fashion, name="tiny"):
    return DatasetSplits(
        name, fashion.train_images[:1000], fashion.train_labels[:1000],
        fashion.test_images[:200], fashion.test_labels[:200], fashion.class_names,
    )  # fmt: skip


class Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling it would create the marker file
        return open, (str(self.marker), "w")


def truncated(path, classifier):
    path.write_bytes(classifier.path.read_bytes()[:1000])


def planted_pickle(path, classifier):
    torch.save(Planted(path.parent / "ran"), path)


@pytest.mark.parametrize("damage", [truncated, planted_pickle])
def test_a_broken_classifier_file_is_retrained_with_one_warning_line(damage, classifier, fashion, tmp_path, caplog):
    tiny = _tiny(fashion)
    assert fingerprint(tiny) != fingerprint(fashion)  # a different dataset gets its own classifier
    path = cache_path(tiny, tmp_path, fingerprint(tiny))
    path.parent.mkdir(parents=True)
    damage(path, classifier)
    with caplog.at_level(logging.WARNING):
        clf = load_or_train(tiny, tmp_path, torch.device("cpu"))
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"cannot load {path} (" in warning and warning.endswith("training it again") and "\n" not in warning
    assert not (path.parent / "ran").exists()
    assert clf.path == path and 0.1 < clf.test_accuracy <= 1.0
    assert torch.load(path, weights_only=True)["test_accuracy"] == clf.test_accuracy
    files = [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")]  # the build lock stays
    assert files == [path.name]  # written atomically: no temporary left


def test_weights_hash_is_the_one_in_the_run_record(classifier):
    assert classifier.weights_sha256 == classifier_record(classifier)["weights_sha256"]


def test_training_is_seeded(fashion, monkeypatch):
    monkeypatch.setattr(clf_module, "EPOCHS", 1)
    tiny = _tiny(fashion)
    a = clf_module.train(tiny, torch.device("cpu"), epochs=1)
    b = clf_module.train(tiny, torch.device("cpu"), epochs=1)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
