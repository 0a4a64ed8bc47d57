"""GAN losses as small parts. Each loss object reads the discriminator's named head outputs
(``"adv"``: real/fake logit or critic score, ``"cls"``: class logits) and is summed with
others by :class:`LossSum`; the plain functions serve code outside that composition."""

from __future__ import annotations

from typing import Mapping, Protocol

import torch
import torch.nn.functional as F

HeadOutputs = Mapping[str, torch.Tensor]


def nonsaturating_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator BCE: real -> 1, fake -> 0 (Goodfellow et al. 2014)."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def nonsaturating_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log D(G(z)), i.e. BCE of fakes against 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class GANLoss(Protocol):
    def d_loss(
        self, real: HeadOutputs, fake: HeadOutputs, real_labels: torch.Tensor, fake_labels: torch.Tensor | None
    ) -> torch.Tensor: ...

    def g_loss(self, fake: HeadOutputs, fake_labels: torch.Tensor | None) -> torch.Tensor: ...


class NonSaturating:
    """The standard GAN loss with the non-saturating generator objective, on head ``adv``."""

    def d_loss(self, real, fake, real_labels, fake_labels):
        return nonsaturating_d_loss(real["adv"], fake["adv"])

    def g_loss(self, fake, fake_labels):
        return nonsaturating_g_loss(fake["adv"])


class AuxiliaryClassification:
    """ACGAN's auxiliary loss (Odena et al. 2017) on head ``cls``: D classifies real and
    generated images by their (requested) labels; G wants its samples classified as requested."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def d_loss(self, real, fake, real_labels, fake_labels):
        return self.weight * (F.cross_entropy(real["cls"], real_labels) + F.cross_entropy(fake["cls"], fake_labels))

    def g_loss(self, fake, fake_labels):
        return self.weight * F.cross_entropy(fake["cls"], fake_labels)


class LossSum:
    """Several losses added together (e.g. non-saturating + auxiliary classification)."""

    def __init__(self, *terms: GANLoss) -> None:
        self.terms = terms

    def d_loss(self, real, fake, real_labels, fake_labels):
        return sum(t.d_loss(real, fake, real_labels, fake_labels) for t in self.terms)

    def g_loss(self, fake, fake_labels):
        return sum(t.g_loss(fake, fake_labels) for t in self.terms)
