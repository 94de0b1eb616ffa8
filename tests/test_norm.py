"""BatchNorm1d and BatchNorm2d against the textbook formulas, central differences and PyTorch.

The expected values are computed here in float64 with ``np.mean`` and
``np.var`` (``ddof=0`` for the normalisation, ``ddof=1`` for the running
variance, as PyTorch documents), never with the layer's own code.
"""

import numpy as np
import pytest

from course_lib.gradcheck import check_layer_gradients
from course_lib.layers import BatchNorm1d, BatchNorm2d

EPS = 1e-5


def reference_forward(x, gamma, beta, mean, var):
    """``gamma * (x - mean) / sqrt(var + eps) + beta`` with per-channel vectors on axis 1."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (gamma.reshape(shape) * (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + EPS)
            + beta.reshape(shape))


def batch_stats(x):
    """Per-channel mean, biased and unbiased variance over every axis but 1."""
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes), x.var(axis=axes, ddof=1)


def make(cls, C, rng):
    layer = cls(C, dtype=np.float64)
    layer.gamma.data[:] = rng.standard_normal(C) + 1    # not 1 and 0, so a dropped term shows
    layer.beta.data[:] = rng.standard_normal(C)
    return layer


# (Not a batch of 2 for BatchNorm1d: its output is then +-1 whatever x is, so the gradient is
# ~eps and the finite differences measure only rounding noise.)
CASES = [(BatchNorm1d, (7, 5)), (BatchNorm1d, (3, 2)), (BatchNorm1d, (6, 3, 4)),
         (BatchNorm2d, (4, 3, 5, 2)), (BatchNorm2d, (1, 2, 3, 3)), (BatchNorm2d, (3, 6, 1, 1))]


# ---------------------------------------------------------------- forward, training mode

@pytest.mark.parametrize("cls, shape", CASES)
def test_training_forward_uses_batch_statistics(cls, shape):
    rng = np.random.default_rng(0)
    layer = make(cls, shape[1], rng)
    x = rng.standard_normal(shape) * 3 + 2                # far from zero mean and unit variance
    mean, var, _ = batch_stats(x)
    out = layer.forward(x)
    assert out.shape == x.shape
    np.testing.assert_allclose(out, reference_forward(x, layer.gamma.data, layer.beta.data, mean, var),
                               rtol=1e-10, atol=1e-12)


def test_normalised_output_has_zero_mean_unit_variance():
    rng = np.random.default_rng(1)
    scale = np.array([1, 10, 0.1, 5])[None, :, None, None]
    shift = np.array([3, -2, 0, 100])[None, :, None, None]
    x = rng.standard_normal((16, 4, 6, 6)) * scale + shift
    out = BatchNorm2d(4, dtype=np.float64).forward(x)
    mean, var, _ = batch_stats(out)
    np.testing.assert_allclose(mean, 0, atol=1e-10)
    # var(xhat) = var / (var + eps): 1 up to eps / var, at most 1e-5 / 0.01 = 1e-3 here.
    np.testing.assert_allclose(var, 1, atol=2e-3)


@pytest.mark.parametrize("cls, shape", CASES)
def test_running_statistics_follow_pytorch_update(cls, shape):
    rng = np.random.default_rng(2)
    layer = cls(shape[1], momentum=0.3, dtype=np.float64)
    running_mean, running_var = np.zeros(shape[1]), np.ones(shape[1])
    for _ in range(3):
        x = rng.standard_normal(shape) * 2 - 1
        layer.forward(x)
        mean, _, unbiased = batch_stats(x)
        running_mean = 0.7 * running_mean + 0.3 * mean
        running_var = 0.7 * running_var + 0.3 * unbiased
    np.testing.assert_allclose(layer.running_mean, running_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, running_var, rtol=1e-12)


def test_default_momentum_is_pytorchs():
    layer = BatchNorm1d(3, dtype=np.float64)
    assert layer.momentum == 0.1 and layer.eps == 1e-5
    x = np.array([[0.0, 1.0, 2.0], [2.0, 5.0, 2.0]])
    layer.forward(x)
    # Unbiased variances of the columns: 2, 8, 0.
    np.testing.assert_allclose(layer.running_mean, [0.1, 0.3, 0.2])
    np.testing.assert_allclose(layer.running_var, [0.9 + 0.2, 0.9 + 0.8, 0.9])


# ---------------------------------------------------------------- evaluation mode

@pytest.mark.parametrize("cls, shape", CASES + [(BatchNorm1d, (1, 4))])
def test_eval_uses_running_statistics_and_leaves_them_alone(cls, shape):
    rng = np.random.default_rng(3)
    layer = make(cls, shape[1], rng)
    layer.running_mean[:] = rng.standard_normal(shape[1])
    layer.running_var[:] = rng.random(shape[1]) + 0.5
    before = layer.running_mean.copy(), layer.running_var.copy()
    layer.eval()
    x = rng.standard_normal(shape)
    out = layer.forward(x)
    np.testing.assert_allclose(out, reference_forward(x, layer.gamma.data, layer.beta.data, *before),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, before[0])
    np.testing.assert_array_equal(layer.running_var, before[1])


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("cls, shape", CASES)
def test_gradients_match_central_differences(cls, shape, mode):
    rng = np.random.default_rng(4)
    layer = make(cls, shape[1], rng)
    if mode == "eval":
        layer.running_mean[:] = rng.standard_normal(shape[1])
        layer.running_var[:] = rng.random(shape[1]) + 0.5
        layer.eval()
    x = rng.standard_normal(shape) * 2 + 1
    # Relative error of a correct gradient is ~1e-8 in float64 (course_lib.gradcheck).
    check_layer_gradients(layer, x, rng=rng, tol=1e-6)


def test_eval_gradient_with_a_single_sample():
    rng = np.random.default_rng(5)
    layer = make(BatchNorm1d, 4, rng).eval()
    check_layer_gradients(layer, rng.standard_normal((1, 4)), rng=rng)


def test_training_gradient_sums_vanish():
    """In training mode, dx sums to zero per channel and is orthogonal to xhat (the two constraints
    that mean subtraction and variance division impose). The second holds up to eps / var, so eps
    is made negligible here."""
    rng = np.random.default_rng(6)
    layer = BatchNorm2d(3, eps=1e-12, dtype=np.float64)
    x = rng.standard_normal((4, 3, 2, 5))
    out = layer.forward(x)
    dx = layer.backward(rng.standard_normal(x.shape))
    np.testing.assert_allclose(dx.sum(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose((dx * out).sum(axis=(0, 2, 3)), 0, atol=1e-10)


# ---------------------------------------------------------------- bad input

def test_single_sample_in_training_is_refused():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(4).forward(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm2d(4).forward(np.zeros((1, 4, 1, 1), dtype=np.float32))


def test_feature_count_and_rank_are_checked():
    with pytest.raises(ValueError, match="5 features along axis 1"):
        BatchNorm1d(5).forward(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="3 features along axis 1"):
        BatchNorm2d(3).forward(np.zeros((2, 8, 8, 3), dtype=np.float32))   # NHWC by mistake
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        BatchNorm2d(3).forward(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        BatchNorm1d(2).forward(np.zeros((3, 2), dtype=np.int32))


@pytest.mark.parametrize("kwargs", [dict(num_features=0), dict(num_features=3, eps=0),
                                    dict(num_features=3, momentum=1.5),
                                    dict(num_features=3, momentum=-0.1)])
def test_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        BatchNorm2d(**kwargs)


def test_parameters_and_buffers():
    layer = BatchNorm2d(6)
    assert [p.name for p in layer.parameters()] == ["gamma", "beta"]
    np.testing.assert_array_equal(layer.gamma.data, 1)
    np.testing.assert_array_equal(layer.beta.data, 0)
    np.testing.assert_array_equal(layer.running_mean, 0)
    np.testing.assert_array_equal(layer.running_var, 1)
    assert layer.to("cpu").running_var.dtype == np.float32


# ---------------------------------------------------------------- PyTorch as the oracle

@pytest.mark.slow
@pytest.mark.parametrize("cls, shape", [(BatchNorm2d, (4, 3, 5, 6)), (BatchNorm2d, (1, 2, 3, 2)),
                                        (BatchNorm1d, (9, 5))])
def test_against_pytorch(cls, shape):
    torch = pytest.importorskip("torch", reason="PyTorch is optional (the 'bench' extra)")
    rng = np.random.default_rng(7)
    C = shape[1]
    layer = make(cls, C, rng)
    tlayer = (torch.nn.BatchNorm2d if cls is BatchNorm2d else torch.nn.BatchNorm1d)(C).double()
    with torch.no_grad():
        tlayer.weight.copy_(torch.tensor(layer.gamma.data))
        tlayer.bias.copy_(torch.tensor(layer.beta.data))
    for step in range(3):                                  # running statistics over several batches
        x = rng.standard_normal(shape) * 2 + step
        dout = rng.standard_normal(shape)
        layer.zero_grad()
        out = layer.forward(x)
        dx = layer.backward(dout)
        tx = torch.tensor(x, requires_grad=True)
        tlayer.zero_grad()
        tout = tlayer(tx)
        tout.backward(torch.tensor(dout))
        # float64 on both sides; the formulas are the same up to the order of the sums.
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(layer.gamma.grad, tlayer.weight.grad.numpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(layer.beta.grad, tlayer.bias.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(layer.running_mean, tlayer.running_mean.numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.running_var, tlayer.running_var.numpy(), rtol=1e-10)
    layer.eval()
    tlayer.eval()
    x = rng.standard_normal(shape)
    with torch.no_grad():
        np.testing.assert_allclose(layer.forward(x), tlayer(torch.tensor(x)).numpy(),
                                   rtol=1e-9, atol=1e-10)


@pytest.mark.slow
def test_against_pytorch_float32():
    torch = pytest.importorskip("torch", reason="PyTorch is optional (the 'bench' extra)")
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((64, 32, 14, 14)) * 3 + 5).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    layer = BatchNorm2d(32)
    out = layer.forward(x)
    dx = layer.backward(dout)
    tlayer = torch.nn.BatchNorm2d(32)
    tx = torch.from_numpy(x).requires_grad_(True)
    tout = tlayer(tx)
    tout.backward(torch.from_numpy(dout))
    # float32 sums over n = 12544 values per channel: agreement to ~1e-5 relative.
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(layer.running_var, tlayer.running_var.numpy(), rtol=1e-5)


def test_dout_shape_is_checked():
    layer = BatchNorm2d(2)
    layer.forward(np.ones((3, 2, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="expected"):
        layer.backward(np.ones((3, 2, 4), dtype=np.float32))
