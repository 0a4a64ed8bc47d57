"""cgan: conditional GAN. G gets the one-hot label concatenated to z; D gets the label as
one-hot image channels concatenated to the image (Mirza & Osindero 2014).

Search ranges: GANConfig's, the wide ranges of Lucic et al. 2018."""

from ganbench import VariantSpec, hookimpl
from ganbench.adversarial import AdversarialVariant, GANConfig
from ganbench.conditioning import LabelChannels, OneHotConcat
from ganbench.losses import NonSaturating


class CGAN(AdversarialVariant):
    def __init__(self, context, config: GANConfig):
        k = context.num_classes
        super().__init__(context, config, loss=NonSaturating(), latent=OneHotConcat(k), image=LabelChannels(k))


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="cgan",
            build=CGAN,
            config=GANConfig,
            conditional=True,
            description="conditional GAN: one-hot label into z, label channels into D",
            reference="Mirza & Osindero 2014, arXiv:1411.1784",
        )
    )
