"""Alternating generator/discriminator training, composed from parts.

:class:`AdversarialVariant` is the training step that the built-in variants share; what
makes each variant is the parts it passes in: latent and image conditioning
(:mod:`ganbench.conditioning`), a loss (:mod:`ganbench.losses`), discriminator heads, an
optional penalty on the critic and an optional constraint applied after each critic update.
A third-party variant may use it, or implement :class:`ganbench.GenerativeVariant` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ganbench.conditioning import ImageConditioning, LatentConditioning
from ganbench.data import Batch, BatchSource
from ganbench.hparams import AtLeast, BatchSize, Choice, Interval, IntUniform, LogUniform, Positive, Uniform, hparam
from ganbench.losses import GANLoss
from ganbench.networks import ConditionalGenerator, DCGANGenerator, DCGANTrunk, Discriminator, dcgan_init
from ganbench.normalization import apply_spectral_norm
from ganbench.resnet import ARCHS, ResNetGenerator, ResNetTrunk, check_resnet_shape, resnet_init
from ganbench.variant import GenerativeVariant, VariantContext, frozen

# penalty(critic, real_inputs, fake_inputs) -> scalar added to the critic loss, where critic
# maps conditioned discriminator inputs to the "adv" output. A penalty with a true
# `takes_labels` attribute is called penalty(critic, real_inputs, fake_inputs, real_labels,
# fake_labels) and may call critic(inputs, labels): D's whole output, a projection term included.
Penalty = Callable[..., torch.Tensor]
# constraint(discriminator), applied after every critic update (e.g. weight clipping).
Constraint = Callable[[nn.Module], None]


# Adam's betas: torch accepts 0 <= beta < 1.
BETA = Interval(0, 1, include_high=False)


@dataclass(frozen=True)
class GANConfig:
    """Hyperparameters shared by the DCGAN-family variants (Radford et al. 2016 defaults;
    batch 64 as in Lucic et al. 2018, so that all built-ins consume data at the same rate).

    Search ranges: the wide ranges of Lucic et al. 2018 (their compare_gan code's): learning
    rates log-uniform in [1e-5, 1e-2), Adam's beta1 uniform in [0, 1); beta2, which compare_gan
    leaves at Adam's 0.999, is a choice of 0.9 (WGAN-GP's) or 0.999 (Adam's default), the two
    values GAN papers use.
    """

    z_dim: int = hparam(100, valid=AtLeast(1))
    batch_size: int = hparam(64, valid=BatchSize())
    lr_g: float = hparam(2e-4, search=LogUniform(1e-5, 1e-2), valid=Positive())
    lr_d: float = hparam(2e-4, search=LogUniform(1e-5, 1e-2), valid=Positive())
    beta1: float = hparam(0.5, search=Uniform(0, 1), valid=BETA)
    beta2: float = hparam(0.999, search=Choice(0.9, 0.999), valid=BETA)
    g_width: int = hparam(64, valid=AtLeast(1))
    d_width: int = hparam(64, valid=AtLeast(1))


# Discriminator normalisations the kit's variants accept: batch norm is not among them (it
# couples a batch's samples, which per-sample penalties such as R1 assume independent, and
# its division by the batch's spread undoes the Lipschitz bound spectral norm gives).
KIT_D_NORMS = ("spectral", "layer", "none")


@dataclass(frozen=True)
class KitConfig(GANConfig):
    """GANConfig plus the variant kit's network options (sngan, cgan-pd, r1gan).

    ``arch``: "dcgan" (:mod:`ganbench.networks`) or "resnet" (:mod:`ganbench.resnet`, at 32x32
    and 64x64 only); ``d_norm``: "spectral" (spectral norm on every convolution and linear layer of D, no norm
    layers), "layer" or "none"; ``g_spectral``: spectral norm on G's layers too (as SAGAN and
    BigGAN do); ``critic_steps``: D updates per G update (n_dis).
    """

    arch: str = "dcgan"  # or "resnet" (32x32 and 64x64 images): ganbench.resnet
    d_norm: str = "spectral"
    g_spectral: bool = False
    critic_steps: int = hparam(1, search=IntUniform(1, 5), valid=AtLeast(1))

    def check_image_shape(self, image_shape: tuple[int, int, int]) -> None:
        """ValueError when ``arch`` cannot build networks for images of ``image_shape`` (C, H, W)."""
        if self.arch == "resnet":
            check_resnet_shape(image_shape)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch {self.arch!r} is unknown; accepted: {', '.join(ARCHS)}")
        if self.d_norm not in KIT_D_NORMS:
            why = "batch norm conflicts with spectral norm and per-sample penalties" if self.d_norm == "batch" else "unknown"
            raise ValueError(f"d_norm {self.d_norm!r}: {why}; accepted: {', '.join(KIT_D_NORMS)}")


class AdversarialVariant(GenerativeVariant):
    """The shared training step, built from parts (see the module docstring).

    To bring your own networks, override :meth:`build_generator` and/or
    :meth:`build_discriminator` (and :meth:`init_weights` for another init): they are called
    in ``__init__`` before spectral norm is applied and before the optimisers are built, and
    everything else (devices, the fast path, FLOP counting, checkpoints) works as for the
    DCGAN networks. The generator is called as ``G(z, labels)``; the discriminator must offer
    ``condition(images, labels)``, ``score(inputs, labels)`` (``{head: output}``) and
    ``forward(images, labels)``, as :class:`ganbench.networks.Discriminator` does.
    """

    def __init__(
        self,
        context: VariantContext,
        config: GANConfig,
        *,
        loss: GANLoss,
        latent: LatentConditioning | None = None,
        image: ImageConditioning | None = None,
        heads: Mapping[str, int] | None = None,
        d_norm: str = "batch",
        critic_steps: int = 1,
        penalty: Penalty | None = None,
        constraint: Constraint | None = None,
        projection: bool = False,
        g_spectral: bool = False,
        class_bn: bool = False,
        arch: str = "dcgan",
    ) -> None:
        super().__init__(context, config)
        if arch not in ARCHS:
            raise ValueError(f"arch {arch!r} is unknown; accepted: {', '.join(ARCHS)}")
        if arch == "resnet":
            check_resnet_shape(context.image_shape)
        self.arch = arch  # read by build_generator, build_discriminator and init_weights
        self.class_bn = class_bn
        latent = latent or LatentConditioning()
        image = image or ImageConditioning()
        self.z_dim = config.z_dim
        self.loss = loss
        self.critic_steps = critic_steps
        self.penalty = penalty
        self.constraint = constraint
        self.generator = self.build_generator(latent)
        uses_labels = getattr(self.generator, "uses_labels", latent.uses_labels)
        if uses_labels != context.conditional:
            raise ValueError(
                f"{type(self).__name__}: its spec says conditional={context.conditional}, but its generator "
                f"({type(latent).__name__} conditioning) {'uses' if uses_labels else 'ignores'} labels"
            )
        self.discriminator = self.build_discriminator(
            image, dict(heads or {"adv": 1}), d_norm, context.num_classes if projection else None
        )
        spectral = {self.generator: g_spectral, self.discriminator: d_norm == "spectral"}
        for net in (self.generator, self.discriminator):
            self.init_weights(net)
            if spectral[net]:  # after init (the power iteration starts from the initial weights)
                apply_spectral_norm(net, embeddings=net is self.discriminator)
            net.to(context.device)
        self.accelerate(self.generator, compile=context.compile and not g_spectral)
        self.accelerate(self.discriminator, compile=False)
        # train_step calls D.condition and D.score, which bypass D's own (compiled) forward: its
        # trunk, the convolutions, is what gets compiled. Not under a penalty: compiled graphs
        # cannot take the double backward of a gradient penalty. Not spectrally normalised
        # either: the power iteration's in-place buffer updates are not worth the risk.
        compile_trunk = context.compile and penalty is None and not spectral[self.discriminator]
        self.accelerate(self.discriminator.trunk, compile=compile_trunk)
        # Built last: every parameter (spectral norm's reparametrised weights included) is final.
        self.opt_g = self.make_optimizer(self.generator.parameters(), config.lr_g)
        self.opt_d = self.make_optimizer(self.discriminator.parameters(), config.lr_d)

    def build_generator(self, latent: LatentConditioning) -> nn.Module:
        """G(z, labels) -> images in [-1, 1]: the DCGAN (or ResNet) generator behind
        ``latent``, with class-conditional batch norm when built with ``class_bn=True``."""
        classes = self.context.num_classes if self.class_bn else None
        network = ResNetGenerator if self.arch == "resnet" else DCGANGenerator
        backbone = network(latent.out_dim(self.config.z_dim), self.context.image_shape, self.config.g_width, classes)
        return ConditionalGenerator(latent, backbone)

    def build_discriminator(
        self, image: ImageConditioning, heads: dict[str, int], d_norm: str, projection: int | None
    ) -> nn.Module:
        """D: ``image`` conditioning, the DCGAN (or ResNet) trunk, linear ``heads``, and a projection head
        over ``projection`` classes when it is not None. ``d_norm="spectral"`` is applied by
        the caller, after :meth:`init_weights`."""
        network = ResNetTrunk if self.arch == "resnet" else DCGANTrunk
        trunk = network(image.out_channels(self.context.image_shape[0]), self.context.image_shape, self.config.d_width, d_norm)
        return Discriminator(image, trunk, heads, projection)

    def init_weights(self, net: nn.Module) -> None:
        (resnet_init if self.arch == "resnet" else dcgan_init)(net)

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        # foreach: one multi-tensor kernel per update op instead of a loop over parameters (the
        # CPU default); bit-identical results. Not fused=True: different rounding, no faster on CPU.
        return torch.optim.Adam(params, lr=lr, betas=(self.config.beta1, self.config.beta2), foreach=True)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def sample_labels(self, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        return torch.randint(0, self.context.num_classes, (n,), device=self.device)

    def fake_labels(self, real: Batch) -> torch.Tensor | None:
        """Labels the fakes of a critic step are generated with: uniformly random classes
        (None when unconditional). Override to pair fakes with the real batch's labels."""
        return self.sample_labels(len(real))

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator(z, labels)

    def critic(self, inputs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's ``adv`` score of conditioned inputs (a projection term included, given the
        labels), under the run's autocast, in fp32: what a penalty differentiates (its
        autograd.grad runs outside autocast, as AMP advises)."""
        with self.autocast():
            return self.discriminator.score(inputs, labels)["adv"].float()

    def train_step(self, data: BatchSource) -> dict[str, torch.Tensor]:
        # Forward passes and losses run under self.autocast() (a no-op under fp32); head
        # outputs enter the losses in fp32, and backward passes and optimiser steps run outside.
        G, D = self.generator, self.discriminator
        for i in range(self.critic_steps):
            real = data.next()
            fake_labels = self.fake_labels(real)
            with self.autocast():
                # Only the last critic step's fakes feed the generator update; keep their graph.
                with torch.set_grad_enabled(i == self.critic_steps - 1):
                    fake = G(self.sample_latent(len(real)), fake_labels)
                real_in = D.condition(real.images, real.labels)
                fake_in = D.condition(fake.detach(), fake_labels)
                real_out, fake_out = _fp32(D.score(real_in, real.labels)), _fp32(D.score(fake_in, fake_labels))
                d_loss = self.loss.d_loss(real_out, fake_out, real.labels, fake_labels)
            if self.penalty is None:
                pass
            elif getattr(self.penalty, "takes_labels", False):
                d_loss = d_loss + self.penalty(self.critic, real_in, fake_in, real.labels, fake_labels)
            else:
                d_loss = d_loss + self.penalty(self.critic, real_in, fake_in)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            if self.constraint is not None:
                self.constraint(D)
        with frozen(D):  # the generator update needs no discriminator weight gradients
            with self.autocast():
                g_loss = self.loss.g_loss(_fp32(D(fake, fake_labels)), fake_labels)
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}


def _fp32(heads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Head outputs in fp32 for the losses (``.float()`` of an fp32 tensor is the tensor itself)."""
    return {name: out.float() for name, out in heads.items()}
