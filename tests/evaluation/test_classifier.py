import torch

from ganbench.evaluation import classifier as clf_module
from ganbench.data import DatasetSplits
from ganbench.evaluation.classifier import cache_path, fingerprint, load_or_train, load_weights_file


def test_held_out_classifier_reaches_the_required_test_accuracy(classifier, fashion):
    assert classifier.test_accuracy >= 0.91
    assert classifier.accuracy(fashion.test_images, fashion.test_labels) == classifier.test_accuracy


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


def test_a_different_dataset_gets_its_own_classifier_and_a_broken_cache_is_rebuilt(fashion, tmp_path, caplog):
    tiny = _tiny(fashion)
    assert fingerprint(tiny) != fingerprint(fashion)
    path = cache_path(tiny, tmp_path, fingerprint(tiny))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"truncated")
    clf = load_or_train(tiny, tmp_path, torch.device("cpu"))
    assert "cannot load" in caplog.text
    assert clf.path == path and 0.1 < clf.test_accuracy <= 1.0
    assert torch.load(path, weights_only=True)["test_accuracy"] == clf.test_accuracy


def test_training_is_seeded(fashion, monkeypatch):
    monkeypatch.setattr(clf_module, "EPOCHS", 1)
    tiny = _tiny(fashion)
    a = clf_module.train(tiny, torch.device("cpu"), epochs=1)
    b = clf_module.train(tiny, torch.device("cpu"), epochs=1)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
