"""cgan-pd: the projection-discriminator cGAN (Miyato & Koyama 2018), the standard modern
conditional baseline: class-conditional batch norm in G, a projection head in D
(adv = linear(h) + <embed(y), h>), spectral norm on D, hinge loss.

Fakes in a D step are generated with the real batch's labels, as in the paper's code, so both
halves of the hinge loss see the same class mix."""

from dataclasses import dataclass

from ganbench_plugins.sngan import SNGANConfig

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import AdversarialVariant
from ganbench.losses import Hinge


@dataclass(frozen=True)
class CGANPDConfig(SNGANConfig):
    """SNGANConfig's optimiser (Miyato et al. 2018's setting B, at dcgan's cost per step; the
    projection paper's ResNet runs use Adam(2e-4, 0/0.9) with n_dis = 5: ``--set
    cgan-pd.lr_d=2e-4 ...`` restores them). Search ranges: SNGANConfig's (Lucic et al. 2018's wide ranges for the
    optimiser, n_dis 1..5)."""


class CGANPD(AdversarialVariant):
    def __init__(self, context, config: CGANPDConfig):
        super().__init__(
            context,
            config,
            loss=Hinge(),
            d_norm=config.d_norm,
            g_spectral=config.g_spectral,
            critic_steps=config.critic_steps,
            arch=config.arch,
            class_bn=True,
            projection=True,
        )

    def fake_labels(self, real):
        return real.labels


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="cgan-pd",
            build=CGANPD,
            config=CGANPDConfig,
            conditional=True,
            description="projection discriminator cGAN: conditional BN in G, projection D, spectral norm, hinge",
            reference="Miyato & Koyama 2018, arXiv:1802.05637",
        )
    )
