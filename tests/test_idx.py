import gzip
import shutil

import numpy as np
import pytest
import torch
from ganbench_plugins.datasets import FASHION_MNIST_CLASSES

from ganbench.data import DataRequest
from ganbench.errors import UsageError
from ganbench.idx import DATA_ENV, DEBIAN_ROOT, IDX_FILES, locate, read_idx, read_splits

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


def _refusal(data_dir, environ=None):
    """locate's UsageError for an explicit --data-dir, with a complete copy on the Debian path
    and in $GANBENCH_DATA that it must not fall back to."""
    request = DataRequest(data_dir, download=True, cache_dir=data_dir.parent / "cache")
    with pytest.raises(UsageError) as err:
        locate(request, "fashion-mnist", "FashionMNIST", environ or {DATA_ENV: str(DEBIAN)})
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"--data-dir {data_dir} ")
    assert "accepted: a directory holding the four fashion-mnist IDX files (train-images-idx3-ubyte, " in message
    assert not (data_dir.parent / "cache").exists()  # nothing downloaded instead
    return message


def test_a_data_dir_that_does_not_exist_is_refused_not_replaced(tmp_path):
    assert "does not exist; accepted: " in _refusal(tmp_path / "nowhere")


def test_a_data_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    assert "is not a directory; accepted: " in _refusal(tmp_path / "file")


def test_an_empty_data_dir_is_refused_saying_it_holds_none(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "holds none of the four fashion-mnist IDX files; accepted: " in _refusal(tmp_path / "empty")


def test_a_data_dir_with_some_of_the_files_is_refused_naming_the_missing_ones(tmp_path):
    data_dir = _copy_idx(tmp_path / "part")
    (data_dir / f"{IDX_FILES['test_images']}.gz").unlink()
    (data_dir / f"{IDX_FILES['test_labels']}.gz").unlink()
    message = _refusal(data_dir)
    missing = "(missing t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)"
    assert f"holds 2 of the four fashion-mnist IDX files {missing}" in message


def test_a_partial_copy_in_a_subdirectory_is_named_there(tmp_path):
    data_dir = tmp_path / "root"
    _copy_idx(data_dir / "FashionMNIST" / "raw")
    (data_dir / "FashionMNIST" / "raw" / f"{IDX_FILES['train_labels']}.gz").unlink()
    message = _refusal(data_dir)
    missing = "in FashionMNIST/raw/ (missing train-labels-idx1-ubyte)"
    assert f"holds 3 of the four fashion-mnist IDX files {missing}" in message


def test_the_environment_still_falls_through_saying_what_it_lacks(tmp_path, caplog):
    env_dir = _copy_idx(tmp_path / "env")
    (env_dir / f"{IDX_FILES['test_labels']}.gz").unlink()
    request = DataRequest(None, download=False, cache_dir=tmp_path / "cache")
    found, source = locate(request, "fashion-mnist", "FashionMNIST", {DATA_ENV: str(env_dir)})
    assert found == DEBIAN and source.startswith("Debian dataset path")
    assert f"${DATA_ENV} {env_dir} holds 3 of the four fashion-mnist IDX files (missing t10k-labels" in caplog.text


def test_the_data_command_refuses_a_partial_data_dir_with_exit_2(tmp_path, ganbench_cli):
    data_dir = _copy_idx(tmp_path / "part")
    (data_dir / f"{IDX_FILES['train_images']}.gz").unlink()
    result = ganbench_cli("data", "--data-dir", data_dir, "--no-download", "--cache-dir", tmp_path / "cache")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "(missing train-images-idx3-ubyte)" in lines[0], result.stderr


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
    request = DataRequest(None, download=False, cache_dir=tmp_path / "cache")
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
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):  # still a ValueError for plugins
        read_idx(path)


# --- damaged and mismatched files: one-line UsageErrors naming the file -------------------------


@pytest.fixture
def write_idx():
    """``write_idx(path, array, magic=None)``: an unsigned-byte IDX file (gzipped if named .gz)."""

    def write(path, array, magic=None):
        array = np.asarray(array, dtype=np.uint8)
        magic = (0x0800 | array.ndim) if magic is None else magic
        header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
        with (gzip.open if path.suffix == ".gz" else open)(path, "wb") as f:
            f.write(header + array.tobytes())
        return path

    return write


def one_line(err) -> str:
    message = str(err.value)
    assert isinstance(err.value, UsageError) and "\n" not in message
    return message


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_a_hand_made_file_reads_back(tmp_path, write_idx, name):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / name, array), ndim=3), array)


def test_truncated_data_says_how_much_is_there_and_what_the_header_declares(tmp_path, write_idx):
    path = write_idx(tmp_path / "images", np.zeros((3, 2, 2)))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(UsageError) as err:
        read_idx(path, ndim=3)
    assert one_line(err) == (
        f"{path} is truncated: holds 5 bytes of image data, its header declares 3x2x2 (12 bytes); "
        "replace it with an intact copy or pass --data-dir DIR"
    )


def test_extra_bytes_after_the_declared_data_are_refused(tmp_path, write_idx):
    path = write_idx(tmp_path / "labels", np.zeros(4))
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    with pytest.raises(
        UsageError, match=r"labels holds 6 bytes of label data, 2 more than its header declares \(4, 4 bytes\)"
    ):
        read_idx(path, ndim=1)


def test_a_header_cut_short_is_truncated(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(UsageError, match=r"is truncated: 6 bytes, shorter than its 16-byte IDX header"):
        read_idx(path, ndim=3)


def test_a_gz_file_cut_in_half_is_truncated_not_an_eof_error(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    whole = (DEBIAN / path.name).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UsageError) as err:
        read_idx(path, ndim=1)
    assert one_line(err).startswith(f"{path} is truncated: its gzip stream ends early (EOFError: ")


def _zero_16_bytes_mid_stream(gz: bytearray) -> str:
    gz[len(gz) // 2 : len(gz) // 2 + 16] = bytes(16)
    return r"BadGzipFile: CRC check failed"


def _invalid_deflate_block(gz: bytearray) -> str:
    gz[10] = 0xFF  # the first deflate block, right after a name-less 10-byte header: block type 3 is reserved
    return r"error: Error -3 while decompressing data: invalid block type"


@pytest.mark.parametrize("damage", [_zero_16_bytes_mid_stream, _invalid_deflate_block])
def test_a_damaged_gzip_stream_is_not_an_intact_gzip_file(tmp_path, damage):
    labels = (DEBIAN / "t10k-labels-idx1-ubyte.gz").read_bytes()
    gz = bytearray(gzip.compress(gzip.decompress(labels), mtime=0))
    reason = damage(gz)
    path = tmp_path / "labels.gz"
    path.write_bytes(bytes(gz))
    with pytest.raises(UsageError, match=rf"^{path} is not an intact gzip file \({reason}"):
        read_idx(path, ndim=1)


def test_a_plain_file_named_gz_is_not_an_intact_gzip_file(tmp_path, write_idx):
    path = tmp_path / "labels.gz"
    path.write_bytes(write_idx(tmp_path / "labels", np.zeros(4)).read_bytes())
    with pytest.raises(UsageError, match=r"labels.gz is not an intact gzip file \(BadGzipFile: Not a gzipped file"):
        read_idx(path, ndim=1)


def test_a_gzipped_file_not_named_gz_says_to_rename_it(tmp_path, write_idx):
    path = tmp_path / "labels"
    path.write_bytes(write_idx(tmp_path / "labels.gz", np.zeros(4)).read_bytes())
    with pytest.raises(UsageError, match=r"labels is gzip-compressed but not named .gz; rename it to labels.gz"):
        read_idx(path, ndim=1)


def test_an_unreadable_path_cannot_be_read(tmp_path):
    with pytest.raises(UsageError, match=r"cannot be read \(IsADirectoryError: "):
        read_idx(tmp_path, ndim=1)


def test_a_labels_file_where_images_belong_has_the_wrong_magic(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    shutil.copy(DEBIAN / "t10k-labels-idx1-ubyte.gz", path)
    with pytest.raises(UsageError) as err:
        read_idx(path, ndim=3)
    assert one_line(err) == (
        f"{path} is not an IDX image file: magic number 0x00000801, expected 0x00000803 (unsigned bytes, 3-d); "
        "replace it with an intact copy or pass --data-dir DIR"
    )


def test_a_float_idx_file_has_the_wrong_magic(tmp_path, write_idx):
    path = write_idx(tmp_path / "images", np.zeros((1, 1, 1)), magic=0x0D03)  # IDX type 0x0D: float32
    with pytest.raises(UsageError, match=r"magic number 0x00000d03, expected 0x00000803"):
        read_idx(path, ndim=3)


def test_without_ndim_any_number_of_dimensions_is_accepted(tmp_path, write_idx):
    array = np.ones((2, 1, 2, 1), dtype=np.uint8)  # a third-party plugin's own layout
    assert read_idx(write_idx(tmp_path / "x", array)).shape == (2, 1, 2, 1)


@pytest.fixture
def tiny_dir(tmp_path, write_idx):
    """A four-file IDX dataset of 1x2x2 images in 3 classes: 6 train, 3 test."""
    for stem, array in (
        ("train-images-idx3-ubyte", np.zeros((6, 2, 2))),
        ("train-labels-idx1-ubyte", [0, 1, 2, 0, 1, 2]),
        ("t10k-images-idx3-ubyte", np.zeros((3, 2, 2))),
        ("t10k-labels-idx1-ubyte", [0, 1, 2]),
    ):
        write_idx(tmp_path / stem, array)
    return tmp_path


def test_read_splits_of_a_hand_made_dataset(tiny_dir):
    splits = read_splits(tiny_dir, "tiny", ("a", "b", "c"), "here")
    assert splits.train_images.shape == (6, 1, 2, 2) and splits.test_labels.tolist() == [0, 1, 2]


def test_fewer_labels_than_images_names_both_files(tiny_dir, write_idx):
    labels = write_idx(tiny_dir / "train-labels-idx1-ubyte", [0, 1, 2, 0, 1])
    with pytest.raises(UsageError) as err:
        read_splits(tiny_dir, "tiny", ("a", "b", "c"), "here")
    assert one_line(err) == (
        f"{labels} holds 5 labels but {tiny_dir / 'train-images-idx3-ubyte'} holds 6 images; "
        "replace them with a matching pair from one copy of tiny or pass --data-dir DIR"
    )


def test_a_missing_file_is_named(tiny_dir):
    (tiny_dir / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UsageError, match=r"holds no t10k-labels-idx1-ubyte \(or t10k-labels-idx1-ubyte.gz\)"):
        read_splits(tiny_dir, "tiny", ("a", "b", "c"), "here")
