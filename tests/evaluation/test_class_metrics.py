import math

import pytest
import torch

from ganbench.evaluation.class_metrics import class_consistency, class_coverage


def test_class_consistency_of_real_test_images_is_the_classifier_test_accuracy(classifier, fashion):
    overall, per_class = class_consistency(classifier.predict(fashion.test_images), fashion.test_labels, 10)
    assert overall == classifier.test_accuracy
    assert len(per_class) == 10
    # balanced test split: the overall accuracy is the mean of the per-class accuracies
    assert overall == pytest.approx(sum(per_class) / 10, abs=1e-12)


def test_per_class_values():
    requested = torch.tensor([0, 0, 1, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2])
    overall, per_class = class_consistency(predicted, requested, 4)
    assert overall == pytest.approx(4 / 6)
    assert per_class[:3] == pytest.approx([0.5, 2 / 3, 1.0])
    assert math.isnan(per_class[3])  # class 3 was never requested


def test_class_coverage():
    assert class_coverage(torch.arange(1000) % 10, 10) == pytest.approx(1.0)
    assert class_coverage(torch.full((100,), 3), 10) == 0.0
    assert math.copysign(1, class_coverage(torch.full((100,), 3), 10)) == 1  # printed as 0, not -0
    assert class_coverage(torch.tensor([0, 1] * 50), 10) == pytest.approx(math.log(2) / math.log(10))
