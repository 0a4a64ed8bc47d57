"""dcgan: unconditional DCGAN with the non-saturating BCE loss (Radford et al. 2016).

Search ranges: GANConfig's, the wide ranges of Lucic et al. 2018."""

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import AdversarialVariant, GANConfig
from ganbench.losses import NonSaturating


class DCGAN(AdversarialVariant):
    def __init__(self, context, config: GANConfig):
        super().__init__(context, config, loss=NonSaturating())


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="dcgan",
            build=DCGAN,
            config=GANConfig,
            description="unconditional DCGAN, non-saturating BCE loss",
            reference="Radford, Metz & Chintala 2016, arXiv:1511.06434",
        )
    )
