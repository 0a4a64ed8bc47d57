"""CIFAR-10 from a local copy (``--dataset cifar10``), or torchvision's download when allowed.

Accepted copies, in ``--data-dir`` (or ``$GANBENCH_DATA``, or ``<cache_dir>/data``):
torchvision's layout ``cifar-10-batches-py/`` (``data_batch_1`` .. ``data_batch_5``,
``test_batch``, ``batches.meta``), or the PNG-folder form ``cifar10/train/<class>/*.png`` (and
``cifar10/test/<class>/``; without it a seeded 10% is held out), read as ``--dataset folder``.

The python batches are pickles. They are read by :class:`BatchUnpickler`, which builds only
dicts, lists, strings, bytes, numbers and numpy arrays: every global a pickle names is refused
except numpy's array reconstruction, so a planted file runs no code; it is a one-line error.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from ganbench.data import folder as image_folder
from ganbench.data.splits import DataRequest, DatasetSplits
from ganbench.downloads import DOWNLOAD_TIMEOUT_S, socket_timeout
from ganbench.errors import UsageError, describe

log = logging.getLogger(__name__)

DATA_ENV = "GANBENCH_DATA"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH, META = "test_batch", "batches.meta"
PNG_FOLDER = "cifar10"
SIZE = 32
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE, MD5 = "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"  # torchvision's CIFAR10 checksum
_FIX = "replace it with the file from an intact copy of CIFAR-10 or pass --data-dir DIR"
ACCEPTED = (
    f"a directory holding {BATCH_FOLDER}/ (data_batch_1..5, test_batch, batches.meta, torchvision's layout), "
    f"or {PNG_FOLDER}/train/<class>/*.png (PNG-folder form)"
)

# What numpy arrays need: ndarray's pickle calls _reconstruct(ndarray, shape, dtype code) and
# dtype(code); numpy 2 names the module numpy._core, numpy 1 numpy.core. Nothing else.
ALLOWED = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class BatchUnpickler(pickle.Unpickler):
    """Builds plain data and numpy arrays only; any other global is refused (never imported)."""

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")


def read_batch(path: Path) -> dict[str, object]:
    """One python batch as a dict with str keys; UsageError (one line) for anything else."""
    try:
        raw = path.read_bytes()
        data = BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except OSError as exc:
        raise UsageError(f"{path} cannot be read ({describe(exc)}); {_FIX}") from exc
    except Exception as exc:  # a refused global, a truncated or foreign file: all bad input
        raise UsageError(f"{path} is not a CIFAR-10 python batch ({describe(exc)}); {_FIX}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path} holds a {type(data).__name__}, not a CIFAR-10 batch's dict; {_FIX}")
    return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in data.items()}


def _images_and_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = read_batch(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIZE * SIZE:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UsageError(f"{path}: 'data' must be uint8 (N, {3 * SIZE * SIZE}), found {found}; {_FIX}")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES))):
        raise UsageError(f"{path}: 'labels' must be {data.shape[0]} ints in 0..{len(CLASSES) - 1}; {_FIX}")
    return data.reshape(-1, 3, SIZE, SIZE), labels


def read_batches(directory: Path, source: str, image_size: int | None = None) -> DatasetSplits:
    """The six python batches in ``directory`` as splits (resized when ``image_size`` is not 32)."""
    meta = read_batch(directory / META) if (directory / META).is_file() else {}
    names = meta.get("label_names")
    if names is not None:
        names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
        if names != CLASSES:
            raise UsageError(f"{directory / META} names classes {names}, not CIFAR-10's {CLASSES}; {_FIX}")
    parts = {"train": [_images_and_labels(directory / b) for b in TRAIN_BATCHES], "test": [_images_and_labels(directory / TEST_BATCH)]}
    tensors = {}
    for split, arrays in parts.items():
        images = torch.from_numpy(np.concatenate([a for a, _ in arrays]))
        tensors[f"{split}_images"] = _resized(images, image_size)
        tensors[f"{split}_labels"] = torch.from_numpy(np.concatenate([lb for _, lb in arrays]))
    return DatasetSplits("cifar10", class_names=CLASSES, source=source, **tensors)


def _resized(images: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or size == SIZE:
        return images
    out = [
        torch.nn.functional.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        .round_().clamp_(0, 255).to(torch.uint8)
        for chunk in images.split(4096)
    ]
    return torch.cat(out)


def find_copy(root: Path) -> tuple[str, Path] | None:
    """``("batches", dir)`` or ``("png", dir)`` for a copy under ``root``, else None."""
    for directory in (root / BATCH_FOLDER, root):
        if all((directory / b).is_file() for b in (*TRAIN_BATCHES, TEST_BATCH)):
            return "batches", directory
    for directory in (root / PNG_FOLDER, root):
        if (directory / "train").is_dir():
            return "png", directory
    return None


def what_is_missing(root: Path) -> str:
    if not root.exists():
        return "does not exist"
    if not root.is_dir():
        return "is not a directory"
    for directory in (root / BATCH_FOLDER, root):
        held = [b for b in (*TRAIN_BATCHES, TEST_BATCH) if (directory / b).is_file()]
        if held:
            missing = [b for b in (*TRAIN_BATCHES, TEST_BATCH) if b not in held]
            return f"holds {len(held)} of CIFAR-10's 6 python batches in {directory} (missing {', '.join(missing)})"
    return f"holds neither {BATCH_FOLDER}/ nor {PNG_FOLDER}/train/"


def _read(kind: str, directory: Path, request: DataRequest, source: str) -> DatasetSplits:
    if kind == "batches":
        return read_batches(directory, source, request.image_size)
    splits = image_folder.read_folder(directory, request.cache_dir, request.image_size or SIZE, "cifar10", source)
    if splits.class_names != CLASSES:
        raise UsageError(
            f"{directory}/train/ has class folders {', '.join(splits.class_names)}; "
            f"accepted: CIFAR-10's ten ({', '.join(CLASSES)})"
        )
    return splits


def download(root: Path) -> None:
    """torchvision's download and extraction, checked against the archive's MD5."""
    from torchvision.datasets.utils import download_and_extract_archive

    with socket_timeout(DOWNLOAD_TIMEOUT_S):
        download_and_extract_archive(URL, str(root), filename=ARCHIVE, md5=MD5)


def load_cifar10(request: DataRequest, environ: dict[str, str] | None = None) -> DatasetSplits:
    """``--data-dir`` alone when given; else ``$GANBENCH_DATA``, ``<cache_dir>/data``, then the
    download (when allowed)."""
    if request.data_dir is not None:
        root = Path(request.data_dir).expanduser()
        found = find_copy(root)
        if found is None:
            raise UsageError(f"--data-dir {root} {what_is_missing(root)}; accepted: {ACCEPTED}")
        return _read(*found, request, f"--data-dir {found[1]}")
    env = os.environ if environ is None else environ
    tried = ["--data-dir (not set)"]
    for label, root in (
        (f"${DATA_ENV}", Path(env[DATA_ENV]).expanduser() if env.get(DATA_ENV) else None),
        ("ganbench cache", Path(request.cache_dir) / "data"),
    ):
        if root is None:
            tried.append(f"{label} (not set)")
            continue
        found = find_copy(root)
        if found is not None:
            return _read(*found, request, f"{label} {found[1]}")
        tried.append(f"{label} {root} ({what_is_missing(root)})")
    if request.download:
        root = Path(request.cache_dir) / "data"
        try:
            download(root)
        except Exception as exc:  # no network, a mirror down, a checksum mismatch
            tried.append(f"torchvision download ({describe(exc)})")
        else:
            found = find_copy(root)
            if found is not None:
                return _read(*found, request, f"torchvision download {found[1]}")
            tried.append(f"torchvision download into {root} (files not found afterwards)")
    else:
        tried.append("torchvision download (disabled by --no-download)")
    raise UsageError(f"cifar10 data not found; tried: {'; '.join(tried)}. Pass --data-dir DIR ({ACCEPTED}), or allow the download")
