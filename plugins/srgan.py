"""srgan: super-resolution GAN (Ledig et al. 2017), scaled down for 28x28 images.

2x super-resolution of area-downsampled images (14x14 -> 28x28). The generator is an
SRResNet: a 9x9 head, residual blocks (conv-BN-PReLU-conv-BN), a long skip, sub-pixel
(pixel-shuffle) upsampling and a 9x9 tail. The loss is a content loss plus 1e-3 times the
non-saturating adversarial loss. The content loss is the pixel MSE, or (``content =
"classifier"``) the MSE of the held-out classifier's features, which SRGAN's VGG loss stands
for here; that choice marks the run's classifier-based metrics as no longer held out.
"""

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ganbench import TASK_SUPER_RESOLUTION, VariantSpec, hookimpl
from ganbench.adversarial import BETA
from ganbench.conditioning import ImageConditioning
from ganbench.hparams import AtLeast, BatchSize, Choice, LogUniform, Positive, Uniform, hparam
from ganbench.losses import nonsaturating_d_loss, nonsaturating_g_loss
from ganbench.networks import DCGANTrunk, Discriminator, dcgan_init
from ganbench.superres import check_scale, downsample
from ganbench.variant import SuperResolutionVariant, frozen


@dataclass(frozen=True)
class SRGANConfig:
    """Search ranges: Lucic et al. 2018's wide ranges for the optimiser, as GANConfig's (learning
    rates log-uniform in [1e-5, 1e-2), beta1 uniform in [0, 1), beta2 a choice of 0.9 or 0.999);
    the architecture and adv_weight are not searched."""

    scale: int = hparam(2, valid=AtLeast(2))  # and a power of 2 dividing the image size
    batch_size: int = hparam(64, valid=BatchSize())
    lr_g: float = hparam(1e-4, search=LogUniform(1e-5, 1e-2), valid=Positive())
    lr_d: float = hparam(1e-4, search=LogUniform(1e-5, 1e-2), valid=Positive())
    beta1: float = hparam(0.9, search=Uniform(0, 1), valid=BETA)
    beta2: float = hparam(0.999, search=Choice(0.9, 0.999), valid=BETA)
    width: int = hparam(32, valid=AtLeast(1))
    blocks: int = hparam(4, valid=AtLeast(1))
    d_width: int = hparam(64, valid=AtLeast(1))
    adv_weight: float = hparam(1e-3, valid=AtLeast(0))
    content: Literal["pixel", "classifier"] = "pixel"


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, channels: int, width: int, blocks: int, scale: int) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.body = nn.Sequential(
            *[ResidualBlock(width) for _ in range(blocks)],
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        up: list[nn.Module] = []
        for _ in range(scale.bit_length() - 1):  # one 2x sub-pixel stage per factor of 2
            up += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.up = nn.Sequential(*up)
        self.tail = nn.Conv2d(width, channels, 9, padding=4)

    def forward(self, lowres: torch.Tensor) -> torch.Tensor:
        head = self.head(lowres.contiguous(memory_format=torch.channels_last))
        return torch.tanh(self.tail(self.up(head + self.body(head))))


class SRGAN(SuperResolutionVariant):
    def __init__(self, context, config: SRGANConfig):
        super().__init__(context, config)
        check_scale(context.image_shape, config.scale)
        if config.content == "classifier" and context.classifier_features is None:
            raise ValueError("content='classifier' needs the held-out classifier's features in the context")
        self.scale = config.scale
        channels = context.image_shape[0]
        # channels-last: 3-4x faster 9x9 convolutions on CPUs (oneDNN), and what GPUs prefer
        self.generator = SRResNet(channels, config.width, config.blocks, config.scale).to(
            context.device, memory_format=torch.channels_last
        )
        self.discriminator = Discriminator(
            ImageConditioning(), DCGANTrunk(channels, context.image_shape, config.d_width), {"adv": 1}
        ).to(context.device)
        dcgan_init(self.discriminator)
        self.accelerate(self.generator)  # --precision/--compile, as AdversarialVariant does
        self.accelerate(self.discriminator)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas)

    def networks(self):
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self):
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def upscale(self, lowres):
        return self.generator(lowres)

    def content_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if self.config.content == "classifier":
            features = self.context.classifier_features
            return F.mse_loss(features(sr), features(hr))
        return F.mse_loss(sr, hr)

    def train_step(self, data):
        G, D = self.generator, self.discriminator
        hr = data.next().images
        with self.autocast():  # forward passes and losses only; logits and images in fp32 for the losses
            sr = G(downsample(hr, self.scale)).float()
            d_loss = nonsaturating_d_loss(D(hr)["adv"].float(), D(sr.detach())["adv"].float())
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        with frozen(D):
            with self.autocast():
                content = self.content_loss(sr, hr)
                g_loss = content + self.config.adv_weight * nonsaturating_g_loss(D(sr)["adv"].float())
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "content_loss": content.detach()}


@hookimpl
def ganbench_register_variants(register):
    register(
        VariantSpec(
            name="srgan",
            build=SRGAN,
            config=SRGANConfig,
            task=TASK_SUPER_RESOLUTION,
            description="2x super-resolution GAN: SRResNet generator, content + 1e-3 adversarial loss",
            reference="Ledig et al. 2017, arXiv:1609.04802",
        )
    )
