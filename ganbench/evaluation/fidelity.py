"""FID, KID, precision/recall by torch-fidelity's own feature-to-metric functions, on features
ganbench computes itself: the held-out classifier's (shared by every metric of an evaluation),
Inception's and DINOv2's (:mod:`ganbench.evaluation.dinov2`).

torch-fidelity never reads or writes a cache here: it loads its caches (and Inception's
weights) with ``torch.load(weights_only=False)``, which runs whatever pickle it finds. The
real split's features and statistics are cached by :mod:`ganbench.evaluation.cache` instead.

What is computed from features (statistics, FID, KID, precision/recall: the functions marked
``@metric_threads()``) runs on a fixed number of threads, so its values do not depend on the
thread counts of the process, torch or the BLAS (:mod:`ganbench.evaluation.threads`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from ganbench import columns as C
from ganbench.downloads import socket_timeout
from ganbench.errors import describe
from ganbench.evaluation import cache
from ganbench.evaluation import fast_fidelity as fast
from ganbench.evaluation.classifier import HeldOutClassifier, load_weights_file
from ganbench.evaluation.threads import METRIC_THREADS, in_parallel, metric_threads

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.evaluation.dinov2 import Dinov2Weights

log = logging.getLogger(__name__)

INCEPTION_EXTRACTOR = "inception-v3-compat"
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
# torch.hub convention: the file name ends with the first digits of its SHA-256.
INCEPTION_SHA256_PREFIX = "6726825d"
DOWNLOAD_TIMEOUT_S = 30
INCEPTION_BATCH = 64  # torch-fidelity's default batch size: the features of a direct call, bit for bit
KID_SUBSET_SIZE = 1000
PRC_SUBSET_SEED = 0
# torch-fidelity's defaults for everything else (kid_subsets=100, rng_seed=2020, prc_neighborhood=3, ...)
FIDELITY_KWARGS = dict(verbose=False, save_cpu_ram=True)


class ImageTensorDataset(Dataset):
    """uint8 images (N, C, H, W) as torch-fidelity reads them; ``rgb`` repeats grayscale to 3
    channels, as Inception expects. (For direct torch-fidelity calls, e.g. to check ours.)"""

    def __init__(self, images: torch.Tensor, rgb: bool = False) -> None:
        self.images = images.cpu()
        self.rgb = rgb and images.shape[1] == 1

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1) if self.rgb else x


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """The held-out classifier's 128-d feature layer (and logits) as a torch-fidelity feature
    extractor, for direct torch-fidelity calls (ganbench computes the features itself).

    torch-fidelity instantiates it by registered name and passes the cached classifier file
    as ``feature_extractor_weights_path`` (loaded with ``weights_only=True``).
    """

    FEATURES = ("features", "logits")

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"{name} needs feature_extractor_weights_path (the cached classifier file)")
        self.net, _ = load_weights_file(feature_extractor_weights_path, "cpu")
        self.requires_grad_(False)

    @staticmethod
    def get_provided_features_list():
        return ClassifierFeatureExtractor.FEATURES

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "features"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        raise NotImplementedError

    def forward(self, x):
        features = self.net.features(x)
        out = {"features": features, "logits": self.net.head(features)}
        return tuple(out[name] for name in self.features_list)


def register_classifier_extractor(classifier: HeldOutClassifier) -> str:
    """Register the classifier with torch-fidelity (idempotent); return its extractor name."""
    if classifier.name not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(classifier.name, ClassifierFeatureExtractor)
    return classifier.name


def images_sha256(images: torch.Tensor) -> str:
    return cache.digest({"images": images})


@metric_threads()
def _statistics(features: torch.Tensor) -> dict[str, torch.Tensor]:
    stats = fid_features_to_statistics(features)
    return {"mu": torch.from_numpy(stats["mu"]), "sigma": torch.from_numpy(stats["sigma"])}


@metric_threads()
def _fid(generated: torch.Tensor, real_stats: dict[str, torch.Tensor]) -> float:
    real = {"mu": real_stats["mu"].numpy(), "sigma": real_stats["sigma"].numpy()}
    metric = fid_statistics_to_metric(fid_features_to_statistics(generated), real, verbose=False)
    return float(metric[torch_fidelity.KEY_METRIC_FID])


def classifier_reference(
    classifier: HeldOutClassifier, real: torch.Tensor, real_name: str, cache_dir: Path
) -> dict[str, torch.Tensor]:
    """The classifier's ``features`` of ``real`` and their FID statistics (``mu``, ``sigma``),
    cached under ``<cache_dir>/features/``."""
    identity = {
        "kind": "classifier-features",
        "extractor": classifier.name,
        "weights_sha256": classifier.weights_sha256,
        "dataset": real_name,
        "images_sha256": images_sha256(real),
        "count": len(real),
        "metric_threads": METRIC_THREADS,  # the statistics' BLAS threads (see .threads)
    }

    def build() -> dict[str, torch.Tensor]:
        features = classifier.features(real)
        return {"features": features, **_statistics(features)}

    return cache.load_or_build(cache.cache_path(cache_dir, f"{real_name}-{classifier.name}"), identity, build)


def prc_subset(n_real: int, n: int) -> torch.Tensor | None:
    """The fixed random subset of the real split that precision/recall compare ``n`` samples
    with (None: all of it)."""
    if n >= n_real:
        return None
    return torch.randperm(n_real, generator=torch.Generator().manual_seed(PRC_SUBSET_SEED))[:n]


def real_side(
    classifier: HeldOutClassifier,
    reference: dict[str, torch.Tensor],
    real_name: str,
    n: int,
    cache_dir: Path,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """What KID and precision/recall need of the real split against ``n`` samples: the
    real-real KID kernel sums and the k-NN radii of its precision/recall subset, cached under
    ``<cache_dir>/features/`` (the radii computed on ``device``'s kind)."""
    real_features = reference["features"]
    size = min(KID_SUBSET_SIZE, n, len(real_features))
    identity = {
        "kind": "classifier-real-side",
        "extractor": classifier.name,
        "features_sha256": cache.digest({"features": real_features}),
        "dataset": real_name,
        "samples": n,
        "kid_subset_size": size,
        "kid_subsets": fast.KID_SUBSETS,
        "kid_seed": fast.KID_SEED,
        "prc_neighborhood": fast.PRC_NEIGHBORHOOD,
        "prc_subset_seed": PRC_SUBSET_SEED,
        "device_type": device.type,
        "torch_fidelity": torch_fidelity.__version__,
        "metric_threads": METRIC_THREADS,
        "kid_real_product": "syrk",  # x @ x.T of one array, as torch-fidelity (a gemm before 2026-12-02)
    }

    def build() -> dict[str, torch.Tensor]:
        subset = prc_subset(len(real_features), n)
        prc_real = real_features if subset is None else real_features[subset]
        return {
            "kid_real_sums": fast.kid_real_sums(real_features, n, size),
            "prc_radii": fast.knn_radii(prc_real, device).cpu(),
        }

    path = cache.cache_path(cache_dir, f"{real_name}-{classifier.name}-n{n}")
    return cache.load_or_build(path, identity, build)


@metric_threads()
def domain_metrics(
    classifier: HeldOutClassifier,
    generated_features: torch.Tensor,
    real: torch.Tensor,
    real_name: str,
    cache_dir: Path,
    device: torch.device = torch.device("cpu"),
    precision: float | Callable[[], float] | None = None,
) -> dict[str, float]:
    """FID, KID, precision and recall in the held-out classifier's feature space, from the
    samples' features (``Evaluation.features``): the values of torch-fidelity's functions
    (:func:`torch_fidelity_domain_metrics`) by :mod:`.fast_fidelity` (what that promises is
    said there), on :data:`~.threads.METRIC_THREADS` threads.

    ``precision``: the value, or a function computing it, when the caller has it from the pass
    over the same sample-to-real distances that gives density and coverage
    (:func:`~ganbench.evaluation.density_coverage.neighbourhoods`: the same value, bit for bit).
    The parts run at once on the cores the fixed thread count leaves idle, with the values of
    running them one after another (:func:`~.threads.in_parallel`).

    FID and KID compare the samples with all of ``real`` (whose features and statistics are
    cached as ``real_name``). Precision and recall compare them with a fixed random subset of
    ``real`` of the same size: the k-NN radii of both sets then mean the same thing, as in
    Kynkäänniemi et al. 2019, and the cost scales with the number of samples.

    FID and KID are numpy arithmetic on the CPU, as in torch-fidelity; the pairwise distances
    of precision/recall are computed on ``device`` (``cuda:N``: on device N).
    """
    generated = generated_features.float().cpu()
    reference = classifier_reference(classifier, real, real_name, cache_dir)
    real_features = reference["features"]
    n = len(generated)
    with fast.device_context(device):
        side = real_side(classifier, reference, real_name, n, cache_dir, device)
    subset = prc_subset(len(real_features), n)
    prc_real = real_features if subset is None else real_features[subset]
    size = min(KID_SUBSET_SIZE, n, len(real_features))

    def precision_value() -> float:
        if callable(precision):
            return float(precision())
        if precision is not None:
            return precision
        with fast.device_context(device):
            return fast.precision(generated, prc_real, side["prc_radii"], device)

    def recall() -> float:
        with fast.device_context(device):
            return fast.recall(generated, prc_real, device)

    def fid() -> float:  # numpy on the CPU, beside the k-NN distances
        return _fid(generated, reference)

    def kid() -> float:
        return fast.kid_mean(generated, real_features, size, side["kid_real_sums"])

    # Independent parts, on the cores the pinned thread count leaves idle (threads.in_parallel:
    # the same values as one after another); the costliest first.
    rec, prec, kid_value, fid_value = in_parallel([recall, precision_value, kid, fid])
    return {C.FID_DOMAIN: fid_value, C.KID_DOMAIN: kid_value, C.PRECISION_DOMAIN: prec, C.RECALL_DOMAIN: rec}


@metric_threads()
def torch_fidelity_domain_metrics(generated: torch.Tensor, real_features: torch.Tensor) -> dict[str, float]:
    """The reference :func:`domain_metrics` must equal: torch-fidelity's own feature-to-metric
    functions on the same features (what ganbench computed before 2026-11-24), on the CPU."""
    generated = generated.float().cpu()
    n = len(generated)
    kid = kid_features_to_metric(
        generated, real_features, kid_subset_size=min(KID_SUBSET_SIZE, n, len(real_features)), **FIDELITY_KWARGS
    )
    subset = prc_subset(len(real_features), n)
    prc = prc_features_to_metric(
        generated, real_features if subset is None else real_features[subset], **FIDELITY_KWARGS
    )
    return {
        C.FID_DOMAIN: _fid(generated, _statistics(real_features)),
        C.KID_DOMAIN: float(kid[torch_fidelity.KEY_METRIC_KID_MEAN]),
        C.PRECISION_DOMAIN: float(prc[torch_fidelity.KEY_METRIC_PRECISION]),
        C.RECALL_DOMAIN: float(prc[torch_fidelity.KEY_METRIC_RECALL]),
    }


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class InceptionWeights:
    """Where the Inception weights are, or why they are not to be had."""

    path: Path | None
    reason: str = ""


def resolve_inception_weights(explicit: Path | None, download: bool = True) -> InceptionWeights:
    """The Inception weights file: ``explicit`` (``--inception-weights``), else torch.hub's
    cache, else a download into it. Every file's SHA-256 is checked; never raises."""
    expected = f"sha256 starting {INCEPTION_SHA256_PREFIX}"
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            return InceptionWeights(None, f"--inception-weights {path} is not a file")
        digest = sha256(path)
        if not digest.startswith(INCEPTION_SHA256_PREFIX):
            return InceptionWeights(
                None, f"--inception-weights {path} has sha256 {digest[:16]}..., expected {expected}"
            )
        return InceptionWeights(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[1]
    if cached.is_file():
        if sha256(cached).startswith(INCEPTION_SHA256_PREFIX):
            return InceptionWeights(cached)
        return InceptionWeights(None, f"cached Inception weights {cached} fail the hash check ({expected})")
    if not download:
        return InceptionWeights(
            None, "Inception weights not cached and downloads are disabled; pass --inception-weights FILE"
        )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with socket_timeout(DOWNLOAD_TIMEOUT_S):
            torch.hub.download_url_to_file(
                INCEPTION_URL, str(cached), hash_prefix=INCEPTION_SHA256_PREFIX, progress=False
            )
    except Exception as exc:
        return InceptionWeights(
            None, f"Inception weights unavailable: download failed ({describe(exc)}); pass --inception-weights FILE"
        )
    return InceptionWeights(cached)


_PATCHING = threading.Lock()


def inception_extractor(state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """torch-fidelity's Inception-v3 feature extractor (2048-d pool features) with ``state_dict``.

    Its constructor always fetches weights itself: ``torch.load(path, weights_only=False)``
    when given a path, else torch.hub's ``load_state_dict_from_url``, which reads the hub cache
    the same way. Given no path, it calls the latter through its module's global name;
    replacing that name while it builds hands it weights we loaded with ``weights_only=True``
    and keeps torch-fidelity's network and TF1-exact resizing as they are (a subclass or a
    copy would have to redo the whole constructor). The lock: the patch is process-wide.
    """
    from torch_fidelity import feature_extractor_inceptionv3 as module

    calls = []

    def provide(url, *args, **kwargs):
        calls.append(url)
        return state_dict

    with _PATCHING, mock.patch.object(module, "load_state_dict_from_url", provide):
        extractor = module.FeatureExtractorInceptionV3(INCEPTION_EXTRACTOR, ["2048"])
    if len(calls) != 1:  # a torch-fidelity that fetches its weights some other way
        raise RuntimeError(f"torch-fidelity {torch_fidelity.__version__} did not take the given Inception weights")
    return extractor


def _load_inception_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = cache.safe_load(path)
    except Exception as exc:
        raise ValueError(f"Inception weights {path} cannot be loaded safely ({cache.short_reason(exc)})") from None
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise ValueError(f"Inception weights {path} are not a state dict")
    return state


@torch.no_grad()
def _inception_features(extractor: torch.nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    chunks = []
    for chunk in images.split(INCEPTION_BATCH):
        rgb = chunk.expand(-1, 3, -1, -1).contiguous() if chunk.shape[1] == 1 else chunk  # as collated
        chunks.append(extractor(rgb.to(device))[0].cpu())
    return torch.cat(chunks)


def inception_fid(
    weights: Path,
    generated: torch.Tensor,
    real: torch.Tensor,
    real_name: str,
    cache_dir: Path,
    device: torch.device,
) -> float:
    """torch-fidelity's standard Inception FID, grayscale repeated to 3 channels; the real
    split's statistics are cached under ``<cache_dir>/features/``."""
    state = _load_inception_weights(Path(weights))
    weights_sha256 = cache.digest(state)
    # CUDA or the CPU, as torch-fidelity's cuda flag allowed before (its TF1-exact resizing is untested elsewhere)
    device = device if device.type == "cuda" else torch.device("cpu")
    extractor = inception_extractor(state).to(device)
    identity = {
        "kind": "inception-statistics",
        "extractor": INCEPTION_EXTRACTOR,
        "weights_sha256": weights_sha256,
        "dataset": real_name,
        "images_sha256": images_sha256(real),
        "count": len(real),
    }
    path = cache.cache_path(cache_dir, f"{real_name}-{INCEPTION_EXTRACTOR}-{weights_sha256[:12]}")
    with fast.device_context(device):
        reference = cache.load_or_build(
            path, identity, lambda: _statistics(_inception_features(extractor, real, device))
        )
        generated_features = _inception_features(extractor, generated, device)
    return _fid(generated_features, reference)


def dinov2_fd(
    weights: Dinov2Weights,
    generated: torch.Tensor,
    real: torch.Tensor,
    real_name: str,
    cache_dir: Path,
    device: torch.device,
) -> float:
    """The Fréchet distance of ``generated`` to ``real`` in DINOv2's class-token features, by
    the same statistics and FID functions as the other FIDs; the real split's statistics are
    cached under ``<cache_dir>/features/``, one file per weights file (its SHA-256)."""
    from ganbench.evaluation import dinov2

    device = device if device.type == "cuda" else torch.device("cpu")  # as Inception: CUDA or the CPU
    network = dinov2.load_network(weights, device)
    identity = {
        "kind": "dinov2-statistics",
        "extractor": weights.timm_model,
        "weights_sha256": weights.sha256,
        "input_size": dinov2.INPUT_SIZE,
        "dataset": real_name,
        "images_sha256": images_sha256(real),
        "count": len(real),
        "metric_threads": METRIC_THREADS,
    }
    path = cache.cache_path(cache_dir, f"{real_name}-dinov2-{weights.sha256[:12]}")
    with fast.device_context(device):
        reference = cache.load_or_build(path, identity, lambda: _statistics(dinov2.features(network, real, device)))
        generated_features = dinov2.features(network, generated, device)
    return _fid(generated_features, reference)
