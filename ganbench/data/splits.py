"""Dataset splits: what a dataset's ``load`` is asked for and returns, held-out splits, and the
checks every loaded dataset passes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ganbench.errors import UsageError, describe

if TYPE_CHECKING:
    from ganbench.specs import DatasetSpec


@dataclass(frozen=True)
class DataRequest:
    """Where a dataset's ``load`` should look.

    Attributes:
        data_dir: ``--data-dir``, when given: the only place to look. A built-in dataset uses
            it or refuses it (UsageError naming what it lacks), never another copy instead.
        download: whether a download is allowed when no local copy is found.
        cache_dir: where a download may be stored.
        image_size: ``--image-size``: the side a dataset that resizes (folder, cifar10) makes
            its square images; None for its default. A dataset of one fixed size is refused
            another by :func:`load_dataset`.
    """

    data_dir: Path | None
    download: bool
    cache_dir: Path
    image_size: int | None = None


@dataclass(frozen=True)
class DatasetSplits:
    """A labelled image dataset in memory: uint8 images (N, C, H, W), int64 labels (N,), and
    optionally annotated attributes: bool (N, A), one column per ``DatasetSpec.attributes``
    name, for both splits or neither."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...]
    source: str = ""
    train_attributes: torch.Tensor | None = None
    test_attributes: torch.Tensor | None = None
    # What ``test_*`` hold: "test" (the dataset's test split) or "holdoutN" (N training images
    # held out by :func:`hold_out`). Metrics name their cached real-side features with it.
    eval_split: str = "test"

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise ValueError(
                    f"{self.name} {split} images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
                )
            if labels.dtype != torch.int64 or labels.shape != (images.shape[0],):
                raise ValueError(f"{self.name} {split} labels must be int64 of shape ({images.shape[0]},)")
        train, test = self.train_attributes, self.test_attributes
        if (train is None) != (test is None):
            raise ValueError(f"{self.name} attributes must be given for both splits or neither")
        if train is not None and test is not None:
            for split, attributes in (("train", train), ("test", test)):
                n = getattr(self, f"{split}_images").shape[0]
                if attributes.dtype != torch.bool or attributes.dim() != 2 or attributes.shape[0] != n:
                    raise ValueError(
                        f"{self.name} {split} attributes must be bool of shape ({n}, A), "
                        f"got {attributes.dtype} {tuple(attributes.shape)}"
                    )
            if train.shape[1] != test.shape[1]:
                raise ValueError(f"{self.name} train and test attributes must have the same columns")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def hold_out(splits: DatasetSplits, n: int) -> DatasetSplits:
    """``splits`` with ``n`` training images held out to stand in for the test split: a fixed
    random subset (the same for every run, seed 0), which training no longer sees. What a
    hyperparameter search selects on, so that the test split is never read to choose
    (``--holdout``)."""
    total = splits.train_images.shape[0]
    if not 0 < n < total:
        raise UsageError(
            f"holdout = {n} does not fit {splits.name}'s training split of {total} images; "
            f"accepted: 1 to {total - 1} (0 evaluates on the test split)"
        )
    order = torch.randperm(total, generator=torch.Generator().manual_seed(0))
    keep, held = order[:-n].sort().values, order[-n:].sort().values
    attributes = splits.train_attributes
    return dataclasses.replace(
        splits,
        train_images=splits.train_images[keep],
        train_labels=splits.train_labels[keep],
        test_images=splits.train_images[held],
        test_labels=splits.train_labels[held],
        train_attributes=None if attributes is None else attributes[keep],
        test_attributes=None if attributes is None else attributes[held],
        eval_split=f"holdout{n}",
    )


def load_dataset(spec: DatasetSpec, request: DataRequest) -> DatasetSplits:
    """``spec.load(request)``, with a plugin's ValueError, OSError or EOFError as a one-line UsageError."""
    try:
        splits = spec.load(request)
    except UsageError:  # already one line saying what to fix
        raise
    except (ValueError, OSError, EOFError) as exc:  # a damaged or missing file, in the plugin's own words
        raise UsageError(
            f"dataset {spec.name} could not be loaded ({describe(exc)}); "
            "pass --data-dir DIR with an intact copy, or fix the dataset's plugin"
        ) from exc
    size = request.image_size
    if size is not None and isinstance(splits, DatasetSplits) and splits.image_shape[1:] != (size, size):
        h, w = splits.image_shape[1:]
        raise UsageError(
            f"image_size {size}: dataset {spec.name} holds {h}x{w} images and does not resize them; "
            "accepted: --image-size with datasets that resize (folder, cifar10), or no --image-size"
        )
    return splits


def resolved_spec(spec: DatasetSpec, splits: DatasetSplits) -> DatasetSpec:
    """``spec`` with the image shape and class names its loaded splits hold, when it takes them
    from the data (``DatasetSpec.from_data``: a folder of the user's images); else ``spec``."""
    if not spec.from_data:
        return spec
    return dataclasses.replace(spec, image_shape=splits.image_shape, class_names=tuple(splits.class_names))


def check_splits(spec: DatasetSpec, splits: DatasetSplits) -> None:
    """Refuse splits that do not match their dataset's spec, with a one-line UsageError.

    Runs on every load of every dataset plugin, before anything is trained: shape and name
    comparisons and one min/max per label tensor, no loop over samples.
    """
    if not isinstance(splits, DatasetSplits):
        raise UsageError(
            f"dataset {spec.name}'s load returned {type(splits).__name__}, not DatasetSplits; fix the dataset's plugin"
        )
    where = f"dataset {spec.name} from {splits.source or 'its plugin'}"
    if tuple(splits.class_names) != tuple(spec.class_names):
        raise UsageError(
            f"{where} names its classes ({', '.join(splits.class_names)}) but its spec declares "
            f"({', '.join(spec.class_names)}); "
            "fix the dataset's plugin: both must list the same classes in label order"
        )
    expected = tuple(spec.image_shape)
    shapes = {}
    for split in ("train", "test"):
        images = getattr(splits, f"{split}_images")
        if images.shape[0] == 0:
            raise UsageError(f"{where} has an empty {split} split; every split needs at least one image")
        shapes[split] = tuple(images.shape[1:])
    if shapes["train"] != expected:
        raise UsageError(
            f"{where} holds {_dims(shapes['train'])} train images, its spec declares {_dims(expected)}; "
            "pass --data-dir DIR with an intact copy, or fix the dataset's plugin"
        )
    if shapes["test"] != shapes["train"]:
        raise UsageError(
            f"{where} holds {_dims(shapes['test'])} test images but {_dims(shapes['train'])} train images; "
            f"both must be {_dims(expected)}; pass --data-dir DIR with an intact copy, or fix the dataset's plugin"
        )
    _check_attributes(spec, splits, where)
    k = spec.num_classes
    for split in ("train", "test"):
        labels = getattr(splits, f"{split}_labels")
        low, high = (int(v) for v in labels.aminmax())
        if low < 0 or high >= k:
            bad = high if high >= k else low
            outside = int(((labels < 0) | (labels >= k)).sum())  # only on the way to the error
            raise UsageError(
                f"{where} has {split} label {bad} ({outside} of its {labels.numel()} {split} labels are outside "
                f"0..{k - 1}); accepted: 0..{k - 1} for its {k} classes; "
                "replace its labels with an intact copy or pass --data-dir DIR"
            )


def _check_attributes(spec: DatasetSpec, splits: DatasetSplits, where: str) -> None:
    """Annotations exactly when the spec declares attributes it does not measure."""
    annotated = splits.train_attributes is not None
    declared = len(spec.attributes)
    if declared and spec.measure_attributes is None:
        columns = splits.train_attributes.shape[1] if splits.train_attributes is not None else 0
        if columns != declared:
            held = f"{columns} attribute columns" if annotated else "no attribute annotations"
            raise UsageError(
                f"{where} holds {held}, its spec declares {declared} annotated attributes "
                f"({', '.join(spec.attributes)}); fix the dataset's plugin: load returns one column per attribute"
            )
    elif annotated:
        why = "measures its attributes from the pixels" if declared else "declares no attributes"
        raise UsageError(
            f"{where} holds attribute annotations but its spec {why}; "
            "fix the dataset's plugin: declare the annotated names in attributes, without measure_attributes"
        )


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))
