import gzip
import shutil

import numpy as np
import pytest
import torch
from ganbench_plugins.datasets import FASHION_MNIST_CLASSES

from ganbench.data import DataRequest
from ganbench.errors import UsageError
from ganbench.idx import DATA_ENV, DEBIAN_ROOT, IDX_FILES, locate, read_idx

DEBIAN = DEBIAN_ROOT / "fashion-mnist"


def test_real_fashion_mnist_splits(fashion):
    assert fashion.train_images.shape == (60000, 1, 28, 28) and fashion.train_images.dtype == torch.uint8
    assert fashion.test_images.shape == (10000, 1, 28, 28)
    assert fashion.class_names == FASHION_MNIST_CLASSES
    # Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
    assert torch.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert torch.bincount(fashion.test_labels).tolist() == [1000] * 10
    assert 0 < fashion.train_images.float().mean() < 255


def _copy_idx(dst, gz=True):
    dst.mkdir(parents=True, exist_ok=True)
    for stem in IDX_FILES.values():
        src = DEBIAN / f"{stem}.gz"
        if gz:
            shutil.copy(src, dst / src.name)
        else:
            with gzip.open(src) as f_in, open(dst / stem, "wb") as f_out:
                shutil.copyfileobj(f_in, f_out)
    return dst


def test_data_dir_comes_first_then_environment_then_debian(tmp_path):
    data_dir = _copy_idx(tmp_path / "flag")
    env_dir = _copy_idx(tmp_path / "env" / "fashion-mnist", gz=False)  # a root holding <name>/
    request = DataRequest(data_dir, download=False, cache_dir=tmp_path / "cache")
    assert locate(request, "fashion-mnist", "FashionMNIST", {DATA_ENV: str(tmp_path / "env")})[0] == data_dir
    request = DataRequest(None, download=False, cache_dir=tmp_path / "cache")
    assert locate(request, "fashion-mnist", "FashionMNIST", {DATA_ENV: str(tmp_path / "env")})[0] == env_dir
    found, source = locate(request, "fashion-mnist", "FashionMNIST", {})
    assert found == DEBIAN and source.startswith("Debian dataset path")


def test_a_wrong_data_dir_falls_through_with_a_warning(tmp_path, caplog):
    request = DataRequest(tmp_path, download=False, cache_dir=tmp_path / "cache")
    found, _ = locate(request, "fashion-mnist", "FashionMNIST", {})
    assert found == DEBIAN
    assert "holds no fashion-mnist IDX files" in caplog.text


def test_torchvision_layout_in_the_cache_is_found(tmp_path):
    _copy_idx(tmp_path / "cache" / "data" / "MNISTlike" / "raw")
    request = DataRequest(None, download=False, cache_dir=tmp_path / "cache")
    found, source = locate(request, "not-on-debian", "MNISTlike", {})
    assert found == tmp_path / "cache" / "data" / "MNISTlike" / "raw" and source.startswith("ganbench cache")


def test_uncompressed_files_read_the_same(tmp_path):
    plain = _copy_idx(tmp_path / "plain", gz=False)
    a = read_idx(plain / IDX_FILES["test_labels"])
    b = read_idx(DEBIAN / f"{IDX_FILES['test_labels']}.gz")
    assert np.array_equal(a, b) and a.shape == (10000,)


def test_nowhere_to_be_found_is_one_line_listing_every_option(tmp_path):
    request = DataRequest(tmp_path / "empty", download=False, cache_dir=tmp_path / "cache")
    with pytest.raises(UsageError) as err:
        locate(request, "mnist", "MNIST", {})
    message = str(err.value)
    assert "\n" not in message
    for option in (
        "--data-dir",
        f"${DATA_ENV}",
        "Debian dataset path /usr/share/datasets/mnist",
        "ganbench cache",
        "torchvision download",
    ):
        assert option in message


def test_a_failed_download_is_reported_not_raised(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)  # never touch the network in tests
    request = DataRequest(None, download=True, cache_dir=tmp_path / "cache")
    with pytest.raises(UsageError, match=r"torchvision download \(OSError: network is unreachable\)"):
        locate(request, "mnist", "MNIST", {})


def test_not_an_idx_file(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        read_idx(path)
