import numpy as np
import pytest
import torch

import ganbench.attributes as attributes_module
from ganbench.attributes import (
    ON_THRESHOLD,
    PIXEL_ATTRIBUTES,
    dataset_attributes,
    median_thresholds,
    pixel_measures,
)
from ganbench.data import DatasetSplits
from ganbench.errors import UsageError
from ganbench.specs import DatasetSpec


def blank(n=1, c=1, h=28, w=28):
    return torch.zeros(n, c, h, w, dtype=torch.uint8)


def expected(*values):
    return torch.tensor([values], dtype=torch.float64).float()  # what float32 arithmetic should round to


# --- pixel_measures on hand-made images ---------------------------------------------------------


def test_a_full_intensity_rectangle_measures_its_own_size():
    image = blank()
    image[0, 0, 5:15, 3:7] = 255  # 10 rows, 4 columns
    assert torch.equal(pixel_measures(image), expected(40 / 784, 40 / 784, 4 / 28, 10 / 28))


def test_an_empty_image_measures_zero():
    assert torch.equal(pixel_measures(blank()), expected(0, 0, 0, 0))


def test_a_pixel_at_the_on_threshold_is_ink_but_not_on():
    image = blank()
    image[0, 0, 4, 4] = ON_THRESHOLD
    image[0, 0, 9, 6] = ON_THRESHOLD + 1
    # only the second pixel is on: a 1x1 box
    assert torch.equal(pixel_measures(image), expected((2 * ON_THRESHOLD + 1) / (784 * 255), 1 / 784, 1 / 28, 1 / 28))


def test_width_and_height_span_the_outermost_on_pixels():
    image = blank()
    image[0, 0, 2, 25] = image[0, 0, 20, 3] = 200  # opposite corners of a 19-row, 23-column box
    assert torch.equal(pixel_measures(image)[:, 1:], expected(2 / 784, 23 / 28, 19 / 28))


def test_a_multi_channel_pixel_is_on_when_its_channel_mean_is_above_the_threshold():
    image = blank(c=3, h=8, w=16)
    image[0, :, 1, 2] = torch.tensor([3 * ON_THRESHOLD, 0, 0], dtype=torch.uint8)  # mean = threshold: off
    image[0, :, 6, 10] = torch.tensor([3 * ON_THRESHOLD + 3, 0, 0], dtype=torch.uint8)  # mean = threshold + 1: on
    ink = (6 * ON_THRESHOLD + 3) / (3 * 8 * 16 * 255)
    assert torch.equal(pixel_measures(image), expected(ink, 1 / 128, 1 / 16, 1 / 8))


def reference(image: np.ndarray) -> list[float]:
    """One image, the plain way: a loop-free definition to compare the vectorised one with."""
    c, h, w = image.shape
    on = image.astype(np.int64).sum(0) > ON_THRESHOLD * c
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    height = (rows[-1] - rows[0] + 1) / h if rows.size else 0.0
    width = (cols[-1] - cols[0] + 1) / w if cols.size else 0.0
    return [image.astype(np.int64).sum() / (255 * c * h * w), on.sum() / (h * w), width, height]


def test_batches_in_chunks_equal_one_image_at_a_time(monkeypatch):
    monkeypatch.setattr(attributes_module, "_CHUNK", 7)  # 20 images: three chunks, the last ragged
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(20, 3, 12, 10, generator=g) ** 4 * 255).to(torch.uint8)  # mostly dark: boxes vary
    images[5] = 0
    want = torch.tensor([reference(image) for image in images.numpy()], dtype=torch.float64).float()
    assert torch.equal(pixel_measures(images), want)


def test_pixel_measures_refuses_float_images():
    with pytest.raises(ValueError, match=r"uint8 \(N, C, H, W\), got torch.float32"):
        pixel_measures(blank().float())


# --- thresholds -------------------------------------------------------------------------------


def test_the_threshold_is_the_median_without_ties():
    values = torch.tensor([[0.1], [0.5], [0.3], [0.2], [0.4]])
    assert median_thresholds(values).tolist() == [pytest.approx(0.3)]


def test_ties_at_the_median_move_the_threshold_down_when_that_splits_closer_to_half():
    values = torch.tensor([[1.0], [1.0], [1.0], [0.5], [0.2]])  # > 1.0: none present; > 0.5: 3 of 5
    assert median_thresholds(values).tolist() == [0.5]


def test_ties_at_the_median_keep_the_median_when_it_splits_closer_to_half():
    values = torch.tensor([[0.0], [0.0], [0.0], [0.0], [0.5], [1.0]])  # > 0.0: 2 of 6; nothing below 0
    assert median_thresholds(values).tolist() == [0.0]


# --- dataset_attributes -------------------------------------------------------------------------


def splits_of(train_images, test_images, **attributes):
    return DatasetSplits(
        "tiny",
        train_images,
        torch.zeros(len(train_images), dtype=torch.int64),
        test_images,
        torch.zeros(len(test_images), dtype=torch.int64),
        ("a",),
        **attributes,
    )


def spec_of(**fields):
    return DatasetSpec("tiny", lambda request: None, (1, 28, 28), ("a",), **fields)


def test_a_dataset_without_attributes_has_none():
    assert dataset_attributes(spec_of(), splits_of(blank(2), blank(1))) is None


def test_the_test_split_is_binarised_at_the_train_thresholds():
    train, test = blank(4), blank(3)
    for i, rows in enumerate((2, 4, 6, 8)):  # train heights 2..8 of 28: median 4
        train[i, 0, :rows, 0] = 255
    for i, rows in enumerate((3, 5, 20)):
        test[i, 0, :rows, 0] = 255
    attributes = dataset_attributes(
        spec_of(attributes=PIXEL_ATTRIBUTES, measure_attributes=pixel_measures), splits_of(train, test)
    )
    height = PIXEL_ATTRIBUTES.index("height")
    assert attributes.thresholds[height] == pytest.approx(4 / 28)
    assert attributes.train[:, height].tolist() == [False, False, True, True]
    # at its own median (5/28) the test split would be [False, False, True]
    assert attributes.test[:, height].tolist() == [False, True, True]


def test_annotated_attributes_are_the_loaded_annotations():
    train_attributes = torch.tensor([[True, False], [False, False]])
    test_attributes = torch.tensor([[False, True]])
    splits = splits_of(blank(2), blank(1), train_attributes=train_attributes, test_attributes=test_attributes)
    attributes = dataset_attributes(spec_of(attributes=("smiling", "hat")), splits)
    assert attributes.names == ("smiling", "hat") and not attributes.measured
    assert torch.equal(attributes.train, train_attributes) and torch.equal(attributes.test, test_attributes)


def test_annotated_attributes_cannot_be_measured_from_pixels():
    splits = splits_of(
        blank(1), blank(1), train_attributes=torch.ones(1, 1).bool(), test_attributes=torch.ones(1, 1).bool()
    )
    attributes = dataset_attributes(spec_of(attributes=("smiling",)), splits)
    with pytest.raises(ValueError, match="annotations"):
        attributes.present(blank(1))


def test_annotations_with_another_number_of_columns_are_one_line_naming_the_dataset():
    splits = splits_of(
        blank(1), blank(1), train_attributes=torch.ones(1, 2).bool(), test_attributes=torch.ones(1, 2).bool()
    )
    with pytest.raises(UsageError) as err:
        dataset_attributes(spec_of(attributes=("smiling", "hat", "young")), splits)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("dataset tiny's train annotations have shape (1, 2), but it declares 3 attributes")


def test_a_measure_with_another_number_of_columns_is_one_line_naming_the_dataset():
    spec = spec_of(attributes=PIXEL_ATTRIBUTES, measure_attributes=lambda images: pixel_measures(images)[:, :3])
    with pytest.raises(
        UsageError, match=r"^dataset tiny's measure_attributes returned shape \(2, 3\), but it declares 4"
    ):
        dataset_attributes(spec, splits_of(blank(2), blank(1)))


# --- the real Fashion-MNIST -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion_attributes(registry, fashion):
    return dataset_attributes(registry.dataset("fashion-mnist"), fashion)


def test_fashion_mnist_measures_the_pixel_attributes(fashion_attributes):
    assert fashion_attributes.names == PIXEL_ATTRIBUTES and fashion_attributes.measure is pixel_measures


def test_each_attribute_is_present_on_about_half_the_train_images(fashion_attributes):
    # ink 0.50, area 0.50, width 0.48, height 0.57 (57% span the full height: ties at the median)
    fractions = fashion_attributes.train.float().mean(0)
    assert ((fractions > 0.4) & (fractions < 0.6)).all(), fractions


def test_each_attribute_is_present_on_about_half_the_test_images(fashion_attributes):
    fractions = fashion_attributes.test.float().mean(0)  # at the train thresholds
    assert ((fractions > 0.4) & (fractions < 0.6)).all(), fractions


def test_present_on_the_test_images_is_their_test_attributes(fashion, fashion_attributes):
    assert torch.equal(fashion_attributes.present(fashion.test_images), fashion_attributes.test)


def test_the_attributes_are_not_the_class(fashion, fashion_attributes):
    # Per attribute: the classes in which each value (present, absent) holds for at least 1% of the
    # class's train images. Measured: ink 10, area 9, width 7 (sandals, sneakers and trousers are
    # nearly all wide or all narrow), height 9 of the 10 classes.
    per_class = torch.stack([fashion_attributes.train[fashion.train_labels == k].float().mean(0) for k in range(10)])
    both = ((per_class >= 0.01) & (per_class <= 0.99)).sum(0)
    assert (both >= 6).all(), dict(zip(PIXEL_ATTRIBUTES, both.tolist()))
