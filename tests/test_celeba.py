import logging
import shutil

import numpy as np
import pytest
import torch
from ganbench_plugins import datasets
from ganbench_plugins.datasets import CELEBA, CELEBA_ATTRIBUTES, CELEBA_FILE_ATTRIBUTES, locate_celeba
from PIL import Image

from ganbench.attributes import dataset_attributes
from ganbench.data import DataRequest
from ganbench.errors import UsageError
from ganbench.idx import DATA_ENV

NAMES = [f"{i:06d}.jpg" for i in range(1, 13)]
PARTITION = [0] * 7 + [1, 1] + [2] * 3  # 7 train, 2 valid (not used), 3 test
SMILING = CELEBA_FILE_ATTRIBUTES.index("Smiling")


def colour(i):
    """The central region's mean colour in image i: tells the loaded images apart."""
    return (20 + 18 * i, 230 - 18 * i, 40 + 15 * i)  # each channel plus or minus 16 stays in 0..255


# Diagonal stripes of mean 0 on the central colour, so that the crop's offset and the resize filter show.
STRIPES = (np.add.outer(np.arange(140), 2 * np.arange(140)) % 16 - 7.5)[..., None].round().astype(np.int16) * 2


@pytest.fixture
def celeba_dir(tmp_path, monkeypatch):
    """A CelebA copy in torchvision's layout under tmp_path/src/celeba: 12 aligned 178x218 JPEGs,
    each a striped colour in the central 140x140 (the DCGAN crop) on a black border, with the real
    attribute file format (count, 40 names, then -1/1 per image) and a partition file."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    folder = tmp_path / "src" / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    for i, name in enumerate(NAMES):
        pixels = np.zeros((218, 178, 3), dtype=np.uint8)
        pixels[39:179, 19:159] = np.array(colour(i), dtype=np.int16) + STRIPES
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=100, subsampling=0)
    table = np.where(np.random.default_rng(0).random((len(NAMES), 40)) < 0.5, 1, -1)
    table[:, SMILING] = [1, -1] * 6
    rows = [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(NAMES, table)]
    (folder / "list_attr_celeba.txt").write_text(
        "\n".join([str(len(NAMES)), " ".join(CELEBA_FILE_ATTRIBUTES) + " ", *rows]) + "\n"
    )
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(NAMES, PARTITION)))
    return folder


def table_of(folder):
    lines = (folder / "list_attr_celeba.txt").read_text().splitlines()[2:]
    return np.array([[int(v) for v in line.split()[1:]] for line in lines]) == 1


def load(folder, cache_dir):
    return CELEBA.load(DataRequest(folder.parent, download=False, cache_dir=cache_dir))


@pytest.fixture
def loaded(celeba_dir, tmp_path):
    return load(celeba_dir, tmp_path / "cache")


def split_indices(split):
    return [i for i, p in enumerate(PARTITION) if p == {"train": 0, "test": 2}[split]]


def test_celeba_is_registered_with_39_annotated_attributes(registry):
    spec = registry.dataset("celeba")
    assert spec.image_shape == (3, 64, 64) and spec.class_names == ("not smiling", "smiling")
    assert len(spec.attributes) == 39 and spec.measure_attributes is None and "smiling" not in spec.attributes


def test_images_are_64x64_rgb_uint8(loaded):
    assert loaded.train_images.shape == (7, 3, 64, 64) and loaded.test_images.shape == (3, 3, 64, 64)
    assert loaded.train_images.dtype == torch.uint8


def test_the_splits_follow_the_partition_file(loaded):
    for split in ("train", "test"):
        mean_colours = getattr(loaded, f"{split}_images").float().mean((2, 3))
        want = torch.tensor([colour(i) for i in split_indices(split)], dtype=torch.float32)
        assert (mean_colours - want).abs().max() < 3, split  # the crop holds the central region only


def test_the_labels_are_the_smiling_attribute(celeba_dir, loaded):
    table = table_of(celeba_dir)
    for split in ("train", "test"):
        assert getattr(loaded, f"{split}_labels").tolist() == table[split_indices(split), SMILING].astype(int).tolist()


def test_the_annotations_are_the_other_39_columns_of_the_file(celeba_dir, loaded):
    others = np.delete(table_of(celeba_dir), SMILING, axis=1)
    for split in ("train", "test"):
        assert torch.equal(getattr(loaded, f"{split}_attributes"), torch.from_numpy(others[split_indices(split)]))


def test_dataset_attributes_are_the_annotations(loaded):
    attributes = dataset_attributes(CELEBA, loaded)
    assert attributes.names == CELEBA_ATTRIBUTES and not attributes.measured
    assert torch.equal(attributes.train, loaded.train_attributes)


def test_the_crop_and_resize_are_torchvisions_center_crop_140_and_resize_64(celeba_dir, loaded):
    from torchvision.transforms import CenterCrop, Resize

    with Image.open(celeba_dir / "img_align_celeba" / NAMES[0]) as image:
        want = np.asarray(Resize(64)(CenterCrop(140)(image.convert("RGB"))))
    assert torch.equal(loaded.train_images[0], torch.from_numpy(want.transpose(2, 0, 1).copy()))


# --- the preprocessed cache ------------------------------------------------------------------------


@pytest.fixture
def no_decoding(loaded, monkeypatch):
    """After a first load (which filled the cache), decoding a JPEG fails the test."""

    def fail(path):
        raise AssertionError(f"decoded {path}: the cache was not used")

    monkeypatch.setattr(datasets, "decode_celeba_image", fail)


def test_the_cache_is_a_file_under_data_celeba_64(loaded, tmp_path):
    assert [p.name for p in (tmp_path / "cache" / "data" / "celeba-64").iterdir()] == ["splits.pt"]


def test_a_second_load_reads_the_cache_without_decoding(celeba_dir, tmp_path, loaded, no_decoding):
    again = load(celeba_dir, tmp_path / "cache")
    assert torch.equal(again.train_images, loaded.train_images) and torch.equal(again.test_labels, loaded.test_labels)


def test_a_corrupted_cache_is_rebuilt_with_one_warning(celeba_dir, tmp_path, loaded, caplog):
    path = tmp_path / "cache" / "data" / "celeba-64" / "splits.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        again = load(celeba_dir, tmp_path / "cache")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"celeba cache {path} is unusable (")
    assert torch.equal(again.train_images, loaded.train_images)


def test_a_rebuilt_cache_is_used_by_the_next_load(celeba_dir, tmp_path, loaded, monkeypatch):
    path = tmp_path / "cache" / "data" / "celeba-64" / "splits.pt"
    path.write_bytes(b"not a cache")
    load(celeba_dir, tmp_path / "cache")
    monkeypatch.setattr(datasets, "decode_celeba_image", lambda path: pytest.fail(f"decoded {path}"))
    assert torch.equal(load(celeba_dir, tmp_path / "cache").train_images, loaded.train_images)


def test_a_changed_attribute_file_rebuilds_the_cache(celeba_dir, tmp_path, loaded):
    path = celeba_dir / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    first = lines[2].split()
    first[1 + SMILING] = "-1" if first[1 + SMILING] == "1" else "1"
    path.write_text("\n".join([*lines[:2], " ".join(first), *lines[3:]]) + "\n")
    assert load(celeba_dir, tmp_path / "cache").train_labels[0] == 1 - loaded.train_labels[0]


# --- where the files are found, and bad files -------------------------------------------------------


def test_data_dir_comes_first_then_the_environment_then_the_cache(celeba_dir, tmp_path):
    env_copy = shutil.copytree(celeba_dir, tmp_path / "env" / "celeba")
    environ = {DATA_ENV: str(tmp_path / "env")}
    request = DataRequest(celeba_dir.parent, download=False, cache_dir=tmp_path / "cache")
    assert locate_celeba(request, environ)[0] == celeba_dir
    request = DataRequest(None, download=False, cache_dir=tmp_path / "cache")
    assert locate_celeba(request, environ)[0] == env_copy
    (tmp_path / "cache").mkdir()
    celeba_dir.parent.rename(tmp_path / "cache" / "data")
    found, source = locate_celeba(request, {})
    assert found == tmp_path / "cache" / "data" / "celeba" and source.startswith("ganbench cache")


def test_nowhere_to_be_found_is_one_line_saying_how_to_get_the_files(tmp_path):
    request = DataRequest(None, download=True, cache_dir=tmp_path / "cache")
    with pytest.raises(UsageError) as err:
        locate_celeba(request, {})
    message = str(err.value)
    assert "\n" not in message and message.startswith("celeba data not found; tried: --data-dir (not set); ")
    assert "Google Drive" in message and "img_align_celeba.zip" in message and "--data-dir DIR" in message


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda d: shutil.rmtree(d.parent), "does not exist"),
        (lambda d: shutil.rmtree(d), "holds none of celeba/img_align_celeba/, list_attr_celeba.txt and"),
        (lambda d: (d / "list_eval_partition.txt").unlink(), "holds 2 of CelebA's 3 parts in celeba/ (missing list_"),
    ],
    ids=["missing", "empty", "partial"],
)
def test_an_explicit_data_dir_without_celeba_is_refused_not_replaced(celeba_dir, tmp_path, damage, says):
    env_copy = shutil.copytree(celeba_dir, tmp_path / "env" / "celeba")  # a complete copy it must not fall back to
    damage(celeba_dir)
    request = DataRequest(celeba_dir.parent, download=False, cache_dir=tmp_path / "cache")
    with pytest.raises(UsageError) as err:
        locate_celeba(request, {DATA_ENV: str(env_copy.parent)})
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"--data-dir {celeba_dir.parent} {says}")
    assert "accepted: a directory holding celeba/img_align_celeba/, celeba/list_attr_celeba.txt and " in message


def _short_row(folder):
    path = folder / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit(" ", 1)[0]  # 39 values
    path.write_text("\n".join(lines) + "\n")
    return rf"^{path} line 6 has 39 values, expected 40; "


def _missing_image(folder):
    path = folder / "img_align_celeba" / NAMES[10]
    path.unlink()
    return rf"^{path} is listed in list_eval_partition.txt but missing; "


def _unknown_image(folder):
    path = folder / "list_eval_partition.txt"
    path.write_text(path.read_text() + "999999.jpg 0\n")
    return rf"^{path} line 13 names 999999.jpg, which list_attr_celeba.txt does not list; "


def _not_a_jpeg(folder):
    path = folder / "img_align_celeba" / NAMES[3]
    path.write_bytes(b"not a jpeg")
    return rf"^{path} cannot be decoded \(UnidentifiedImageError: "


def _wrong_size(folder):
    path = folder / "img_align_celeba" / NAMES[0]
    Image.new("RGB", (100, 120)).save(path)
    return rf"^{path} is 100x120, not an aligned 178x218 CelebA image; "


def _wrong_count(folder):
    path = folder / "list_attr_celeba.txt"
    path.write_text("13\n" + path.read_text().split("\n", 1)[1])
    return rf"^{path} declares 13 images but lists 12; "


@pytest.mark.parametrize("damage", [_short_row, _missing_image, _unknown_image, _not_a_jpeg, _wrong_size, _wrong_count])
def test_a_bad_file_is_one_line_naming_it(celeba_dir, tmp_path, damage):
    pattern = damage(celeba_dir)
    with pytest.raises(UsageError, match=pattern) as err:
        load(celeba_dir, tmp_path / "cache")
    assert "\n" not in str(err.value)
