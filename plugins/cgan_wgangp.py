"""cgan-wgangp: the conditional GAN of the reference material with a WGAN-GP critic.

G gets the one-hot label concatenated to z; the critic gets the label as one-hot image
channels. Fakes in a critic step are generated with the real batch's labels, so every
interpolate of the gradient penalty is a valid (image, label) input, and the penalty's
gradient norm runs over the label channels too.

Search ranges: WGANGPConfig's, the wide ranges of Lucic et al. 2018.
"""

from ganbench_plugins.wgan_gp import WGANGP, WGANGPConfig

from ganbench import VariantSpec, hookimpl
from ganbench.conditioning import LabelChannels, OneHotConcat


class CGANWGANGP(WGANGP):
    def __init__(self, context, config: WGANGPConfig):
        k = context.num_classes
        super().__init__(context, config, latent=OneHotConcat(k), image=LabelChannels(k))

    def fake_labels(self, real):
        return real.labels


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="cgan-wgangp",
            build=CGANWGANGP,
            config=WGANGPConfig,
            conditional=True,
            description="conditional GAN (one-hot z, label channels) with a WGAN-GP critic",
            reference="Mirza & Osindero 2014; Gulrajani et al. 2017",
        )
    )
