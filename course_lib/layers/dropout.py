"""Dropout (Srivastava et al., 2014) in its "inverted" form, as ``torch.nn.Dropout``."""

import itertools
from numbers import Integral, Real

from .base import Layer, check_dout, check_input

# Seeds for layers made without one: 0, 1, 2, ... in order of creation, so that
# two Dropout layers never draw the same masks and a fresh run repeats itself.
_next_seed = itertools.count()


class Dropout(Layer):
    """Zero each entry with probability ``p`` while training and scale the rest by ``1/(1-p)``.

    Training mode::

        mask = (u >= p) / (1 - p)       with u ~ Uniform[0, 1) drawn per entry
        out  = x * mask                 dx = dout * mask

    so an entry survives with probability ``1 - p`` and ``E[out] = x``.
    Because the scaling happens during training ("inverted" dropout),
    evaluation mode (``layer.eval()``) is the identity: ``out = x``, ``dx = dout``.

    Shapes: ``x`` any shape; ``out`` and ``dx`` the same shape.

    Args:
        p: probability of dropping an entry, ``0 <= p < 1``. ``p = 1`` is
            rejected with a ValueError (PyTorch accepts it and outputs zeros):
            it would drop every activation, so nothing could be learned, and
            the ``1/(1-p)`` scale is undefined.
        seed: integer seed of the layer's own random generator, so runs repeat.
            Default: the next of 0, 1, 2, ... in the order layers are made, so
            two layers of one network drop different entries (the same seed
            would give them identical masks). NumPy inputs draw from ``numpy.random.default_rng(seed)``, CuPy
            inputs from ``cupy.random.default_rng(seed)`` (a generator on the
            device), each created on first use and then advanced call by call.
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, Real):
            raise TypeError(f"Dropout probability p must be a number, got {p!r}")
        if not 0 <= p < 1:
            raise ValueError(
                f"Dropout probability p must lie in [0, 1), got {p}: p is the chance of dropping "
                "an entry; p = 1 would drop everything (and 1/(1-p) is undefined), so it is refused")
        if seed is None:
            seed = next(_next_seed)
        if isinstance(seed, bool) or not isinstance(seed, Integral):
            raise TypeError(f"Dropout seed must be an int, got {seed!r}")
        self.p, self.seed = float(p), int(seed)
        self._generators = {}          # one generator per array module (numpy, cupy)

    def _generator(self, xp):
        if xp.__name__ not in self._generators:
            self._generators[xp.__name__] = xp.random.default_rng(self.seed)
        return self._generators[xp.__name__]

    def forward(self, x):
        xp = check_input(x, range(0, 33), "Dropout", "(any shape)")
        if not self.training or self.p == 0:
            self.cache = (x.shape, None)
            return x
        u_dtype = xp.float32 if x.dtype == xp.float32 else xp.float64
        u = self._generator(xp).random(x.shape, dtype=u_dtype)
        mask = (u >= self.p).astype(x.dtype)
        mask *= 1 / (1 - self.p)
        self.cache = (x.shape, mask)
        return x * mask

    def backward(self, dout):
        shape, mask = self.cache
        check_dout(self, dout, shape)
        if mask is None:               # evaluation mode or p = 0: the identity
            return dout
        return dout * mask

    def __repr__(self):
        return f"Dropout(p={self.p}, seed={self.seed})"
