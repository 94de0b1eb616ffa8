"""Element-wise activations and softmax. Each backward is the derivative of the forward above it."""

from ..backend import get_array_module
from .base import Layer, check_dout, check_input


def sigmoid(x):
    """``1 / (1 + exp(-x))`` for an array of any shape, never overflowing.

    For ``x < 0`` it is evaluated as ``exp(x) / (1 + exp(x))``, so ``exp`` only
    ever sees ``-|x| <= 0``; both branches are exact to rounding, also in the
    far tails (unlike ``(1 + tanh(x/2)) / 2``, which loses digits for x << 0).
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))              # in (0, 1], never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus(x):
    """``log(1 + exp(x))``, written as ``max(x, 0) + log1p(exp(-|x|))``: exact, never overflowing.

    Its derivative is ``sigmoid(x)``; ``-softplus(-x)`` is ``log sigmoid(x)``.
    """
    xp = get_array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


class _Elementwise(Layer):
    """Shared input check for activations that accept any shape."""

    def _check(self, x):
        return check_input(x, range(0, 33), type(self).__name__, "(any shape)")

    def _cached(self, dout):
        """The forward's cache (shaped like x and out), once ``dout`` is checked to match it."""
        check_dout(self, dout, self.cache.shape)
        return self.cache


class Identity(_Elementwise):
    """``out = x``; ``dx = dout``."""

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


class ReLU(_Elementwise):
    """``out = max(x, 0)``; ``dx = dout * [x > 0]`` (derivative 0 at x = 0, as PyTorch)."""

    def forward(self, x):
        xp = self._check(x)
        self.cache = x > 0
        return xp.maximum(x, 0)

    def backward(self, dout):
        return dout * self._cached(dout)


class LeakyReLU(_Elementwise):
    """``out = x if x > 0 else a*x``; ``dx = dout * (1 if x > 0 else a)``, a = negative_slope."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        xp = self._check(x)
        self.cache = x > 0
        return xp.where(self.cache, x, self.negative_slope * x)

    def backward(self, dout):
        positive = self._cached(dout)
        return dout * positive + self.negative_slope * dout * ~positive

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope})"


class Sigmoid(_Elementwise):
    """``out = 1 / (1 + exp(-x))``; ``dx = dout * out * (1 - out)``.

    Computed by ``sigmoid`` above, so exp never overflows.
    """

    def forward(self, x):
        self._check(x)
        self.cache = sigmoid(x)
        return self.cache

    def backward(self, dout):
        out = self._cached(dout)
        return dout * out * (1 - out)


class Tanh(_Elementwise):
    """``out = tanh(x)``; ``dx = dout * (1 - out^2)``."""

    def forward(self, x):
        xp = self._check(x)
        self.cache = xp.tanh(x)
        return self.cache

    def backward(self, dout):
        return dout * (1 - self._cached(dout) ** 2)


class Softplus(_Elementwise):
    """``out = log(1 + exp(x))``; ``dx = dout * sigmoid(x)``.

    Written as ``max(x, 0) + log1p(exp(-|x|))``, which is exact and never overflows.
    """

    def forward(self, x):
        self._check(x)
        self.cache = x
        return softplus(x)

    def backward(self, dout):
        return dout * sigmoid(self._cached(dout))


class Softmax(_Elementwise):
    """``out_i = exp(x_i - max x) / sum_j exp(x_j - max x)`` along ``axis``.

    Subtracting the maximum changes nothing mathematically and keeps exp from
    overflowing. Backward (the Jacobian-vector product)::

        dx = out * (dout - sum(dout * out, axis))
    """

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        xp = check_input(x, range(1, 33), "Softmax", "(..., C)")
        z = x - x.max(axis=self.axis, keepdims=True)
        e = xp.exp(z)
        out = e / e.sum(axis=self.axis, keepdims=True)
        self.cache = out
        return out

    def backward(self, dout):
        out = self._cached(dout)
        return out * (dout - (dout * out).sum(axis=self.axis, keepdims=True))

    def __repr__(self):
        return f"Softmax(axis={self.axis})"
