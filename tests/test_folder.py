"""--dataset folder: a folder of the user's images, built in each test."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganbench.data import DataRequest, check_splits, load_dataset, resolved_spec
from ganbench.data import folder as F
from ganbench.errors import UsageError
from ganbench.registry import load_registry


def _save(path: Path, array: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def make_folder(root: Path, classes: dict[str, int], size=(32, 32), mode="RGB", seed=0) -> Path:
    """``classes``: subfolder -> image count ("" puts the images directly in ``root``)."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    for name, n in classes.items():
        for i in range(n):
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            _save(root / name / f"{i:03d}.png", pixels)
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry below ``root`` (links not followed) with its size and mtime."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def decodes(monkeypatch):
    """How many times the folder's images were decoded (not read from the cache)."""
    calls = []
    original = F.decode

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(F, "decode", counting)
    return calls


def load(root: Path, cache: Path, image_size: int | None = None):
    spec = load_registry().dataset("folder")
    splits = load_dataset(spec, DataRequest(root, False, cache, image_size))
    check_splits(resolved_spec(spec, splits), splits)
    return splits


def test_classes_held_out_split_is_stratified_and_reproducible(tmp_path):
    root = make_folder(tmp_path / "data", {"cat": 30, "dog": 50})
    before = snapshot(root)
    splits = load(root, tmp_path / "cache")
    assert splits.name == "folder" and splits.class_names == ("cat", "dog")
    assert splits.image_shape == (3, 32, 32)
    assert splits.source == str(root.resolve())
    assert np.bincount(splits.test_labels.numpy()).tolist() == [3, 5]  # 10% of each class
    assert np.bincount(splits.train_labels.numpy()).tolist() == [27, 45]
    again = load(root, tmp_path / "other-cache")  # decoded anew: the same split
    assert (again.test_images == splits.test_images).all() and (again.train_labels == splits.train_labels).all()
    # the pixels are the files' (32x32: no resize), label by subfolder
    first = np.asarray(Image.open(root / "cat" / "000.png")).transpose(2, 0, 1)
    everything = np.concatenate([splits.train_images.numpy(), splits.test_images.numpy()])
    assert any((img == first).all() for img in everything)
    assert snapshot(root) == before  # nothing written into the user's folder


def test_no_class_subfolders_is_one_class(tmp_path):
    root = make_folder(tmp_path / "data", {"": 20}, mode="L")
    splits = load(root, tmp_path / "cache")
    assert splits.class_names == (F.UNCONDITIONAL,)
    assert splits.image_shape == (1, 32, 32)  # grayscale detected
    assert splits.train_images.shape[0] == 18 and splits.test_images.shape[0] == 2
    assert int(splits.train_labels.max()) == 0


def test_one_class_subfolder_warns_and_loads(tmp_path, caplog):
    root = make_folder(tmp_path / "data", {"only": 10})
    with caplog.at_level(logging.WARNING):
        splits = load(root, tmp_path / "cache")
    assert splits.class_names == ("only",)
    assert "one class subfolder" in caplog.text


def test_train_and_test_subfolders_are_the_splits(tmp_path):
    root = tmp_path / "data"
    make_folder(root / "train", {"a": 7, "b": 5})
    make_folder(root / "test", {"a": 2, "b": 3}, seed=1)
    splits = load(root, tmp_path / "cache")
    assert splits.class_names == ("a", "b")
    assert np.bincount(splits.train_labels.numpy()).tolist() == [7, 5]
    assert np.bincount(splits.test_labels.numpy()).tolist() == [2, 3]


def test_test_class_missing_from_train_is_refused(tmp_path):
    root = tmp_path / "data"
    make_folder(root / "train", {"a": 3})
    make_folder(root / "test", {"a": 1, "z": 1})
    with pytest.raises(UsageError, match="test/ has classes that train/ lacks \\(z\\)"):
        load(root, tmp_path / "cache")


def test_mixed_sizes_and_modes(tmp_path, caplog):
    root = make_folder(tmp_path / "data", {"a": 6}, size=(48, 40))  # most common: 48x40 -> side 40
    make_folder(root, {"a_extra": 0})
    rng = np.random.default_rng(3)
    _save(root / "a" / "wide.png", rng.integers(0, 256, (20, 90, 3), dtype=np.uint8))
    _save(root / "a" / "gray.jpg", rng.integers(0, 256, (64, 64), dtype=np.uint8), "JPEG")
    with caplog.at_level(logging.WARNING):
        splits = load(root, tmp_path / "cache")
    assert splits.image_shape == (3, 40, 40)  # shorter side of the most common size; RGB as most are colour
    assert "1 grayscale and 7 colour images: all read as RGB" in caplog.text
    assert "images of 3 sizes" in caplog.text
    sized = load(root, tmp_path / "cache", image_size=16)
    assert sized.image_shape == (3, 16, 16)
    with pytest.raises(UsageError, match="multiple of 4"):
        load(root, tmp_path / "cache", image_size=30)


def test_default_size_rounds_down_to_a_multiple_of_4(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 4}, size=(30, 30))
    assert load(root, tmp_path / "cache").image_shape == (3, 28, 28)


def test_truncated_and_non_image_files_are_counted_and_skipped(tmp_path, caplog):
    root = make_folder(tmp_path / "data", {"a": 5, "b": 5})
    data = (root / "a" / "000.png").read_bytes()
    (root / "a" / "cut.png").write_bytes(data[: len(data) // 2])
    (root / "b" / "fake.jpg").write_bytes(b"not a jpeg at all")
    (root / "b" / "notes.txt").write_text("labels by hand")
    (root / "README.md").write_text("my data")
    before = snapshot(root)
    with caplog.at_level(logging.WARNING):
        splits = load(root, tmp_path / "cache")
    assert splits.train_images.shape[0] + splits.test_images.shape[0] == 10
    assert "2 images cannot be decoded and are skipped" in caplog.text
    assert "a/cut.png" in caplog.text and "b/fake.jpg" in caplog.text
    assert "2 files that are not PNG or JPEG images are ignored" in caplog.text
    assert snapshot(root) == before


def test_symlink_loop_does_not_hang(tmp_path, caplog):
    root = make_folder(tmp_path / "data", {"a": 4, "b": 4})
    (root / "a" / "back").symlink_to(root, target_is_directory=True)  # a -> root -> a -> ...
    (root / "b" / "self").symlink_to(root / "b" / "self")  # a link to itself (ELOOP)
    with caplog.at_level(logging.WARNING):
        splits = load(root, tmp_path / "cache")
    assert splits.class_names == ("a", "b")
    assert splits.train_images.shape[0] + splits.test_images.shape[0] == 8  # each image once
    assert "reached again through symlinks" in caplog.text


@pytest.mark.parametrize("setup", ["empty", "only-text", "missing", "none-given"])
def test_unusable_folders_are_one_line_usage_errors(tmp_path, setup):
    root = tmp_path / "data"
    if setup in ("empty", "only-text"):
        (root / "a").mkdir(parents=True)
    if setup == "only-text":
        (root / "a" / "x.txt").write_text("x")
    spec = load_registry().dataset("folder")
    request = DataRequest(None if setup == "none-given" else root, False, tmp_path / "cache")
    with pytest.raises(UsageError) as info:
        load_dataset(spec, request)
    message = str(info.value)
    assert "\n" not in message and "accepted:" in message
    expected = {
        "empty": "holds no PNG or JPEG images",
        "only-text": "1 other files ignored, e.g. a/x.txt",
        "missing": "does not exist",
        "none-given": "needs --data-dir DIR",
    }[setup]
    assert expected in message


def test_unreadable_everywhere_is_refused(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"garbage")
    with pytest.raises(UsageError, match="none of its 1 images can be read"):
        load(root, tmp_path / "cache")


def test_cache_is_used_when_unchanged_and_rebuilt_when_changed(tmp_path, decodes):
    root = make_folder(tmp_path / "data", {"a": 10, "b": 10})
    cache = tmp_path / "cache"
    first = load(root, cache)
    assert len(decodes) == 1
    [cached] = (cache / "data").glob("folder-*.npz")
    with np.load(cached, allow_pickle=False) as data:  # a numpy file, no pickled objects
        assert data["train_images"].dtype == np.uint8
    second = load(root, cache)
    assert len(decodes) == 1  # unchanged folder: read from the cache
    assert (second.train_images == first.train_images).all() and second.class_names == first.class_names
    # a changed file (new content, new mtime): read again
    path = root / "a" / "003.png"
    _save(path, np.full((32, 32, 3), 7, dtype=np.uint8))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    third = load(root, cache)
    assert len(decodes) == 2
    everything = np.concatenate([third.train_images.numpy(), third.test_images.numpy()])
    assert (everything == 7).all(axis=(1, 2, 3)).sum() == 1
    # a file added: read again
    _save(root / "b" / "new.png", np.zeros((32, 32, 3), dtype=np.uint8))
    fourth = load(root, cache)
    assert len(decodes) == 3 and fourth.train_images.shape[0] + fourth.test_images.shape[0] == 21
    load(root, cache)
    assert len(decodes) == 3


def test_damaged_cache_is_rebuilt(tmp_path, decodes, caplog):
    root = make_folder(tmp_path / "data", {"a": 5})
    cache = tmp_path / "cache"
    load(root, cache)
    [cached] = (cache / "data").glob("folder-*.npz")
    cached.write_bytes(b"PK\x03\x04 broken")
    with caplog.at_level(logging.WARNING):
        load(root, cache)
    assert len(decodes) == 2 and "unusable" in caplog.text


def test_cli_data_reports_the_folder(tmp_path, capsys):
    from ganbench.cli import main

    root = make_folder(tmp_path / "data", {"a": 10, "b": 10}, size=(36, 36))
    code = main(["data", "--dataset", "folder", "--data-dir", str(root), "--cache-dir", str(tmp_path / "c")])
    assert code == 0
    assert "folder: 18 train / 2 test images 3x36x36" in capsys.readouterr().out
    assert main(["data", "--dataset", "folder", "--data-dir", str(tmp_path / "nope")]) == 2


@pytest.mark.slow
def test_run_on_a_tiny_rgb_folder_writes_metrics(tmp_path):
    """``ganbench run`` end to end on 2 classes x 60 RGB 32x32 images."""
    import pandas as pd

    from ganbench.cli import main

    root = make_folder(tmp_path / "data", {"cat": 60, "dog": 60})
    before = snapshot(root)
    out = tmp_path / "run"
    code = main([
        "run", "--variants", "cgan", "--dataset", "folder", "--data-dir", str(root), "--budget", "20steps",
        "--eval-samples", "50", "--evals", "1", "--no-probes", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
    ])  # fmt: skip
    assert code == 0
    metrics = pd.read_csv(out / "metrics.csv")
    row = metrics[metrics["variant"] == "cgan"].iloc[-1]
    assert row["step"] == 20 and np.isfinite(row["fid_domain"]) and 0 <= row["class_consistency"] <= 1
    import json

    record = json.loads((out / "config.json").read_text())
    assert record["dataset"]["name"] == "folder" and record["dataset"]["source"] == str(root.resolve())
    assert record["dataset"]["image_shape"] == [3, 32, 32] and record["dataset"]["class_names"] == ["cat", "dog"]
    assert snapshot(root) == before
