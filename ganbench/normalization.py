"""Normalisation parts for the variant kit: spectral normalisation of a network's weights
(Miyato et al. 2018) and class-conditional batch norm for a generator (de Vries et al. 2017;
the form of Miyato & Koyama 2018's generator)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

SPECTRAL_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def apply_spectral_norm(module: nn.Module, n_power_iterations: int = 1, embeddings: bool = False) -> nn.Module:
    """Every convolution and linear layer of ``module`` spectrally normalised, in place (with
    ``embeddings``, its embeddings too: a projection head's, as Miyato & Koyama 2018 do).

    Apply it after weight init (the power iteration starts from the initialised weight) and
    before optimisers are built: the parametrisation replaces each ``weight`` parameter by
    ``parametrizations.weight.original``, so an optimiser built earlier updates stale tensors."""
    for m in list(module.modules()):
        kinds = SPECTRAL_LAYERS + ((nn.Embedding,) if embeddings else ())
        if isinstance(m, kinds) and not _is_spectral(m):
            spectral_norm(m, n_power_iterations=n_power_iterations)  # torch picks dim 1 for ConvTranspose
    return module


def _is_spectral(m: nn.Module) -> bool:
    return hasattr(m, "parametrizations") and "weight" in m.parametrizations


def is_spectral(module: nn.Module) -> bool:
    """Every convolution and linear layer of ``module`` is spectrally normalised."""
    layers = [m for m in module.modules() if isinstance(m, SPECTRAL_LAYERS)]
    return bool(layers) and all(_is_spectral(m) for m in layers)


class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine, then a per-class gain and bias read from two
    embeddings (gain initialised to 1, bias to 0, so at init it is plain batch norm):
    ``gamma[y] * BN(x) + beta[y]``. Works on (N, C) and (N, C, H, W)."""

    uses_labels = True

    def __init__(self, num_features: int, num_classes: int, dims: int = 2) -> None:
        super().__init__()
        self.bn = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(num_features, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = self.bn(x)
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        return self.gamma(labels).view(shape) * out + self.beta(labels).view(shape)
