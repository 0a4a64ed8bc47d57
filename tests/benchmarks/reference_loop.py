"""A plain PyTorch training loop for the built-in variants: what ganbench's speed is measured against.

It is written the way most GAN code is written (a DataLoader over a TensorDataset, then per
batch: zero_grad, forward, loss, backward, step; D first, then G; n critic steps and the
gradient penalty for the WGANs), but trains the *same* networks with the same losses and
optimisers as a ganbench variant, drawing from the global RNG in the same order, so that from
the same weights and batches one step computes the same losses (tests/benchmarks/
test_bench_reference.py checks it). Each training step mirrors what its variant computes: the
last critic step's fakes feed the generator update, as in PyTorch's DCGAN example.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ganbench.superres import downsample
from ganbench.variant import Variant

NextBatch = Callable[[], tuple[torch.Tensor, torch.Tensor]]  # -> (float images in [-1, 1], labels)


def loader_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> NextBatch:
    """Endless batches from a shuffling DataLoader (drop_last, no workers), uint8 -> [-1, 1] per batch."""
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True, drop_last=True)
    batches: Iterator = iter(())

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal batches
        batch = next(batches, None)
        if batch is None:  # a new epoch
            batches = iter(loader)
            batch = next(batches)
        x, y = batch
        return x.float() / 127.5 - 1.0, y

    return next_batch


def plain(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The same optimiser with the same hyperparameters, in PyTorch's default implementation
    (on CPU a loop over parameters): what GAN code usually gets."""
    defaults = {**optimizer.defaults, **{k: None for k in ("foreach", "fused") if k in optimizer.defaults}}
    return type(optimizer)([p for g in optimizer.param_groups for p in g["params"]], **defaults)


class ReferenceLoop:
    """The networks and optimisers of ``variant`` (a deep copy, so both can train side by side),
    trained by :meth:`step`: one generator update and the critic updates before it."""

    def __init__(self, name: str, variant: Variant) -> None:
        own = copy.deepcopy(variant)
        self.name, self.config = name, variant.config
        self.G, self.D = own.generator, own.discriminator
        self.opt_g, self.opt_d = plain(own.opt_g), plain(own.opt_d)
        self.conditional = bool(getattr(variant, "conditional", False))
        self.k = variant.context.num_classes
        self.step = {
            "dcgan": self._nonsaturating_step,
            "cgan": self._nonsaturating_step,
            "acgan": self._acgan_step,
            "wgan": self._wgan_step,
            "wgan-gp": self._wgan_step,
            "cgan-wgangp": self._wgan_step,
            "srgan": self._srgan_step,
        }[name]

    def _noise(self, n: int, real_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fake labels (random classes; the real ones for cgan-wgangp) and latents, in the variant's RNG order."""
        labels = None
        if self.conditional:
            labels = real_labels if self.name == "cgan-wgangp" else torch.randint(0, self.k, (n,))
        return torch.randn(n, self.config.z_dim), labels

    def _nonsaturating_step(self, next_batch: NextBatch) -> dict[str, torch.Tensor]:
        real, y = next_batch()
        z, fy = self._noise(len(real), y)
        fake = self.G(z, fy)
        d_real, d_fake = self.D(real, y)["adv"], self.D(fake.detach(), fy)["adv"]
        d_loss = F.binary_cross_entropy_with_logits(
            d_real, torch.ones_like(d_real)
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        out = self.D(fake, fy)["adv"]
        g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    def _acgan_step(self, next_batch: NextBatch) -> dict[str, torch.Tensor]:
        w = self.config.aux_weight
        real, y = next_batch()
        z, fy = self._noise(len(real), y)
        fake = self.G(z, fy)
        r, f = self.D(real, y), self.D(fake.detach(), fy)
        adv = F.binary_cross_entropy_with_logits(
            r["adv"], torch.ones_like(r["adv"])
        ) + F.binary_cross_entropy_with_logits(f["adv"], torch.zeros_like(f["adv"]))
        aux = F.cross_entropy(r["cls"], y)
        if self.config.cls_on_fakes:
            aux = aux + F.cross_entropy(f["cls"], fy)
        d_loss = adv + w * aux
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        out = self.D(fake, fy)
        g_loss = F.binary_cross_entropy_with_logits(out["adv"], torch.ones_like(out["adv"])) + w * F.cross_entropy(
            out["cls"], fy
        )
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    def _wgan_step(self, next_batch: NextBatch) -> dict[str, torch.Tensor]:
        gp_weight = getattr(self.config, "gp_weight", None)  # WGAN-GP; plain WGAN clips instead
        n_critic = self.config.critic_steps
        for i in range(n_critic):
            real, y = next_batch()
            z, fy = self._noise(len(real), y)
            with torch.set_grad_enabled(i == n_critic - 1):  # the last fakes also train G
                fake = self.G(z, fy)
            real_in, fake_in = self.D.condition(real, y), self.D.condition(fake.detach(), fy)
            d_real, d_fake = self.D.score(real_in)["adv"], self.D.score(fake_in)["adv"]
            d_loss = d_fake.mean() - d_real.mean()
            if gp_weight is not None:
                eps = torch.rand(len(real), 1, 1, 1)
                x_hat = (eps * real_in + (1 - eps) * fake_in).requires_grad_(True)
                (grad,) = torch.autograd.grad(self.D.score(x_hat)["adv"].sum(), x_hat, create_graph=True)
                d_loss = d_loss + gp_weight * (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
            self.opt_d.zero_grad()
            d_loss.backward()
            self.opt_d.step()
            if gp_weight is None:
                for p in self.D.parameters():
                    p.data.clamp_(-self.config.clip, self.config.clip)
        g_loss = -self.D(fake, fy)["adv"].mean()
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    def _srgan_step(self, next_batch: NextBatch) -> dict[str, torch.Tensor]:
        hr, _ = next_batch()
        sr = self.G(downsample(hr, self.config.scale))
        d_real, d_fake = self.D(hr)["adv"], self.D(sr.detach())["adv"]
        d_loss = F.binary_cross_entropy_with_logits(
            d_real, torch.ones_like(d_real)
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        content = F.mse_loss(sr, hr)
        out = self.D(sr)["adv"]
        g_loss = content + self.config.adv_weight * F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "content_loss": content.detach()}
