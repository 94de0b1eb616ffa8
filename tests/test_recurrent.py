"""RNN and LSTM: gradients against central differences, forward against the documented formulas
and PyTorch, state handling, error messages, and gradient-norm clipping.

Tolerances. Gradient checks run in float64 with ``course_lib.gradcheck`` (h = 1e-5): a correct
gradient agrees to about 1e-8 relative, a wrong term is off by 1e-2 or more, so 1e-6 separates
them. The reference loops below and PyTorch do the same float64 arithmetic in another order,
so they agree with the layers to about 1e-15; 1e-10 leaves room and catches any wrong term.
"""

import math

import numpy as np
import pytest

from course_lib import Parameter
from course_lib.backend import asarray, device_of, gpu_available, gpu_unavailable_reason, to_numpy
from course_lib.gradcheck import check_layer_gradients, numerical_gradient, relative_error
from course_lib.layers import LSTM, RNN, Linear, Sequential
from course_lib.optim import SGD, clip_grad_norm

GRAD_TOL = 1e-6
EXACT = dict(rtol=1e-10, atol=1e-12)

KINDS = ["tanh", "relu", "lstm"]


def make_layer(kind, D, H, rng, bias=True, dtype=np.float64):
    if kind == "lstm":
        return LSTM(D, H, bias=bias, rng=rng, dtype=dtype)
    return RNN(D, H, nonlinearity=kind, bias=bias, rng=rng, dtype=dtype)


def random_sizes(rng, T=None):
    """(N, T, D, H), small enough for finite differences; T = 1 when asked."""
    return (int(rng.integers(1, 5)), int(rng.integers(1, 6)) if T is None else T,
            int(rng.integers(1, 5)), int(rng.integers(1, 6)))


# ---------------------------------------------------------------- independent reference

def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference(kind, layer, x, state=None):
    """The documented recurrences, one sample and one step at a time (no vectorisation).

    Returns out (N, T, H), the final h and, for the LSTM, the final c and every pre-activation
    z_t (N, T, G*H) (for steering ReLU inputs away from the kink).
    """
    W_x, W_h = layer.W_x.data, layer.W_h.data
    b = layer.b.data if layer.b is not None else np.zeros(W_x.shape[1])
    N, T, _ = x.shape
    H = W_h.shape[0]
    out, zs = np.zeros((N, T, H)), np.zeros((N, T, W_x.shape[1]))
    h_last, c_last = np.zeros((N, H)), np.zeros((N, H))
    for n in range(N):
        if kind == "lstm":
            h = np.zeros(H) if state is None else state[0][n]
            c = np.zeros(H) if state is None else state[1][n]
        else:
            h, c = (np.zeros(H) if state is None else state[n]), np.zeros(H)
        for t in range(T):
            z = x[n, t] @ W_x + h @ W_h + b
            zs[n, t] = z
            if kind == "lstm":
                i, f, g, o = (sigmoid(z[:H]), sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]),
                              sigmoid(z[3 * H:]))
                c = f * c + i * g
                h = o * np.tanh(c)
            else:
                h = np.tanh(z) if kind == "tanh" else np.maximum(z, 0)
            out[n, t] = h
        h_last[n], c_last[n] = h, c
    return out, h_last, c_last, zs


def random_state(kind, N, H, rng):
    if kind == "lstm":
        return (rng.standard_normal((N, H)), rng.standard_normal((N, H)))
    return rng.standard_normal((N, H))


def setup(kind, seed, T=None, bias=True, with_state=False):
    """A float64 layer with a non-trivial bias, an input and maybe a state.

    For the ReLU RNN, draws again until every pre-activation is at least 1e-3 away from 0,
    where the derivative jumps and a central difference with h = 1e-5 would straddle the kink.
    """
    rng = np.random.default_rng(seed)
    for _ in range(100):
        N, T_, D, H = random_sizes(rng, T)
        layer = make_layer(kind, D, H, rng, bias=bias)
        x = rng.standard_normal((N, T_, D))
        state = random_state(kind, N, H, rng) if with_state else None
        if kind != "relu" or np.abs(reference(kind, layer, x, state)[3]).min() > 1e-3:
            return layer, x, state, rng
    raise RuntimeError("no ReLU setup away from the kink")


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_gradients_random_shapes(kind, seed):
    layer, x, _, rng = setup(kind, seed)
    check_layer_gradients(layer, x, rng, tol=GRAD_TOL)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_single_step(kind, bias):
    layer, x, _, rng = setup(kind, 10 + bias, T=1, bias=bias)
    assert x.shape[1] == 1
    check_layer_gradients(layer, x, rng, tol=GRAD_TOL)


def check_with_state(layer, x, state, rng):
    """Central differences of L = sum(out * R) w.r.t. x, every parameter and every state array."""
    R = rng.standard_normal(layer(x, state).shape)
    parts = list(state) if isinstance(state, tuple) else [state]

    def loss(_):
        s = tuple(parts) if isinstance(state, tuple) else parts[0]
        return float(np.sum(layer(x, s) * R))

    layer.zero_grad()
    layer(x, state)
    dx = layer.backward(R.copy())
    dstate = list(layer.dstate) if isinstance(state, tuple) else [layer.dstate]
    pairs = [("x", dx, x)] + [(p.name, p.grad.copy(), p.data) for p in layer.parameters()]
    pairs += [(f"state[{k}]", d, s) for k, (d, s) in enumerate(zip(dstate, parts))]
    for name, analytic, at in pairs:
        numeric = numerical_gradient(loss, at)
        assert analytic.shape == numeric.shape, name
        err = relative_error(analytic, numeric).max()
        assert err < GRAD_TOL, f"{type(layer).__name__} gradient of {name}: relative error {err:.2e}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed, T", [(20, 1), (21, None), (22, None)])
def test_gradients_with_initial_state(kind, seed, T):
    layer, x, state, rng = setup(kind, seed, T=T, with_state=True)
    check_with_state(layer, x, state, rng)


def test_initial_state_gradient_of_a_linear_rnn_is_W_h_power():
    """With relu and positive everything, h_T = h0 @ W_h^T + ..., so dL/dh0 = dout_T @ (W_h^T)^T."""
    T, H = 3, 2
    layer = RNN(1, H, nonlinearity="relu", bias=False, dtype=np.float64)
    layer.W_x.data[:] = 1.0
    layer.W_h.data[:] = [[0.5, 0.25], [0.125, 1.0]]
    x, h0 = np.ones((1, T, 1)), np.ones((1, H))
    layer(x, h0)
    dout = np.zeros((1, T, H))
    dout[0, -1] = [1.0, -2.0]
    layer.backward(dout)
    expected = dout[0, -1] @ np.linalg.matrix_power(layer.W_h.data, T).T
    np.testing.assert_allclose(layer.dstate[0], expected, **EXACT)


def test_gradients_accumulate_over_backward_calls():
    layer, x, _, rng = setup("lstm", 30)
    dout = rng.standard_normal(layer(x).shape)
    layer.backward(dout)
    once = [p.grad.copy() for p in layer.parameters()]
    layer(x)
    layer.backward(dout)
    for p, g in zip(layer.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, **EXACT, err_msg=p.name)


# ---------------------------------------------------------------- forward and state

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_forward_matches_the_documented_formulas(kind, with_state):
    layer, x, state, _ = setup(kind, 40, with_state=with_state)
    out = layer(x, state)
    ref_out, h_T, c_T, _ = reference(kind, layer, x, state)
    np.testing.assert_allclose(out, ref_out, **EXACT)
    if kind == "lstm":
        np.testing.assert_allclose(layer.state[0], h_T, **EXACT)
        np.testing.assert_allclose(layer.state[1], c_T, **EXACT)
    else:
        np.testing.assert_allclose(layer.state, h_T, **EXACT)


@pytest.mark.parametrize("kind", KINDS)
def test_state_carries_a_sequence_over(kind):
    """Running x[:, :k] and then x[:, k:] from the kept state equals running x at once."""
    rng = np.random.default_rng(50)
    layer = make_layer(kind, 3, 4, rng)
    x = rng.standard_normal((2, 7, 3))
    whole = layer(x)
    final = layer.state
    first = layer(x[:, :3])
    second = layer(x[:, 3:], layer.state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, **EXACT)
    for a, b in zip(np.atleast_3d(layer.state), np.atleast_3d(final)):
        np.testing.assert_allclose(a, b, **EXACT)


def test_lstm_forget_gate_keeps_the_cell():
    """With f = 1 and i = 0 (large biases) and no weights, c_t = c0 at every step."""
    H = 3
    layer = LSTM(2, H, dtype=np.float64)
    layer.W_x.data[:] = 0
    layer.W_h.data[:] = 0
    layer.b.data[:] = 0
    layer.b.data[:H] = -50.0           # input gate closed
    layer.b.data[H:2 * H] = 50.0       # forget gate open
    layer.b.data[3 * H:] = 50.0        # output gate open
    c0 = np.array([[0.5, -1.0, 2.0]])
    out = layer(np.ones((1, 6, 2)), (np.zeros((1, H)), c0))
    np.testing.assert_allclose(layer.state[1], c0, rtol=1e-12)
    np.testing.assert_allclose(out[0], np.tile(np.tanh(c0), (6, 1)), rtol=1e-12)


def test_parameters_shapes_names_and_initialisation():
    rng = np.random.default_rng(60)
    for layer, G in [(RNN(5, 7, rng=rng), 1), (LSTM(5, 7, rng=rng), 4)]:
        assert [p.name for p in layer.parameters()] == ["W_x", "W_h", "b"]
        assert layer.W_x.shape == (5, 7 * G) and layer.W_h.shape == (7, 7 * G)
        assert layer.b.shape == (7 * G,)
        assert layer.W_x.data.dtype == np.float32
        k = 1 / math.sqrt(7)
        assert np.abs(layer.W_x.data).max() <= k and np.abs(layer.W_h.data).max() <= k
        assert np.abs(layer.b.data).max() <= 2 * k       # the sum of PyTorch's two biases
        assert np.abs(layer.b.data).max() > k / 10       # not zeros
    assert [p.name for p in LSTM(2, 3, bias=False).parameters()] == ["W_x", "W_h"]


@pytest.mark.parametrize("kind", KINDS)
def test_float32_stays_float32(kind):
    rng = np.random.default_rng(61)
    layer = make_layer(kind, 3, 4, rng, dtype=np.float32)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    out = layer(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())


def test_outputs_are_new_arrays():
    """A second forward must not overwrite what the first returned (work arrays are reused)."""
    rng = np.random.default_rng(62)
    for layer in (RNN(3, 4, dtype=np.float64), LSTM(3, 4, dtype=np.float64)):
        x = rng.standard_normal((2, 5, 3))
        out = layer(x)
        kept, state = out.copy(), layer.state
        state_copy = np.array(state, copy=True)
        layer(x + 1)
        np.testing.assert_array_equal(out, kept)
        np.testing.assert_array_equal(np.array(state), state_copy)


def test_a_sequence_model_trains():
    """An RNN and a per-step Linear learn tanh of the running sum of a sequence (with clipping)."""
    rng = np.random.default_rng(63)
    rnn, head = RNN(1, 8, rng=rng, dtype=np.float64), Linear(8, 1, rng=rng, dtype=np.float64)
    opt = SGD(rnn.parameters() + head.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(150):
        x = rng.standard_normal((16, 6, 1))
        y = np.tanh(np.cumsum(x, axis=1))
        h = rnn(x)
        pred = head(h.reshape(-1, 8)).reshape(16, 6, 1)
        losses.append(float(np.mean((pred - y) ** 2)))
        opt.zero_grad()
        dh = head.backward((2 * (pred - y) / y.size).reshape(-1, 1)).reshape(h.shape)
        rnn.backward(dh)
        clip_grad_norm(opt.params, 1.0)
        opt.step()
    assert np.mean(losses[-10:]) < 0.2 * np.mean(losses[:10])


def test_sequential_passes_no_state():
    layer = RNN(3, 4, dtype=np.float64)
    x = np.random.default_rng(64).standard_normal((2, 5, 3))
    np.testing.assert_allclose(Sequential(layer).forward(x), layer(x), **EXACT)


# ---------------------------------------------------------------- PyTorch as a second oracle

# slow: importing torch alone takes several seconds on a 2-core machine.
@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_matches_torch(kind, with_state):
    torch = pytest.importorskip("torch", reason="PyTorch is optional; install it to compare")
    layer, x, state, rng = setup(kind, 70, with_state=with_state)
    N, T, D = x.shape
    H = layer.hidden_size
    if kind == "lstm":
        theirs = torch.nn.LSTM(D, H, batch_first=True, dtype=torch.float64)
    else:
        theirs = torch.nn.RNN(D, H, nonlinearity=kind, batch_first=True, dtype=torch.float64)
    split = rng.uniform(0, 1, size=layer.b.shape)      # any split of b into PyTorch's two biases
    with torch.no_grad():
        theirs.weight_ih_l0.copy_(torch.from_numpy(layer.W_x.data.T))
        theirs.weight_hh_l0.copy_(torch.from_numpy(layer.W_h.data.T))
        theirs.bias_ih_l0.copy_(torch.from_numpy(split * layer.b.data))
        theirs.bias_hh_l0.copy_(torch.from_numpy((1 - split) * layer.b.data))
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    parts = [] if state is None else (list(state) if kind == "lstm" else [state])
    tstate = [torch.from_numpy(s[None].copy()).requires_grad_(True) for s in parts]
    if not tstate:
        tout, tfinal = theirs(tx)
    else:
        tout, tfinal = theirs(tx, tuple(tstate) if kind == "lstm" else tstate[0])
    dout = rng.standard_normal(tout.shape)
    tout.backward(torch.from_numpy(dout))

    out = layer(x, state)
    dx = layer.backward(dout)
    np.testing.assert_allclose(out, tout.detach().numpy(), **EXACT)
    finals = layer.state if kind == "lstm" else (layer.state,)
    tfinals = tfinal if kind == "lstm" else (tfinal,)
    for ours, t in zip(finals, tfinals):
        np.testing.assert_allclose(ours, t.detach().numpy()[0], **EXACT)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **EXACT)
    np.testing.assert_allclose(layer.W_x.grad, theirs.weight_ih_l0.grad.numpy().T, **EXACT)
    np.testing.assert_allclose(layer.W_h.grad, theirs.weight_hh_l0.grad.numpy().T, **EXACT)
    np.testing.assert_allclose(layer.b.grad, theirs.bias_ih_l0.grad.numpy(), **EXACT)
    np.testing.assert_allclose(layer.b.grad, theirs.bias_hh_l0.grad.numpy(), **EXACT)
    ds = list(layer.dstate) if kind == "lstm" else [layer.dstate]
    for ours, t in zip(ds if tstate else [], tstate):
        np.testing.assert_allclose(ours, t.grad.numpy()[0], **EXACT)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("make", [lambda: RNN(3, 4), lambda: LSTM(3, 4)])
def test_bad_input_is_named(make):
    layer = make()
    x = np.zeros((2, 5, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\(N, T, input_size\).*shape \(5, 3\)"):
        layer(x[0])
    with pytest.raises(ValueError, match="3 features.*shape \\(2, 5, 4\\)"):
        layer(np.zeros((2, 5, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        layer(np.zeros((2, 5, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="at least one sequence and one time step"):
        layer(np.zeros((2, 0, 3), dtype=np.float32))
    with pytest.raises(RuntimeError, match="forward call first"):
        layer.backward(np.zeros((2, 5, 4), dtype=np.float32))
    layer(x)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 4, 4\), expected \(2, 5, 4\)"):
        layer.backward(np.zeros((2, 4, 4), dtype=np.float32))


def test_bad_rnn_state_is_named():
    layer, x = RNN(3, 4), np.zeros((2, 5, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\(N, hidden_size\) = \(2, 4\).*got \(2, 5\)"):
        layer(x, np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"got \(4,\)"):
        layer(x, np.zeros(4, dtype=np.float32))
    with pytest.raises(TypeError, match="must be an array"):
        layer(x, [[0.0] * 4] * 2)
    with pytest.raises(TypeError, match="floating point"):
        layer(x, np.zeros((2, 4), dtype=np.int32))


def test_bad_lstm_state_is_named():
    layer, x = LSTM(3, 4), np.zeros((2, 5, 3), dtype=np.float32)
    h = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(TypeError, match=r"pair \(h0, c0\)"):
        layer(x, h)
    with pytest.raises(TypeError, match=r"pair \(h0, c0\)"):
        layer(x, (h, h, h))
    with pytest.raises(ValueError, match=r"c0 must have shape .*got \(1, 4\)"):
        layer(x, (h, h[:1]))
    with pytest.raises(ValueError, match=r"h0 must have shape .*got \(2, 3\)"):
        layer(x, (h[:, :3], h))


def test_bad_construction_is_named():
    with pytest.raises(ValueError, match="'tanh' or 'relu'"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="positive sizes"):
        LSTM(0, 4)
    with pytest.raises(ValueError, match="positive sizes"):
        RNN(3, 0)
    assert repr(RNN(3, 4, nonlinearity="relu")) == "RNN(3, 4, nonlinearity='relu', bias=True)"
    assert repr(LSTM(3, 4, bias=False)) == "LSTM(3, 4, bias=False)"


# ---------------------------------------------------------------- clip_grad_norm

def random_grads(rng, scale=1.0):
    return [rng.standard_normal(s) * scale for s in [(3, 4), (5,), (2, 1, 3)]]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_follows_the_definition(norm_type):
    rng = np.random.default_rng(80)
    grads = random_grads(rng, scale=3.0)
    before = [g.copy() for g in grads]
    joined = np.concatenate([g.ravel() for g in before])
    if norm_type == math.inf:
        total = np.abs(joined).max()
    else:
        total = np.sum(np.abs(joined) ** norm_type) ** (1 / norm_type)
    max_norm = total / 4
    returned = clip_grad_norm(grads, max_norm, norm_type=norm_type)
    assert returned == pytest.approx(total, rel=1e-12)
    coef = max_norm / (total + 1e-6)
    for g, b in zip(grads, before):
        np.testing.assert_allclose(g, b * coef, rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients_alone():
    rng = np.random.default_rng(81)
    grads = random_grads(rng)
    before = [g.copy() for g in grads]
    total = np.sqrt(sum(np.sum(g * g) for g in before))
    assert clip_grad_norm(grads, total + 1e-3) == pytest.approx(total, rel=1e-12)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)
    # Just at the limit the 1e-6 still scales a little, as in PyTorch.
    clip_grad_norm(grads, total)
    np.testing.assert_allclose(grads[0], before[0] * total / (total + 1e-6), rtol=1e-12)


def test_clip_grad_norm_on_parameters_and_a_single_array():
    rng = np.random.default_rng(82)
    params = [Parameter(np.zeros(s)) for s in [(3, 4), (5,)]]
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape) * 10
    clip_grad_norm(params, 1.0)
    assert np.sqrt(sum(np.sum(p.grad ** 2) for p in params)) == pytest.approx(1.0, rel=1e-5)
    assert all(not p.data.any() for p in params)            # only the gradients change
    single = rng.standard_normal(7) * 10
    total = clip_grad_norm(single, 2.0)
    assert total > 2.0 and np.linalg.norm(single) == pytest.approx(2.0, rel=1e-5)
    assert clip_grad_norm([], 1.0) == 0.0
    zeros = [np.zeros(3)]
    assert clip_grad_norm(zeros, 0.0) == 0.0 and not zeros[0].any()


def test_clip_grad_norm_non_finite():
    grads = [np.array([1.0, np.nan]), np.array([2.0])]
    assert math.isnan(clip_grad_norm(grads, 1.0))
    assert np.isnan(grads[1]).all()                         # as PyTorch: NaN spreads
    with pytest.raises(ValueError, match="NaN or inf"):
        clip_grad_norm([np.array([np.inf])], 1.0, error_if_nonfinite=True)
    grads = [np.array([1.0, np.inf]), np.array([2.0])]
    with pytest.warns(RuntimeWarning, match="invalid value"):      # inf * 0, NumPy says so
        assert clip_grad_norm(grads, 1.0, norm_type=math.inf) == math.inf
    assert grads[1][0] == 0 and np.isnan(grads[0][1])        # scaled by 1 / inf = 0, as PyTorch


def test_clip_grad_norm_bad_arguments():
    g = [np.ones(3)]
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm(g, -1.0)
    with pytest.raises(ValueError, match="norm_type must be >= 1"):
        clip_grad_norm(g, 1.0, norm_type=0.5)
    with pytest.raises(TypeError, match="item 1 is a str"):
        clip_grad_norm([np.ones(2), "grad"], 1.0)
    with pytest.raises(TypeError, match="item 0 is a ndarray"):
        clip_grad_norm([np.ones(2, dtype=int)], 1.0)
    with pytest.raises(TypeError, match="got int"):
        clip_grad_norm(3, 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("norm_type, max_norm", [(2.0, 0.5), (1.0, 3.0), (math.inf, 0.2), (2.0, 100.0)])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch", reason="PyTorch is optional; install it to compare")
    rng = np.random.default_rng(83)
    grads = random_grads(rng)
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g.copy())
    theirs = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=norm_type))
    ours = clip_grad_norm(grads, max_norm, norm_type=norm_type)
    assert ours == pytest.approx(theirs, rel=1e-12)
    for t, g in zip(tensors, grads):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- GPU

needs_gpu = pytest.mark.skipif(not gpu_available(), reason=str(gpu_unavailable_reason()))


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_gpu_matches_cpu(kind, with_state):
    """The same layer on CuPy and NumPy, float32; sums in another order move results by ~1e-6."""
    rng = np.random.default_rng(90)
    cpu = make_layer(kind, 6, 16, np.random.default_rng(1), dtype=np.float32)
    dev = make_layer(kind, 6, 16, np.random.default_rng(1), dtype=np.float32).to("gpu")
    x = rng.standard_normal((5, 9, 6)).astype(np.float32)
    state = random_state(kind, 5, 16, rng) if with_state else None
    if state is not None:
        state = (tuple(s.astype(np.float32) for s in state) if kind == "lstm"
                 else state.astype(np.float32))
    dstate = None if state is None else (tuple(asarray(s, device="gpu") for s in state)
                                         if kind == "lstm" else asarray(state, device="gpu"))
    out_c, out_g = cpu(x, state), dev(asarray(x, device="gpu"), dstate)
    assert device_of(out_g) == "gpu"
    dout = rng.standard_normal(out_c.shape).astype(np.float32)
    dx_c, dx_g = cpu.backward(dout), dev.backward(asarray(dout, device="gpu"))
    tol = dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(out_g), out_c, **tol)
    np.testing.assert_allclose(to_numpy(dx_g), dx_c, **tol)
    for p_c, p_g in zip(cpu.parameters(), dev.parameters()):
        assert device_of(p_g.grad) == "gpu"
        np.testing.assert_allclose(to_numpy(p_g.grad), p_c.grad, **tol, err_msg=p_c.name)
    pairs = list(zip(cpu.state, dev.state)) if kind == "lstm" else [(cpu.state, dev.state)]
    if state is not None:
        pairs += (list(zip(cpu.dstate, dev.dstate)) if kind == "lstm"
                  else [(cpu.dstate, dev.dstate)])
    for a, b in pairs:
        assert device_of(b) == "gpu"
        np.testing.assert_allclose(to_numpy(b), a, **tol)


@pytest.mark.gpu
@needs_gpu
def test_gpu_device_mix_is_named():
    layer = LSTM(3, 4).to("gpu")
    x = np.zeros((2, 5, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="different devices"):
        layer(x)
    h = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(TypeError, match="different devices"):
        layer(asarray(x, device="gpu"), (h, h))


@pytest.mark.gpu
@needs_gpu
def test_gpu_clip_grad_norm():
    rng = np.random.default_rng(91)
    grads = random_grads(rng, scale=3.0)
    on_gpu = [asarray(g, device="gpu") for g in grads]
    total_c, total_g = clip_grad_norm(grads, 1.0), clip_grad_norm(on_gpu, 1.0)
    assert total_g == pytest.approx(total_c, rel=1e-12)
    for a, b in zip(grads, on_gpu):
        assert device_of(b) == "gpu"
        np.testing.assert_allclose(to_numpy(b), a, rtol=1e-12)
