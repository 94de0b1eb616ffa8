"""Gradient checking with central differences.

The analytic gradient of a layer is compared with

    df/dx_i ~= (f(x + h e_i) - f(x - h e_i)) / (2h)

whose truncation error is O(h^2) and whose rounding error is about
eps * |f| / h. In float64 (eps ~ 1e-16) with h = 1e-5 both stay near 1e-10
for functions of size ~10, so a correct gradient agrees to about 1e-8
relative, while a wrong one is usually off by more than 1e-2. Run checks in
float64: in float32 (eps ~ 1e-7) the rounding error alone is ~1e-2.
"""

from dataclasses import dataclass

import numpy as np

from .backend import to_numpy


def numerical_gradient(f, x, h=1e-5):
    """Central-difference gradient of the scalar function ``f`` at ``x``.

    Args:
        f: callable taking an array shaped like ``x`` and returning a number.
        x: float64 array, any shape. It is perturbed in place entry by entry
            and restored exactly afterwards.
    Returns:
        array of ``x``'s shape: ``(f(x + h e_i) - f(x - h e_i)) / (2h)`` for each i.
    """
    if x.dtype != np.float64:
        raise TypeError(f"gradient checks need float64 arrays, got {x.dtype}: "
                        "float32 rounding would hide real errors")
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient needs a contiguous array")
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        f_plus = float(f(x))
        flat_x[i] = old - h
        f_minus = float(f(x))
        flat_x[i] = old
        flat_g[i] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(a, b, floor=1e-3):
    """Element-wise ``|a - b| / max(|a| + |b|, floor * max|b|, 1e-12)``.

    0 when equal, 1 when of opposite sign. An entry that is tiny compared with
    the largest entry of ``b`` (where the finite difference's rounding noise,
    ~1e-10, would dominate a plain ratio) is judged relative to
    ``floor * max|b|`` instead of its own size.
    """
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    scale = floor * np.max(np.abs(b)) if b.size else 0.0
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a) + np.abs(b), scale), 1e-12)


@dataclass
class GradCheckResult:
    """The worst relative error of one gradient and where it occurred."""
    name: str
    max_error: float
    index: tuple
    analytic: float
    numeric: float

    def __str__(self):
        return (f"{self.name}: max relative error {self.max_error:.2e} at index {self.index} "
                f"(analytic {self.analytic:.6g}, numeric {self.numeric:.6g})")


def _worst(name, analytic, numeric):
    err = relative_error(analytic, numeric)
    if err.size == 0:
        return GradCheckResult(name, 0.0, (), 0.0, 0.0)
    i = np.unravel_index(int(np.argmax(err)), err.shape)
    return GradCheckResult(name, float(err[i]), tuple(int(k) for k in i),
                           float(analytic[i]), float(numeric[i]))


def check_layer_gradients(layer, x, rng=None, h=1e-5, tol=1e-6, raise_on_fail=True):
    """Compare a layer's backward with central differences, for its input and every parameter.

    The scalar being differentiated is ``L = sum(layer(x) * R)`` with a fixed
    random ``R``, so ``dout = R`` exercises every output with a different weight.

    Args:
        layer: a Layer whose parameters are float64.
        x: float64 input array.
        tol: largest accepted relative error.
    Returns:
        list of GradCheckResult, first for ``x`` then for each parameter.
    Raises:
        AssertionError naming the worst entry when an error exceeds ``tol``.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    for p in layer.parameters():
        if p.data.dtype != np.float64:
            raise TypeError(f"gradient checks need float64 parameters; {p!r} is {p.data.dtype}")
    x = np.array(x, dtype=np.float64)
    out = layer.forward(x)
    R = rng.standard_normal(out.shape)

    def loss(_):
        return float(np.sum(layer.forward(x) * R))

    layer.zero_grad()
    layer.forward(x)
    dx = layer.backward(R.copy())
    analytic = [("x", dx)] + [(p.name or f"param{i}", p.grad.copy())
                              for i, p in enumerate(layer.parameters())]
    numeric = [("x", numerical_gradient(loss, x, h))]
    numeric += [(p.name or f"param{i}", numerical_gradient(loss, p.data, h))
                for i, p in enumerate(layer.parameters())]
    results = []
    for (name, a), (_, n) in zip(analytic, numeric):
        if a.shape != n.shape:
            raise AssertionError(f"{type(layer).__name__}: gradient of {name} has shape {a.shape}, "
                                 f"expected {n.shape}")
        results.append(_worst(name, a, n))
    bad = [r for r in results if r.max_error > tol]
    if bad and raise_on_fail:
        raise AssertionError(f"{type(layer).__name__} gradient check failed: "
                             + "; ".join(str(r) for r in bad))
    return results


def check_loss_gradient(loss, pred, target, h=1e-5, tol=1e-6):
    """Compare ``loss.backward()`` with central differences of ``loss.forward(pred, target)``."""
    pred = np.array(pred, dtype=np.float64)
    loss.forward(pred, target)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda p: loss.forward(p, target), pred, h)
    result = _worst("pred", analytic, numeric)
    if result.max_error > tol:
        raise AssertionError(f"{type(loss).__name__} gradient check failed: {result}")
    return result
