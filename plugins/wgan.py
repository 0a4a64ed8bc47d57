"""wgan: Wasserstein GAN with weight clipping (Arjovsky, Chintala & Bottou 2017).

The critic has no sigmoid (its ``adv`` head is a linear score), its weights are clipped to
[-c, c] after every update, and it takes ``critic_steps`` updates per generator update, all
with RMSprop. One budget step is one generator update; the critic steps are recorded.
"""

from dataclasses import dataclass

import torch

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import BETA, AdversarialVariant, GANConfig
from ganbench.constraints import WeightClip
from ganbench.hparams import AtLeast, IntUniform, LogUniform, Positive, hparam
from ganbench.losses import Wasserstein


@dataclass(frozen=True)
class WGANConfig(GANConfig):
    """Search ranges: Lucic et al. 2018's wide ranges (compare_gan's WGAN): learning rates
    log-uniform in [1e-5, 1e-2), the clipping bound log-uniform in [1e-3, 1), critic steps 1..5.
    Adam's betas are not searched: RMSprop ignores them."""

    lr_g: float = 5e-5
    lr_d: float = 5e-5
    beta1: float = hparam(0.5, valid=BETA)  # unused by RMSprop
    beta2: float = hparam(0.999, valid=BETA)  # unused by RMSprop
    clip: float = hparam(0.01, search=LogUniform(1e-3, 1), valid=Positive())
    critic_steps: int = hparam(5, search=IntUniform(1, 5), valid=AtLeast(1))

    def __post_init__(self):
        if self.critic_steps < 1 or self.clip <= 0:
            raise ValueError("critic_steps must be >= 1 and clip > 0")


class WGAN(AdversarialVariant):
    def __init__(self, context, config: WGANConfig):
        super().__init__(
            context, config, loss=Wasserstein(), critic_steps=config.critic_steps, constraint=WeightClip(config.clip)
        )

    def make_optimizer(self, params, lr):
        return torch.optim.RMSprop(params, lr=lr)  # momentum-free, as the paper advises for clipping


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="wgan",
            build=WGAN,
            config=WGANConfig,
            description="Wasserstein GAN, weight clipping c=0.01, RMSprop, 5 critic steps",
            reference="Arjovsky, Chintala & Bottou 2017, arXiv:1701.07875",
        )
    )
