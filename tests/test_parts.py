"""Conditioning, losses and networks: the reusable parts variants compose."""

import math

import pytest
import torch
import torch.nn.functional as F

from ganbench.conditioning import EmbeddingMultiply, ImageConditioning, LabelChannels, LatentConditioning, OneHotConcat
from ganbench.losses import AuxiliaryClassification, LossSum, NonSaturating, nonsaturating_d_loss, nonsaturating_g_loss
from ganbench.networks import DCGANGenerator, DCGANTrunk, Discriminator, dcgan_init


def test_one_hot_concat():
    z = torch.randn(3, 5)
    out = OneHotConcat(4)(z, torch.tensor([0, 3, 1]))
    assert out.shape == (3, 9) and torch.equal(out[:, :5], z)
    assert out[:, 5:].tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]
    assert OneHotConcat(4).out_dim(5) == 9


def test_embedding_multiply():
    part = EmbeddingMultiply(10, 6)
    z = torch.randn(4, 6)
    labels = torch.tensor([1, 1, 2, 9])
    out = part(z, labels)
    assert torch.allclose(out, z * part.embedding.weight[labels])
    assert part.out_dim(6) == 6 and len(list(part.parameters())) == 1


def test_label_channels_are_one_hot_planes_of_the_image_size():
    images = torch.randn(2, 1, 28, 28)
    out = LabelChannels(10)(images, torch.tensor([3, 7]))
    assert out.shape == (2, 11, 28, 28) and torch.equal(out[:, :1], images)
    planes = out[:, 1:]
    assert torch.equal(planes[0, 3], torch.ones(28, 28)) and planes[0].sum() == 28 * 28
    assert torch.equal(planes[1, 7], torch.ones(28, 28)) and planes[1].sum() == 28 * 28


def test_unconditional_parts_pass_through():
    z, x = torch.randn(2, 3), torch.randn(2, 1, 4, 4)
    assert LatentConditioning()(z, None) is z and ImageConditioning()(x, None) is x
    assert not LatentConditioning.uses_labels and OneHotConcat.uses_labels and EmbeddingMultiply.uses_labels


def test_nonsaturating_losses_match_their_definitions():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    expected_d = -(F.logsigmoid(real).mean() + torch.log1p(-torch.sigmoid(fake)).mean())
    assert nonsaturating_d_loss(real, fake) == pytest.approx(expected_d.item(), rel=1e-6)
    assert nonsaturating_g_loss(fake) == pytest.approx(-F.logsigmoid(fake).mean().item(), rel=1e-6)
    assert nonsaturating_g_loss(torch.tensor([30.0])) < 1e-6  # a fooled D costs G nothing


def test_loss_sum_adds_the_auxiliary_term():
    real = {"adv": torch.tensor([1.0, 2.0]), "cls": torch.tensor([[5.0, 0.0], [0.0, 5.0]])}
    fake = {"adv": torch.tensor([-1.0, 0.0]), "cls": torch.tensor([[0.0, 5.0], [5.0, 0.0]])}
    labels, fake_labels = torch.tensor([0, 1]), torch.tensor([0, 1])
    total = LossSum(NonSaturating(), AuxiliaryClassification(2.0))
    aux = 2.0 * (F.cross_entropy(real["cls"], labels) + F.cross_entropy(fake["cls"], fake_labels))
    assert total.d_loss(real, fake, labels, fake_labels) == pytest.approx(
        (NonSaturating().d_loss(real, fake, labels, fake_labels) + aux).item()
    )
    assert total.g_loss(fake, fake_labels) == pytest.approx(
        (nonsaturating_g_loss(fake["adv"]) + 2.0 * F.cross_entropy(fake["cls"], fake_labels)).item()
    )


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_networks_shapes(shape):
    g = DCGANGenerator(110, shape, width=16)
    x = g(torch.randn(4, 110))
    assert x.shape == (4, *shape) and x.abs().max() <= 1
    d = Discriminator(LabelChannels(10), DCGANTrunk(shape[0] + 10, shape, width=16), {"adv": 1, "cls": 10})
    out = d(x, torch.arange(4))
    assert out["adv"].shape == (4,) and out["cls"].shape == (4, 10)


def test_networks_refuse_sizes_not_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        DCGANGenerator(10, (1, 30, 30))


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_trunk_norms(norm):
    trunk = DCGANTrunk(1, (1, 28, 28), width=8, norm=norm)
    assert trunk(torch.randn(2, 1, 28, 28)).shape == (2, trunk.features)
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in trunk.modules())
    assert has_bn == (norm == "batch")


def test_dcgan_init():
    g = DCGANGenerator(10, (1, 28, 28), width=32)
    dcgan_init(g)
    conv = g.net[4]
    assert abs(conv.weight.std().item() - 0.02) < 0.002 and math.isclose(conv.weight.mean().item(), 0, abs_tol=0.002)
