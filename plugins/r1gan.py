"""r1gan: the non-saturating GAN with the R1 penalty (Mescheder, Geiger & Nowozin 2018):
gamma/2 * E||grad_x D(x)||^2 on real images, on D's whole output. D has no norm layers by
default (R1 is a per-sample penalty; batch norm is refused)."""

from dataclasses import dataclass

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import AdversarialVariant, KitConfig
from ganbench.hparams import AtLeast, Choice, Interval, LogUniform, hparam
from ganbench.losses import NonSaturating, PenaltySum, R1Penalty, R2Penalty


@dataclass(frozen=True)
class R1GANConfig(KitConfig):
    """gamma = 10 and Adam(1e-4, β = 0/0.99), the values of Mescheder et al. 2018's released
    configurations (GAN_stability); D without norm layers, as their networks are.

    Search ranges: GANConfig's learning rates (Lucic et al. 2018), gamma log-uniform in
    [0.1, 100) (the paper's Figure 5 sweeps gamma over this span), beta2 in {0.9, 0.99, 0.999}
    (Lucic et al.'s two and the paper's), n_dis 1..5."""

    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.0
    # Lucic et al.'s two values and the paper's own 0.99, so the default lies inside its range.
    beta2: float = hparam(0.99, search=Choice(0.9, 0.99, 0.999), valid=Interval(0, 1, include_high=False))
    d_norm: str = "none"
    r1_weight: float = hparam(10.0, search=LogUniform(1e-1, 1e2), valid=AtLeast(0))
    r2_weight: float = hparam(0.0, valid=AtLeast(0))  # R2 (on fakes), off as in the paper's experiments


class R1GAN(AdversarialVariant):
    def __init__(self, context, config: R1GANConfig):
        terms = [R1Penalty(config.r1_weight)] + ([R2Penalty(config.r2_weight)] if config.r2_weight else [])
        super().__init__(
            context,
            config,
            loss=NonSaturating(),
            d_norm=config.d_norm,
            g_spectral=config.g_spectral,
            critic_steps=config.critic_steps,
            arch=config.arch,
            penalty=terms[0] if len(terms) == 1 else PenaltySum(*terms),
        )


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="r1gan",
            build=R1GAN,
            config=R1GANConfig,
            description="non-saturating GAN with the R1 penalty gamma=10, Adam(1e-4, 0/0.99)",
            reference="Mescheder, Geiger & Nowozin 2018, arXiv:1801.04406",
        )
    )
