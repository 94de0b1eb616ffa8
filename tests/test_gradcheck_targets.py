"""Tests for course_lib.gradcheck_targets: values, closed-form gradients, bad input."""

import math

import numpy as np
import pytest

from course_lib import gradcheck_targets as gt
from course_lib.backend import gpu_available, gpu_unavailable_reason

TARGETS = [gt.sum_of_squares, gt.sum_of_cubes, gt.sin_weighted, gt.log_sum_exp, gt.square_of_sum]


def exact_gradient(f, x):
    """The closed-form gradients, written out here independently of the module."""
    if f is gt.sum_of_squares:
        return 2 * x
    if f is gt.sum_of_cubes:
        return 3 * x ** 2
    if f is gt.sin_weighted:
        return np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    if f is gt.log_sum_exp:
        e = np.exp(x - x.max())
        return e / e.sum()
    if f is gt.square_of_sum:
        return np.full_like(x, 2 * x.sum())
    raise KeyError(f)


def central_difference(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        grad[i] = (f(xp) - f(xm)) / (2 * h)
    return grad


def test_values_on_hand_examples():
    x = np.array([1.0, -2.0, 3.0])
    assert gt.sum_of_squares(x) == 14.0
    assert gt.sum_of_cubes(x) == 1 - 8 + 27
    assert gt.square_of_sum(x) == 4.0
    assert gt.sin_weighted(x) == pytest.approx(math.sin(1) + 4 * math.sin(-2) + 9 * math.sin(3))
    assert gt.log_sum_exp(x) == pytest.approx(math.log(math.e + math.exp(-2) + math.exp(3)))


@pytest.mark.parametrize("f", TARGETS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 4), (2, 3, 2)])
def test_gradient_matches_central_difference(f, shape):
    x = np.random.default_rng(len(shape) * 10 + TARGETS.index(f)).normal(size=shape)
    # float64 central differences with h=1e-5: truncation ~h**2 * f''' and
    # round-off ~1e-16 * |f| / h, both far below 1e-7 for these inputs.
    np.testing.assert_allclose(central_difference(f, x), exact_gradient(f, x), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("f", TARGETS, ids=lambda f: f.__name__)
def test_returns_python_float_and_leaves_input_alone(f):
    x = np.arange(6, dtype=np.float64).reshape(2, 3) / 5
    before = x.copy()
    value = f(x)
    assert type(value) is float
    np.testing.assert_array_equal(x, before)


def test_central_difference_of_cubes_is_exact_up_to_h_squared():
    x = np.array([0.5, -1.5, 2.0])
    h = 0.1
    e = np.eye(3)
    got = [(gt.sum_of_cubes(x + h * e[i]) - gt.sum_of_cubes(x - h * e[i])) / (2 * h) for i in range(3)]
    np.testing.assert_allclose(got, 3 * x ** 2 + h ** 2, rtol=1e-12)


def test_log_sum_exp_is_stable_for_large_inputs():
    assert gt.log_sum_exp(np.array([1000.0, 1000.0])) == pytest.approx(1000 + math.log(2))
    assert gt.log_sum_exp(np.array([-1000.0, -1001.0])) == pytest.approx(-1000 + math.log1p(math.exp(-1)))


def test_integer_input_is_accepted():
    assert gt.sum_of_squares(np.array([1, 2, 3])) == 14.0
    assert gt.square_of_sum([1, 2]) == 9.0


@pytest.mark.parametrize("f", TARGETS, ids=lambda f: f.__name__)
def test_bad_input_raises(f):
    with pytest.raises(TypeError, match="numeric"):
        f(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="NaN"):
        f(np.array([1.0, np.nan]))


def test_log_sum_exp_of_nothing_raises():
    with pytest.raises(ValueError, match="at least one"):
        gt.log_sum_exp(np.zeros(0))


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason=str(gpu_unavailable_reason()))
@pytest.mark.parametrize("f", TARGETS, ids=lambda f: f.__name__)
def test_same_value_on_gpu(f):
    import cupy
    x = np.random.default_rng(3).normal(size=(4, 5))
    assert f(cupy.asarray(x)) == pytest.approx(f(x), rel=1e-12)
