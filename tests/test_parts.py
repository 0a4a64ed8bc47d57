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


def test_the_auxiliary_loss_on_real_images_only_ignores_the_fakes_for_d_not_for_g():
    real = {"cls": torch.tensor([[5.0, 0.0], [0.0, 5.0]])}
    fake = {"cls": torch.tensor([[0.0, 5.0], [5.0, 0.0]])}
    labels = torch.tensor([0, 1])
    real_only = AuxiliaryClassification(1.0, on_fakes=False)
    assert real_only.d_loss(real, fake, labels, labels) == pytest.approx(F.cross_entropy(real["cls"], labels).item())
    assert real_only.g_loss(fake, labels) == pytest.approx(F.cross_entropy(fake["cls"], labels).item())


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


# --- Wasserstein losses, the gradient penalty and weight clipping -----------------------------

from ganbench.constraints import WeightClip  # noqa: E402
from ganbench.losses import GradientPenalty, Wasserstein, gradient_penalty  # noqa: E402


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    loss = Wasserstein()
    assert loss.d_loss({"adv": real}, {"adv": fake}, None, None).item() == -0.5 - 2.0
    assert loss.g_loss({"adv": fake}, None).item() == 0.5


@pytest.mark.parametrize("channels", [1, 11])  # an image; an image with 10 label channels
def test_gradient_penalty_of_a_linear_critic_equals_its_analytic_value(channels):
    # f(x) = <w, x> has gradient w everywhere: the penalty is weight * (||w|| - 1)^2 exactly,
    # with the norm over every input channel, label channels included.
    torch.manual_seed(0)
    w = torch.randn(channels, 28, 28, dtype=torch.float64) * 0.01
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real = torch.randn(8, channels, 28, 28, dtype=torch.float64)
    fake = torch.randn(8, channels, 28, 28, dtype=torch.float64)
    expected = 10.0 * (w.norm() - 1) ** 2
    assert gradient_penalty(critic, real, fake, weight=10.0).item() == pytest.approx(expected.item(), rel=1e-12)
    assert GradientPenalty(2.5)(critic, real, fake).item() == pytest.approx(expected.item() / 4, rel=1e-12)


def test_gradient_penalty_of_a_quadratic_critic_at_known_interpolates(monkeypatch):
    # f(x) = 0.5 ||x||^2 has gradient x: with eps fixed, the penalty is mean (||x_hat|| - 1)^2.
    real, fake = torch.full((2, 1, 2, 2), 1.0), torch.full((2, 1, 2, 2), -1.0)
    monkeypatch.setattr(torch, "rand", lambda *shape, **kw: torch.tensor([0.75, 0.5]).view(2, 1, 1, 1))
    critic = lambda x: 0.5 * x.pow(2).flatten(1).sum(1)  # noqa: E731
    # x_hat = 0.5 everywhere (norm 1) for eps 0.75; 0 everywhere (norm 0) for eps 0.5
    assert gradient_penalty(critic, real, fake, weight=1.0).item() == pytest.approx(((1 - 1) ** 2 + (0 - 1) ** 2) / 2)


def test_gradient_penalty_reaches_the_critic_weights():
    critic = torch.nn.Linear(4, 1)
    penalty = gradient_penalty(lambda x: critic(x).squeeze(1), torch.randn(5, 4), torch.randn(5, 4))
    penalty.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_weight_clip():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    torch.nn.init.normal_(net[0].weight, 0, 1)
    WeightClip(0.01)(net)
    assert all(p.abs().max() <= 0.01 for p in net.parameters())
