"""GAN losses as small parts. Each loss object reads the discriminator's named head outputs
(``"adv"``: real/fake logit or critic score, ``"cls"``: class logits) and is summed with
others by :class:`LossSum`; the plain functions serve code outside that composition."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

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
    generated images by their (requested) labels; G wants its samples classified as requested.

    ``on_fakes=False`` trains D's class head on real images only: then it cannot learn the
    generator's own label code, and G must draw the class as real images show it."""

    def __init__(self, weight: float = 1.0, on_fakes: bool = True) -> None:
        self.weight = weight
        self.on_fakes = on_fakes

    def d_loss(self, real, fake, real_labels, fake_labels):
        loss = F.cross_entropy(real["cls"], real_labels)
        if self.on_fakes:
            loss = loss + F.cross_entropy(fake["cls"], fake_labels)
        return self.weight * loss

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


def wasserstein_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Critic loss: the negated estimate of the Wasserstein-1 distance, E[f(fake)] - E[f(real)]."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


class Wasserstein:
    """WGAN loss (Arjovsky et al. 2017) on head ``adv``, read as an unbounded critic score."""

    def d_loss(self, real, fake, real_labels, fake_labels):
        return wasserstein_d_loss(real["adv"], fake["adv"])

    def g_loss(self, fake, fake_labels):
        return wasserstein_g_loss(fake["adv"])


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017): ``weight * E[(||grad critic(x_hat)|| - 1)^2]``
    at random interpolates ``x_hat`` of real and fake inputs, the gradient norm taken over
    every input channel (label channels included, when the critic's input has them)."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


class GradientPenalty:
    """:func:`gradient_penalty` as a penalty part of :class:`ganbench.adversarial.AdversarialVariant`."""

    def __init__(self, weight: float = 10.0) -> None:
        self.weight = weight

    def __call__(self, critic, real, fake):
        return gradient_penalty(critic, real, fake, self.weight)


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge loss for D (Lim & Ye 2017; Miyato et al. 2018): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


class Hinge:
    """The hinge loss on head ``adv`` (SNGAN's and the projection discriminator's loss)."""

    def d_loss(self, real, fake, real_labels, fake_labels):
        return hinge_d_loss(real["adv"], fake["adv"])

    def g_loss(self, fake, fake_labels):
        return hinge_g_loss(fake["adv"])


def gradient_norm_penalty(
    critic: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    inputs: torch.Tensor,
    labels: torch.Tensor | None,
    weight: float,
) -> torch.Tensor:
    """``weight / 2 * E[||grad_x critic(x, y)||^2]`` at the given inputs (Mescheder et al. 2018):
    the squared norm over every input channel, of the full discriminator output (a projection
    term included: ``critic`` takes the labels)."""
    x = inputs.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x, labels).sum(), x, create_graph=True)
    return weight / 2 * grad.flatten(1).pow(2).sum(1).mean()


class R1Penalty:
    """R1 (Mescheder et al. 2018): the squared gradient norm of D on real inputs, weight
    gamma/2. ``takes_labels``: called with the real and fake labels, and a critic over
    (inputs, labels), so the penalty sees D's whole output."""

    takes_labels = True

    def __init__(self, gamma: float = 10.0) -> None:
        self.gamma = gamma

    def __call__(self, critic, real, fake, real_labels=None, fake_labels=None):
        return gradient_norm_penalty(critic, real, real_labels, self.gamma)


class R2Penalty(R1Penalty):
    """R2 (Mescheder et al. 2018): the same penalty on generated inputs."""

    def __call__(self, critic, real, fake, real_labels=None, fake_labels=None):
        return gradient_norm_penalty(critic, fake, fake_labels, self.gamma)


class PenaltySum:
    """Several penalties added together (e.g. R1 + R2); each sees the labels if it takes them."""

    takes_labels = True

    def __init__(self, *terms) -> None:
        self.terms = terms

    def __call__(self, critic, real, fake, real_labels=None, fake_labels=None):
        total = 0
        for t in self.terms:
            if getattr(t, "takes_labels", False):
                total = total + t(critic, real, fake, real_labels, fake_labels)
            else:
                total = total + t(lambda x: critic(x, None), real, fake)
        return total
