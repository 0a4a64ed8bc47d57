"""IDX image datasets (the MNIST family): reading the files, and finding them.

An explicit ``--data-dir`` is the only place looked: it is used, or refused in one line naming
what it lacks, never replaced by another copy. Without it, data is looked for, in order:
``$GANBENCH_DATA``; the Debian dataset path (``/usr/share/datasets/<name>``, package
``dataset-fashion-mnist``); the ganbench cache; then torchvision's download into the cache.
Each directory may hold the IDX files directly, a ``<name>/`` subdirectory, or torchvision's
``<Class>/raw/`` layout; files may be gzipped.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from ganbench.data.splits import DataRequest, DatasetSplits
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


class IdxError(UsageError, ValueError):
    """A damaged or wrong IDX file. Also a ValueError, which :func:`read_idx` raised before."""


_FIX = "replace it with an intact copy or pass --data-dir DIR"
_UBYTE = 0x08  # the IDX type byte for unsigned bytes, the only type the MNIST family uses
_NOUN = {1: "label", 3: "image"}  # what an IDX file of that many dimensions holds in the MNIST family


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _read_bytes(path: Path) -> bytes:
    gz = path.suffix == ".gz"
    try:
        with (gzip.open if gz else open)(path, "rb") as f:
            raw = f.read()
    except EOFError as exc:  # gzip's way of saying the file was cut short
        raise IdxError(f"{path} is truncated: its gzip stream ends early ({describe(exc)}); {_FIX}") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:  # BadGzipFile is an OSError: caught first
        raise IdxError(f"{path} is not an intact gzip file ({describe(exc)}); {_FIX}") from exc
    except OSError as exc:
        raise IdxError(f"{path} cannot be read ({describe(exc)}); {_FIX}") from exc
    if not gz and raw[:2] == b"\x1f\x8b":
        raise IdxError(f"{path} is gzip-compressed but not named .gz; rename it to {path.name}.gz or gunzip it")
    return raw


def read_idx(path: Path, ndim: int | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzipped when named ``.gz``) into an array of its declared shape.

    ``ndim``, when given, is the number of dimensions the file must declare (3 for images,
    1 for labels). Raises :class:`IdxError` (a UsageError) with one line naming the file,
    what is wrong and how to fix it.
    """
    path = Path(path)
    raw = _read_bytes(path)
    expected = (
        f"0x{_UBYTE << 8 | ndim:08x} (unsigned bytes, {ndim}-d)" if ndim else f"0x{_UBYTE:06x}NN (unsigned bytes, NN-d)"
    )
    noun = _NOUN.get(ndim or 0, "")
    what = f"an IDX {noun} file" if noun else "an unsigned-byte IDX file"
    if len(raw) < 4:
        raise IdxError(f"{path} is not {what}: {len(raw)} bytes, no 4-byte magic number (expected {expected}); {_FIX}")
    magic, found_ndim = int.from_bytes(raw[:4], "big"), raw[3]
    if raw[:3] != bytes((0, 0, _UBYTE)) or found_ndim == 0 or (ndim is not None and found_ndim != ndim):
        raise IdxError(f"{path} is not {what}: magic number 0x{magic:08x}, expected {expected}; {_FIX}")
    header = 4 + 4 * found_ndim
    if len(raw) < header:
        raise IdxError(f"{path} is truncated: {len(raw)} bytes, shorter than its {header}-byte IDX header; {_FIX}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(found_ndim))
    declared, held = math.prod(shape), len(raw) - header
    data = f"{noun} data" if noun else "data"
    if held < declared:
        raise IdxError(
            f"{path} is truncated: holds {held} bytes of {data}, its header declares {_dims(shape)} "
            f"({declared} bytes); {_FIX}"
        )
    if held > declared:
        raise IdxError(
            f"{path} holds {held} bytes of {data}, {held - declared} more than its header declares "
            f"({_dims(shape)}, {declared} bytes); {_FIX}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_path(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _layouts(root: Path, name: str, torchvision_folder: str) -> tuple[Path, ...]:
    return (root, root / name, root / torchvision_folder / "raw")


def find_idx_dir(root: Path, name: str, torchvision_folder: str) -> Path | None:
    """The directory under ``root`` that holds all four IDX files of the dataset, if any."""
    for directory in _layouts(root, name, torchvision_folder):
        if all(_idx_path(directory, stem) for stem in IDX_FILES.values()):
            return directory
    return None


def what_is_missing(root: Path, name: str, torchvision_folder: str) -> str:
    """Why ``root`` holds no complete copy, in a few words: it does not exist, is a file,
    holds none of the four IDX files, or which of them the fullest of its layouts lacks."""
    if not root.exists():
        return "does not exist"
    if not root.is_dir():
        return "is not a directory"
    layouts = _layouts(root, name, torchvision_folder)
    held = {d: [stem for stem in IDX_FILES.values() if _idx_path(d, stem)] for d in layouts}
    directory = max(held, key=lambda d: len(held[d]))  # the first of the fullest
    if not held[directory]:
        return f"holds none of the four {name} IDX files"
    missing = [stem for stem in IDX_FILES.values() if stem not in held[directory]]
    where = "" if directory == root else f" in {directory.relative_to(root)}/"
    return f"holds {len(held[directory])} of the four {name} IDX files{where} (missing {', '.join(missing)})"


def accepted_layouts(name: str, torchvision_folder: str) -> str:
    """What a data directory must hold, for messages."""
    return (
        f"a directory holding the four {name} IDX files ({', '.join(IDX_FILES.values())}, each may be .gz) "
        f"directly, in {name}/ or in {torchvision_folder}/raw/"
    )


def read_splits(directory: Path, name: str, class_names: tuple[str, ...], source: str) -> DatasetSplits:
    """The four IDX files in ``directory`` as splits; IdxError (one line) for a damaged or mismatched file."""
    paths: dict[str, Path] = {}
    for key, stem in IDX_FILES.items():
        found = _idx_path(directory, stem)
        if found is None:
            raise IdxError(f"{directory} holds no {stem} (or {stem}.gz); pass --data-dir DIR with all four IDX files")
        paths[key] = found
    arrays = {key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = paths[f"{split}_images"], paths[f"{split}_labels"]
        n_images, n_labels = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_images != n_labels:  # each a valid IDX file, but not a pair
            raise IdxError(
                f"{labels} holds {n_labels} labels but {images} holds {n_images} images; "
                f"replace them with a matching pair from one copy of {name} or pass --data-dir DIR"
            )
    tensors = {
        key: torch.from_numpy(a.copy()).unsqueeze(1) if key.endswith("images") else torch.from_numpy(a.astype(np.int64))
        for key, a in arrays.items()
    }
    return DatasetSplits(name=name, class_names=class_names, source=source, **tensors)


def locate(
    request: DataRequest, name: str, torchvision_folder: str, environ: dict[str, str] | None = None
) -> tuple[Path, str]:
    """Find the dataset's IDX files: ``--data-dir`` alone when given, else along the documented
    chain, with a download as the last resort.

    Returns the directory and a description of where it was found. Raises UsageError (one
    line) for a ``--data-dir`` without the four files, naming what it lacks and what is
    accepted; without one, with every place tried and how to fix it when the data is nowhere.
    """
    if request.data_dir is not None:
        root = Path(request.data_dir).expanduser()
        found = find_idx_dir(root, name, torchvision_folder)
        if found is not None:
            return found, f"--data-dir {found}"
        raise UsageError(
            f"--data-dir {root} {what_is_missing(root, name, torchvision_folder)}; "
            f"accepted: {accepted_layouts(name, torchvision_folder)}; "
            f"without --data-dir, ganbench looks in ${DATA_ENV}, the Debian dataset path and its cache"
        )
    env = os.environ if environ is None else environ
    tried: list[str] = []
    places: list[tuple[str, Path | None]] = [
        ("--data-dir", None),
        (f"${DATA_ENV}", Path(env[DATA_ENV]) if env.get(DATA_ENV) else None),
        ("Debian dataset path", DEBIAN_ROOT / name),
        ("ganbench cache", request.cache_dir / "data"),
    ]
    for label, root in places:
        if root is None:
            tried.append(f"{label} (not set)")
            continue
        root = Path(root).expanduser()
        found = find_idx_dir(root, name, torchvision_folder)
        if found is not None:
            return found, f"{label} {found}"
        missing = what_is_missing(root, name, torchvision_folder)
        tried.append(f"{label} {root} ({missing})")
        if label == f"${DATA_ENV}":
            log.warning("%s %s %s; looking further", label, root, missing)
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
