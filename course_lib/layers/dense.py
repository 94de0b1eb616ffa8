"""The fully connected (dense) layer."""

import numpy as np

from .. import init as initialisers
from ..backend import asarray, get_array_module
from ..parameter import Parameter
from .base import Layer, check_dout, check_input


class Linear(Layer):
    """``out = x @ W + b``.

    Shapes: ``x`` (N, D) with D = in_features; ``W`` (D, M) with
    M = out_features; ``b`` (M,); ``out`` (N, M). (PyTorch stores the weight
    transposed, as (M, D); here it is stored the way the formula reads.)

    Backward, for ``dout = dL/dout`` of shape (N, M)::

        dx = dout @ W.T      (N, D)
        dW = x.T @ dout      (D, M)
        db = dout.sum(0)     (M,)

    Args:
        init: name of a ``course_lib.init`` initialiser for ``W``; ``b`` starts at 0.
        rng: ``numpy.random.Generator`` (default: seeded with 0, so runs repeat).
        dtype: parameter dtype (float32 for speed, float64 for gradient checks).
    """

    def __init__(self, in_features, out_features, bias=True, init="glorot_uniform",
                 rng=None, dtype=np.float32):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"Linear needs positive sizes, got in_features={in_features}, "
                             f"out_features={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = rng if rng is not None else np.random.default_rng(0)
        W = initialisers.get(init)((self.in_features, self.out_features), rng=rng)
        # Parameters start on the default device (course_lib.backend.get_device()).
        self.W = Parameter(asarray(W, dtype=dtype), name="W")
        self.b = Parameter(asarray(np.zeros(self.out_features), dtype=dtype), name="b") if bias else None

    def forward(self, x):
        check_input(x, 2, "Linear", "(N, in_features)", features=self.in_features)
        get_array_module(x, self.W.data)          # a clear error when x and W are on different devices
        self.cache = x
        out = x @ self.W.data
        if self.b is not None:
            out += self.b.data
        return out

    def backward(self, dout):
        x = self.cache
        check_dout(self, dout, (x.shape[0], self.out_features))
        self.W.grad += x.T @ dout
        if self.b is not None:
            self.b.grad += dout.sum(axis=0)
        return dout @ self.W.data.T

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, bias={self.b is not None})"
