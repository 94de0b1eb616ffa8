"""Recurrent layers: a simple (Elman) RNN and an LSTM over batch-first sequences.

Both follow the formulas PyTorch documents for ``nn.RNN`` and ``nn.LSTM``
(one layer, ``batch_first=True``) and give the same numbers for the same
weights. The weights are stored the way the formula reads, as in ``Linear``:

    z_t = x_t @ W_x + h_{t-1} @ W_h + b        x_t (N, D), h_{t-1} (N, H), z_t (N, G*H)

with G = 1 for the RNN and G = 4 for the LSTM, whose four gate blocks are in
PyTorch's order i, f, g, o. PyTorch's ``weight_ih_l0`` is ``W_x.T``, its
``weight_hh_l0`` is ``W_h.T``, and its two bias vectors enter only through
their sum ``b = bias_ih_l0 + bias_hh_l0``.

The same weights act at every time step, so the network unrolled over T steps
is an ordinary deep network whose layers share parameters; ``backward`` is
backpropagation through that unrolled network (backpropagation through time),
summing each parameter's gradient over the steps and carrying the gradient
back into the initial state.

Only the recurrence itself runs in a Python loop over time. Each step is one
matrix product of the stacked row ``[x_t, h_{t-1}, 1]`` with the stacked
weights ``[W_x; W_h; b]`` (the notes' ``theta . [x_t; h_{t-1}] + b``), so the
bias costs no extra pass. Forward writes h_t straight into the next step's
row, and the rows of all steps together are what backward needs for the
parameter gradients: after the loop, one product per gate block gives its
columns of dW_x, dW_h and db summed over every step, and one more its share
of dx. The arrays are time-major (T, N, ...), and the LSTM keeps its gates
gate-major (4, T, N, H), so that every element-wise operation inside the loop
runs over one contiguous block (NumPy pays per contiguous run: the same
operation on the gate columns of an (N, 4H) array costs several times more).
"""

import math

import numpy as np

from ..backend import asarray, get_array_module
from ..parameter import Parameter
from .base import Layer, check_dout, check_input
from .workspace import Workspace


class _Recurrent(Layer):
    """Parameters, input and state checks shared by RNN and LSTM (``G`` gate blocks of width H)."""

    G = 1

    def __init__(self, input_size, hidden_size, bias, rng, dtype):
        super().__init__()
        name = type(self).__name__
        if int(input_size) < 1 or int(hidden_size) < 1:
            raise ValueError(f"{name} needs positive sizes, got input_size={input_size}, "
                             f"hidden_size={hidden_size}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        D, H, GH = self.input_size, self.hidden_size, self.G * self.hidden_size
        rng = rng if rng is not None else np.random.default_rng(0)
        # PyTorch's initialisation: every weight and each of its two biases ~ U(-1/sqrt(H), 1/sqrt(H)).
        k = 1.0 / math.sqrt(H)
        W_x = rng.uniform(-k, k, size=(D, GH))
        W_h = rng.uniform(-k, k, size=(H, GH))
        self.W_x = Parameter(asarray(W_x, dtype=dtype), name="W_x")   # on the default device
        self.W_h = Parameter(asarray(W_h, dtype=dtype), name="W_h")
        if bias:
            b = rng.uniform(-k, k, size=GH) + rng.uniform(-k, k, size=GH)   # b_ih + b_hh
            self.b = Parameter(asarray(b, dtype=dtype), name="b")
        else:
            self.b = None
        self.state = None      # the final state of the last forward
        self.dstate = None     # the gradient of the initial state, from the last backward
        self._work = Workspace()

    def __call__(self, x, state=None):
        return self.forward(x, state)

    def _check_x(self, x):
        """``x`` (N, T, D) on the parameters' device; returns the array module."""
        check_input(x, 3, type(self).__name__, "(N, T, input_size)", features=self.input_size)
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"{type(self).__name__} needs at least one sequence and one time step, "
                             f"got input of shape {tuple(x.shape)}")
        return get_array_module(x, self.W_x.data)   # a clear error when x and W are on two devices

    def _check_h(self, h, N, what):
        """One state array (N, H), floating point, on the parameters' device."""
        name = type(self).__name__
        if not hasattr(h, "shape") or not hasattr(h, "dtype"):
            raise TypeError(f"{name}: {what} must be an array of shape ({N}, {self.hidden_size}), "
                            f"got {type(h).__name__}")
        if tuple(h.shape) != (N, self.hidden_size):
            raise ValueError(f"{name}: {what} must have shape (N, hidden_size) = ({N}, "
                             f"{self.hidden_size}) for an input of {N} sequences, got {tuple(h.shape)}")
        if h.dtype.kind not in "fc":
            raise TypeError(f"{name}: {what} must be floating point, got dtype {h.dtype}")
        get_array_module(h, self.W_x.data)

    def _stacked_rows(self, x, h0, xp):
        """The buffer ``xh`` (T+1, N, D+H+1) of rows ``[x_t, h_{t-1}, 1]``, h0 and x filled in.

        Step t multiplies ``xh[t]`` by the stacked weights, and writes h_t into
        ``xh[t + 1, :, D:D+H]``; ``xh[T]`` then holds h_T (its x part is unused).
        Without a bias the column of ones is left out.
        """
        N, T, D = x.shape
        H = self.hidden_size
        dtype = xp.result_type(x.dtype, self.W_x.data.dtype)
        xh = self._work.get("xh", (T + 1, N, D + H + (self.b is not None)), dtype, xp)
        xh[:T, :, :D] = x.transpose(1, 0, 2)
        xh[0, :, D:D + H] = 0 if h0 is None else h0
        if self.b is not None:
            xh[:, :, -1] = 1
        return xh

    def _stacked_weights(self, xp):
        """``[W_x; W_h; b]`` (D+H+1, G*H), so that ``[x_t, h_{t-1}, 1] @ it = z_t``."""
        blocks = [self.W_x.data, self.W_h.data]
        if self.b is not None:
            blocks.append(self.b.data[None, :])
        return xp.concatenate(blocks, axis=0)

    def _outputs(self, xh, xp):
        """``out`` (N, T, H), a new array, from the h_t written into the stacked rows."""
        D, H = self.input_size, self.hidden_size
        return xp.ascontiguousarray(xh[1:, :, D:D + H].transpose(1, 0, 2))

    def _cached(self, dout):
        """The forward's cache, once ``dout`` is checked to be (N, T, H) on the same device."""
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a forward call first")
        xh = self.cache[0]
        T, N = xh.shape[0] - 1, xh.shape[1]
        check_dout(self, dout, (N, T, self.hidden_size))
        get_array_module(dout, xh)
        return self.cache

    def _param_grads(self, xh, dz, xp):
        """Add each parameter's gradient, summed over all steps, and return dx (N, T, D).

        ``xh`` holds the rows [x_t, h_{t-1}, 1] of forward; ``dz`` (G, T, N, H) holds
        dL/dz_t gate by gate. One product per gate block j gives its columns of all
        three gradients at once::

            [dW_x; dW_h; db][:, block j] = sum_t [x_t, h_{t-1}, 1].T @ dz_t[block j]
            dx_t = dz_t @ W_x.T = sum_j dz_t[block j] @ W_x[:, block j].T
        """
        T, N, K = xh.shape[0] - 1, xh.shape[1], xh.shape[2]
        D, H = self.input_size, self.hidden_size
        rows = xh[:T].reshape(T * N, K)
        dx = xp.zeros((T * N, D), dtype=dz.dtype)
        for j in range(self.G):
            cols = slice(j * H, (j + 1) * H)
            dz_j = dz[j].reshape(T * N, H)
            grads = rows.T @ dz_j
            self.W_x.grad[:, cols] += grads[:D]
            self.W_h.grad[:, cols] += grads[D:D + H]
            if self.b is not None:
                self.b.grad[cols] += grads[-1]
            dx += dz_j @ self.W_x.data[:, cols].T
        return xp.ascontiguousarray(dx.reshape(T, N, D).transpose(1, 0, 2))

    def _repr_extra(self):
        return ""

    def __repr__(self):
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}{self._repr_extra()}, "
                f"bias={self.b is not None})")


class RNN(_Recurrent):
    """A simple recurrent layer, ``torch.nn.RNN`` with one layer and ``batch_first=True``.

    For t = 1..T::

        h_t = act(x_t @ W_x + h_{t-1} @ W_h + b)        act = tanh or relu

    Shapes: ``x`` (N, T, D) with D = input_size; ``out`` (N, T, H) holds h_1..h_T;
    ``W_x`` (D, H), ``W_h`` (H, H), ``b`` (H,); the state ``h0`` is (N, H),
    zeros when not given.

    After ``forward``, ``self.state`` is the final hidden state h_T (N, H)
    (equal to ``out[:, -1]``); pass it as ``state`` to continue a sequence.
    After ``backward``, ``self.dstate`` is dL/dh0 (N, H).

    Backward (backpropagation through time), with ``a_t = act'(z_t)``, which
    is ``1 - h_t**2`` for tanh and ``[h_t > 0]`` for relu, from t = T down to 1::

        dh_t  = dout[:, t] + dz_{t+1} @ W_h.T       (the second term 0 at t = T)
        dz_t  = dh_t * a_t
        dW_x += x_t.T @ dz_t;  dW_h += h_{t-1}.T @ dz_t;  db += dz_t.sum(0)
        dx_t  = dz_t @ W_x.T;  dh0 = dz_1 @ W_h.T

    Args:
        input_size: D.
        hidden_size: H.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        bias: whether to add ``b``.
        rng: ``numpy.random.Generator`` for the initial weights (default: seeded with 0).
            Every weight starts as U(-1/sqrt(H), 1/sqrt(H)) and ``b`` as the sum of
            two such draws, as PyTorch initialises its two bias vectors.
        dtype: parameter dtype (float32 for speed, float64 for gradient checks).
    """

    def __init__(self, input_size, hidden_size, nonlinearity="tanh", bias=True, rng=None,
                 dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, rng, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, x, state=None):
        xp = self._check_x(x)
        N, T, D = x.shape
        H = self.hidden_size
        if state is not None:
            self._check_h(state, N, "state (h0)")
        xh = self._stacked_rows(x, state, xp)
        W = self._stacked_weights(xp)
        z = self._work.get("z", (N, H), xh.dtype, xp)
        for t in range(T):
            xp.matmul(xh[t], W, out=z)                # x_t @ W_x + h_{t-1} @ W_h + b
            if self.nonlinearity == "tanh":
                xp.tanh(z, out=xh[t + 1, :, D:D + H])
            else:
                xp.maximum(z, 0, out=xh[t + 1, :, D:D + H])
        self.cache = (xh,)
        self.state = xh[T, :, D:D + H].copy()
        return self._outputs(xh, xp)

    def backward(self, dout):
        (xh,) = self._cached(dout)
        T, N = xh.shape[0] - 1, xh.shape[1]
        D, H = self.input_size, self.hidden_size
        xp = get_array_module(xh)
        h = xh[1:, :, D:D + H]                           # h_1..h_T, (T, N, H)
        # act'(z_t) for every step at once, from the outputs: nothing here needs the loop.
        a = 1 - h * h if self.nonlinearity == "tanh" else (h > 0).astype(h.dtype)
        dz = self._work.get("dz", (T, N, H), xh.dtype, xp)
        dh = xp.zeros((N, H), dtype=xh.dtype)           # gradient reaching h_t from step t+1
        W_hT = self.W_h.data.T
        for t in range(T - 1, -1, -1):
            dh += dout[:, t]
            xp.multiply(dh, a[t], out=dz[t])
            dh = dz[t] @ W_hT
        self.dstate = dh
        return self._param_grads(xh, dz[None], xp)

    def _repr_extra(self):
        return f", nonlinearity={self.nonlinearity!r}"


class LSTM(_Recurrent):
    """A long short-term memory layer, ``torch.nn.LSTM`` with one layer and ``batch_first=True``.

    For t = 1..T, with the four gate blocks of ``z_t`` (each (N, H)) in
    PyTorch's order i, f, g, o::

        z_t = x_t @ W_x + h_{t-1} @ W_h + b
        i = sigmoid(z_i),  f = sigmoid(z_f),  g = tanh(z_g),  o = sigmoid(z_o)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    Shapes: ``x`` (N, T, D); ``out`` (N, T, H) holds h_1..h_T; ``W_x`` (D, 4H),
    ``W_h`` (H, 4H), ``b`` (4H,); the state is the pair ``(h0, c0)``, each
    (N, H), zeros when not given.

    After ``forward``, ``self.state`` is the final pair (h_T, c_T); after
    ``backward``, ``self.dstate`` is the pair (dL/dh0, dL/dc0).

    Backward (backpropagation through time), from t = T down to 1, with the
    gradients dh, dc arriving from step t+1 (0 at t = T)::

        dh_t = dout[:, t] + dz_{t+1} @ W_h.T
        dc_t = dc_{t+1} * f_{t+1} + dh_t * o * (1 - tanh(c_t)**2)
        dz_i = dc_t * g * i(1-i);   dz_f = dc_t * c_{t-1} * f(1-f)
        dz_g = dc_t * i * (1-g**2); dz_o = dh_t * tanh(c_t) * o(1-o)

    and the parameter gradients and ``dx`` follow from ``dz_t`` as in ``RNN``.
    The gradient into the cell state passes from step to step multiplied only
    by the forget gate, which is why it survives long spans better than the
    RNN's, which is multiplied by ``W_h`` and the tanh slope at every step.

    Args: as ``RNN``, without ``nonlinearity``.
    """

    G = 4

    def __init__(self, input_size, hidden_size, bias=True, rng=None, dtype=np.float32):
        super().__init__(input_size, hidden_size, bias, rng, dtype)

    def _check_state(self, state, N):
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"LSTM state must be the pair (h0, c0), each of shape (N, hidden_size) = "
                            f"({N}, {self.hidden_size}), got {type(state).__name__}")
        self._check_h(state[0], N, "state h0")
        self._check_h(state[1], N, "state c0")
        return state

    def forward(self, x, state=None):
        xp = self._check_x(x)
        N, T, D = x.shape
        H = self.hidden_size
        if state is not None:
            self._check_state(state, N)
        xh = self._stacked_rows(x, None if state is None else state[0], xp)
        dtype, work = xh.dtype, self._work
        # sigmoid(z) = (1 + tanh(z/2)) / 2, so one tanh over all four gates activates them all:
        # the weights of i, f, o are halved (exact: a power of two), and after the tanh those
        # gates are mapped to (1 + t)/2. Cheaper than separate passes, and it cannot overflow.
        half = xp.asarray([0.5, 0.5, 1.0, 0.5], dtype=dtype)[:, None, None]   # i, f, g, o
        shift = 1 - half
        W = self._stacked_weights(xp).reshape(-1, 4, H) * half[:, 0]
        W = W.transpose(1, 0, 2)                               # (4, K, H): one block per gate
        acts = work.get("acts", (4, T, N, H), dtype, xp)     # i, f, g, o, gate-major
        cs = work.get("cs", (T + 1, N, H), dtype, xp)         # cs[0] = c0, cs[t] = c_t
        tanh_c = work.get("tanh_c", (T, N, H), dtype, xp)
        ig = work.get("ig", (N, H), dtype, xp)
        cs[0] = 0 if state is None else state[1]
        for t in range(T):
            a = acts[:, t]
            xp.matmul(xh[t], W, out=a)                 # z_t gate by gate, halved on i, f, o
            xp.tanh(a, out=a)
            a *= half
            a += shift
            i, f, g, o = a
            xp.multiply(f, cs[t], out=cs[t + 1])
            xp.multiply(i, g, out=ig)
            cs[t + 1] += ig                            # c_t = f * c_{t-1} + i * g
            xp.tanh(cs[t + 1], out=tanh_c[t])
            xp.multiply(o, tanh_c[t], out=xh[t + 1, :, D:D + H])   # h_t = o * tanh(c_t)
        self.cache = (xh, cs, acts, tanh_c)
        self.state = (xh[T, :, D:D + H].copy(), cs[T].copy())
        return self._outputs(xh, xp)

    def backward(self, dout):
        xh, cs, acts, tanh_c = self._cached(dout)
        T, N = xh.shape[0] - 1, xh.shape[1]
        H = self.hidden_size
        xp = get_array_module(xh)
        work, dtype = self._work, acts.dtype
        i, f, g, o = acts
        # Every factor that does not depend on the incoming gradient, for all steps at once:
        # dz_t = [dc_t, dc_t, dc_t, dh_t] * k_t gate by gate, and dc_t gets dh_t * o * tanh'(c_t).
        k = work.get("k", (4, T, N, H), dtype, xp)
        xp.subtract(1, acts, out=k)
        k *= acts                               # sigmoid'(z) = s (1 - s) for i, f, o
        xp.multiply(g, g, out=k[2])
        xp.subtract(1, k[2], out=k[2])          # tanh'(z_g) = 1 - g^2
        k[0] *= g                               # each times what its gate multiplies
        k[1] *= cs[:-1]
        k[2] *= i
        k[3] *= tanh_c
        o_dtanh = work.get("o_dtanh", (T, N, H), dtype, xp)
        xp.multiply(tanh_c, tanh_c, out=o_dtanh)
        xp.subtract(1, o_dtanh, out=o_dtanh)
        o_dtanh *= o
        dz = work.get("dz", (4, T, N, H), dtype, xp)
        dh = xp.zeros((N, H), dtype=dtype)      # gradients reaching h_t and c_t from step t+1
        dc = xp.zeros((N, H), dtype=dtype)
        tmp = xp.empty((N, H), dtype=dtype)
        per_gate = xp.empty((4, N, H), dtype=dtype)
        W_hT = self.W_h.data.reshape(H, 4, H).transpose(1, 2, 0)   # (4, H, H): gate j's block, .T
        for t in range(T - 1, -1, -1):
            dh += dout[:, t]
            xp.multiply(dh, o_dtanh[t], out=tmp)
            dc += tmp
            xp.multiply(dc, k[:3, t], out=dz[:3, t])
            xp.multiply(dh, k[3, t], out=dz[3, t])
            dc *= f[t]
            xp.matmul(dz[:, t], W_hT, out=per_gate)
            per_gate.sum(axis=0, out=dh)         # dh_{t-1} = dz_t @ W_h.T, summed over the blocks
        self.dstate = (dh, dc)
        return self._param_grads(xh, dz, xp)
