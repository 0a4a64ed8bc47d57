"""--dataset cifar10 from a tiny synthetic copy in torchvision's layout, built in each test."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganbench.data import DataRequest, check_splits, load_dataset, resolved_spec
from ganbench.data import cifar as C
from ganbench.errors import UsageError
from ganbench.registry import load_registry

PER_BATCH = 20


def _batch(rng: np.random.Generator, n: int, label: str) -> dict:
    # what CIFAR-10's batches hold: uint8 rows of 3072 (R, G, B planes), a list of int labels
    return {
        "batch_label": label,
        "labels": [int(v) for v in rng.integers(0, 10, n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }


def make_copy(root: Path, bytes_keys: bool = False) -> Path:
    folder = root / C.BATCH_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate((*C.TRAIN_BATCHES, C.TEST_BATCH)):
        batch = _batch(rng, PER_BATCH, name)
        if bytes_keys:  # as the Python 2 pickles of the real archive load with encoding="bytes"
            batch = {k.encode(): v for k, v in batch.items()}
        # protocol 4: bytes as BINBYTES, arrays by numpy's _reconstruct (the real archive's
        # Python 2 pickles hold str as BINSTRING, which encoding="bytes" reads as bytes)
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    meta = {"label_names": list(C.CLASSES), "num_cases_per_batch": PER_BATCH, "num_vis": 3072}
    (folder / C.META).write_bytes(pickle.dumps(meta, protocol=4))
    return root


def load(root: Path | None, cache: Path, image_size: int | None = None, download: bool = False):
    spec = load_registry().dataset("cifar10")
    splits = load_dataset(spec, DataRequest(root, download, cache, image_size))
    check_splits(resolved_spec(spec, splits), splits)
    return splits


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_reads_torchvisions_layout(tmp_path, bytes_keys):
    root = make_copy(tmp_path / "data", bytes_keys)
    splits = load(root, tmp_path / "cache")
    assert splits.name == "cifar10" and splits.class_names == C.CLASSES
    assert splits.image_shape == (3, 32, 32)
    assert splits.train_images.shape[0] == 5 * PER_BATCH and splits.test_images.shape[0] == PER_BATCH
    first = pickle.loads((root / C.BATCH_FOLDER / "data_batch_1").read_bytes())
    first = {(k.decode() if isinstance(k, bytes) else k): v for k, v in first.items()}
    assert (splits.train_images[0].numpy() == first["data"][0].reshape(3, 32, 32)).all()
    assert splits.train_labels[:PER_BATCH].tolist() == first["labels"]


def test_image_size_resizes(tmp_path):
    splits = load(make_copy(tmp_path / "data"), tmp_path / "cache", image_size=64)
    assert splits.image_shape == (3, 64, 64)


class Planted:
    """A pickle that would create a file when unpickled by pickle.load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_planted_pickle_runs_no_code(tmp_path):
    root = make_copy(tmp_path / "data")
    marker = tmp_path / "pwned"
    batch = tmp_path / "data" / C.BATCH_FOLDER / "data_batch_3"
    batch.write_bytes(pickle.dumps({"data": Planted(marker), "labels": [0]}, protocol=4))
    assert not marker.exists()
    with pytest.raises(UsageError) as info:
        load(root, tmp_path / "cache")
    message = str(info.value)
    assert "data_batch_3 is not a CIFAR-10 python batch" in message and "is not allowed" in message
    assert "\n" not in message
    assert not marker.exists()  # os.system never ran
    # the same file through plain pickle does run it: the test would catch an unrestricted reader
    pickle.loads(batch.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"\x80\x02c__builtin__\neval\nq\x00.", "global __builtin__.eval is not allowed"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}), "'data' must be uint8"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 11]}), "'labels' must be 2 ints"),
        (pickle.dumps([1, 2]), "holds a list"),
        (b"\x80\x02}q\x00(X", "is not a CIFAR-10 python batch"),  # truncated
    ],
)
def test_bad_batches_are_one_line_errors(tmp_path, payload, expected):
    root = make_copy(tmp_path / "data")
    (root / C.BATCH_FOLDER / C.TEST_BATCH).write_bytes(payload)
    with pytest.raises(UsageError, match=expected):
        load(root, tmp_path / "cache")


def test_png_folder_form(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(1)
    for split, n in (("train", 4), ("test", 1)):
        for name in C.CLASSES:
            for i in range(n):
                path = root / C.PNG_FOLDER / split / name / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    splits = load(root, tmp_path / "cache")
    assert splits.name == "cifar10" and splits.class_names == C.CLASSES
    assert splits.train_images.shape == (40, 3, 32, 32) and splits.test_images.shape[0] == 10
    (root / C.PNG_FOLDER / "train" / "unicorn").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / C.PNG_FOLDER / "train" / "unicorn" / "0.png")
    with pytest.raises(UsageError, match="accepted: CIFAR-10's ten"):
        load(root, tmp_path / "cache")


def test_no_network_with_a_local_copy_or_without_download(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(C, "download", lambda root: calls.append(root))
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("network touched")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    load(make_copy(tmp_path / "data"), tmp_path / "cache", download=True)  # a copy: no download asked
    monkeypatch.setenv(C.DATA_ENV, str(tmp_path / "data"))
    assert load(None, tmp_path / "cache", download=True).source.startswith("$GANBENCH_DATA")
    monkeypatch.delenv(C.DATA_ENV)
    with pytest.raises(UsageError, match="disabled by --no-download"):
        load(None, tmp_path / "empty-cache", download=False)
    assert calls == []
    with pytest.raises(UsageError, match="files not found afterwards"):
        load(None, tmp_path / "empty-cache", download=True)  # only now: the (stubbed) download
    assert calls == [tmp_path / "empty-cache" / "data"]


def test_missing_copy_names_what_it_lacks(tmp_path):
    root = make_copy(tmp_path / "data")
    (root / C.BATCH_FOLDER / "data_batch_4").unlink()
    with pytest.raises(UsageError, match="holds 5 of CIFAR-10's 6 python batches .* \\(missing data_batch_4\\)"):
        load(root, tmp_path / "cache")
