"""The variant contract: frozen networks, one source of truth for conditioning, and a
generator differentiable in z."""

import pytest
import torch
from ganbench_plugins.dcgan import DCGAN

from ganbench import VariantSpec
from ganbench.adversarial import GANConfig
from ganbench.testing import build_variant
from ganbench.variant import frozen


@pytest.mark.parametrize("name", ["dcgan", "cgan", "acgan", "wgan-gp"])
def test_generate_is_differentiable_in_z(name, fashion):
    v = build_variant(name, fashion)
    z = v.sample_latent(4).requires_grad_(True)
    labels = torch.arange(4) if v.conditional else None
    with v.frozen():
        v.generate(z, labels).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_frozen_stops_parameter_gradients_and_restores_modes_and_flags(fashion):
    v = build_variant("cgan", fashion)
    v.train(True)
    v.discriminator.heads["adv"].weight.requires_grad_(False)  # a flag the variant chose itself
    with v.frozen():
        assert all(not p.requires_grad for net in v.networks().values() for p in net.parameters())
        assert not any(net.training for net in v.networks().values())
        v.generate(v.sample_latent(2).requires_grad_(True), torch.tensor([0, 1])).sum().backward()
    assert all(p.grad is None for p in v.generator.parameters())
    assert all(net.training for net in v.networks().values())
    assert not v.discriminator.heads["adv"].weight.requires_grad
    assert v.discriminator.heads["adv"].bias.requires_grad


def test_frozen_modules_keep_their_mode_unless_asked():
    net = torch.nn.BatchNorm1d(3).train()
    with frozen(net):
        assert net.training and not net.weight.requires_grad
    with frozen(net, eval_mode=True):
        assert not net.training
    assert net.training and net.weight.requires_grad


def test_the_spec_is_the_one_source_of_truth_for_conditioning(fashion):
    assert build_variant("cgan", fashion).conditional and not build_variant("dcgan", fashion).conditional
    with pytest.raises(ValueError, match=r"its spec says conditional=True, but its generator \(LatentConditioning conditioning\) ignores labels"):
        build_variant(VariantSpec("x", DCGAN, GANConfig, conditional=True), fashion)
