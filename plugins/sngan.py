"""sngan: spectrally normalised discriminator with the hinge loss (Miyato et al. 2018).

On the DCGAN networks by default (the paper's "standard CNN" comparisons use networks of that
family), so it runs on 28x28 Fashion-MNIST at dcgan's FLOPs per step."""

from dataclasses import dataclass

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import AdversarialVariant, KitConfig
from ganbench.losses import Hinge


@dataclass(frozen=True)
class SNGANConfig(KitConfig):
    """Adam(1e-4, β = 0.5/0.999), one D step per G step: setting B of Miyato et al. 2018's
    Table 1, one of the settings where SN-GAN did best on the standard CNN and the one at
    dcgan's cost per step (settings with n_dis = 5 cost five D updates per step).

    Search ranges: GANConfig's (Lucic et al. 2018's wide ranges) and n_dis 1..5 (the values
    of Miyato et al.'s Table 1)."""

    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999


class SNGAN(AdversarialVariant):
    def __init__(self, context, config: SNGANConfig):
        super().__init__(
            context,
            config,
            loss=Hinge(),
            d_norm=config.d_norm,
            g_spectral=config.g_spectral,
            critic_steps=config.critic_steps,
            arch=config.arch,
        )


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="sngan",
            build=SNGAN,
            config=SNGANConfig,
            description="spectral-norm discriminator, hinge loss, Adam(1e-4, 0.5/0.999)",
            reference="Miyato et al. 2018, arXiv:1802.05957",
        )
    )
