"""A folder of images as a dataset (``--dataset folder --data-dir DIR``).

Layout: one subfolder per class (images anywhere below it), or images with no class
subfolders (unconditional: one class). ``train/`` and ``test/`` subfolders, each laid out so,
are the splits; otherwise a fixed ~10% of each class is held out (seed 0, the same every time).
PNG and JPEG images are resized (shorter side) and center-cropped to ``--image-size`` N
(default: the shorter side of the most common size, rounded down to a multiple of 4, what the
DCGAN networks need), grayscale when every image is, else RGB.

Decoded once: the arrays go to ``<cache_dir>/data/folder-<key>.npz`` (numpy's format, read
with ``allow_pickle=False``), keyed by every file's relative name, size and mtime, hashed with
the preprocessing. A changed folder is read again; nothing is ever written into it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganbench.data.splits import DataRequest, DatasetSplits
from ganbench.errors import UsageError, describe
from ganbench.files import atomic_write

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
HOLDOUT_FRACTION = 0.1
SPLIT_SEED = 0
PREPROCESSING = "v1: shorter side resized (PIL bilinear, antialiased), center crop, L or RGB"
MIN_SIZE = 8
UNCONDITIONAL = "image"  # the one class of a folder without class subfolders
ACCEPTED = (
    "a folder of PNG/JPEG images, with one subfolder per class (or none: one class), "
    "optionally split into train/ and test/ subfolders laid out the same way"
)


@dataclass(frozen=True)
class Listing:
    """What a folder holds: per split, (relative path, class index) of every image file."""

    root: Path
    class_names: tuple[str, ...]
    files: dict[str, list[tuple[str, int]]]  # "train" (and "test" when the folder has one)
    ignored: tuple[str, ...]  # non-image files, relative paths
    loops: tuple[str, ...]  # folders not entered again (a symlink back to a folder already seen)


def _walk(top: Path, root: Path, seen: set[tuple[int, int]], ignored: list[str], loops: list[str]) -> list[str]:
    """Relative paths of the image files below ``top`` (symlinks followed, each folder once)."""
    found: list[str] = []
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError:
            loops.append(str(folder.relative_to(root)))  # a dangling or looping link
            continue
        if (st.st_dev, st.st_ino) in seen:
            loops.append(str(folder.relative_to(root)))
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise UsageError(f"folder {folder} cannot be listed ({describe(exc)}); accepted: {ACCEPTED}") from exc
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                continue  # hidden files and folders (.DS_Store, .ipynb_checkpoints)
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(path)
            elif entry.name.lower().endswith(IMAGE_SUFFIXES):
                found.append(str(path.relative_to(root)))
            else:
                ignored.append(str(path.relative_to(root)))
    return sorted(found)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan(root: Path) -> Listing:
    """The folder's images by split and class; UsageError when it holds none."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"--data-dir {root} {'does not exist' if not root.exists() else 'is not a folder'}; accepted: {ACCEPTED}")
    ignored: list[str] = []
    loops: list[str] = []
    seen: set[tuple[int, int]] = {(root.stat().st_dev, root.stat().st_ino)}
    split_roots = {"train": root / "train", "test": root / "test"}
    if not split_roots["train"].is_dir():
        split_roots = {"train": root}
    by_split: dict[str, dict[str, list[str]]] = {}
    for split, top in split_roots.items():
        classes = {p.name: p for p in _subfolders(top)}
        files = [p for p in sorted(top.iterdir()) if p.is_file() and not p.name.startswith(".")]
        loose = [str(p.relative_to(root)) for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        ignored.extend(str(p.relative_to(root)) for p in files if p.suffix.lower() not in IMAGE_SUFFIXES)
        if top != root:
            seen.add((top.stat().st_dev, top.stat().st_ino))
        if not classes:
            by_split[split] = {UNCONDITIONAL: loose}
            continue
        if loose:
            log.warning(
                "folder %s: %d images beside the class subfolders belong to no class and are ignored (e.g. %s)",
                top, len(loose), loose[0],
            )
            ignored.extend(loose)
        by_split[split] = {name: _walk(path, root, seen, ignored, loops) for name, path in classes.items()}
    train = {name: files for name, files in by_split["train"].items() if files}
    if not train:
        others = f" ({len(ignored)} other files ignored, e.g. {ignored[0]})" if ignored else ""
        raise UsageError(f"--data-dir {root} holds no PNG or JPEG images{others}; accepted: {ACCEPTED}")
    class_names = tuple(sorted(train))
    if "test" in by_split:
        unknown = sorted(set(n for n, f in by_split["test"].items() if f) - set(class_names))
        if unknown:
            raise UsageError(
                f"--data-dir {root}: test/ has classes that train/ lacks ({', '.join(unknown)}); "
                "accepted: the same class subfolders in both, or only in train/"
            )
    files = {
        split: [(path, class_names.index(name)) for name, paths in sorted(classes.items()) if name in class_names for path in paths]
        for split, classes in by_split.items()
    }
    if len(class_names) == 1 and class_names[0] != UNCONDITIONAL:
        log.warning(
            "folder %s: one class subfolder (%s): a dataset of one class, as a folder without subfolders",
            root, class_names[0],
        )
    if loops:
        log.warning("folder %s: %d folders reached again through symlinks were not read twice (e.g. %s)", root, len(loops), loops[0])
    if ignored:
        log.warning("folder %s: %d files that are not PNG or JPEG images are ignored (e.g. %s)", root, len(ignored), ignored[0])
    return Listing(root, class_names, files, tuple(ignored), tuple(loops))


def fingerprint(listing: Listing, image_size: int | None) -> str:
    """SHA-256 of every image's relative name, size and mtime, its split and class, and the
    preprocessing: stat calls only, no image read."""
    digest = hashlib.sha256(f"{PREPROCESSING}|size={image_size}|classes={listing.class_names}".encode())
    for split, files in sorted(listing.files.items()):
        for path, label in files:
            st = (listing.root / path).stat()
            digest.update(f"{split}|{label}|{path}|{st.st_size}|{st.st_mtime_ns};".encode())
    return digest.hexdigest()


def _probe(path: Path) -> tuple[tuple[int, int], str] | str:
    """(size, mode) from the header, or why it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size, image.mode
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return describe(exc)


def default_size(sizes: Counter[tuple[int, int]]) -> int:
    """The shorter side of the most common size, down to a multiple of 4 (DCGAN's 2 upsamplings)."""
    (w, h), _ = max(sizes.items(), key=lambda item: (item[1], item[0]))
    return max(MIN_SIZE, min(w, h) // 4 * 4)


def _decode(path: Path, size: int, mode: str) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.load()  # a truncated file fails here, not later
        if image.mode not in ("L", "RGB"):
            if image.mode in ("RGBA", "LA", "P", "PA"):  # transparent pixels on white, not on black
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        fitted = ImageOps.fit(image.convert(mode), (size, size), Image.Resampling.BILINEAR, centering=(0.5, 0.5))
        array = np.asarray(fitted, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def decode(listing: Listing, image_size: int | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Images (N, C, S, S) and labels per split, and the files skipped (``path: reason``)."""
    every = [(split, path, label) for split, files in listing.files.items() for path, label in files]
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        probes = list(pool.map(lambda item: _probe(listing.root / item[1]), every))
    bad = [f"{item[1]}: {p}" for item, p in zip(every, probes) if isinstance(p, str)]
    good = [(item, p) for item, p in zip(every, probes) if not isinstance(p, str)]
    if not good:
        raise UsageError(f"--data-dir {listing.root}: none of its {len(every)} images can be read (e.g. {bad[0]}); accepted: {ACCEPTED}")
    sizes = Counter(p[0] for _, p in good)
    modes = Counter("L" if p[1] in GRAY_MODES else "RGB" for _, p in good)
    mode = "RGB" if modes["RGB"] else "L"
    if len(modes) > 1:
        log.warning(
            "folder %s: %d grayscale and %d colour images: all read as RGB", listing.root, modes["L"], modes["RGB"]
        )
    size = image_size or default_size(sizes)
    if len(sizes) > 1:
        log.warning(
            "folder %s: images of %d sizes (most common %s): each resized and center-cropped to %dx%d",
            listing.root, len(sizes), "x".join(map(str, sizes.most_common(1)[0][0])), size, size,
        )
    channels = 1 if mode == "L" else 3
    out = np.empty((len(good), channels, size, size), dtype=np.uint8)
    ok = np.ones(len(good), dtype=bool)
    reasons: list[str | None] = [None] * len(good)

    def work(i: int) -> None:
        try:
            out[i] = _decode(listing.root / good[i][0][1], size, mode)
        except (OSError, ValueError) as exc:  # truncated or damaged: PIL's errors are OSErrors
            ok[i] = False
            reasons[i] = f"{good[i][0][1]}: {describe(exc)}"

    log.info("folder %s: decoding %d images to %dx%dx%d once", listing.root, len(good), channels, size, size)
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(work, range(len(good))))
    bad += [r for r in reasons if r is not None]
    images, labels = {}, {}
    for split in listing.files:
        rows = np.array([i for i, (item, _) in enumerate(good) if item[0] == split and ok[i]], dtype=np.int64)
        images[split] = out[rows]
        labels[split] = np.array([good[i][0][2] for i in rows], dtype=np.int64)
    if bad:
        log.warning(
            "folder %s: %d images cannot be decoded and are skipped: %s%s",
            listing.root, len(bad), "; ".join(bad[:5]), "; ..." if len(bad) > 5 else "",
        )
    return images, labels, bad


def stratified_holdout(labels: np.ndarray, fraction: float = HOLDOUT_FRACTION, seed: int = SPLIT_SEED) -> np.ndarray:
    """bool mask of the held-out rows: round(fraction * n) of each class's n images (at least
    one when the class has two or more), chosen by a seeded permutation."""
    held = np.zeros(len(labels), dtype=bool)
    rng = np.random.default_rng(seed)
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        n = len(rows)
        take = max(1, round(fraction * n)) if n >= 2 else 0
        held[rng.permutation(rows)[:take]] = True
    return held


def cache_file(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "data" / f"folder-{key[:24]}.npz"


def _read_cache(path: Path, key: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # damaged: rebuilt
        log.warning("folder cache %s is unusable (%s); reading the folder again", path, describe(exc))
        return None
    if str(arrays.get("key", "")) != key:
        return None
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    try:
        atomic_write(path, write)
    except OSError as exc:
        log.warning("folder cache %s cannot be written (%s); going on without it", path, describe(exc))


def read_folder(
    root: Path, cache_dir: Path, image_size: int | None, name: str = "folder", source: str | None = None
) -> DatasetSplits:
    """``root`` as splits, from the cache when it was made from this very content."""
    if image_size is not None and (image_size < MIN_SIZE or image_size % 4):
        raise UsageError(f"image_size {image_size} is not accepted: a multiple of 4, at least {MIN_SIZE} (e.g. 32, 64)")
    listing = scan(root)
    key = fingerprint(listing, image_size)
    path = cache_file(cache_dir, key)
    arrays = _read_cache(path, key)
    if arrays is None:
        images, labels, skipped = decode(listing, image_size)
        arrays = {
            "key": np.array(key),
            "class_names": np.array(listing.class_names),
            "skipped": np.array(skipped, dtype=str),
            **{f"{split}_images": images[split] for split in images},
            **{f"{split}_labels": labels[split] for split in labels},
        }
        _write_cache(path, arrays)
    else:
        log.info("folder %s: decoded images from the cache %s", listing.root, path)
    train_images, train_labels = arrays["train_images"], arrays["train_labels"]
    if "test_images" in arrays:
        test_images, test_labels = arrays["test_images"], arrays["test_labels"]
        split = "its train/ and test/ subfolders"
    else:
        held = stratified_holdout(train_labels)
        test_images, test_labels = train_images[held], train_labels[held]
        train_images, train_labels = train_images[~held], train_labels[~held]
        split = f"{int(held.sum())} images held out ({HOLDOUT_FRACTION:.0%} per class, seed {SPLIT_SEED})"
    for which, n in (("train", len(train_images)), ("test", len(test_images))):
        if n == 0:
            raise UsageError(
                f"--data-dir {listing.root} leaves its {which} split empty ({len(train_images)} train, "
                f"{len(test_images)} test readable images); accepted: at least 2 images, and test/ images when test/ exists"
            )
    class_names = tuple(str(c) for c in arrays["class_names"])
    log.info(
        "folder %s: %d classes, %d train / %d test images (%s)",
        listing.root, len(class_names), len(train_images), len(test_images), split,
    )
    return DatasetSplits(
        name=name,
        train_images=torch.from_numpy(np.ascontiguousarray(train_images)),
        train_labels=torch.from_numpy(np.ascontiguousarray(train_labels)),
        test_images=torch.from_numpy(np.ascontiguousarray(test_images)),
        test_labels=torch.from_numpy(np.ascontiguousarray(test_labels)),
        class_names=class_names,
        source=source or str(listing.root.resolve()),
    )


def load_folder(request: DataRequest) -> DatasetSplits:
    if request.data_dir is None:
        raise UsageError(f"--dataset folder needs --data-dir DIR; accepted: {ACCEPTED}")
    root = Path(request.data_dir).expanduser()
    return read_folder(root, request.cache_dir, request.image_size, source=str(root.resolve()))
