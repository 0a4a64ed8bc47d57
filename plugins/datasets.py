"""Built-in datasets (Fashion-MNIST, MNIST, CelebA, CIFAR-10, a folder of images), registered through the ``ganbench`` hook like
any third-party dataset. Reading and finding the IDX files is :mod:`ganbench.idx`.

CelebA is read from a local copy in torchvision's layout (``<root>/celeba/img_align_celeba/*.jpg``,
``list_attr_celeba.txt``, ``list_eval_partition.txt``), center-cropped and resized to 64x64 once,
and cached as tensors under ``<cache_dir>/data/celeba-64/``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ganbench import DatasetSpec, hookimpl
from ganbench.attributes import PIXEL_ATTRIBUTES, pixel_measures
from ganbench.data import DataRequest, DatasetSplits, check_splits
from ganbench.data.cifar import CLASSES as CIFAR10_CLASSES
from ganbench.data.cifar import load_cifar10
from ganbench.data.folder import load_folder
from ganbench.errors import UsageError, describe
from ganbench.idx import DATA_ENV, locate, read_splits

log = logging.getLogger("ganbench.datasets")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
MNIST_CLASSES = tuple(str(d) for d in range(10))


def builtin_spec(name: str, torchvision_folder: str, class_names: tuple[str, ...], description: str) -> DatasetSpec:
    def load(request: DataRequest) -> DatasetSplits:
        directory, source = locate(request, name, torchvision_folder)
        splits = read_splits(directory, name, class_names, source)
        check_splits(spec, splits)  # also done by the harness; here so that a refused copy is not announced as used
        log.info("%s: using %s", name, source)
        return splits

    load.__qualname__ = f"load_{name.replace('-', '_')}"
    spec = DatasetSpec(
        name,
        load,
        (1, 28, 28),
        class_names,
        description,
        attributes=PIXEL_ATTRIBUTES,
        measure_attributes=pixel_measures,
    )
    return spec


BUILTIN = (
    # name, torchvision class (its download and folder name), classes, description
    (
        "fashion-mnist",
        "FashionMNIST",
        FASHION_MNIST_CLASSES,
        "Zalando Fashion-MNIST: 60k train / 10k test 28x28 grayscale, 10 classes",
    ),
    ("mnist", "MNIST", MNIST_CLASSES, "MNIST handwritten digits: 60k train / 10k test 28x28 grayscale, 10 classes"),
)


# --- CelebA ----------------------------------------------------------------------------------

# The 40 columns of list_attr_celeba.txt, in its order.
CELEBA_FILE_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
CELEBA_LABEL = "Smiling"  # CelebA has no classes: its balanced Smiling attribute (48% present) is the label
CELEBA_CLASSES = ("not smiling", "smiling")
# Spec names are snake_case starting with a letter: "5_o_Clock_Shadow" becomes "five_o_clock_shadow".
CELEBA_ATTRIBUTES = tuple(
    {"5_o_Clock_Shadow": "five_o_clock_shadow"}.get(a, a.lower()) for a in CELEBA_FILE_ATTRIBUTES if a != CELEBA_LABEL
)
ATTR_FILE, PARTITION_FILE, IMAGE_DIR = "list_attr_celeba.txt", "list_eval_partition.txt", "img_align_celeba"
TRAIN, TEST = "0", "2"  # list_eval_partition.txt: 0 train, 1 valid (not used), 2 test
ALIGNED_SIZE, CROP, SIZE = (178, 218), 140, 64  # the DCGAN convention: central 140x140, resized to 64x64
PREPROCESSING = f"center crop {CROP}, antialiased bilinear resize to {SIZE} (PIL), RGB"
CACHE_FOLDER = f"celeba-{SIZE}"  # under <cache_dir>/data/
_FIX = "replace it with the file from an intact copy of CelebA or pass --data-dir DIR"
GET_CELEBA = (
    "ganbench does not download CelebA (torchvision's download goes through Google Drive): get "
    f"img_align_celeba.zip, {ATTR_FILE} and {PARTITION_FILE} from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, "
    f"unzip the images into DIR/celeba/{IMAGE_DIR}/, put the two files in DIR/celeba/, "
    f"and pass --data-dir DIR or set {DATA_ENV}=DIR"
)


def find_celeba_dir(root: Path) -> Path | None:
    """The CelebA folder under ``root`` (torchvision's ``<root>/celeba/``, or ``root`` itself)."""
    for directory in (root / "celeba", root):
        if (
            (directory / IMAGE_DIR).is_dir()
            and (directory / ATTR_FILE).is_file()
            and (directory / PARTITION_FILE).is_file()
        ):
            return directory
    return None


def celeba_missing(root: Path) -> str:
    """Why ``root`` holds no CelebA copy, in a few words (as :func:`ganbench.idx.what_is_missing`)."""
    if not root.exists():
        return "does not exist"
    if not root.is_dir():
        return "is not a directory"
    parts = ((f"{IMAGE_DIR}/", Path.is_dir), (ATTR_FILE, Path.is_file), (PARTITION_FILE, Path.is_file))
    held = {d: [part for part, test in parts if test(d / part.rstrip("/"))] for d in (root / "celeba", root)}
    directory = max(held, key=lambda d: len(held[d]))  # the first of the fullest
    if not held[directory]:
        return f"holds none of celeba/{IMAGE_DIR}/, {ATTR_FILE} and {PARTITION_FILE}"
    missing = [part for part, _ in parts if part not in held[directory]]
    where = "" if directory == root else " in celeba/"
    return f"holds {len(held[directory])} of CelebA's 3 parts{where} (missing {', '.join(missing)})"


def locate_celeba(request: DataRequest, environ: dict[str, str] | None = None) -> tuple[Path, str]:
    """``--data-dir`` alone when given (used or refused, never replaced by another copy); else
    ``$GANBENCH_DATA``, then ``<cache_dir>/data``: the CelebA folder and where it was found.
    UsageError (one line) with what is missing, or every place tried, and how to get the files."""
    if request.data_dir is not None:
        root = Path(request.data_dir).expanduser()
        found = find_celeba_dir(root)
        if found is not None:
            return found, f"--data-dir {found}"
        raise UsageError(
            f"--data-dir {root} {celeba_missing(root)}; accepted: a directory holding celeba/{IMAGE_DIR}/, "
            f"celeba/{ATTR_FILE} and celeba/{PARTITION_FILE} (or the three directly). {GET_CELEBA}"
        )
    env = os.environ if environ is None else environ
    tried = ["--data-dir (not set)"]
    for label, root in (
        (f"${DATA_ENV}", Path(env[DATA_ENV]) if env.get(DATA_ENV) else None),
        ("ganbench cache", request.cache_dir / "data"),
    ):
        if root is None:
            tried.append(f"{label} (not set)")
            continue
        root = Path(root).expanduser()
        found = find_celeba_dir(root)
        if found is not None:
            return found, f"{label} {found}"
        missing = celeba_missing(root)
        tried.append(f"{label} {root} ({missing})")
        if label != "ganbench cache":
            log.warning("%s %s %s; looking further", label, root, missing)
    raise UsageError(f"celeba data not found; tried: {'; '.join(tried)}. {GET_CELEBA}")


def celeba_fingerprint(directory: Path) -> str:
    """Cheap identity of a CelebA copy: every image's name, size and mtime, and the two
    annotation files' SHA-256 (stat calls, no image read)."""
    digest = hashlib.sha256()
    for name in (ATTR_FILE, PARTITION_FILE):
        digest.update(f"{name}:{hashlib.sha256((directory / name).read_bytes()).hexdigest()};".encode())
    with os.scandir(directory / IMAGE_DIR) as entries:
        images = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.name.endswith(".jpg"))
    digest.update(repr(images).encode())
    return digest.hexdigest()


def read_attributes(path: Path) -> tuple[dict[str, int], np.ndarray]:
    """list_attr_celeba.txt: image name -> row, and bool (rows, 40) in CELEBA_FILE_ATTRIBUTES order."""
    lines = path.read_text().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise UsageError(f"{path} does not start with an image count and the 40 attribute names; {_FIX}")
    header = lines[1].split()
    missing = [a for a in CELEBA_FILE_ATTRIBUTES if a not in header]
    if missing or len(header) != len(CELEBA_FILE_ATTRIBUTES):
        raise UsageError(f"{path} names {len(header)} attributes (missing: {', '.join(missing) or 'none'}); {_FIX}")
    names: dict[str, int] = {}
    values = []  # each row's values as one string: 200k short strings, not 8M tokens
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 1 + len(header):
            raise UsageError(f"{path} line {number} has {len(parts) - 1} values, expected {len(header)}; {_FIX}")
        if not set(parts[1:]) <= {"1", "-1"}:
            raise UsageError(f"{path} line {number} holds a value other than 1 (present) and -1 (absent); {_FIX}")
        names[parts[0]] = len(values)
        values.append(line.split(None, 1)[1])
    if int(lines[0]) != len(values):  # a file cut short at a line break
        raise UsageError(f"{path} declares {int(lines[0])} images but lists {len(values)}; {_FIX}")
    table = np.fromstring(" ".join(values), dtype=np.int8, sep=" ").reshape(len(values), len(header)) == 1
    return names, table[:, [header.index(a) for a in CELEBA_FILE_ATTRIBUTES]]


def read_partition(path: Path, known: dict[str, int]) -> dict[str, list[str]]:
    """list_eval_partition.txt: the train and test image names, each listed in the attribute file."""
    split_names: dict[str, list[str]] = {TRAIN: [], "1": [], TEST: []}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in split_names:
            raise UsageError(f"{path} line {number} is not '<image> <0, 1 or 2>'; {_FIX}")
        if parts[0] not in known:
            raise UsageError(f"{path} line {number} names {parts[0]}, which {ATTR_FILE} does not list; {_FIX}")
        split_names[parts[1]].append(parts[0])
    return {"train": split_names[TRAIN], "test": split_names[TEST]}


def decode_celeba_image(path: Path) -> np.ndarray:
    """uint8 (3, 64, 64): the central 140x140 of a 178x218 aligned image, resized with PIL's
    antialiased bilinear filter (what torchvision's CenterCrop(140) and Resize(64) do)."""
    from PIL import Image

    with Image.open(path) as image:
        if image.size != ALIGNED_SIZE:
            size = "x".join(map(str, ALIGNED_SIZE))
            raise UsageError(f"{path} is {image.size[0]}x{image.size[1]}, not an aligned {size} CelebA image; {_FIX}")
        left, top = ((s - CROP) // 2 for s in ALIGNED_SIZE)  # 19, 39: exact, both differences are even
        crop = image.convert("RGB").crop((left, top, left + CROP, top + CROP))
        return np.asarray(crop.resize((SIZE, SIZE), Image.Resampling.BILINEAR)).transpose(2, 0, 1)


def decode_all(folder: Path, names: list[str]) -> torch.Tensor:
    """uint8 (N, 3, 64, 64), decoded on every core (PIL releases the GIL while decoding)."""
    on_disk = {entry.name for entry in os.scandir(folder)}
    missing = next((name for name in names if name not in on_disk), None)
    if missing is not None:  # before minutes of decoding
        raise UsageError(f"{folder / missing} is listed in {PARTITION_FILE} but missing; {_FIX}")
    out = np.empty((len(names), 3, SIZE, SIZE), dtype=np.uint8)

    def decode(start: int) -> None:
        for i in range(start, min(start + 256, len(names))):
            try:
                out[i] = decode_celeba_image(folder / names[i])
            except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
                raise UsageError(f"{folder / names[i]} cannot be decoded ({describe(exc)}); {_FIX}") from exc

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        try:
            list(pool.map(decode, range(0, len(names), 256)))
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a bad file or Ctrl-C: do not decode the rest first
            raise
    return torch.from_numpy(out)


def build_celeba(directory: Path) -> dict[str, torch.Tensor]:
    names, table = read_attributes(directory / ATTR_FILE)
    splits = read_partition(directory / PARTITION_FILE, names)
    label = CELEBA_FILE_ATTRIBUTES.index(CELEBA_LABEL)
    others = [i for i in range(len(CELEBA_FILE_ATTRIBUTES)) if i != label]
    log.info(
        "celeba: decoding %d JPEGs from %s once (minutes for the full set)", sum(map(len, splits.values())), directory
    )
    tensors = {}
    for split, image_names in splits.items():
        rows = table[np.array([names[n] for n in image_names], dtype=np.int64)]
        tensors[f"{split}_images"] = decode_all(directory / IMAGE_DIR, image_names)
        tensors[f"{split}_labels"] = torch.from_numpy(rows[:, label].astype(np.int64))
        tensors[f"{split}_attributes"] = torch.from_numpy(rows[:, others].copy())
    return tensors


def load_celeba_splits(directory: Path, cache_dir: Path, source: str) -> DatasetSplits:
    """The preprocessed splits from ``<cache_dir>/data/celeba-64/`` when made from this very
    copy (fingerprint), else decoded from the JPEGs and cached (atomic write, weights-only load)."""
    from ganbench.evaluation import cache  # its tensor-file format: checksummed, weights-only

    path = Path(cache_dir) / "data" / CACHE_FOLDER / "splits.pt"
    identity = {"source": celeba_fingerprint(directory), "preprocessing": PREPROCESSING}
    make = lambda tensors: DatasetSplits("celeba", class_names=CELEBA_CLASSES, source=source, **tensors)
    if path.exists():
        try:
            return make(cache.read(path, identity))
        except Exception as exc:  # damaged, foreign, stale or malformed: rebuilt from the source
            log.warning("celeba cache %s is unusable (%s); rebuilding it", path, cache.short_reason(exc))
    tensors = build_celeba(directory)
    try:
        cache.write(path, identity, tensors)
    except OSError as exc:
        log.warning("celeba cache %s cannot be written (%s); going on without it", path, cache.short_reason(exc))
    return make(tensors)


def load_celeba(request: DataRequest) -> DatasetSplits:
    directory, source = locate_celeba(request)
    splits = load_celeba_splits(directory, request.cache_dir, source)
    check_splits(CELEBA, splits)
    log.info("celeba: using %s", source)
    return splits


CELEBA = DatasetSpec(
    "celeba",
    load_celeba,
    (3, SIZE, SIZE),
    CELEBA_CLASSES,
    "CelebA aligned faces (local copy): 163k train / 20k test 64x64 RGB, smiling or not, 39 annotated attributes",
    attributes=CELEBA_ATTRIBUTES,
)


@hookimpl
def ganbench_register_datasets(register):
    for name, torchvision_folder, classes, description in BUILTIN:
        register(builtin_spec(name, torchvision_folder, classes, description))
    register(CELEBA)
    register(CIFAR10)
    register(FOLDER)


CIFAR10 = DatasetSpec(
    "cifar10",
    load_cifar10,
    (3, 32, 32),  # unless --image-size resizes it (from_data)
    CIFAR10_CLASSES,
    "CIFAR-10: 50k train / 10k test 32x32 RGB, 10 classes (torchvision's python batches or a PNG folder)",
    attributes=PIXEL_ATTRIBUTES,
    measure_attributes=pixel_measures,
    from_data=True,
)


FOLDER = DatasetSpec(
    "folder",
    load_folder,
    (3, 32, 32),  # placeholders: the folder says its classes and size (from_data)
    ("image",),
    "Your own images: --data-dir DIR with one subfolder per class (or none), PNG/JPEG, --image-size N",
    attributes=PIXEL_ATTRIBUTES,
    measure_attributes=pixel_measures,
    from_data=True,
)
