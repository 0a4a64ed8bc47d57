"""The variant contract: a variant owns its networks, its optimisers and one training step.

The harness owns everything else (data, budget, seeds, device, evaluation, checkpoints,
timing). A training step reads real batches from a :class:`ganbench.BatchSource`, updates
its networks and returns its losses as 0-dim tensors; it never calls ``.item()``, so on a
GPU the loop runs without host synchronisation and the harness reads losses back only at
log points.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganbench import fastpath
from ganbench.data import BatchSource


@dataclass(frozen=True)
class VariantContext:
    """What a variant is built for: the data's shape and classes, and the device.

    ``classifier_features`` maps images in [-1, 1] to the held-out classifier's features (a
    frozen copy on the device), for variants whose loss is defined in that space (an SRGAN
    content loss). Using it is recorded: the rows of such a run say that their
    classifier-based metrics are no longer held out.

    ``precision`` (``"fp32"`` or ``"bf16"``) and ``compile`` are the run's fast-path settings
    (``--precision``, ``--compile``). :class:`ganbench.adversarial.AdversarialVariant` honours
    them; another variant may, with :meth:`Variant.autocast` and :meth:`Variant.accelerate`.
    """

    image_shape: tuple[int, int, int]
    num_classes: int
    device: torch.device
    classifier_features: Callable[[torch.Tensor], torch.Tensor] | None = None
    conditional: bool = False  # the spec's VariantSpec.conditional: the one source of truth
    precision: str = "fp32"  # autocast dtype of training's forward passes and losses
    compile: bool = False  # torch.compile the networks


@contextlib.contextmanager
def frozen(*modules: nn.Module, eval_mode: bool = False) -> Iterator[None]:
    """Parameters of ``modules`` stop requiring gradients (and, with ``eval_mode``, the
    modules switch to eval mode); gradients still flow through them to their inputs. Each
    parameter's flag and each module's mode are restored after.

    A GAN's generator update freezes its discriminator this way, in training mode: its batch
    norm keeps using batch statistics, as in the reference implementations."""
    flags = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    modes = [(m, m.training) for m in modules]
    for p, _ in flags:
        p.requires_grad_(False)
    if eval_mode:
        for m in modules:
            m.eval()
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.train(mode)


class Variant(abc.ABC):
    """Base class of every variant. Subclasses build networks and optimisers in ``__init__``.

    Attributes a subclass may set:
        critic_steps: discriminator (critic) updates per generator update, recorded beside
            the results; one step of the budget is one generator update.
    """

    critic_steps: int = 1

    def __init__(self, context: VariantContext, config: Any) -> None:
        self.context = context
        self.config = config

    @property
    def device(self) -> torch.device:
        return self.context.device

    @property
    def batch_size(self) -> int:
        """Real images per :meth:`BatchSource.next`; read from ``config.batch_size``."""
        return int(getattr(self.config, "batch_size", 64))

    @abc.abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """Every module whose state is saved in checkpoints, by name."""

    @abc.abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser whose state is saved in checkpoints, by name."""

    @abc.abstractmethod
    def train_step(self, data: BatchSource) -> dict[str, torch.Tensor]:
        """One generator update (and the critic updates before it).

        Returns losses by name as detached 0-dim tensors; do not read them on the host.
        """

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Autocast to ``context.precision`` on the device (a no-op under fp32): wrap a training
        step's forward passes and losses in it, not its backward passes or optimiser steps."""
        return fastpath.autocast(self.device, self.context.precision)

    def accelerate(self, module: nn.Module, compile: bool | None = None) -> nn.Module:
        """``module`` (built on the device) prepared for the context's fast path, in place:
        channels-last on CUDA under bf16, compiled under ``context.compile`` (or ``compile``,
        when given); else untouched."""
        compile = self.context.compile if compile is None else compile
        return fastpath.accelerate(module, self.device, self.context.precision, compile)

    def train(self, mode: bool = True) -> None:
        for net in self.networks().values():
            net.train(mode)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Every network in eval mode, gradients off; each network's mode restored after."""
        modes = [(net, net.training) for net in self.networks().values()]
        self.train(False)
        try:
            with torch.no_grad():
                yield
        finally:
            for net, mode in modes:
                net.train(mode)

    def frozen(self) -> contextlib.AbstractContextManager[None]:
        """Every network in eval mode with its parameters not requiring gradients, while
        gradients still flow to the inputs: what analyses of a trained variant (probes) need,
        e.g. gradient ascent on z through the generator. Modes and flags are restored after."""
        return frozen(*self.networks().values(), eval_mode=True)

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {k: m.state_dict() for k, m in self.networks().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.networks().items():
            m.load_state_dict(state["networks"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])


class GenerativeVariant(Variant):
    """A variant that generates images from latent noise (and labels, when conditional)."""

    z_dim: int = 100

    @property
    def conditional(self) -> bool:
        """Whether :meth:`generate` takes labels: what the variant's spec declares."""
        return self.context.conditional

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent noise for ``n`` samples; standard normal unless overridden."""
        return torch.randn(n, self.z_dim, device=self.device, generator=generator)

    @abc.abstractmethod
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images in [-1, 1], shape (N, C, H, W), from latents ``z`` and labels (None when
        unconditional). Must be differentiable in ``z``: evaluation calls it under
        ``torch.no_grad()`` in eval mode, but probes call it inside :meth:`frozen` and take
        gradients with respect to ``z`` (steering)."""


class SuperResolutionVariant(Variant):
    """A variant that maps low-resolution images to high-resolution ones.

    Its training step reads high-resolution batches and makes their inputs with
    :func:`ganbench.superres.downsample`; the harness evaluates it on the test split degraded
    the same way, beside the bicubic baseline.
    """

    scale: int = 2

    @abc.abstractmethod
    def upscale(self, lowres: torch.Tensor) -> torch.Tensor:
        """(N, C, H/scale, W/scale) in [-1, 1] -> (N, C, H, W) in [-1, 1]. Called under
        ``torch.no_grad()`` with the networks in eval mode."""
