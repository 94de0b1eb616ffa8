"""random_shifts: every image moved by one whole-pixel offset, zeros filled in."""

import numpy as np
import pytest

from course_lib.data import random_shifts


def moved(image, di, dj):
    """image (C, H, W) moved down by di and right by dj, written pixel by pixel."""
    C, H, W = image.shape
    out = np.zeros_like(image)
    for i in range(H):
        for j in range(W):
            if 0 <= i - di < H and 0 <= j - dj < W:
                out[:, i, j] = image[:, i - di, j - dj]
    return out


@pytest.mark.parametrize("max_shift", [1, 2])
def test_each_image_is_one_of_its_shifted_copies(max_shift):
    rng = np.random.default_rng(3)
    images = rng.uniform(0.1, 1.0, size=(40, 2, 6, 5)).astype(np.float32)
    out = random_shifts(images, np.random.default_rng(0), max_shift=max_shift)
    assert out.shape == images.shape and out.dtype == images.dtype
    offsets = range(-max_shift, max_shift + 1)
    seen = set()
    for n in range(len(images)):
        matches = [(di, dj) for di in offsets for dj in offsets
                   if np.array_equal(out[n], moved(images[n], di, dj))]
        assert len(matches) == 1, f"image {n} is not exactly one shifted copy"
        seen.add(matches[0])
    # 40 draws from 9 (or 25) offsets: with max_shift=1 all 9 appear with probability > 0.98
    assert len(seen) >= (9 if max_shift == 1 else 15)


def test_seeded_and_leaves_the_input_alone():
    images = np.arange(3 * 16, dtype=np.float64).reshape(3, 1, 4, 4)
    before = images.copy()
    a = random_shifts(images, np.random.default_rng(5))
    b = random_shifts(images, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert np.array_equal(images, before)


def test_zero_shift_is_a_copy():
    images = np.ones((2, 1, 3, 3))
    out = random_shifts(images, np.random.default_rng(0), max_shift=0)
    assert np.array_equal(out, images) and out is not images


@pytest.mark.parametrize("images, max_shift, message", [
    (np.zeros((2, 8, 8)), 1, "shape"),
    (np.zeros((2, 1, 8, 8)), -1, "max_shift"),
    (np.zeros((2, 1, 8, 8)), 1.5, "max_shift"),
    (np.zeros((2, 1, 3, 8)), 3, "out of the frame"),
])
def test_bad_arguments_are_named(images, max_shift, message):
    with pytest.raises(ValueError, match=message):
        random_shifts(images, np.random.default_rng(0), max_shift=max_shift)
