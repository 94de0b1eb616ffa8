"""The gradient checker must pass correct gradients and catch wrong ones, naming where."""

import numpy as np
import pytest

from course_lib.gradcheck import (check_layer_gradients, numerical_gradient, relative_error)
from course_lib.layers import Layer, Linear
from course_lib.parameter import Parameter


def test_numerical_gradient_of_known_functions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    before = x.copy()
    g = numerical_gradient(lambda v: np.sum(np.sin(v) * v ** 2), x)
    np.testing.assert_allclose(g, np.cos(x) * x ** 2 + 2 * x * np.sin(x), rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, before)   # x is restored exactly


def test_numerical_gradient_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(np.sum, np.zeros(3, dtype=np.float32))


def test_relative_error_properties():
    a = np.array([1.0, -2.0, 1e-9])
    assert relative_error(a, a).max() == 0
    assert relative_error(np.array([1.0]), np.array([-1.0]))[0] == 1.0


class ForgetsBiasGradient(Linear):
    """A Linear layer with the classic mistake: no gradient for b."""

    def backward(self, dout):
        self.W.grad += self.cache.T @ dout
        return dout @ self.W.data.T


class SlightlyWrongWeightGradient(Linear):
    """dW 0.5% too large: a small error that still must not pass."""

    def backward(self, dout):
        self.W.grad += 1.005 * (self.cache.T @ dout)
        self.b.grad += dout.sum(0)
        return dout @ self.W.data.T


class TransposedWeightGradient(Linear):
    """dW = dout.T @ x instead of x.T @ dout: the shape fits only because W is square."""

    def backward(self, dout):
        self.W.grad += dout.T @ self.cache
        self.b.grad += dout.sum(0)
        return dout @ self.W.data.T


class WrongInputGradient(Linear):
    """dx = dout @ W instead of dout @ W.T (again only possible for a square W)."""

    def backward(self, dout):
        self.W.grad += self.cache.T @ dout
        self.b.grad += dout.sum(0)
        return dout @ self.W.data


@pytest.mark.parametrize("bad, name", [(ForgetsBiasGradient, "b"), (SlightlyWrongWeightGradient, "W"),
                                       (TransposedWeightGradient, "W"), (WrongInputGradient, "x")])
def test_checker_catches_wrong_gradients_and_names_them(bad, name):
    rng = np.random.default_rng(1)
    layer = bad(4, 4, dtype=np.float64)         # square, so a transposed W or dx fits its shape
    with pytest.raises(AssertionError, match=rf"{name}: max relative error"):
        check_layer_gradients(layer, rng.standard_normal((5, 4)), rng)


def test_checker_reports_worst_error_and_location():
    rng = np.random.default_rng(2)
    results = check_layer_gradients(Linear(3, 2, dtype=np.float64), rng.standard_normal((4, 3)), rng)
    assert [r.name for r in results] == ["x", "W", "b"]
    assert all(r.max_error < 1e-7 for r in results)
    assert all(len(r.index) == 2 for r in results[:2])


def test_checker_requires_float64_parameters():
    class Scale(Layer):
        def __init__(self):
            super().__init__()
            self.a = Parameter(np.ones(1, dtype=np.float32), name="a")
    with pytest.raises(TypeError, match="float64"):
        check_layer_gradients(Scale(), np.ones((2, 1)))
