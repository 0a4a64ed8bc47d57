"""ganbench.pictures: the PNG helpers built-in and third-party probes share."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from ganbench.pictures import grid_png, pairs_png, strip_png


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def test_a_grid_places_each_image_in_its_cell(fashion):
    images = fashion.test_images[:6]
    picture = decode(grid_png(images, per_row=3, scale=1))
    assert picture.shape == (2 + 2 * 30, 2 + 3 * 30)  # make_grid: 2 pixels of padding around each 28x28 cell
    for i, image in enumerate(images):
        row, col = divmod(i, 3)
        cell = picture[2 + 30 * row : 30 + 30 * row, 2 + 30 * col : 30 + 30 * col]
        assert np.array_equal(cell, image[0].numpy())


def test_pairs_put_each_left_image_beside_its_right_one(fashion):
    left, right = fashion.test_images[:3], fashion.train_images[:3]
    picture = decode(pairs_png(left, right, scale=1))
    assert picture.shape == (2 + 3 * 30, 2 + 2 * 30)
    for i in range(3):
        assert np.array_equal(picture[2 + 30 * i : 30 + 30 * i, 2:30], left[i, 0].numpy())
        assert np.array_equal(picture[2 + 30 * i : 30 + 30 * i, 32:60], right[i, 0].numpy())
    with pytest.raises(ValueError, match="two batches of one shape"):
        pairs_png(left, right[:2])


def test_a_strip_is_one_labelled_row(fashion):
    plain = decode(strip_png(fashion.test_images[:5], scale=1))
    labelled = decode(strip_png(fashion.test_images[:5], labels=["steps"], scale=1))
    assert plain.shape == (32, 2 + 5 * 30) and labelled.shape[0] == 32 and labelled.shape[1] > plain.shape[1]


def test_pictures_take_images_from_any_device_and_of_any_channel_count():
    rgb = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    picture = Image.open(io.BytesIO(grid_png(rgb, per_row=2, scale=3)))
    assert picture.mode == "RGB" and picture.size == (3 * (2 + 2 * 10), 3 * (2 + 2 * 10))
