"""Built-in datasets (Fashion-MNIST, MNIST), registered through the ``ganbench`` hook like any
third-party dataset. Reading and finding the IDX files is :mod:`ganbench.idx`."""

from __future__ import annotations

import logging

from ganbench import DatasetSpec, hookimpl
from ganbench.data import DataRequest, DatasetSplits, check_splits
from ganbench.idx import locate, read_splits

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
    spec = DatasetSpec(name, load, (1, 28, 28), class_names, description)
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


@hookimpl
def ganbench_register_datasets(register):
    for name, torchvision_folder, classes, description in BUILTIN:
        register(builtin_spec(name, torchvision_folder, classes, description))
