"""Conv2D against the plain-loop reference, central differences, shape rules and PyTorch.

Oracles, none of them the code under test:
- a hand-computed cross-correlation (which also tells it from a flipped-kernel convolution);
- ``conv2d_naive``, the formula written as four loops, for the fast im2col layer;
- central differences in float64 for every gradient (``course_lib.gradcheck``);
- PyTorch's ``conv2d``, when it is installed.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.gradcheck import check_layer_gradients
from course_lib.layers import Conv2D, conv2d_naive, conv_output_size


def random_config(rng, max_size=8):
    """A random valid convolution: sizes all drawn independently, kernels may be non-square."""
    while True:
        N, C, F = (int(v) for v in rng.integers(1, 4, size=3))
        H, W = (int(v) for v in rng.integers(1, max_size + 1, size=2))
        kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
        try:
            conv_output_size(H, kh, sh, ph)
            conv_output_size(W, kw, sw, pw)
        except ValueError:
            continue
        return dict(N=N, C=C, F=F, H=H, W=W, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw))


def make_layer(cfg, rng, dtype=np.float64):
    layer = Conv2D(cfg["C"], cfg["F"], cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                   rng=rng, dtype=dtype)
    layer.b.data[:] = rng.standard_normal(cfg["F"])      # non-zero, so a dropped bias shows
    return layer


# ---------------------------------------------------------------- the reference

def test_naive_is_cross_correlation_on_a_hand_example():
    x = np.arange(9.0).reshape(1, 1, 3, 3)               # rows 0 1 2 / 3 4 5 / 6 7 8
    W = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])          # top-left minus bottom-right
    out = conv2d_naive(x, W, np.array([0.5]))
    # x[i, j] - x[i+1, j+1] = -4 everywhere; a flipped kernel would give +4.
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), -4.0 + 0.5))


def test_naive_padding_and_stride_on_a_hand_example():
    x = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)          # 1 2 / 3 4
    W = np.ones((1, 1, 2, 2))
    out = conv2d_naive(x, W, None, stride=2, padding=1)
    # Zero-padded to 4x4; the 2x2 windows at stride 2 each contain one pixel.
    np.testing.assert_array_equal(out, [[[[1.0, 2.0], [3.0, 4.0]]]])


# ---------------------------------------------------------------- fast == reference

@pytest.mark.parametrize("seed", range(20))
def test_fast_forward_equals_naive(seed):
    rng = np.random.default_rng(seed)
    cfg = random_config(rng)
    layer = make_layer(cfg, rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    expected = conv2d_naive(x, layer.W.data, layer.b.data, cfg["stride"], cfg["padding"])
    out = layer.forward(x)
    assert out.shape == expected.shape
    # Same float64 products summed in a different order: agreement to ~1e-15 relative.
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_forward_keeps_float32_and_matches_naive():
    rng = np.random.default_rng(3)
    layer = Conv2D(3, 5, 3, padding=1, rng=rng)
    x = rng.standard_normal((2, 3, 6, 7), dtype=np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    expected = conv2d_naive(x.astype(np.float64), layer.W.data.astype(np.float64),
                            layer.b.data.astype(np.float64), 1, 1)
    # float32 sums of 27 products of O(1) terms: errors ~1e-6.
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_without_bias():
    rng = np.random.default_rng(4)
    layer = Conv2D(2, 3, (2, 3), bias=False, rng=rng, dtype=np.float64)
    assert layer.b is None and len(layer.parameters()) == 1
    x = rng.standard_normal((2, 2, 5, 5))
    np.testing.assert_allclose(layer.forward(x), conv2d_naive(x, layer.W.data), rtol=1e-12, atol=1e-12)
    check_layer_gradients(layer, x)


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("seed", range(10))
def test_gradients_match_central_differences(seed):
    rng = np.random.default_rng(100 + seed)
    cfg = random_config(rng, max_size=7)
    if seed == 0:
        cfg.update(N=1)                                   # batch size 1 included
    if seed == 1:
        cfg.update(H=7, W=6, kernel=(3, 2), stride=(2, 1), padding=(1, 0))  # non-square, stride 2
    layer = make_layer(cfg, rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    # A correct gradient agrees to ~1e-8 relative in float64 (see course_lib.gradcheck);
    # a wrong one is off by far more than the 1e-6 tolerance.
    check_layer_gradients(layer, x, rng=rng, tol=1e-6)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("stride, padding", [(1, 1), ((2, 1), (1, 0))])
def test_both_work_array_layouts(C, stride, padding):
    """One input channel stores work arrays as (..., N, H, W), several as (..., H, W, N);
    both must give the reference output and the finite-difference gradients."""
    rng = np.random.default_rng(40 + C)
    layer = Conv2D(C, 2, 3, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.b.data[:] = rng.standard_normal(2)
    x = rng.standard_normal((3, C, 7, 6))
    expected = conv2d_naive(x, layer.W.data, layer.b.data, stride, padding)
    # Same float64 products summed in a different order: agreement to ~1e-15 relative.
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    # Correct gradients agree to ~1e-8 relative in float64; wrong ones miss 1e-6 by far.
    check_layer_gradients(layer, x, rng=rng, tol=1e-6)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("per_chunk, sizes", [(1, [1] * 7), (3, [3, 3, 1]), (100, [7])])
def test_batch_processed_in_chunks(C, per_chunk, sizes):
    """A batch split into chunks (the last one smaller) gives the reference output and
    the finite-difference gradients; with several chunks, the backward pass rebuilds
    each chunk's columns, with one it reuses the forward's."""
    rng = np.random.default_rng(60 + C)
    layer = Conv2D(C, 2, 3, padding=1, rng=rng, dtype=np.float64)
    layer.b.data[:] = rng.standard_normal(2)
    x = rng.standard_normal((7, C, 7, 6))
    per_sample = C * 3 * 3 * 7 * 6 * x.itemsize             # bytes of one sample's columns
    layer.chunk_bytes = per_chunk * per_sample
    assert [n for _, n in layer._chunks(x)] == sizes
    expected = conv2d_naive(x, layer.W.data, layer.b.data, 1, 1)
    # Same float64 products summed in a different order: agreement to ~1e-15 relative.
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    # Correct gradients agree to ~1e-8 relative in float64; wrong ones miss 1e-6 by far.
    check_layer_gradients(layer, x, rng=rng, tol=1e-6)


def test_overlapping_windows_gradient():
    """Stride 1 with a 3x3 kernel: every pixel is in up to 9 windows, so col2im must add."""
    rng = np.random.default_rng(7)
    layer = Conv2D(2, 3, 3, stride=1, padding=2, rng=rng, dtype=np.float64)
    check_layer_gradients(layer, rng.standard_normal((2, 2, 4, 5)), rng=rng)


def test_backward_accumulates_into_grad():
    rng = np.random.default_rng(8)
    layer = Conv2D(2, 2, 2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 2, 3, 3))
    dout = rng.standard_normal((2, 2, 2, 2))
    layer.forward(x)
    layer.backward(dout)
    first = (layer.W.grad.copy(), layer.b.grad.copy())
    layer.backward(dout)
    np.testing.assert_allclose(layer.W.grad, 2 * first[0])
    np.testing.assert_allclose(layer.b.grad, 2 * first[1])


# ---------------------------------------------------------------- shape rules (Hypothesis)

@settings(max_examples=200, deadline=None)
@given(H=st.integers(1, 40), k=st.integers(1, 9), s=st.integers(1, 5), p=st.integers(0, 4))
def test_output_size_formula(H, k, s, p):
    padded = H + 2 * p
    if k > padded or (padded - k) % s > p:
        # Kernel too large, or real input rows would be skipped: refused.
        with pytest.raises(ValueError):
            conv_output_size(H, k, s, p)
    else:
        assert conv_output_size(H, k, s, p) == math.floor((H + 2 * p - k) / s) + 1


@settings(max_examples=25, deadline=None)
@given(H=st.integers(1, 9), W=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2))
def test_forward_shape_follows_formula(H, W, kh, kw, sh, sw, ph, pw):
    try:
        H_out = conv_output_size(H, kh, sh, ph)
        W_out = conv_output_size(W, kw, sw, pw)
    except ValueError:
        return
    layer = Conv2D(2, 3, (kh, kw), stride=(sh, sw), padding=(ph, pw))
    out = layer.forward(np.zeros((2, 2, H, W), dtype=np.float32))
    assert out.shape == (2, 3, (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1)
    assert out.shape == (2, 3, H_out, W_out)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dy=st.integers(0, 3), dx=st.integers(0, 3),
       kh=st.integers(1, 3), kw=st.integers(1, 3))
def test_shift_equivariance(seed, dy, dx, kh, kw):
    """Shifting the input by (dy, dx) shifts the output by (dy, dx), away from the borders."""
    rng = np.random.default_rng(seed)
    H, W = 9, 8
    x = rng.standard_normal((1, 2, H, W))
    layer = Conv2D(2, 3, (kh, kw), rng=rng, dtype=np.float64)
    out = layer.forward(x)
    out_shifted = layer.forward(np.roll(x, (dy, dx), axis=(2, 3)))
    H_out, W_out = out.shape[2:]
    # Outputs whose window did not reach the rows/columns that wrapped around.
    np.testing.assert_allclose(out_shifted[:, :, dy:, dx:], out[:, :, :H_out - dy, :W_out - dx],
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- bad input

def test_channel_mismatch_is_explained():
    layer = Conv2D(3, 4, 3)
    with pytest.raises(ValueError, match="3 input channels"):
        layer.forward(np.zeros((2, 4, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="NCHW"):
        layer.forward(np.zeros((2, 8, 8, 3), dtype=np.float32))   # NHWC by mistake


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match="kernel covers 5 rows"):
        Conv2D(1, 1, 5, padding=1).forward(np.zeros((1, 1, 2, 9), dtype=np.float32))


def test_dropping_pixels_is_refused_with_the_rows_named():
    layer = Conv2D(1, 1, 3, stride=2)
    # (8 - 3) % 2 = 1: row 7 (and column 7) would never be seen.
    with pytest.raises(ValueError, match=r"row 7 of the input.*PyTorch floors"):
        layer.forward(np.zeros((1, 1, 8, 9), dtype=np.float32))
    # Rows: (9 - 3) % 3 = 0 is fine; columns: (9 - 1) % 3 = 2 loses columns 7 and 8.
    with pytest.raises(ValueError, match=r"columns 7\.\.8"):
        Conv2D(1, 1, (3, 1), stride=3).forward(np.zeros((1, 1, 9, 9), dtype=np.float32))


def test_flooring_into_padding_only_is_allowed():
    # 3x3, stride 2, padding 1 on an even size: only the last padding column is skipped.
    out = Conv2D(1, 1, 3, stride=2, padding=1).forward(np.zeros((1, 1, 8, 8), dtype=np.float32))
    assert out.shape == (1, 1, 4, 4)


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 4)), np.zeros((1, 2, 3, 4, 5))])
def test_wrong_rank(bad):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        Conv2D(3, 1, 1).forward(bad)


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        Conv2D(1, 1, 1).forward(np.zeros((1, 1, 2, 2), dtype=np.int64))


@pytest.mark.parametrize("kwargs, error", [
    (dict(kernel_size=0), ValueError), (dict(kernel_size=(2, 0)), ValueError),
    (dict(kernel_size=2.5), TypeError), (dict(kernel_size=(1, 2, 3)), TypeError),
    (dict(kernel_size=2, stride=0), ValueError), (dict(kernel_size=2, padding=-1), ValueError),
])
def test_bad_hyperparameters(kwargs, error):
    with pytest.raises(error):
        Conv2D(1, 1, **kwargs)


# ---------------------------------------------------------------- initialisation

def test_he_uniform_init_uses_conv_fans():
    layer = Conv2D(16, 32, (3, 5), rng=np.random.default_rng(0))
    bound = math.sqrt(6 / (16 * 3 * 5))                  # fan_in = C * kh * kw
    W = layer.W.data
    assert W.shape == (32, 16, 3, 5) and W.dtype == np.float32
    assert np.abs(W).max() <= bound
    # 7680 draws of U(-a, a): the std a/sqrt(3) is matched within a few percent.
    assert abs(W.std() / (bound / math.sqrt(3)) - 1) < 0.05
    np.testing.assert_array_equal(layer.b.data, 0)
    np.testing.assert_array_equal(W, Conv2D(16, 32, (3, 5), rng=np.random.default_rng(0)).W.data)


def test_other_initialisers():
    assert np.all(Conv2D(2, 3, 2, init="zeros").W.data == 0)
    W = Conv2D(8, 16, 3, init="normal").W.data
    assert 0.005 < W.std() < 0.02                         # normal() draws N(0, 0.01^2)


# ---------------------------------------------------------------- PyTorch as the oracle

torch_configs = [
    dict(N=2, C=3, F=4, H=7, W=9, kernel=(3, 2), stride=(2, 1), padding=(1, 0)),
    dict(N=1, C=2, F=3, H=8, W=8, kernel=3, stride=2, padding=1),
    dict(N=3, C=1, F=2, H=6, W=5, kernel=(1, 3), stride=1, padding=(2, 1)),
    dict(N=2, C=16, F=8, H=12, W=12, kernel=5, stride=1, padding=2),
]


@pytest.mark.slow
@pytest.mark.parametrize("cfg", torch_configs)
def test_against_pytorch(cfg):
    torch = pytest.importorskip("torch", reason="PyTorch is optional (the 'bench' extra)")
    rng = np.random.default_rng(11)
    layer = Conv2D(cfg["C"], cfg["F"], cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                   rng=rng, dtype=np.float64)
    layer.b.data[:] = rng.standard_normal(cfg["F"])
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)

    tx = torch.tensor(x, requires_grad=True)
    tW = torch.tensor(layer.W.data, requires_grad=True)
    tb = torch.tensor(layer.b.data, requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tW, tb, stride=cfg["stride"], padding=cfg["padding"])
    tout.backward(torch.tensor(dout))
    # Both in float64, summing the same products in different orders.
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.W.grad, tW.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.b.grad, tb.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.slow
def test_against_pytorch_float32():
    torch = pytest.importorskip("torch", reason="PyTorch is optional (the 'bench' extra)")
    rng = np.random.default_rng(12)
    layer = Conv2D(16, 32, 3, padding=1, rng=rng)
    x = rng.standard_normal((8, 16, 14, 14), dtype=np.float32)
    out = layer.forward(x)
    tout = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(layer.W.data),
                                      torch.from_numpy(layer.b.data), padding=1)
    # float32 sums of 144 products of O(1) terms: differences of ~1e-6 relative to the scale.
    np.testing.assert_allclose(out, tout.numpy(), rtol=1e-4, atol=1e-5)


def test_results_are_new_arrays_not_work_arrays():
    """Outputs must survive the next call (the layer reuses its internal work arrays)."""
    rng = np.random.default_rng(13)
    layer = Conv2D(1, 2, 3, rng=rng, dtype=np.float64)     # C = 1, N = 1, no padding
    x1, x2 = rng.standard_normal((2, 1, 1, 5, 5))
    out1 = layer.forward(x1)
    dx1 = layer.backward(np.ones_like(out1))
    kept = out1.copy(), dx1.copy()
    layer.forward(x2)
    layer.backward(2 * np.ones_like(out1))
    np.testing.assert_array_equal(out1, kept[0])
    np.testing.assert_array_equal(dx1, kept[1])


def test_dout_shape_is_checked():
    layer = Conv2D(1, 2, 3)
    layer.forward(np.zeros((2, 1, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected \(2, 2, 3, 3\)"):
        layer.backward(np.zeros((2, 2, 5, 5), dtype=np.float32))


def test_workspace_reuses_only_matching_arrays():
    from course_lib.layers.workspace import Workspace
    ws = Workspace()
    a = ws.get("cols", (2, 3), np.float32, np)
    assert a.shape == (2, 3) and not a.any()
    assert ws.get("cols", (2, 3), np.float32, np) is a
    assert ws.get("cols", (3, 2), np.float32, np) is not a
    b = ws.get("cols", (3, 2), np.float32, np)
    assert ws.get("cols", (3, 2), np.float64, np) is not b
    ws.clear()
    assert ws.get("cols", (2, 3), np.float32, np) is not a
