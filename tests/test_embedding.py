"""Embedding: row lookup, gradient accumulation over repeated indices, and bad indices.

The expected gradient is built here by a loop that adds one row of ``dout``
at a time, and checked once more against central differences in float64.
"""

import numpy as np
import pytest

from course_lib.gradcheck import numerical_gradient, relative_error
from course_lib.layers import Embedding


@pytest.mark.parametrize("idx_shape", [(), (5,), (3, 4), (2, 3, 4)])
def test_forward_is_row_lookup(idx_shape):
    rng = np.random.default_rng(0)
    layer = Embedding(11, 6, rng=rng)
    idx = rng.integers(0, 11, size=idx_shape)
    out = layer.forward(idx)
    assert out.shape == idx_shape + (6,) and out.dtype == np.float32
    expected = np.array([layer.W.data[i] for i in np.ravel(idx)]).reshape(idx_shape + (6,))
    np.testing.assert_array_equal(out, expected)


def test_forward_equals_one_hot_times_W():
    rng = np.random.default_rng(1)
    layer = Embedding(7, 3, rng=rng, dtype=np.float64)
    idx = np.array([6, 0, 3, 3])
    one_hot = np.eye(7)[idx]
    np.testing.assert_allclose(layer.forward(idx), one_hot @ layer.W.data, rtol=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_backward_sums_repeated_indices(seed):
    rng = np.random.default_rng(seed)
    V, D = int(rng.integers(1, 9)), int(rng.integers(1, 6))
    idx = rng.integers(0, V, size=(int(rng.integers(1, 5)), int(rng.integers(1, 7))))  # many repeats
    layer = Embedding(V, D, rng=rng, dtype=np.float64)
    layer.forward(idx)
    dout = rng.standard_normal(idx.shape + (D,))
    assert layer.backward(dout) is None          # no gradient for integer indices
    expected = np.zeros((V, D))
    for k, i in enumerate(idx.ravel()):
        expected[i] += dout.reshape(-1, D)[k]
    np.testing.assert_allclose(layer.W.grad, expected, rtol=1e-12, atol=1e-12)


def test_gradient_matches_central_differences():
    rng = np.random.default_rng(5)
    layer = Embedding(6, 4, rng=rng, dtype=np.float64)
    idx = np.array([[1, 4, 1], [5, 1, 0]])
    R = rng.standard_normal(idx.shape + (4,))
    layer.forward(idx)
    layer.backward(R)
    numeric = numerical_gradient(lambda _: float(np.sum(layer.forward(idx) * R)), layer.W.data)
    # Exact linear function: the central difference is exact up to rounding (~1e-10).
    assert relative_error(layer.W.grad, numeric).max() < 1e-7


def test_gradient_accumulates_across_calls():
    layer = Embedding(3, 2, dtype=np.float64)
    for _ in range(2):
        layer.forward(np.array([2, 2]))
        layer.backward(np.ones((2, 2)))
    np.testing.assert_array_equal(layer.W.grad, [[0, 0], [0, 0], [4, 4]])


def test_large_batch_against_bincount():
    rng = np.random.default_rng(6)
    V, D = 50, 8
    idx = rng.zipf(1.5, size=3000) % V
    layer = Embedding(V, D, rng=rng, dtype=np.float64)
    layer.forward(idx)
    dout = rng.standard_normal((3000, D))
    layer.backward(dout)
    expected = np.stack([np.bincount(idx, weights=dout[:, d], minlength=V) for d in range(D)], axis=1)
    np.testing.assert_allclose(layer.W.grad, expected, rtol=1e-10, atol=1e-10)


def test_init_is_standard_normal_and_seeded():
    W = Embedding(500, 40, rng=np.random.default_rng(7)).W.data
    # 20000 draws: the mean is within ~4 standard errors (0.007 each) and the std within 2%.
    assert abs(W.mean()) < 0.03 and abs(W.std() - 1) < 0.02
    np.testing.assert_array_equal(W, Embedding(500, 40, rng=np.random.default_rng(7)).W.data)


def test_lists_and_empty_index_arrays():
    layer = Embedding(4, 2)
    np.testing.assert_array_equal(layer.forward([1, 3]), layer.W.data[[1, 3]])
    out = layer.forward(np.zeros((0,), dtype=np.int64))
    assert out.shape == (0, 2)
    assert layer.backward(np.zeros((0, 2), dtype=np.float32)) is None


@pytest.mark.parametrize("idx", [np.array([0.0, 1.0]), np.array([True, False])])
def test_non_integer_indices_are_refused(idx):
    with pytest.raises(TypeError, match="integer indices"):
        Embedding(4, 2).forward(idx)


@pytest.mark.parametrize("idx", [np.array([0, 4]), np.array([-1, 2])])
def test_out_of_range_indices_are_refused(idx):
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        Embedding(4, 2).forward(idx)


def test_wrong_dout_shape():
    layer = Embedding(4, 2)
    layer.forward(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="expected"):
        layer.backward(np.zeros((3, 3)))
