"""torch-fidelity integration: the held-out classifier as a registered feature extractor,
and torch-fidelity's Inception FID when its weights can be had."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from ganbench import columns as C
from ganbench.downloads import socket_timeout
from ganbench.errors import describe
from ganbench.evaluation.classifier import HeldOutClassifier, load_weights_file

log = logging.getLogger(__name__)

INCEPTION_EXTRACTOR = "inception-v3-compat"
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
# torch.hub convention: the file name ends with the first digits of its SHA-256.
INCEPTION_SHA256_PREFIX = "6726825d"
DOWNLOAD_TIMEOUT_S = 30
FEATURE_BATCH = 500


class ImageTensorDataset(Dataset):
    """uint8 images (N, C, H, W) as torch-fidelity reads them; ``rgb`` repeats grayscale to 3
    channels, as Inception expects."""

    def __init__(self, images: torch.Tensor, rgb: bool = False) -> None:
        self.images = images.cpu()
        self.rgb = rgb and images.shape[1] == 1

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1) if self.rgb else x


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """The held-out classifier's 128-d feature layer (and logits) for torch-fidelity.

    torch-fidelity instantiates it by registered name and passes the cached classifier file
    as ``feature_extractor_weights_path``.
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


def _common_kwargs(device: torch.device, cache_dir: Path, n1: int, n2: int) -> dict:
    return dict(
        cuda=device.type == "cuda",
        batch_size=FEATURE_BATCH,
        cache_root=str(Path(cache_dir) / "fidelity"),
        save_cpu_ram=True,  # in-memory tensors: no DataLoader worker processes
        verbose=False,
        kid_subset_size=min(1000, n1, n2),
    )


def domain_metrics(
    classifier: HeldOutClassifier,
    generated: torch.Tensor,
    real: torch.Tensor,
    real_cache_name: str,
    cache_dir: Path,
    device: torch.device,
) -> dict[str, float]:
    """FID, KID, precision and recall in the held-out classifier's feature space, by
    torch-fidelity.

    FID and KID compare the samples with all of ``real`` (whose features and statistics are
    cached under ``real_cache_name``). Precision and recall compare them with a fixed random
    subset of ``real`` of the same size: the k-NN radii of both sets then mean the same thing,
    as in Kynkäänniemi et al. 2019, and the cost scales with the number of samples.
    """
    extractor = register_classifier_extractor(classifier)
    name = f"{real_cache_name}-{classifier.fingerprint[:12]}"
    common = dict(
        feature_extractor=extractor,
        feature_extractor_weights_path=str(classifier.path),
        **_common_kwargs(device, cache_dir, len(generated), len(real)),
    )
    generated_set = ImageTensorDataset(generated)
    fid_kid = torch_fidelity.calculate_metrics(
        input1=generated_set, input2=ImageTensorDataset(real), input2_cache_name=name, fid=True, kid=True, **common
    )
    n = len(generated)
    if n < len(real):
        subset = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:n]
        real, name = real[subset], f"{name}-subset{n}"
    prc = torch_fidelity.calculate_metrics(
        input1=generated_set, input2=ImageTensorDataset(real), input2_cache_name=name, prc=True, **common
    )
    return {
        C.FID_DOMAIN: float(fid_kid[torch_fidelity.KEY_METRIC_FID]),
        C.KID_DOMAIN: float(fid_kid[torch_fidelity.KEY_METRIC_KID_MEAN]),
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


def inception_fid(
    weights: Path,
    generated: torch.Tensor,
    real: torch.Tensor,
    real_cache_name: str,
    cache_dir: Path,
    device: torch.device,
) -> float:
    """torch-fidelity's standard Inception FID, grayscale repeated to 3 channels."""
    metrics = torch_fidelity.calculate_metrics(
        input1=ImageTensorDataset(generated, rgb=True),
        input2=ImageTensorDataset(real, rgb=True),
        input2_cache_name=f"{real_cache_name}-rgb",
        feature_extractor=INCEPTION_EXTRACTOR,
        feature_extractor_weights_path=str(weights),
        fid=True,
        **_common_kwargs(device, cache_dir, len(generated), len(real)),
    )
    return float(metrics[torch_fidelity.KEY_METRIC_FID])
