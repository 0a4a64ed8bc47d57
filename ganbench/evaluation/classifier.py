"""The held-out classifier: judges class consistency and provides the feature space of
``fid_domain``.

It is trained once per dataset on the train split with a fixed seed, scored on the test
split, and cached (weights and test accuracy) under the cache directory, keyed by the data's
fingerprint and the architecture version. GAN training never sees it. Weights are loaded with
``torch.load(weights_only=True)`` (a crafted pickle is refused, not run) and written with
:func:`~ganbench.harness.rundir.atomic_write`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.data import DatasetSplits, to_float
from ganbench.evaluation.cache import safe_load, short_reason
from ganbench.evaluation.threads import in_parallel, metric_threads
from ganbench.files import atomic_write, build_lock

log = logging.getLogger(__name__)

ARCH_VERSION = 1
SEED = 0
EPOCHS = 8
BATCH_SIZE = 128
MAX_LR = 4e-3
FEATURE_DIM = 128
EVAL_BATCH = 1000


class HeldOutNet(nn.Module):
    """Three 3x3 conv-BN-ReLU-pool stages (16, 32, 64 channels), a 128-d feature layer, a
    linear classifier. Takes uint8 images; scales them to [-1, 1] itself."""

    def __init__(self, in_channels: int, num_classes: int, image_hw: tuple[int, int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for out in (16, 32, 64):
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            channels = out
        self.conv = nn.Sequential(*layers, nn.Flatten())
        h, w = image_hw
        for _ in range(3):
            h, w = (h + 1) // 2, (w + 1) // 2
        self.fc = nn.Sequential(nn.Linear(channels * h * w, FEATURE_DIM), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = to_float(images) if images.dtype == torch.uint8 else images
        return self.fc(self.conv(x.contiguous(memory_format=torch.channels_last)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(images)))


@dataclass
class HeldOutClassifier:
    net: HeldOutNet
    path: Path
    test_accuracy: float
    dataset: str
    fingerprint: str

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def name(self) -> str:
        """Unique per weights: names torch-fidelity's feature extractor and its caches."""
        return f"ganbench-{self.dataset}-classifier-{self.fingerprint[:12]}-v{ARCH_VERSION}"

    def _pinned(self):
        """On the CPU, the metric path's fixed thread count: on some CPUs (a 2-core Intel Xeon with
        AVX-512, torch 2.14) a conv net's float32 features differ in their last bits on 1 and 2 torch
        threads, and every metric computed from them would follow the thread count."""
        return metric_threads() if self.device.type == "cpu" else contextlib.nullcontext()

    @torch.no_grad()
    def _batched(self, fn, images: torch.Tensor) -> torch.Tensor:
        # On the CPU the chunks run on the cores the pinned thread count leaves idle
        # (threads.in_parallel): the same chunks, each on one thread, so the same values.
        with self._pinned():
            chunks = images.split(EVAL_BATCH)
            return torch.cat(in_parallel([functools.partial(self._chunk, fn, c) for c in chunks]))

    def _chunk(self, fn, chunk: torch.Tensor) -> torch.Tensor:
        return fn(chunk.to(self.device)).float().cpu()

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._batched(self.net, images)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self._batched(self.net.features, images)

    @torch.no_grad()
    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both in one pass; the logits are bit for bit those of :meth:`logits` (the same chunks,
        and dropout is the identity in eval mode)."""
        def both(chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.net.features(chunk.to(self.device))
            return f.float().cpu(), self.net.head(f).float().cpu()

        with self._pinned():
            pairs = in_parallel([functools.partial(both, c) for c in images.split(EVAL_BATCH)])
        return torch.cat([f for f, _ in pairs]), torch.cat([lg for _, lg in pairs])

    @functools.cached_property
    def weights_sha256(self) -> str:
        """SHA-256 of the weights (as in config.json's classifier record): feature caches are keyed
        by it, since a classifier retrained elsewhere keeps its name but not its features."""
        h = hashlib.sha256()
        for name, tensor in sorted(self.net.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).argmax(1)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        return (self.predict(images) == labels.cpu()).double().mean().item()


def fingerprint(splits: DatasetSplits) -> str:
    """A hash of the dataset's contents: a changed or different dataset gets a new classifier."""
    h = hashlib.sha256()
    for t in (splits.train_images, splits.train_labels, splits.test_images, splits.test_labels):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _new_net(image_shape: tuple[int, ...], num_classes: int) -> HeldOutNet:
    c, h, w = image_shape
    return HeldOutNet(c, num_classes, (h, w))


def train(splits: DatasetSplits, device: torch.device, epochs: int = EPOCHS, seed: int = SEED) -> HeldOutNet:
    """Train on the train split only: AdamW with a one-cycle schedule and label smoothing.
    (Random translations cost ~1 point of test accuracy at this short schedule.)"""
    torch.manual_seed(seed)
    net = _new_net(splits.image_shape, splits.num_classes).to(device).to(memory_format=torch.channels_last)
    images, labels = splits.train_images.to(device), splits.train_labels.to(device)
    n = images.shape[0]
    batch = min(BATCH_SIZE, n)  # a small folder of images: at least one step an epoch
    steps_per_epoch = n // batch
    opt = torch.optim.AdamW(net.parameters(), lr=MAX_LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, MAX_LR, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator(device=device).manual_seed(seed)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen, device=device)
        for step in range(steps_per_epoch):
            idx = order[step * batch : (step + 1) * batch]
            loss = F.cross_entropy(net(images.index_select(0, idx)), labels.index_select(0, idx), label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log.info("held-out classifier: epoch %d/%d done", epoch + 1, epochs)
    return net.eval()


def cache_path(splits: DatasetSplits, cache_dir: Path, digest: str) -> Path:
    return Path(cache_dir) / "classifiers" / f"{splits.name}-{digest[:16]}-v{ARCH_VERSION}.pt"


def load_or_train(splits: DatasetSplits, cache_dir: Path, device: torch.device) -> HeldOutClassifier:
    """The cached classifier for this dataset, trained (once, with a fixed seed) if missing."""
    digest = fingerprint(splits)
    path = cache_path(splits, cache_dir, digest)
    with build_lock(path):  # another run sharing the cache may be training it right now: wait, then load
        return _load_or_train(splits, path, digest, device)


def _load_or_train(splits: DatasetSplits, path: Path, digest: str, device: torch.device) -> HeldOutClassifier:
    if path.is_file():
        try:
            net, state = load_weights_file(path, device)
        except Exception as exc:  # truncated, crafted, or written by an incompatible version: train anew
            log.warning("held-out classifier: cannot load %s (%s); training it again", path, short_reason(exc))
        else:
            log.info("held-out classifier: %s (test accuracy %.4f)", path, state["test_accuracy"])
            return HeldOutClassifier(net, path, float(state["test_accuracy"]), splits.name, digest)
    log.info("held-out classifier: training on %s train split (once; cached at %s)", splits.name, path)
    start = time.perf_counter()
    net = train(splits, device)
    seconds = time.perf_counter() - start
    clf = HeldOutClassifier(net, path, float("nan"), splits.name, digest)
    clf.test_accuracy = clf.accuracy(splits.test_images, splits.test_labels)
    state = {
        "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
        "test_accuracy": clf.test_accuracy,
        "dataset": splits.name,
        "image_shape": list(splits.image_shape),
        "num_classes": splits.num_classes,
        "fingerprint": digest,
        "arch_version": ARCH_VERSION,
        "epochs": EPOCHS,
        "seed": SEED,
        "train_seconds": seconds,
        "torch_version": str(torch.__version__),
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))  # a concurrent reader never sees half a file
    log.info("held-out classifier: test accuracy %.4f after %.0f s", clf.test_accuracy, seconds)
    return clf


def load_weights_file(path: Path | str, device: torch.device | str = "cpu") -> tuple[HeldOutNet, dict]:
    """The network (in eval mode, on ``device``) and the metadata of a cached weights file."""
    state = safe_load(path)
    net = _new_net(tuple(state["image_shape"]), int(state["num_classes"]))
    net.load_state_dict(state["state_dict"])
    return net.to(device).to(memory_format=torch.channels_last).eval(), state


class WatchedFeatures:
    """The held-out classifier's feature map, frozen on the training device, handed to variants
    through their context; it records whether a variant used it (the runner notes it in every row)."""

    def __init__(self, classifier: HeldOutClassifier, device: torch.device) -> None:
        self._classifier = classifier
        self._device = device
        self._net: torch.nn.Module | None = None
        self.used = False

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self._net is None:  # a copy: nothing a variant does reaches the judge's weights
            self._net = copy.deepcopy(self._classifier.net).to(self._device).eval().requires_grad_(False)
        self.used = True
        return self._net.features(images)
