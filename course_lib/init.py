"""Weight initialisers. Each takes an explicit ``rng`` (``numpy.random.Generator``).

Glorot/Xavier (Glorot & Bengio, 2010) keeps the variance of activations and
of gradients roughly constant from layer to layer for tanh-like units:
``Var(W) = 2 / (fan_in + fan_out)``. He/Kaiming (He et al., 2015) accounts for
ReLU zeroing half its inputs: ``Var(W) = 2 / fan_in``.

``fan_in``/``fan_out`` follow PyTorch: for a weight of shape (in, out) as in
``Linear`` they are ``in`` and ``out``; for a convolution kernel of shape
(C_out, C_in, kh, kw) they are ``C_in*kh*kw`` and ``C_out*kh*kw``.
"""

import math

import numpy as np


def fans(shape, layout="in_out"):
    """``(fan_in, fan_out)`` of a weight of ``shape``.

    ``layout="in_out"``: shape (fan_in, fan_out), as ``Linear.W``.
    ``layout="out_in"``: shape (C_out, C_in, *kernel), as ``Conv2D.W``.
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fan-in and fan-out need a weight with at least 2 dimensions, got shape {shape}")
    if layout == "in_out":
        return shape[0], int(np.prod(shape[1:]))
    if layout == "out_in":
        receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
        return shape[1] * receptive, shape[0] * receptive
    raise ValueError(f"layout must be 'in_out' or 'out_in', got {layout!r}")


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "initialisers take an explicit random generator, e.g. rng=np.random.default_rng(0); "
            f"got {type(rng).__name__}")


def zeros(shape, rng=None, dtype=np.float64):
    """All zeros. Fine for biases; for weights it makes every unit of a layer identical."""
    return np.zeros(shape, dtype=dtype)


def normal(shape, rng, std=0.01, dtype=np.float64):
    """``W ~ N(0, std^2)``."""
    _check_rng(rng)
    return (rng.standard_normal(shape) * std).astype(dtype)


def glorot_uniform(shape, rng, layout="in_out", dtype=np.float64):
    """``W ~ U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``, so ``Var(W) = 2/(fan_in + fan_out)``."""
    _check_rng(rng)
    fan_in, fan_out = fans(shape, layout)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def glorot_normal(shape, rng, layout="in_out", dtype=np.float64):
    """``W ~ N(0, 2 / (fan_in + fan_out))``."""
    _check_rng(rng)
    fan_in, fan_out = fans(shape, layout)
    return (rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def he_uniform(shape, rng, layout="in_out", dtype=np.float64):
    """``W ~ U(-a, a)`` with ``a = sqrt(6 / fan_in)``, so ``Var(W) = 2/fan_in`` (for ReLU)."""
    _check_rng(rng)
    fan_in, _ = fans(shape, layout)
    a = math.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, size=shape).astype(dtype)


def he_normal(shape, rng, layout="in_out", dtype=np.float64):
    """``W ~ N(0, 2 / fan_in)`` (for ReLU)."""
    _check_rng(rng)
    fan_in, _ = fans(shape, layout)
    return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)


INITIALISERS = {
    "zeros": zeros,
    "normal": normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "kaiming_normal": he_normal,
}


def get(name):
    """The initialiser called ``name`` (or ``name`` itself when it is callable)."""
    if callable(name):
        return name
    try:
        return INITIALISERS[name]
    except KeyError:
        raise ValueError(f"unknown initialiser {name!r}; choose one of {sorted(INITIALISERS)}") from None
