"""Each built-in variant trains on real Fashion-MNIST on the CPU, through the public checks."""

import pytest
import torch

from ganbench.testing import batch_source, build_variant, check_variant

VARIANTS = ["dcgan", "cgan", "acgan", "wgan", "wgan-gp", "cgan-wgangp", "srgan"]


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_passes_the_contract_checks(name, fashion):
    losses = check_variant(name, steps=3, splits=fashion)
    expected = {"d_loss", "g_loss", "content_loss"} if name == "srgan" else {"d_loss", "g_loss"}
    assert len(losses) == 3 and set(losses[0]) == expected


def test_conditional_flags_and_tasks(registry):
    conditional = {name for name in VARIANTS if registry.variant(name).conditional}
    assert conditional == {"cgan", "acgan", "cgan-wgangp"}
    assert {name for name in VARIANTS if registry.variant(name).task == "super-resolution"} == {"srgan"}


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


@pytest.mark.slow
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


def test_wgan_keeps_every_critic_weight_within_the_clip(fashion):
    v = build_variant("wgan", fashion)
    assert isinstance(v.opt_d, torch.optim.RMSprop) and v.opt_d.param_groups[0]["lr"] == 5e-5
    source = batch_source(v, fashion)
    losses = v.train_step(source)
    assert all((p.abs() <= torch.tensor(0.01)).all() for p in v.discriminator.parameters())
    assert source.images_seen == 5 * 64 and v.critic_steps == 5  # one step = one G update after 5 critic updates
    assert torch.isfinite(losses["d_loss"])
    v = build_variant("wgan", fashion, overrides={"clip": "0.05", "critic_steps": "2"})
    source = batch_source(v, fashion)
    v.train_step(source)
    clip = torch.tensor(0.05)  # the clip as float32, as the weights are
    assert source.images_seen == 2 * 64 and all((p.abs() <= clip).all() for p in v.discriminator.parameters())


def test_wgan_gp_critic_has_no_batch_norm_and_paper_optimiser(fashion):
    v = build_variant("wgan-gp", fashion)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in v.discriminator.modules())
    group = v.opt_d.param_groups[0]
    assert isinstance(v.opt_d, torch.optim.Adam) and group["lr"] == 1e-4 and group["betas"] == (0.0, 0.9)
    assert v.critic_steps == 5 and v.penalty.weight == 10.0


def test_cgan_wgangp_penalises_through_the_label_channels(fashion, monkeypatch):
    v = build_variant("cgan-wgangp", fashion)
    seen = []
    penalty = v.penalty

    def spy(critic, real, fake):
        seen.append((real.shape, real[:, 1:], fake[:, 1:]))
        return penalty(critic, real, fake)

    v.penalty = spy
    v.train_step(batch_source(v, fashion))
    assert len(seen) == 5
    shape, real_planes, fake_planes = seen[0]
    assert shape[1] == 1 + 10  # image + one-hot label channels
    assert torch.equal(real_planes, fake_planes)  # fakes are paired with the real labels
    assert torch.equal(real_planes.sum(1), torch.ones(shape[0], 28, 28))


@pytest.mark.slow
def test_srgan_learns_to_upscale(fashion):
    from ganbench.evaluation import upscale_samples
    from ganbench.superres import psnr

    v = build_variant("srgan", fashion)
    targets = fashion.test_images[:300]

    def score():
        v.train(False)
        out, _ = upscale_samples(v.upscale, targets, 2, torch.device("cpu"))
        v.train(True)
        return psnr(out, targets).mean().item()

    before = score()
    source = batch_source(v, fashion)
    for _ in range(60):
        v.train_step(source)
    assert score() > before + 3  # dB


def test_srgan_classifier_content_loss_needs_the_features(fashion):
    with pytest.raises(ValueError, match="classifier"):
        build_variant("srgan", fashion, overrides={"content": "classifier"})
