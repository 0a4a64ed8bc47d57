import math

import torch

from ganbench import MetricSpec
from ganbench.evaluation import Evaluation, MetricValues, generate_samples, run_metrics
from ganbench.evaluation.fidelity import InceptionWeights
from ganbench.testing import build_variant

CPU = torch.device("cpu")


def evaluation(fashion, classifier, cache_dir, final=True, labels=None):
    return Evaluation("v", "generation", fashion.test_images[:100], labels, fashion, classifier, CPU, cache_dir, final,
                      lambda: InceptionWeights(None, "none"))  # fmt: skip


def test_generated_samples_are_balanced_deterministic_and_leave_training_rng_alone(fashion):
    v = build_variant("cgan", fashion)
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    a, labels, rate = generate_samples(v, 105, 10, True, seed=9)
    assert torch.equal(torch.rand(3), expected_next)  # the global RNG was not touched
    b, _, _ = generate_samples(v, 105, 10, True, seed=9)
    assert a.dtype == torch.uint8 and a.shape == (105, 1, 28, 28) and torch.equal(a, b) and rate > 0
    assert torch.bincount(labels).tolist() == [11] * 5 + [10] * 5
    assert all(m.training for m in v.networks().values())  # modes restored
    _, none, _ = generate_samples(build_variant("dcgan", fashion), 20, 10, False, seed=9)
    assert none is None


def test_a_failing_metric_gives_nan_and_a_note(fashion, classifier, cache_dir):
    def boom(ev):
        raise ValueError("bad input")

    specs = [
        MetricSpec("boom", ("b1", "b2"), boom),
        MetricSpec("fine", ("f",), lambda ev: {"f": 1.5}),
        MetricSpec("expensive", ("e",), lambda ev: {"e": 2.0}, final_only=True),
        MetricSpec("explained", ("x",), lambda ev: MetricValues({"x": math.nan}, notes={"x": "why"})),
    ]
    result = run_metrics(evaluation(fashion, classifier, cache_dir, final=False), specs)
    assert math.isnan(result.values["b1"]) and math.isnan(result.values["b2"])
    assert result.notes["b1"] == "boom failed: ValueError: bad input"
    assert result.values["f"] == 1.5 and math.isnan(result.values["e"]) and result.notes["x"] == "why"
    assert run_metrics(evaluation(fashion, classifier, cache_dir, final=True), specs).values["e"] == 2.0


def test_predictions_are_computed_once(fashion, classifier, cache_dir, monkeypatch):
    ev = evaluation(fashion, classifier, cache_dir)
    expected = classifier.logits(ev.samples).argmax(1)  # computed independently, before any counting
    calls = []
    original = classifier.logits  # predict() goes through logits(): count the classifier's passes

    def counting_logits(images):
        calls.append(len(images))
        return original(images)

    monkeypatch.setattr(classifier, "logits", counting_logits)
    first = ev.predicted
    second = ev.predicted
    assert calls == [len(ev.samples)]  # one classifier pass over the samples, for both reads
    assert second is first  # the shared tensor, not a recomputation
    assert torch.equal(first, expected)
    assert len(set(expected.tolist())) > 1  # real test images: not a comparison between constants
