"""lsgan: the least-squares GAN (Mao et al. 2017), as a third-party ganbench plugin.

The discriminator regresses real images to 1 and fakes to 0 (a = 0, b = 1); the generator
pulls its fakes' scores to 1 (c = 1). Everything else is ganbench's DCGAN-family variant.
"""

from dataclasses import dataclass

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import AdversarialVariant, GANConfig
from ganbench.hparams import Interval, LogUniform, Positive, Uniform, hparam


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
    """Search ranges: the wide ranges of Lucic et al. 2018 (compare_gan's LSGAN), declared here
    as a third-party variant declares its own; beta2 and the rest keep GANConfig's."""

    lr_g: float = hparam(2e-4, search=LogUniform(1e-5, 1e-2), valid=Positive())
    lr_d: float = hparam(2e-4, search=LogUniform(1e-5, 1e-2), valid=Positive())
    beta1: float = hparam(0.5, search=Uniform(0, 1), valid=Interval(0, 1, include_high=False))


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
