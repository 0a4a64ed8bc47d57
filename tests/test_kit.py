"""The variant kit (issue 18): spectral norm, conditional batch norm, the projection head,
hinge, R1/R2, ResNet networks, and the variants built from them (sngan, cgan-pd, r1gan).
Each part is checked against a computation written out here."""

import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganbench.adversarial import AdversarialVariant, GANConfig, KitConfig
from ganbench.conditioning import ImageConditioning
from ganbench.data import BatchSource, to_float
from ganbench.losses import Hinge, NonSaturating, R1Penalty, R2Penalty, hinge_d_loss, hinge_g_loss
from ganbench.networks import ConditionalGenerator, DCGANTrunk, Discriminator
from ganbench.normalization import ConditionalBatchNorm, apply_spectral_norm, is_spectral
from ganbench.resnet import ResNetGenerator, ResNetTrunk
from ganbench.testing import batch_source, build_variant, check_variant
from ganbench.variant import VariantContext


def _real_images(fashion, n, size=28):
    x = to_float(fashion.train_images[:n])
    return F.pad(x, [(size - 28) // 2] * 4, value=-1.0) if size != 28 else x


def test_spectral_norm_brings_every_layers_largest_singular_value_to_one(fashion):
    torch.manual_seed(0)
    trunk = apply_spectral_norm(DCGANTrunk(1, (1, 28, 28), width=16, norm="spectral"))
    assert is_spectral(trunk)
    with torch.no_grad():  # raw weights far from sigma 1, so the normalisation has work to do
        for m in trunk.modules():
            if isinstance(m, nn.Conv2d):
                m.parametrizations.weight.original.mul_(3.0)
    x = _real_images(fashion, 32)
    trunk.train()
    for _ in range(30):  # each training forward runs one power iteration
        trunk(x)
    trunk.eval()
    for m in trunk.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight  # the normalised weight the layer uses
            sigma = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), 2)
            raw = torch.linalg.matrix_norm(m.parametrizations.weight.original.reshape(w.shape[0], -1), 2)
            assert sigma.item() == pytest.approx(1.0, abs=2e-2) and raw.item() > 1.5


def test_the_kit_builds_spectral_norm_before_the_optimisers(fashion):
    variant = build_variant("sngan", fashion)
    d_params = {id(p) for g in variant.opt_d.param_groups for p in g["params"]}
    assert d_params == {id(p) for p in variant.discriminator.parameters()}
    assert is_spectral(variant.discriminator) and not is_spectral(variant.generator)
    originals = [m.parametrizations.weight.original for m in variant.discriminator.modules() if hasattr(m, "parametrizations")]
    assert originals and all(id(p) in d_params for p in originals)
    g_spectral = build_variant("sngan", fashion, overrides={"g_spectral": True})
    assert is_spectral(g_spectral.generator)


def test_conditional_batch_norm_equals_batch_norm_then_a_per_class_affine(fashion):
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm(8, 10)
    x = torch.randn(16, 8, 5, 5)
    labels = fashion.train_labels[:16]
    at_init = cbn(x, labels)
    assert torch.allclose(at_init, F.batch_norm(x, None, None, training=True), atol=1e-6)  # gain 1, bias 0
    with torch.no_grad():
        cbn.gamma.weight.normal_()
        cbn.beta.weight.normal_()
    out = cbn(x, labels)
    normed = F.batch_norm(x, None, None, training=True, eps=1e-5)
    by_hand = torch.stack([cbn.gamma.weight[y][:, None, None] * normed[i] + cbn.beta.weight[y][:, None, None] for i, y in enumerate(labels.tolist())])
    assert torch.allclose(out, by_hand, atol=1e-5)
    flat = ConditionalBatchNorm(8, 10, dims=1)
    v = torch.randn(16, 8)
    assert torch.allclose(flat(v, labels), F.batch_norm(v, None, None, training=True), atol=1e-6)


def test_projection_head_adds_the_inner_product_of_the_class_embedding_and_the_features(fashion):
    torch.manual_seed(0)
    trunk = DCGANTrunk(1, (1, 28, 28), width=8, norm="none")
    d = Discriminator(ImageConditioning(), trunk, {"adv": 1}, projection=10)
    x, y = _real_images(fashion, 6), fashion.train_labels[:6]
    h = trunk(x)
    expected = d.heads["adv"](h).squeeze(1) + torch.stack([h[i] @ d.projection.weight[y[i]] for i in range(6)])
    assert torch.allclose(d(x, y)["adv"], expected, atol=1e-5)
    # a different label changes the score by exactly the change of the inner product
    y2 = (y + 1) % 10
    delta = d(x, y2)["adv"] - d(x, y)["adv"]
    assert torch.allclose(delta, ((d.projection.weight[y2] - d.projection.weight[y]) * h).sum(1), atol=1e-4)


def test_without_projection_the_discriminator_has_no_extra_parameters():
    torch.manual_seed(0)
    plain = Discriminator(ImageConditioning(), DCGANTrunk(1, (1, 28, 28), width=8), {"adv": 1})
    torch.manual_seed(0)
    proj = Discriminator(ImageConditioning(), DCGANTrunk(1, (1, 28, 28), width=8), {"adv": 1}, projection=10)
    # created after the heads: the common parameters come first, in order, with the same init draws
    common = list(plain.state_dict())
    assert list(proj.state_dict())[: len(common)] == common and plain.projection is None
    assert all(torch.equal(plain.state_dict()[k], proj.state_dict()[k]) for k in common)


def test_hinge_loss_matches_its_formula():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.2, 1.5])
    expected_d = (torch.clamp(1 - real, min=0).sum() / 3) + (torch.clamp(1 + fake, min=0).sum() / 3)
    assert hinge_d_loss(real, fake).item() == pytest.approx(expected_d.item())
    assert hinge_d_loss(real, fake).item() == pytest.approx((0 + 0.5 + 2.0) / 3 + (0 + 1.2 + 2.5) / 3)
    assert hinge_g_loss(fake).item() == pytest.approx(-(-3.0 + 0.2 + 1.5) / 3)
    loss = Hinge()
    assert loss.d_loss({"adv": real}, {"adv": fake}, None, None) == hinge_d_loss(real, fake)
    assert loss.g_loss({"adv": fake}, None) == hinge_g_loss(fake)


def _cgan_pd(fashion):
    return build_variant("cgan-pd", fashion, overrides={"d_norm": "none"})


def test_r1_equals_the_squared_gradient_norm_of_the_full_discriminator(fashion):
    variant = _cgan_pd(fashion)  # projection discriminator: the penalty must see the class term
    D = variant.discriminator
    x, y = _real_images(fashion, 8), fashion.train_labels[:8]
    real_in = D.condition(x, y)
    got = R1Penalty(10.0)(variant.critic, real_in, real_in * 0, y, y)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(xr, y)["adv"].sum(), xr)
    assert got.item() == pytest.approx(5.0 * grad.pow(2).sum().item() / 8, rel=1e-4)
    # the projection term matters: without the labels' embedding the gradient differs
    (grad_adv,) = torch.autograd.grad(D.heads["adv"](D.trunk(xr)).sum(), xr)
    assert not torch.allclose(grad_adv, grad, atol=1e-6)
    # R2 is the same on the fakes
    fake = variant.generate(variant.sample_latent(8), y).detach()
    got2 = R2Penalty(2.0)(variant.critic, real_in, D.condition(fake, y), y, y)
    fr = fake.clone().requires_grad_(True)
    (grad2,) = torch.autograd.grad(D(fr, y)["adv"].sum(), fr)
    assert got2.item() == pytest.approx(grad2.pow(2).sum().item() / 8, rel=1e-4)


def test_r1gan_adds_r1_to_the_discriminator_loss(fashion):
    # same seed, same batches: r1_weight=0 vs 10 differ in d_loss by the penalty term only at step 1
    losses = {}
    for w in (0.0, 10.0):
        variant = build_variant("r1gan", fashion, overrides={"r1_weight": w})
        losses[w] = float(variant.train_step(batch_source(variant, fashion))["d_loss"])
    assert losses[10.0] > losses[0.0]


@pytest.mark.parametrize("size", [32, 64])
def test_resnet_networks_at_32_and_64(size):
    torch.manual_seed(0)
    g = ResNetGenerator(16, (1, size, size), width=8, num_classes=10)
    labels = torch.arange(4)
    x = g(torch.randn(4, 16), labels)
    assert x.shape == (4, 1, size, size) and x.abs().max() <= 1
    d = ResNetTrunk(1, (1, size, size), width=8)
    assert d(x).shape == (4, 8) and d.features == 8


def test_resnet_refuses_28x28():
    with pytest.raises(ValueError, match=r"does not support 28x28 images; supported sizes: 32x32, 64x64"):
        ResNetGenerator(16, (1, 28, 28))
    with pytest.raises(ValueError, match="supported sizes: 32x32, 64x64"):
        KitConfig(arch="resnet").check_image_shape((1, 28, 28))
    KitConfig(arch="resnet").check_image_shape((3, 64, 64))


@pytest.mark.parametrize("name", ["sngan", "cgan-pd", "r1gan"])
def test_kit_variants_train_with_resnet_networks_on_32x32_fashion(name, fashion):
    from ganbench.registry import load_registry
    from ganbench.config import variant_config

    spec = load_registry().variant(name)
    torch.manual_seed(0)
    context = VariantContext((1, 32, 32), 10, torch.device("cpu"), conditional=spec.conditional)
    config = variant_config(name, spec.config, {"arch": "resnet", "g_width": 16, "d_width": 16, "batch_size": 16})
    variant = spec.build(context, config)
    assert isinstance(variant.discriminator.trunk, ResNetTrunk)
    images = F.pad(fashion.train_images[:256], [2, 2, 2, 2])
    source = BatchSource(images, fashion.train_labels[:256], 16, 0)
    before = [p.detach().clone() for p in variant.generator.parameters()]
    for _ in range(2):
        losses = variant.train_step(source)
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, variant.generator.parameters()))
    with variant.evaluating():
        labels = torch.arange(4) if spec.conditional else None
        assert variant.generate(variant.sample_latent(4), labels).shape == (4, 1, 32, 32)


@pytest.mark.parametrize("name", ["sngan", "cgan-pd", "r1gan"])
def test_kit_variants_pass_the_contract_checks(name, fashion):
    losses = check_variant(name, steps=2, splits=fashion)
    assert len(losses) == 2


def test_a_variant_brings_its_own_networks(fashion):
    class Tiny(AdversarialVariant):
        def __init__(self, context, config):
            super().__init__(context, config, loss=NonSaturating(), d_norm="spectral")

        def build_generator(self, latent):
            backbone = nn.Sequential(nn.Linear(self.config.z_dim, 28 * 28), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
            return ConditionalGenerator(latent, backbone)  # G(z, labels), the conditioning in front

        def build_discriminator(self, image, heads, d_norm, projection):
            trunk = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 32), nn.LeakyReLU(0.2))
            trunk.features = 32
            return Discriminator(image, trunk, heads, projection)

    torch.manual_seed(0)
    context = VariantContext((1, 28, 28), 10, torch.device("cpu"))
    variant = Tiny(context, GANConfig(batch_size=16))
    assert is_spectral(variant.discriminator)
    source = BatchSource(fashion.train_images[:64], fashion.train_labels[:64], 16, 0)
    before = [p.detach().clone() for p in variant.generator.parameters()]
    variant.train_step(source)
    assert any(not torch.equal(a, b) for a, b in zip(before, variant.generator.parameters()))
    # the checkpoint round trip keeps the spectral-norm state (u vectors included)
    state = variant.state_dict()
    torch.manual_seed(1)
    other = Tiny(context, GANConfig(batch_size=16))
    other.load_state_dict(state)
    x = to_float(fashion.train_images[:4])
    variant.train(False), other.train(False)
    assert torch.equal(variant.discriminator(x)["adv"], other.discriminator(x)["adv"])


@pytest.mark.parametrize(
    "setting, message",
    [
        ("sngan.d_norm=batch", "d_norm 'batch': batch norm conflicts with spectral norm"),
        ("r1gan.r1_weight=-1", "r1_weight must be >= 0"),
        ("sngan.arch=resnet", "arch=resnet does not support 28x28 images; supported sizes: 32x32, 64x64"),
        ("cgan-pd.arch=vgg", "arch 'vgg' is unknown; accepted: dcgan, resnet"),
    ],
)
def test_bad_kit_settings_exit_2_with_one_line(setting, message, tmp_path, ganbench_cli, cache_dir):
    variant = setting.split(".")[0]
    env = {**os.environ, "GANBENCH_CACHE": str(cache_dir)}
    out = ganbench_cli("run", "--variants", variant, "--dataset", "fashion-mnist", "--budget", "2steps",
                       "--set", setting, "--out", tmp_path / "run", env=env, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ganbench: error: ") and message in last, out.stderr
    assert not (tmp_path / "run").exists()
