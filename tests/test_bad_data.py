"""Damaged or mismatched dataset files, as a new user meets them through the ``ganbench`` command:
one line naming the file (or value) and what is accepted, exit status 2, and nothing trained,
written or changed."""

import gzip
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ganbench.cli import main
from ganbench.idx import DEBIAN_ROOT, IDX_FILES

DEBIAN = DEBIAN_ROOT / "fashion-mnist"
TRAIN_IMAGES = f"{IDX_FILES['train_images']}.gz"
TRAIN_LABELS = f"{IDX_FILES['train_labels']}.gz"


@pytest.fixture
def fashion_copy(tmp_path) -> Path:
    """A copy of the Debian Fashion-MNIST .gz files, ready to be damaged."""
    data = tmp_path / "data"
    data.mkdir()
    for stem in IDX_FILES.values():
        shutil.copy(DEBIAN / f"{stem}.gz", data)
    return data


@pytest.fixture
def cache(tmp_path) -> Path:
    """A cache directory that already holds something a bad run must leave alone."""
    cache = tmp_path / "cache"
    (cache / "classifiers").mkdir(parents=True)
    (cache / "classifiers" / "fashion-mnist-0123456789abcdef-v1.pt").write_bytes(b"not a real classifier")
    return cache


def labels_idx(labels: list[int]) -> bytes:
    """A valid IDX labels file (magic 0x00000801) holding ``labels``."""
    return b"\x00\x00\x08\x01" + len(labels).to_bytes(4, "big") + bytes(labels)


def real_train_labels() -> list[int]:
    return list(gzip.decompress((DEBIAN / TRAIN_LABELS).read_bytes())[8:])


# Each case damages a copy and returns what the one error line must name: the bad file or value,
# and what is accepted.
def truncated_uncompressed_images(data: Path) -> tuple[str, ...]:
    (data / TRAIN_IMAGES).unlink()
    path = data / IDX_FILES["train_images"]
    with gzip.open(DEBIAN / TRAIN_IMAGES) as f:
        path.write_bytes(f.read(16 + 123))  # the header and 123 bytes of images
    return (f"{path} is truncated: holds 123 bytes of image data", "declares 60000x28x28 (47040000 bytes)")


def gz_images_cut_in_half(data: Path) -> tuple[str, ...]:
    path = data / TRAIN_IMAGES
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return (f"{path} is truncated: its gzip stream ends early", "replace it with an intact copy")


def labels_where_images_belong(data: Path) -> tuple[str, ...]:
    shutil.copy(data / TRAIN_LABELS, data / TRAIN_IMAGES)  # the wrong magic: a labels file
    return (f"{data / TRAIN_IMAGES} is not an IDX image file: magic number 0x00000801", "expected 0x00000803")


def fewer_labels_than_images(data: Path) -> tuple[str, ...]:
    (data / TRAIN_LABELS).write_bytes(gzip.compress(labels_idx(real_train_labels()[:59999])))
    return (f"{data / TRAIN_LABELS} holds 59999 labels but {data / TRAIN_IMAGES} holds 60000 images",)


def a_label_out_of_range(data: Path) -> tuple[str, ...]:
    labels = real_train_labels()
    labels[1234] = 11
    (data / TRAIN_LABELS).write_bytes(gzip.compress(labels_idx(labels)))
    return ("has train label 11", "accepted: 0..9 for its 10 classes")


FILE_CASES = [
    truncated_uncompressed_images,
    gz_images_cut_in_half,
    labels_where_images_belong,
    fewer_labels_than_images,
]


def ganbench(*args) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it (``python -m ganbench`` when it is not on PATH)."""
    exe = [shutil.which("ganbench")] if shutil.which("ganbench") else [sys.executable, "-m", "ganbench"]
    return subprocess.run([*exe, *map(str, args)], capture_output=True, text=True, timeout=300)


def run_command(data: Path, cache: Path, out: Path) -> subprocess.CompletedProcess:
    # --no-download: no test touches the network
    return ganbench(
        "run", "--variants", "cgan", "--budget", "2steps", "--evals", "1", "--eval-samples", "100",
        "--device", "cpu", "--no-download", "--data-dir", data, "--cache-dir", cache, "--out", out,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess, names: tuple[str, ...]) -> None:
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("ganbench: error: "), result.stderr
    for name in names:
        assert name in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("damage", FILE_CASES)
def test_run_refuses_a_bad_file_in_one_line_and_changes_nothing(fashion_copy, cache, tmp_path, damage, tree_digest):
    names = damage(fashion_copy)
    before = tree_digest(fashion_copy, cache)
    result = run_command(fashion_copy, cache, tmp_path / "out")
    assert_one_line_error(result, names)
    assert tree_digest(fashion_copy, cache) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_refuses_an_out_of_range_label_before_the_classifier_trains(fashion_copy, tmp_path, tree_digest):
    names = a_label_out_of_range(fashion_copy)
    before = tree_digest(fashion_copy)
    empty_cache = tmp_path / "empty-cache"
    empty_cache.mkdir()
    result = run_command(fashion_copy, empty_cache, tmp_path / "out")
    assert_one_line_error(result, names)
    assert tree_digest(fashion_copy) == before
    assert not (tmp_path / "out").exists()
    assert list(empty_cache.rglob("*")) == []  # no classifiers/ file: the label was refused before training


# One case per layer: a file that cannot be read, and splits that do not match the dataset's spec.
@pytest.mark.slow
@pytest.mark.parametrize("damage", [gz_images_cut_in_half, a_label_out_of_range])
def test_data_command_refuses_bad_data_in_one_line(fashion_copy, tmp_path, damage):
    names = damage(fashion_copy)
    result = ganbench("data", "--data-dir", fashion_copy, "--no-download", "--cache-dir", tmp_path / "cache")
    assert_one_line_error(result, names)


@pytest.fixture
def in_process_main():
    """``ganbench.cli.main``, run in this process; the logging setup it does is undone afterwards."""
    logger = logging.getLogger("ganbench")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    yield main
    logger.handlers[:], logger.propagate = handlers, propagate
    logger.setLevel(level)


# click turns an EOFError into the same Abort as Ctrl-C; main() tells them apart.
@pytest.mark.parametrize(
    "raised, status, message",
    [
        (EOFError("Compressed file ended before the end-of-stream marker was reached"), 1, "ganbench: error: aborted"),
        (KeyboardInterrupt(), 130, "ganbench: interrupted"),
    ],
)
def test_only_ctrl_c_is_reported_as_interrupted(in_process_main, monkeypatch, capsys, raised, status, message):
    def load_registry(*args, **kwargs):
        raise raised

    monkeypatch.setattr("ganbench.registry.load_registry", load_registry)
    assert in_process_main(["data", "--no-download"]) == status
    assert message in capsys.readouterr().err


def test_an_abort_without_a_keyboard_interrupt_is_not_an_interruption(in_process_main, monkeypatch, capsys):
    def load_registry(*args, **kwargs):
        raise click.Abort()

    monkeypatch.setattr("ganbench.registry.load_registry", load_registry)
    assert in_process_main(["data", "--no-download"]) == 1
    assert "interrupted" not in capsys.readouterr().err
