"""wgan-gp: Wasserstein GAN with a gradient penalty (Gulrajani et al. 2017).

λ = 10 on random interpolates of real and fake images, Adam(1e-4, β = 0.0/0.9), 5 critic
steps per generator step, and no batch norm in the critic (the penalty is per sample).
"""

from dataclasses import dataclass

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import AdversarialVariant, GANConfig
from ganbench.hparams import AtLeast, IntUniform, LogUniform, hparam
from ganbench.losses import GradientPenalty, Wasserstein
from ganbench.networks import NORMS


@dataclass(frozen=True)
class WGANGPConfig(GANConfig):
    """Search ranges: Lucic et al. 2018's wide ranges (compare_gan's WGAN-GP): GANConfig's
    learning rates and Adam betas, the penalty weight log-uniform in [0.1, 100), critic steps
    1..5."""

    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    gp_weight: float = hparam(10.0, search=LogUniform(1e-1, 1e2), valid=AtLeast(0))
    critic_steps: int = hparam(5, search=IntUniform(1, 5), valid=AtLeast(1))
    d_norm: str = "none"  # "layer" is the paper's other choice; never "batch" under a penalty

    def __post_init__(self):
        if self.critic_steps < 1:
            raise ValueError("critic_steps must be >= 1")
        if self.d_norm not in NORMS:
            raise ValueError(f"d_norm {self.d_norm!r} is unknown; accepted: {', '.join(NORMS)}")


class WGANGP(AdversarialVariant):
    def __init__(self, context, config: WGANGPConfig, **parts):
        super().__init__(
            context,
            config,
            loss=Wasserstein(),
            critic_steps=config.critic_steps,
            penalty=GradientPenalty(config.gp_weight),
            d_norm=config.d_norm,
            **parts,
        )


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="wgan-gp",
            build=WGANGP,
            config=WGANGPConfig,
            description="Wasserstein GAN, gradient penalty λ=10, Adam(1e-4, 0/0.9), 5 critic steps",
            reference="Gulrajani et al. 2017, arXiv:1704.00028",
        )
    )
