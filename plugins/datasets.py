"""Built-in datasets (Fashion-MNIST, MNIST), registered through the ``ganbench`` hook like any
third-party dataset. Reading and finding the IDX files is :mod:`ganbench.idx`."""

from __future__ import annotations

import logging

from ganbench import DatasetSpec, hookimpl
from ganbench.data import DataRequest, DatasetSplits
from ganbench.idx import locate, read_splits

log = logging.getLogger("ganbench.datasets")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
MNIST_CLASSES = tuple(str(d) for d in range(10))


def loader(name: str, torchvision_folder: str, class_names: tuple[str, ...]):
    def load(request: DataRequest) -> DatasetSplits:
        directory, source = locate(request, name, torchvision_folder)
        log.info("%s: using %s", name, source)
        return read_splits(directory, name, class_names, source)

    load.__qualname__ = f"load_{name.replace('-', '_')}"
    return load


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
        register(DatasetSpec(name, loader(name, torchvision_folder, classes), (1, 28, 28), classes, description))
