"""Each built-in variant trains on real Fashion-MNIST on the CPU, through the public checks."""

import pytest
import torch

from ganbench.testing import batch_source, build_variant, check_variant

VARIANTS = ["dcgan", "cgan", "acgan"]


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_passes_the_contract_checks(name, fashion):
    losses = check_variant(name, steps=3, splits=fashion)
    assert len(losses) == 3 and set(losses[0]) == {"d_loss", "g_loss"}


def test_conditional_flags(registry):
    assert not registry.variant("dcgan").conditional
    assert registry.variant("cgan").conditional and registry.variant("acgan").conditional


def test_cgan_feeds_labels_to_both_networks(fashion):
    v = build_variant("cgan", fashion)
    assert v.generator.backbone.net[0].in_features == 100 + 10  # z + one-hot label
    assert v.discriminator.trunk.net[0].in_channels == 1 + 10  # image + label planes
    x = torch.zeros(2, 1, 28, 28)
    v.train(False)
    with torch.no_grad():
        a = v.discriminator(x, torch.tensor([0, 0]))["adv"]
        b = v.discriminator(x, torch.tensor([0, 5]))["adv"]
    assert a[0] == b[0] and a[1] != b[1]  # D's verdict depends on the label


def test_acgan_has_real_fake_and_class_heads_trained_on_real_and_generated(fashion):
    v = build_variant("acgan", fashion)
    assert set(v.discriminator.heads) == {"adv", "cls"} and v.discriminator.heads["cls"].out_features == 10
    assert v.discriminator.trunk.net[0].in_channels == 1  # labels enter D only through the class head's loss
    z = torch.ones(1, 100)
    emb = v.generator.conditioning.embedding.weight
    assert torch.allclose(v.generator.conditioning(z, torch.tensor([4])), emb[4:5])
    # The class head learns: after some steps it classifies real images better than chance.
    source = batch_source(v, fashion)
    for _ in range(40):
        v.train_step(source)
    v.train(False)
    with torch.no_grad():
        logits = v.discriminator(((fashion.test_images[:500].float() / 127.5) - 1), None)["cls"]
    accuracy = (logits.argmax(1) == fashion.test_labels[:500]).float().mean().item()
    assert accuracy > 0.3


def test_hyperparameter_overrides_reach_the_optimisers(fashion):
    v = build_variant("dcgan", fashion, overrides={"lr_g": "1e-3", "beta1": "0.9", "g_width": "16"})
    assert v.opt_g.param_groups[0]["lr"] == 1e-3 and v.opt_g.param_groups[0]["betas"][0] == 0.9
    assert v.opt_d.param_groups[0]["lr"] == 2e-4
    assert v.generator.backbone.net[4].out_channels == 16


def test_same_seed_same_training(fashion):
    def losses():
        v = build_variant("cgan", fashion, seed=1)
        source = batch_source(v, fashion, seed=1)
        torch.manual_seed(1)
        return [v.train_step(source)["g_loss"].item() for _ in range(3)]

    assert losses() == losses()
