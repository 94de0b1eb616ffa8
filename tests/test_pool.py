"""MaxPool2D and AvgPool2D against loops over windows, central differences and PyTorch.

The oracle for the forward pass is a loop over every window written here;
for the backward pass, central differences in float64 and hand-built
expectations for ties (the gradient of a tied maximum goes to the first of
the tied entries in row-major order, as in PyTorch).
"""

import numpy as np
import pytest

from course_lib.gradcheck import check_layer_gradients
from course_lib.layers import AvgPool2D, MaxPool2D


def pool_loops(x, kernel, stride, reduce):
    """``reduce`` (np.max or np.mean) of every window, as four plain loops."""
    (kh, kw), (sh, sw) = kernel, stride
    N, C, H, W = x.shape
    H_out, W_out = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.empty((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    out[n, c, i, j] = reduce(x[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw])
    return out


def random_pool_config(rng):
    """Random kernel and stride (overlapping when stride < kernel) and a size that fits them."""
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    H_out, W_out = (int(v) for v in rng.integers(1, 4, size=2))
    N, C = (int(v) for v in rng.integers(1, 4, size=2))
    return (kh, kw), (sh, sw), (N, C, (H_out - 1) * sh + kh, (W_out - 1) * sw + kw)


# ---------------------------------------------------------------- forward

def test_maxpool_hand_example():
    x = np.array([[1, 2, 5, 0],
                  [3, 4, 1, 1],
                  [0, 0, 2, 2],
                  [9, 0, 2, 3]], dtype=np.float64).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(MaxPool2D(2).forward(x), [[[[4, 5], [9, 3]]]])
    np.testing.assert_array_equal(AvgPool2D(2).forward(x), [[[[2.5, 1.75], [2.25, 2.25]]]])


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("cls, reduce", [(MaxPool2D, np.max), (AvgPool2D, np.mean)])
def test_forward_equals_loops(cls, reduce, seed):
    rng = np.random.default_rng(seed)
    kernel, stride, shape = random_pool_config(rng)
    x = rng.standard_normal(shape)
    out = cls(kernel, stride).forward(x)
    # max is exact; the mean sums at most 9 numbers in another order: ~1e-16 relative.
    np.testing.assert_allclose(out, pool_loops(x, kernel, stride, reduce), rtol=1e-13, atol=1e-14)


def test_stride_defaults_to_kernel():
    layer = MaxPool2D((2, 3))
    assert layer.stride == (2, 3)
    assert layer.forward(np.zeros((1, 1, 4, 9), dtype=np.float32)).shape == (1, 1, 2, 3)


def test_float32_stays_float32():
    x = np.ones((2, 3, 4, 4), dtype=np.float32)
    for layer in (MaxPool2D(2), AvgPool2D(2)):
        out = layer.forward(x)
        assert out.dtype == np.float32
        assert layer.backward(np.ones_like(out)).dtype == np.float32


# ---------------------------------------------------------------- backward

@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_gradients_match_central_differences(cls, seed):
    rng = np.random.default_rng(50 + seed)
    kernel, stride, shape = random_pool_config(rng)
    if seed == 0:
        kernel, stride, shape = (3, 3), (1, 1), (1, 2, 5, 4)       # batch 1, heavy overlap
    # Standard-normal entries differ by ~1e-2 or more, far above the 1e-5 step, so no
    # finite difference crosses from one maximum to another; tolerance as in gradcheck.
    check_layer_gradients(cls(kernel, stride), rng.standard_normal(shape), rng=rng, tol=1e-6)


def test_tied_maximum_sends_gradient_to_the_first_entry_only():
    x = np.array([[1, 3],
                  [3, 2]], dtype=np.float64).reshape(1, 1, 2, 2)   # 3 at (0, 1) and (1, 0)
    layer = MaxPool2D(2)
    layer.forward(x)
    dx = layer.backward(np.array([[[[5.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0, 5], [0, 0]]]])


def test_constant_input_non_overlapping():
    x = np.zeros((2, 3, 4, 6))
    layer = MaxPool2D(2)
    dout = np.random.default_rng(0).standard_normal((2, 3, 2, 3))
    layer.forward(x)
    dx = layer.backward(dout)
    expected = np.zeros_like(x)
    expected[:, :, ::2, ::2] = dout           # top-left of each window, the first in row-major order
    np.testing.assert_array_equal(dx, expected)


def test_constant_input_overlapping_windows_add_up():
    """3x3 input, 2x2 windows at stride 1: every window's first entry is its top-left."""
    x = np.ones((1, 1, 3, 3))
    layer = MaxPool2D(2, stride=1)
    layer.forward(x)
    dout = np.array([[1.0, 2.0], [4.0, 8.0]]).reshape(1, 1, 2, 2)
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 0], [4, 8, 0], [0, 0, 0]])


def test_overlapping_max_collects_from_every_window():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0                        # the centre is the maximum of all four windows
    layer = MaxPool2D(2, stride=1)
    layer.forward(x)
    dx = layer.backward(np.array([[1.0, 2.0], [4.0, 8.0]]).reshape(1, 1, 2, 2))
    assert dx[0, 0, 1, 1] == 15.0 and dx.sum() == 15.0


def test_avgpool_overlapping_backward_by_hand():
    layer = AvgPool2D(2, stride=1)
    layer.forward(np.zeros((1, 1, 3, 3)))
    dx = layer.backward(np.full((1, 1, 2, 2), 4.0))
    # Each window hands 4/4 = 1 to each of its pixels; the centre is in all four windows.
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


# ---------------------------------------------------------------- bad input

def test_dropping_rows_is_refused():
    with pytest.raises(ValueError, match="row 6 of the input"):
        MaxPool2D(2).forward(np.zeros((1, 1, 7, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="columns"):
        AvgPool2D(3, stride=2).forward(np.zeros((1, 1, 7, 8), dtype=np.float32))


def test_kernel_larger_than_input():
    with pytest.raises(ValueError, match="kernel covers 3 rows"):
        MaxPool2D(3).forward(np.zeros((1, 1, 2, 3), dtype=np.float32))


def test_wrong_rank_and_bad_hyperparameters():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        MaxPool2D(2).forward(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        AvgPool2D(0)
    with pytest.raises(ValueError):
        MaxPool2D(2, stride=0)


# ---------------------------------------------------------------- PyTorch as the oracle

@pytest.mark.slow
@pytest.mark.parametrize("kernel, stride, size", [(2, None, (6, 8)), ((3, 2), (1, 2), (7, 8)),
                                                  (3, 2, (7, 9))])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_against_pytorch_with_ties(kind, kernel, stride, size):
    torch = pytest.importorskip("torch", reason="PyTorch is optional (the 'bench' extra)")
    rng = np.random.default_rng(5)
    layer = MaxPool2D(kernel, stride) if kind == "max" else AvgPool2D(kernel, stride)
    # Small integers: many windows hold tied maxima.
    x = rng.integers(0, 3, size=(2, 3) + size).astype(np.float64)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    pool = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    tout = pool(tx, layer.kernel_size, layer.stride)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_dout_shape_is_checked(cls):
    layer = cls(2)
    layer.forward(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=r"expected \(1, 2, 2, 2\)"):
        layer.backward(np.zeros((1, 2, 4, 4)))
