"""ganbench.testing catches the mistakes plugin authors make."""

import pytest
import torch
from ganbench_plugins.cgan import CGAN
from ganbench_plugins.dcgan import DCGAN

from ganbench import VariantSpec
from ganbench.adversarial import GANConfig
from ganbench.testing import batch_source, build_variant, check_generate, check_labels_honoured, check_train_step


class IgnoresLabels(CGAN):
    def generate(self, z, labels):
        return super().generate(z, torch.zeros_like(labels))  # always class 0


class LeaksGraph(DCGAN):
    def train_step(self, data):
        losses = super().train_step(data)
        return {k: v.clone().requires_grad_() for k, v in losses.items()}


class ReadsNoData(DCGAN):
    def train_step(self, data):
        return {"loss": torch.zeros(())}


class OutOfRange(DCGAN):
    def generate(self, z, labels):
        return 2 * super().generate(z, labels).sign()  # -2 and 2: outside [-1, 1]


class WrongShape(DCGAN):
    def generate(self, z, labels):
        return super().generate(z, labels)[:, :, :14]


def test_a_generator_that_ignores_labels_is_caught(fashion):
    with pytest.raises(AssertionError, match="labels are ignored"):
        check_labels_honoured(build_variant(VariantSpec("x", IgnoresLabels, GANConfig, conditional=True), fashion))
    check_labels_honoured(build_variant(VariantSpec("y", CGAN, GANConfig, conditional=True), fashion))


def test_undetached_losses_and_no_data_are_caught(fashion):
    v = build_variant(VariantSpec("x", LeaksGraph, GANConfig), fashion)
    with pytest.raises(AssertionError, match="must be detached"):
        check_train_step(v, batch_source(v, fashion))
    v = build_variant(VariantSpec("x", ReadsNoData, GANConfig), fashion)
    with pytest.raises(AssertionError, match="consumed no real batch"):
        check_train_step(v, batch_source(v, fashion))


def test_check_generate_checks_shape_and_range(fashion):
    v = build_variant("dcgan", fashion)
    images = check_generate(v, conditional=False, n=7)
    assert images.shape == (7, 1, 28, 28)
    with pytest.raises(AssertionError, match=r"in \[-1, 1\]"):
        check_generate(build_variant(VariantSpec("x", OutOfRange, GANConfig), fashion), conditional=False)
    with pytest.raises(AssertionError, match=r"shape \(20, 1, 14, 28\), expected \(20, 1, 28, 28\)"):
        check_generate(build_variant(VariantSpec("x", WrongShape, GANConfig), fashion), conditional=False)
