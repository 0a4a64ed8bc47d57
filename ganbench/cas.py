"""Classification accuracy score (Ravuri & Vinyals 2019, "Classification Accuracy Score for
Conditional Generative Models"): a small classifier trained on a conditional generator's
samples, with the labels they were requested with, and tested on the real test split.

Where class consistency asks whether a sample is recognisable as its class, CAS asks whether
the samples of each class *as a whole* carry what tells the classes apart in real data: a
generator that draws one good image per class scores high on the first and low here.

The recipe is plain on purpose, so that it can be written down in a few lines and checked
against a training loop written elsewhere (tests/plugins/test_cas.py does): the network
(:class:`CASNet`) is initialised by ``torch.manual_seed(seed)`` (the global RNG restored
afterwards), each epoch visits the training images in the order of
``torch.randperm(n, generator=torch.Generator(device).manual_seed(seed + epoch))``, in
batches of ``batch_size`` (the last one smaller), Adam at a constant ``lr`` on the
cross-entropy, no augmentation, no schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.data import to_float

TEST_BATCH = 1000
WIDTHS = (16, 32)  # channels of the two conv stages
HIDDEN = 32


class CASNet(nn.Module):
    """Two 3x3 conv-ReLU-2x2 max-pool stages (16 and 32 channels), a 32-unit ReLU layer and a
    linear class head: the "2 conv, < 100k parameters" class of the Fashion-MNIST benchmark
    (55k parameters for 28x28 grey images). Takes uint8 images or floats in [-1, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = []
        for out in WIDTHS:
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c * h * w, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = to_float(images) if images.dtype == torch.uint8 else images
        return self.head(self.conv(x))


@dataclass(frozen=True)
class Score:
    """Test accuracy overall and per class (NaN for a class the test split lacks)."""

    accuracy: float
    per_class: list[float]


def new_net(image_shape: tuple[int, int, int], num_classes: int, seed: int, device: torch.device) -> CASNet:
    """The network as initialised by ``torch.manual_seed(seed)``, the global RNG left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CASNet(image_shape, num_classes)
    return net.to(device)


def fit(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
) -> CASNet:
    """Train a :class:`CASNet` on uint8 ``images`` with int64 ``labels`` (the recipe of the
    module's docstring); returned in eval mode."""
    net = new_net(tuple(images.shape[1:]), num_classes, seed, device)
    images, labels = images.to(device), labels.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(
            len(images), generator=torch.Generator(device=device).manual_seed(seed + epoch), device=device
        )
        for idx in order.split(batch_size):
            loss = F.cross_entropy(net(images[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def score(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> Score:
    """Accuracy of ``net`` on uint8 ``images`` (the real test split), overall and per class."""
    device = next(net.parameters()).device
    predicted = torch.cat([net(chunk.to(device)).argmax(1).cpu() for chunk in images.split(TEST_BATCH)])
    hits, labels = (predicted == labels.cpu()).double(), labels.cpu()
    per_class = [hits[labels == k].mean().item() if (labels == k).any() else float("nan") for k in range(num_classes)]
    return Score(hits.mean().item(), per_class)


def balanced_subset(labels: torch.Tensor, n: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``n`` images, as even over the classes as ``labels`` allow (class k gets
    ``n // K``, the first ``n % K`` classes one more), each class's drawn at random without
    replacement; sorted. ValueError when a class has too few images."""
    per_class = [n // num_classes + (k < n % num_classes) for k in range(num_classes)]
    chosen = []
    for k, m in enumerate(per_class):
        members = (labels.cpu() == k).nonzero().flatten()
        if len(members) < m:
            raise ValueError(f"class {k} has {len(members)} training images, {m} are needed; lower cas.samples")
        order = torch.randperm(len(members), generator=generator, device=generator.device).cpu()
        chosen.append(members[order[:m]])
    return torch.cat(chosen).sort().values


def draw_seed(generator: torch.Generator) -> int:
    """A seed for the classifier (its initialisation and batch order) from ``generator``."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device).item())
