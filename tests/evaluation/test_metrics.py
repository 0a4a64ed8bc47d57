import math

import pytest
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


def _specs(fixtures_dir, name):
    from ganbench.registry import load_registry

    path = str(fixtures_dir / name)
    registry = load_registry([path], environ={})
    assert not [e for e in registry.errors if e.plugin == path]
    return {n: r.spec for n, r in registry.metrics.items() if r.plugin == path}


def test_a_metric_that_breaks_the_contract_gets_a_note_naming_it_and_the_others_keep_their_values(
    fashion, classifier, cache_dir, fixtures_dir
):
    specs = _specs(fixtures_dir, "plugin_bad_outputs.py")
    ev = evaluation(fashion, classifier, cache_dir, labels=fashion.test_labels[:100])
    alone = run_metrics(ev, [specs["good"]])
    result = run_metrics(ev, list(specs.values()))
    assert result.values["good_value"] == alone.values["good_value"] and 0 < alone.values["good_value"] < 1
    assert alone.notes == {} and "good_value" not in result.notes
    # a declared column that was returned keeps its value beside the mistake
    assert result.values["declared_value"] == 1.0 and result.values["present_value"] == 3.0
    assert "stray_value" not in result.values
    assert result.notes["metric undeclared"] == (
        "returned undeclared column(s) stray_value, ignored (declared: declared_value)"
    )
    assert math.isnan(result.values["absent_value"])
    assert result.notes["absent_value"] == "metric missing did not return it"
    assert result.notes["nan_value"] == "metric silent-nan returned NaN without a reason (give one in notes)"
    assert math.isnan(result.values["text_value"])
    assert result.notes["text_value"] == "metric text returned a str 'high', not a float"
    assert math.isnan(result.values["tensor_value"])
    assert result.notes["tensor_value"] == "metric tensor returned a torch.Tensor, not a float (return .item())"
    assert math.isnan(result.values["raised_value"])
    assert result.notes["raised_value"] == "raising failed: ZeroDivisionError: division by zero"
    assert result.values["class_value"] == 0.5 and "class_value" not in result.per_class
    assert result.notes["metric bad-per-class"] == (
        "per_class 'class_value' has 2 values, not one per class (10); ignored"
    )
    # every value is a float: the row stays numeric
    assert all(isinstance(v, float) for v in result.values.values())


def test_a_metric_receives_its_options_and_only_its_own(fashion, classifier, cache_dir, fixtures_dir):
    from ganbench.config import variant_config

    bright = _specs(fixtures_dir, "plugin_third_party.py")["bright-fraction"]
    seen = []
    other = MetricSpec("other", ("o",), lambda ev: seen.append(ev.options) or {"o": 1.0})
    ev = evaluation(fashion, classifier, cache_dir)
    pixels = fashion.test_images[:100].float() / 255
    default = run_metrics(ev, [bright, other])
    assert default.values["bright_fraction"] == pytest.approx((pixels > 0.5).float().mean().item(), rel=1e-6)
    options = {"bright-fraction": variant_config("bright-fraction", bright.config, {"threshold": "0.8"})}
    strict = run_metrics(ev, [bright, other], options)
    assert strict.values["bright_fraction"] == pytest.approx((pixels > 0.8).float().mean().item(), rel=1e-6)
    assert strict.values["bright_fraction"] < default.values["bright_fraction"]
    assert [type(o).__name__ for o in seen] == ["NoConfig", "NoConfig"]  # its own defaults, not bright's options
    assert ev.options is None  # set for each metric in turn, and cleared after
