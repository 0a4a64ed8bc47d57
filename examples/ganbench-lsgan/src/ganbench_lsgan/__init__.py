"""lsgan: the least-squares GAN (Mao et al. 2017), as a third-party ganbench plugin.

The discriminator regresses real images to 1 and fakes to 0 (a = 0, b = 1); the generator
pulls its fakes' scores to 1 (c = 1). Everything else is ganbench's DCGAN-family variant.
"""

from dataclasses import dataclass

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import AdversarialVariant, GANConfig


class LeastSquares:
    """Least-squares loss on the discriminator's ``adv`` head, read as a score (no sigmoid)."""

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real, fake, real_labels, fake_labels):
        return 0.5 * ((real["adv"] - self.b).pow(2).mean() + (fake["adv"] - self.a).pow(2).mean())

    def g_loss(self, fake, fake_labels):
        return 0.5 * (fake["adv"] - self.c).pow(2).mean()


@dataclass(frozen=True)
class LSGANConfig(GANConfig):
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5


class LSGAN(AdversarialVariant):
    def __init__(self, context, config: LSGANConfig):
        super().__init__(context, config, loss=LeastSquares())


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="lsgan",
            build=LSGAN,
            config=LSGANConfig,
            description="least-squares GAN (a=0, b=c=1), an installed third-party plugin",
            reference="Mao et al. 2017, arXiv:1611.04076",
        )
    )
