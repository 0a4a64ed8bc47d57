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
from ganbench.hparams import AtLeast, BatchSize, Choice, Interval, LogUniform, Positive, Uniform, hparam
from ganbench.losses import GANLoss
from ganbench.networks import ConditionalGenerator, DCGANGenerator, DCGANTrunk, Discriminator, dcgan_init
from ganbench.variant import GenerativeVariant, VariantContext, frozen

# penalty(critic, real_inputs, fake_inputs) -> scalar added to the critic loss, where critic
# maps conditioned discriminator inputs to the "adv" output.
Penalty = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor], torch.Tensor]
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


class AdversarialVariant(GenerativeVariant):
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
    ) -> None:
        super().__init__(context, config)
        latent = latent or LatentConditioning()
        image = image or ImageConditioning()
        channels = context.image_shape[0]
        self.z_dim = config.z_dim
        if latent.uses_labels != context.conditional:
            raise ValueError(
                f"{type(self).__name__}: its spec says conditional={context.conditional}, but its latent "
                f"conditioning {type(latent).__name__} {'uses' if latent.uses_labels else 'ignores'} labels"
            )
        self.loss = loss
        self.critic_steps = critic_steps
        self.penalty = penalty
        self.constraint = constraint
        self.generator = ConditionalGenerator(
            latent, DCGANGenerator(latent.out_dim(config.z_dim), context.image_shape, config.g_width)
        )
        self.discriminator = Discriminator(
            image,
            DCGANTrunk(image.out_channels(channels), context.image_shape, config.d_width, d_norm),
            heads or {"adv": 1},
        )
        for net in (self.generator, self.discriminator):
            dcgan_init(net)
            net.to(context.device)
        self.accelerate(self.generator)
        self.accelerate(self.discriminator, compile=False)
        # train_step calls D.condition and D.score, which bypass D's own (compiled) forward: its
        # trunk, the convolutions, is what gets compiled. Not under a penalty: compiled graphs
        # cannot take the double backward of a gradient penalty.
        self.accelerate(self.discriminator.trunk, compile=context.compile and penalty is None)
        self.opt_g = self.make_optimizer(self.generator.parameters(), config.lr_g)
        self.opt_d = self.make_optimizer(self.discriminator.parameters(), config.lr_d)

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

    def critic(self, inputs: torch.Tensor) -> torch.Tensor:
        """D's ``adv`` score of conditioned inputs, under the run's autocast, in fp32: what a
        penalty differentiates (its autograd.grad runs outside autocast, as AMP advises)."""
        with self.autocast():
            return self.discriminator.score(inputs)["adv"].float()

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
                d_loss = self.loss.d_loss(_fp32(D.score(real_in)), _fp32(D.score(fake_in)), real.labels, fake_labels)
            if self.penalty is not None:
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
