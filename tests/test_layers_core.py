"""Gradient checks and error messages for Linear, the activations and Sequential."""

import numpy as np
import pytest

from course_lib.gradcheck import check_layer_gradients
from course_lib.layers import (Dropout, Flatten, Identity, LeakyReLU, Linear, ReLU, Sequential,
                               Sigmoid, Softmax, Softplus, Tanh)

ACTIVATIONS = [Identity, ReLU, lambda: LeakyReLU(0.2), Sigmoid, Tanh, Softplus, Softmax,
               lambda: Softmax(axis=0)]


def random_shape(rng):
    """A batch of 1 to 9 rows and 1 to 7 features, different on every call."""
    return int(rng.integers(1, 10)), int(rng.integers(1, 8))


def away_from_kinks(rng, shape, scale=3.0):
    """Inputs at least 1e-2 from 0, where ReLU-like derivatives jump (finite differences use h = 1e-5)."""
    x = rng.uniform(1e-2, scale, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.parametrize("seed", range(6))
def test_linear_gradients_random_shapes(seed):
    rng = np.random.default_rng(seed)
    N, D = random_shape(rng)
    M = int(rng.integers(1, 6))
    layer = Linear(D, M, rng=rng, dtype=np.float64)
    layer.b.data[:] = rng.standard_normal(M)   # a non-zero bias, so a dropped term shows
    check_layer_gradients(layer, rng.standard_normal((N, D)), rng)


def test_linear_without_bias_has_only_W():
    layer = Linear(3, 2, bias=False, dtype=np.float64)
    assert [p.name for p in layer.parameters()] == ["W"]
    check_layer_gradients(layer, np.random.default_rng(0).standard_normal((4, 3)))


def test_linear_forward_is_x_W_plus_b():
    rng = np.random.default_rng(1)
    layer = Linear(4, 3, rng=rng, dtype=np.float64)
    layer.b.data[:] = [1.0, -2.0, 0.5]
    x = rng.standard_normal((5, 4))
    expected = np.einsum("nd,dm->nm", x, layer.W.data) + np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12)
    assert layer.W.shape == (4, 3) and layer.b.shape == (3,)


def test_gradients_accumulate_across_backward_calls():
    rng = np.random.default_rng(2)
    layer = Linear(3, 2, dtype=np.float64)
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer(x); layer.backward(dout)
    once = layer.W.grad.copy()
    layer(x); layer.backward(dout)
    np.testing.assert_allclose(layer.W.grad, 2 * once, rtol=1e-12)
    layer.zero_grad()
    assert not layer.W.grad.any()


@pytest.mark.parametrize("make", ACTIVATIONS)
@pytest.mark.parametrize("seed", range(3))
def test_activation_gradients(make, seed):
    rng = np.random.default_rng(seed)
    check_layer_gradients(make(), away_from_kinks(rng, random_shape(rng)), rng)


def test_activations_match_their_formulas():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(ReLU()(x), [0, 0, 0, 0.5, 3])
    np.testing.assert_allclose(LeakyReLU(0.1)(x), [-0.3, -0.05, 0, 0.5, 3])
    np.testing.assert_allclose(Sigmoid()(x), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(Tanh()(x), np.tanh(x), rtol=1e-12)
    np.testing.assert_allclose(Softplus()(x), np.log1p(np.exp(x)), rtol=1e-12)


def test_relu_derivative_at_zero_is_zero_as_in_pytorch():
    layer = ReLU()
    layer(np.array([0.0, 1.0]))
    np.testing.assert_array_equal(layer.backward(np.ones(2)), [0.0, 1.0])


def test_extreme_inputs_stay_finite():
    x = np.array([[-1e4, 0.0, 1e4]])
    for layer in (Sigmoid(), Softplus(), Softmax(), Tanh()):
        with np.errstate(over="raise", invalid="raise", divide="raise"):          # overflow or NaN would raise here; underflow to 0 is harmless
            out = layer(x)
        assert np.all(np.isfinite(out)), type(layer).__name__
    np.testing.assert_allclose(Softmax()(x), [[0.0, 0.0, 1.0]], atol=1e-300)
    np.testing.assert_allclose(Softplus()(x), [[0.0, np.log(2), 1e4]], rtol=1e-12)


def test_softmax_rows_sum_to_one_along_chosen_axis():
    x = np.random.default_rng(3).standard_normal((4, 6))
    np.testing.assert_allclose(Softmax()(x).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(Softmax(axis=0)(x).sum(axis=0), 1.0, rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_sequential_mlp_gradients(seed):
    rng = np.random.default_rng(seed)
    N, D = random_shape(rng)
    model = Sequential(Linear(D, 5, rng=rng, dtype=np.float64), Tanh(),
                       Linear(5, 4, rng=rng, dtype=np.float64), Sigmoid(),
                       Linear(4, 3, rng=rng, dtype=np.float64))
    for p in model.parameters():
        if p.name == "b":
            p.data[:] = rng.standard_normal(p.shape)
    assert len(model.parameters()) == 6
    check_layer_gradients(model, rng.standard_normal((N, D)), rng)


def test_train_and_eval_reach_every_layer():
    model = Sequential(Linear(2, 2), Sequential(ReLU(), Linear(2, 1)))
    model.eval()
    assert not any(layer.training for layer in (model, model[0], model[1], model[1][1]))
    model.train()
    assert all(layer.training for layer in (model, model[0], model[1], model[1][1]))


def test_linear_rejects_bad_input_with_clear_messages():
    layer = Linear(4, 2)
    with pytest.raises(ValueError, match=r"4 features"):
        layer(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, in_features\)"):
        layer(np.zeros(4, dtype=np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        layer(np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="array"):
        layer([[0.0] * 4])
    with pytest.raises(ValueError, match="positive"):
        Linear(0, 3)


def test_sequential_rejects_non_layers():
    with pytest.raises(TypeError, match="argument 1"):
        Sequential(ReLU(), np.tanh)


@pytest.mark.parametrize("make, shape", [
    (ReLU, (4, 3)), (lambda: LeakyReLU(0.2), (4, 3)), (Sigmoid, (4, 3)), (Tanh, (4, 3)),
    (Softplus, (4, 3)), (Softmax, (4, 3)), (lambda: Linear(3, 3), (4, 3)),
    (lambda: Dropout(0.5), (4, 3)), (lambda: Dropout(0.5).eval(), (4, 3)), (Flatten, (4, 3)),
])
def test_backward_refuses_a_dout_of_another_shape(make, shape):
    """A (3,) or (1, 3) gradient would broadcast over a (4, 3) output and give a wrong dx silently;
    every layer names the mismatch instead."""
    layer = make()
    out = layer.forward(np.random.default_rng(0).standard_normal(shape))
    for bad in (np.ones(out.shape[1:]), np.ones((1,) + out.shape[1:])):
        with pytest.raises(ValueError, match=r"backward: dout has shape .*expected \(4, 3\)"):
            layer.backward(bad)
    assert layer.backward(np.ones(out.shape)).shape == shape
