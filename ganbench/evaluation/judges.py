"""The two classifiers of steering probes (:class:`ganbench.probes.Judge`).

A probe steers a latent with one classifier and scores the result with another, so that
success measures the generator, not how easily a classifier is fooled along its own gradients:

- the *judge* scores: the held-out classifier's network, unchanged (it also defines
  ``fid_domain``'s features), plus a logistic-regression head on its frozen 128-d features
  for the attributes, fitted on the whole train split;
- the *steering* classifier steers: another architecture (strided convs, GroupNorm, no
  pooling), another seed and a seeded half of the train split, its class and attribute heads
  trained jointly.

Both are trained once and cached under ``<cache_dir>/judges/``, keyed by what they depend on.
A file carries its identity and a checksum; it is written with
:func:`~ganbench.harness.rundir.atomic_write` and read with ``torch.load(weights_only=True)``,
and one that cannot be used (truncated, corrupted, foreign, crafted) is trained again with one
warning line.
"""

from __future__ import annotations

import abc
import copy
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.data.attributes import Attributes
from ganbench.data import DatasetSplits, to_float
from ganbench.evaluation.cache import CacheMismatch, digest, safe_load, short_reason
from ganbench.evaluation.classifier import EVAL_BATCH, FEATURE_DIM, HeldOutClassifier, fingerprint
from ganbench.files import atomic_write, build_lock

log = logging.getLogger(__name__)

Names = Sequence[str]

FORMAT = "ganbench-judge"
ARCH_VERSION = 1  # bump when a network, head or recipe changes: older files are then retrained
FOLDER = "judges"
SPLIT_SEED = 2  # which half of the train split the steering classifier sees
STEERING_SEED = 1  # the held-out classifier's is 0
STEERING_EPOCHS = 5
STEERING_WIDTHS = (32, 64, 128)
STEERING_FEATURES = 256
BATCH_SIZE = 128
MAX_LR = 3e-3
HEAD_L2 = 1e-4
HEAD_MAX_ITER = 100


class SteeringNet(nn.Module):
    """Three stride-2 3x3 conv-GroupNorm-SiLU stages (32, 64, 128 channels; no pooling), a
    256-d feature layer, and a class head and an attribute head on it. Takes float [-1, 1] or
    uint8 images."""

    def __init__(self, in_channels: int, num_classes: int, num_attributes: int, image_hw: tuple[int, int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, (h, w) = in_channels, image_hw
        for out in STEERING_WIDTHS:
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False), nn.GroupNorm(8, out), nn.SiLU()]
            channels, h, w = out, (h + 1) // 2, (w + 1) // 2
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(channels * h * w, STEERING_FEATURES), nn.SiLU())
        self.class_head = nn.Linear(STEERING_FEATURES, num_classes)
        self.attribute_head = _linear(STEERING_FEATURES, num_attributes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = to_float(images) if images.dtype == torch.uint8 else images
        return self.fc(self.conv(x))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(images)
        return self.class_head(f), self.attribute_head(f)


class _Scorer(abc.ABC):
    """What both classifiers share: chunked scoring on their own device, differentiable in the
    images; subclasses define ``_class`` and ``_both`` on one chunk."""

    class_names: tuple[str, ...]
    attribute_names: tuple[str, ...]
    path: Path
    net: nn.Module

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _chunked(self, fn: Callable[[torch.Tensor], Any], images: torch.Tensor) -> Any:
        outs = [fn(chunk.to(self.device)) for chunk in images.split(EVAL_BATCH)]
        return torch.cat(outs) if isinstance(outs[0], torch.Tensor) else tuple(map(torch.cat, zip(*outs)))

    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._chunked(self._class, images)

    def attribute_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._chunked(lambda x: self._both(x)[1], images)

    def logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class and attribute logits in one pass."""
        return self._chunked(self._both, images)

    @abc.abstractmethod
    def _class(self, x: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def _both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class HeldOutJudge(_Scorer):
    """The judge: the held-out classifier's network as it is, plus a linear attribute head on
    its 128-d features. Its class logits are the held-out classifier's, bit for bit."""

    def __init__(
        self, classifier: HeldOutClassifier, head: nn.Linear, class_names: Names, attribute_names: Names, path: Path
    ) -> None:
        self.classifier = classifier
        # A frozen copy of the same weights: gradients reach the images, never the parameters
        # (or the training flags) of the network that also extracts fid_domain's features.
        self.net = copy.deepcopy(classifier.net).eval().requires_grad_(False)
        self.head = head.to(self.device).eval().requires_grad_(False)
        self.class_names, self.attribute_names, self.path = tuple(class_names), tuple(attribute_names), Path(path)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The held-out classifier's 128-d features (fid_domain's space), differentiable in the
        images: the sample similarity of ``ppl_domain``."""
        return self._chunked(self.net.features, images)

    def _class(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.net.features(x)
        return self.net.head(f), self.head(f)  # dropout is the identity in eval mode


class SteeringClassifier(_Scorer):
    """The steering classifier: a :class:`SteeringNet`, frozen, in eval mode."""

    def __init__(self, net: SteeringNet, class_names: Names, attribute_names: Names, path: Path) -> None:
        self.net = net.eval().requires_grad_(False)
        self.class_names, self.attribute_names, self.path = tuple(class_names), tuple(attribute_names), Path(path)

    def _class(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]

    def _both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x)


@dataclass
class Judges:
    """What probes get: the judge scores, the steering classifier steers; ``record`` is for
    config.json (accuracies on the test split, cache files, training times)."""

    judge: HeldOutJudge
    steering: SteeringClassifier
    record: dict[str, Any]


# --- training ------------------------------------------------------------------------------------


def steering_indices(n: int, seed: int = SPLIT_SEED) -> torch.Tensor:
    """The steering classifier's half of an ``n``-image train split: the first half of a seeded
    permutation, sorted (the same on every machine)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: n // 2].sort().values


def fit_attribute_head(classifier: HeldOutClassifier, images: torch.Tensor, present: torch.Tensor) -> nn.Linear:
    """Logistic regression of ``present`` (bool (N, A)) on the classifier's frozen features:
    full-batch L-BFGS in float64 on standardised features (convex, so no seed is needed and the
    optimum does not depend on where it starts), the standardisation folded into the layer."""
    if present.shape[1] == 0:  # a dataset without attributes: the judge scores classes only
        return _linear(FEATURE_DIM, 0)
    feats = classifier.features(images).double()
    mean, std = feats.mean(0), feats.std(0).clamp_min(1e-6)
    x, y = (feats - mean) / std, present.double()
    weight = torch.zeros(y.shape[1], x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=HEAD_MAX_ITER, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (
            F.binary_cross_entropy_with_logits(torch.addmm(bias, x, weight.T), y) + HEAD_L2 / 2 * weight.square().sum()
        )
        loss.backward()
        return loss

    opt.step(closure)
    head = nn.Linear(FEATURE_DIM, y.shape[1])
    with torch.no_grad():
        scaled = weight / std
        head.weight.copy_(scaled)
        head.bias.copy_(bias - scaled @ mean)
    return head.eval()


def _linear(n_in: int, n_out: int) -> nn.Linear:
    with warnings.catch_warnings():  # zero outputs (no attributes): initialising nothing is fine
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        return nn.Linear(n_in, n_out)


def _new_steering_net(image_shape: tuple[int, ...], num_classes: int, num_attributes: int) -> SteeringNet:
    c, h, w = image_shape
    return SteeringNet(c, num_classes, num_attributes, (h, w))


def train_steering(
    splits: DatasetSplits,
    present: torch.Tensor,
    device: torch.device,
    epochs: int,
    seed: int = STEERING_SEED,
) -> SteeringNet:
    """Train on :func:`steering_indices` of the train split: cross-entropy (label smoothing)
    plus binary cross-entropy, AdamW with a one-cycle schedule. Initialised on the CPU under a
    forked RNG: the weights depend on ``seed`` only, and the caller's RNG is left alone."""
    idx = steering_indices(splits.train_images.shape[0])
    images, labels = splits.train_images[idx].to(device), splits.train_labels[idx].to(device)
    targets = present[idx].float().to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _new_steering_net(splits.image_shape, splits.num_classes, targets.shape[1])
    net = net.to(device).train()
    n = images.shape[0]
    steps_per_epoch = max(1, n // BATCH_SIZE)
    opt = torch.optim.AdamW(net.parameters(), lr=MAX_LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, MAX_LR, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator(device=device).manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen, device=device)
        for step in range(steps_per_epoch):
            i = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            class_logits, attribute_logits = net(images.index_select(0, i))
            loss = F.cross_entropy(class_logits, labels.index_select(0, i), label_smoothing=0.1)
            if targets.shape[1]:  # no attribute term for a dataset without attributes
                loss = loss + F.binary_cross_entropy_with_logits(attribute_logits, targets.index_select(0, i))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log.info("steering classifier: epoch %d/%d done", epoch + 1, epochs)
    opt.zero_grad(set_to_none=True)  # the last batch's gradients would outlive training
    return net.eval()


@torch.no_grad()
def evaluate(scorer: _Scorer, splits: DatasetSplits, attributes: Attributes) -> dict[str, Any]:
    """Class accuracy, accuracy per attribute (sigmoid > 0.5, i.e. logit > 0) and their mean."""
    class_logits, attribute_logits = scorer.logits(splits.test_images)
    class_acc = (class_logits.argmax(1).cpu() == splits.test_labels).double().mean().item()
    per = ((attribute_logits.cpu() > 0) == attributes.test.cpu()).double().mean(0).tolist()
    return {
        "class_accuracy": class_acc,
        "attribute_accuracy": dict(zip(attributes.names, per)),
        "mean_attribute_accuracy": sum(per) / len(per) if per else float("nan"),
    }


# --- the cache -----------------------------------------------------------------------------------


def _labels_sha256(attributes: Attributes) -> str:
    h = hashlib.sha256()
    for t in (attributes.train, attributes.test):  # test too: the cached accuracies are on it
        h.update(str(tuple(t.shape)).encode())
        h.update(t.to(torch.bool).contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _checksum(entry: dict[str, Any]) -> str:
    """SHA-256 of the weights and of everything else the file says (a bit flipped anywhere shows)."""
    rest = {k: v for k, v in entry.items() if k not in ("state_dict", "checksum")}
    return hashlib.sha256((digest(entry["state_dict"]) + json.dumps(rest, sort_keys=True)).encode()).hexdigest()


def _path(cache_dir: Path, splits: DatasetSplits, identity: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / FOLDER / f"{splits.name}-{identity['kind']}-{key}-v{ARCH_VERSION}.pt"


def _read(path: Path, identity: dict[str, Any], module: nn.Module) -> dict[str, Any]:
    """Load the weights of the file at ``path`` into ``module``; its metadata. Raises if it is
    not a sound file made for ``identity``."""
    entry = safe_load(path)
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("version") != ARCH_VERSION:
        raise CacheMismatch(f"not a {FORMAT} v{ARCH_VERSION} file")
    state = entry.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise CacheMismatch("no weights")
    if _checksum(entry) != entry.get("checksum"):
        raise CacheMismatch("its content fails its checksum")
    if entry.get("identity") != identity:
        stored = entry["identity"] if isinstance(entry.get("identity"), dict) else {}
        keys = sorted(k for k in {*stored, *identity} if stored.get(k) != identity.get(k))
        raise CacheMismatch(f"made for other inputs ({', '.join(keys)} differ)")
    module.load_state_dict(state)
    return entry


def _write(path: Path, identity: dict[str, Any], module: nn.Module, metrics: dict, seconds: float) -> dict[str, Any]:
    entry = {
        "format": FORMAT,
        "version": ARCH_VERSION,
        "identity": identity,
        "metrics": metrics,
        "train_seconds": seconds,
        "torch_version": str(torch.__version__),
        "state_dict": {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()},
    }
    entry["checksum"] = _checksum(entry)
    atomic_write(path, lambda tmp: torch.save(entry, tmp))  # a concurrent reader never sees half a file
    return entry


def _load_or_train(
    what: str, path: Path, identity: dict, module: nn.Module, train: Callable[[], nn.Module], score: Callable
) -> tuple[nn.Module, dict[str, Any]]:
    """``module`` with the cached weights at ``path``, or trained by ``train()``, scored and cached."""
    with build_lock(path):  # one trainer at a time per cached file; the others wait and load
        return _load_or_train_locked(what, path, identity, module, train, score)


def _load_or_train_locked(
    what: str, path: Path, identity: dict, module: nn.Module, train: Callable[[], nn.Module], score: Callable
) -> tuple[nn.Module, dict[str, Any]]:
    if path.is_file():
        try:
            entry = _read(path, identity, module)
        except Exception as exc:  # truncated, corrupted, crafted, or made for other inputs: train anew
            log.warning("%s: cannot load %s (%s); training it again", what, path, short_reason(exc))
        else:
            log.info("%s: %s", what, path)
            return module, entry
    log.info("%s: training (once; cached at %s)", what, path)
    start = time.perf_counter()
    module = train()
    seconds = time.perf_counter() - start
    entry = _write(path, identity, module, score(module), seconds)
    log.info("%s: trained in %.0f s: %s", what, seconds, entry["metrics"])
    return module, entry


def load_or_train_judges(
    splits: DatasetSplits,
    attributes: Attributes | None,
    classifier: HeldOutClassifier,
    cache_dir: Path | str,
    device: torch.device,
) -> Judges:
    """The judge and the steering classifier for ``splits`` and its ``attributes``, each
    trained once with a fixed seed and cached under ``<cache_dir>/judges/``."""
    if attributes is None:  # a dataset that declares none: class heads only
        attributes = Attributes(
            (),
            torch.zeros(len(splits.train_labels), 0, dtype=torch.bool),
            torch.zeros(len(splits.test_labels), 0, dtype=torch.bool),
        )
    names = list(attributes.names)
    if tuple(attributes.train.shape) != (splits.train_images.shape[0], len(names)):
        raise ValueError(
            f"attributes must be bool (N_train, A) with one column per name, got {tuple(attributes.train.shape)}"
        )
    # The splits' own fingerprint (the classifier's, for the data it was trained on): the heads
    # are fitted on the splits given here.
    common = {
        "data": fingerprint(splits),
        "attributes": names,
        "attribute_labels": _labels_sha256(attributes),
        "version": ARCH_VERSION,
    }
    cls_names = splits.class_names

    judge_id = {"kind": "judge", **common, "classifier_weights": classifier.weights_sha256}
    judge_path = _path(cache_dir, splits, judge_id)

    def judge_of(head: nn.Module) -> HeldOutJudge:
        return HeldOutJudge(classifier, head, cls_names, names, judge_path)

    head, judge_entry = _load_or_train(
        "judge attribute head",
        judge_path,
        judge_id,
        _linear(FEATURE_DIM, len(names)),
        lambda: fit_attribute_head(classifier, splits.train_images, attributes.train),
        lambda h: evaluate(judge_of(h), splits, attributes),
    )

    n_train = splits.train_images.shape[0]
    split = hashlib.sha256(steering_indices(n_train).numpy().tobytes()).hexdigest()
    steering_id = {"kind": "steering", **common, "seed": STEERING_SEED, "epochs": STEERING_EPOCHS, "split": split}
    steering_path = _path(cache_dir, splits, steering_id)

    def steering_of(net: nn.Module) -> SteeringClassifier:
        return SteeringClassifier(net.to(device), cls_names, names, steering_path)

    net, steering_entry = _load_or_train(
        "steering classifier",
        steering_path,
        steering_id,
        _new_steering_net(splits.image_shape, splits.num_classes, len(names)),
        lambda: train_steering(splits, attributes.train, device, epochs=STEERING_EPOCHS, seed=STEERING_SEED),
        lambda n: evaluate(steering_of(n), splits, attributes),
    )
    record = {
        "attributes": names,
        "judge": {
            "model": "held-out classifier, unchanged, + logistic-regression attribute head on its 128-d features",
            "path": str(judge_path),
            **judge_entry["metrics"],
            "train_seconds": judge_entry["train_seconds"],
            "train_images": n_train,
            "classifier_weights_sha256": classifier.weights_sha256,
        },
        "steering": {
            "model": f"strided convs {STEERING_WIDTHS} + GroupNorm + SiLU, {STEERING_FEATURES}-d features, "
            "class and attribute heads trained jointly",
            "path": str(steering_path),
            **steering_entry["metrics"],
            "train_seconds": steering_entry["train_seconds"],
            "train_images": n_train // 2,
            "seed": STEERING_SEED,
            "split_seed": SPLIT_SEED,
            "split_sha256": split,
            "epochs": STEERING_EPOCHS,
        },
    }
    return Judges(judge_of(head), steering_of(net), record)
