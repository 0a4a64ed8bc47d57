"""IDX image datasets (the MNIST family): reading the files, and finding them.

Data is looked for, in order: ``--data-dir``; ``$GANBENCH_DATA``; the Debian dataset path
(``/usr/share/datasets/<name>``, package ``dataset-fashion-mnist``); the ganbench cache;
then torchvision's download into the cache. Each directory may hold the IDX files directly,
a ``<name>/`` subdirectory, or torchvision's ``<Class>/raw/`` layout; files may be gzipped.
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np
import torch

from ganbench.data import DataRequest, DatasetSplits
from ganbench.downloads import DOWNLOAD_TIMEOUT_S, socket_timeout
from ganbench.errors import UsageError, describe

log = logging.getLogger(__name__)

DATA_ENV = "GANBENCH_DATA"
DEBIAN_ROOT = Path("/usr/share/datasets")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} bytes of data, its header declares {shape}")
    return data.reshape(shape)


def _idx_path(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def find_idx_dir(root: Path, name: str, torchvision_folder: str) -> Path | None:
    """The directory under ``root`` that holds all four IDX files of the dataset, if any."""
    for directory in (root, root / name, root / torchvision_folder / "raw"):
        if all(_idx_path(directory, stem) for stem in IDX_FILES.values()):
            return directory
    return None


def read_splits(directory: Path, name: str, class_names: tuple[str, ...], source: str) -> DatasetSplits:
    arrays = {key: read_idx(_idx_path(directory, stem)) for key, stem in IDX_FILES.items()}  # type: ignore[arg-type]
    tensors = {
        key: torch.from_numpy(a.copy()).unsqueeze(1) if key.endswith("images") else torch.from_numpy(a.astype(np.int64))
        for key, a in arrays.items()
    }
    return DatasetSplits(name=name, class_names=class_names, source=source, **tensors)


def locate(
    request: DataRequest, name: str, torchvision_folder: str, environ: dict[str, str] | None = None
) -> tuple[Path, str]:
    """Find the dataset's IDX files along the documented chain; download as the last resort.

    Returns the directory and a description of where it was found. Raises UsageError with
    every place tried and how to fix it when the data is nowhere.
    """
    env = os.environ if environ is None else environ
    tried: list[str] = []
    places: list[tuple[str, Path | None]] = [
        ("--data-dir", request.data_dir),
        (f"${DATA_ENV}", Path(env[DATA_ENV]) if env.get(DATA_ENV) else None),
        ("Debian dataset path", DEBIAN_ROOT / name),
        ("ganbench cache", request.cache_dir / "data"),
    ]
    for label, root in places:
        if root is None:
            tried.append(f"{label} (not set)")
            continue
        found = find_idx_dir(Path(root).expanduser(), name, torchvision_folder)
        if found is not None:
            return found, f"{label} {found}"
        tried.append(f"{label} {root} (no {name} IDX files)")
        if label in ("--data-dir", f"${DATA_ENV}"):
            log.warning("%s %s holds no %s IDX files; looking further", label, root, name)
    if request.download:
        root = request.cache_dir / "data"
        try:
            import torchvision.datasets

            with socket_timeout(DOWNLOAD_TIMEOUT_S):
                for train in (True, False):
                    getattr(torchvision.datasets, torchvision_folder)(str(root), train=train, download=True)
        except Exception as exc:  # no network, a mirror down, a partial file...
            tried.append(f"torchvision download ({describe(exc)})")
        else:
            found = find_idx_dir(root, name, torchvision_folder)
            if found is not None:
                return found, f"torchvision download {found}"
            tried.append(f"torchvision download into {root} (files not found afterwards)")
    else:
        tried.append("torchvision download (disabled by --no-download)")
    hint = " or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
    raise UsageError(
        f"{name} data not found; tried: {'; '.join(tried)}. "
        f"Pass --data-dir DIR (a directory with the four IDX files), set {DATA_ENV}{hint}, "
        "or allow torchvision's download"
    )
