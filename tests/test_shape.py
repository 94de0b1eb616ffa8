"""Flatten: (N, ...) -> (N, prod) and back."""

import numpy as np
import pytest

from course_lib.gradcheck import check_layer_gradients
from course_lib.layers import Flatten


@pytest.mark.parametrize("shape", [(1, 3), (2, 3, 4), (5, 2, 3, 4), (3, 1, 1, 1, 2)])
def test_forward_and_backward_shapes(shape):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    layer = Flatten()
    out = layer.forward(x)
    assert out.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(out[-1], x[-1].ravel())          # C order, like torch.flatten
    np.testing.assert_array_equal(layer.backward(out), x)


def test_gradient():
    rng = np.random.default_rng(0)
    check_layer_gradients(Flatten(), rng.standard_normal((2, 3, 2, 2)), rng=rng)


def test_non_contiguous_input():
    x = np.arange(24.0).reshape(2, 3, 4).transpose(0, 2, 1)
    np.testing.assert_array_equal(Flatten().forward(x), x.reshape(2, 12))


def test_bad_input():
    with pytest.raises(ValueError):
        Flatten().forward(np.float64(3.0).reshape(()))
    layer = Flatten()
    layer.forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="expected"):
        layer.backward(np.zeros((2, 11)))
