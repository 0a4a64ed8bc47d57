"""acgan: auxiliary-classifier GAN. The label embedding is multiplied into z; D has a
real/fake head and a class head, both trained on real and generated images (Odena et al. 2017)."""

from dataclasses import dataclass

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import AdversarialVariant, GANConfig
from ganbench.conditioning import EmbeddingMultiply
from ganbench.hparams import AtLeast, hparam
from ganbench.losses import AuxiliaryClassification, LossSum, NonSaturating


@dataclass(frozen=True)
class ACGANConfig(GANConfig):
    """Search ranges: GANConfig's (Lucic et al. 2018); aux_weight, which their protocol does not
    cover, is not searched (``--search acgan.aux_weight=log(0.1,10)`` adds it)."""

    aux_weight: float = hparam(1.0, valid=AtLeast(0))  # weight of the auxiliary classification loss, for D and G
    # Train D's class head on generated images too, with their requested labels (the paper's
    # and the common reference implementation's choice). False: on real images only.
    cls_on_fakes: bool = True


class ACGAN(AdversarialVariant):
    def __init__(self, context, config: ACGANConfig):
        super().__init__(
            context,
            config,
            loss=LossSum(NonSaturating(), AuxiliaryClassification(config.aux_weight, config.cls_on_fakes)),
            latent=EmbeddingMultiply(context.num_classes, config.z_dim),
            heads={"adv": 1, "cls": context.num_classes},
        )


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="acgan",
            build=ACGAN,
            config=ACGANConfig,
            conditional=True,
            description="auxiliary-classifier GAN: label embedding x z, real/fake + class heads",
            reference="Odena, Olah & Shlens 2017, arXiv:1610.09585",
        )
    )
