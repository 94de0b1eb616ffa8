"""Plain functions of one array, for testing gradient checkers.

Each function maps an array ``x`` of any shape to one Python float and has a
gradient known in closed form (given in its docstring), so a numerical
gradient can be compared with the exact one. They are ordinary module-level
functions, so a notebook's test cell can hand them to a student's
``numerical_gradient(f, x)`` by name.

Some are chosen to expose particular mistakes of a finite-difference checker:

- ``sum_of_cubes``: the central difference of ``x**3`` with step ``h`` is
  ``3 x**2 + h**2`` *exactly*, so the result tells whether the step ``h`` was
  used and whether the difference was central (a forward difference gives
  ``3 x**2 + 3 x h + h**2``).
- ``square_of_sum`` and ``log_sum_exp``: every entry of the gradient depends
  on every entry of ``x``, so a checker that forgets to put ``x[i]`` back
  after perturbing it gets the later entries wrong.
"""

from .backend import get_array_module


def _checked(x, name):
    """``x`` as a floating-point array, after checking it is numeric and finite."""
    xp = get_array_module(x)
    x = xp.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} needs a real numeric array, got dtype {x.dtype}")
    if x.dtype.kind != "f":
        x = x.astype(xp.float64)
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name} got an input containing NaN or infinity")
    return xp, x


def sum_of_squares(x):
    """f(x) = sum_i x_i**2, for ``x`` of any shape.

    Gradient: df/dx = 2 x (same shape as ``x``).
    """
    xp, x = _checked(x, "sum_of_squares")
    return float(xp.sum(x * x))


def sum_of_cubes(x):
    """f(x) = sum_i x_i**3, for ``x`` of any shape.

    Gradient: df/dx = 3 x**2. Its central difference with step h is
    ``(f(x + h e_i) - f(x - h e_i)) / (2 h) = 3 x_i**2 + h**2`` exactly.
    """
    xp, x = _checked(x, "sum_of_cubes")
    return float(xp.sum(x * x * x))


def sin_weighted(x):
    """f(x) = sum_i sin(x_i) * x_i**2, for ``x`` of any shape.

    Gradient: df/dx = cos(x) x**2 + 2 x sin(x).
    """
    xp, x = _checked(x, "sin_weighted")
    return float(xp.sum(xp.sin(x) * x * x))


def log_sum_exp(x):
    """f(x) = log(sum_i exp(x_i)) over *all* entries of ``x``, computed stably.

    Uses ``m + log(sum_i exp(x_i - m))`` with ``m = max_i x_i``, so entries
    like 1000 do not overflow. Gradient: df/dx = exp(x - f(x)), the softmax of
    all entries (they sum to one).
    """
    xp, x = _checked(x, "log_sum_exp")
    if x.size == 0:
        raise ValueError("log_sum_exp needs at least one entry")
    m = xp.max(x)
    return float(m + xp.log(xp.sum(xp.exp(x - m))))


def square_of_sum(x):
    """f(x) = (sum_i x_i)**2, for ``x`` of any shape.

    Gradient: df/dx_i = 2 sum_j x_j for every i (an array of one repeated value).
    """
    xp, x = _checked(x, "square_of_sum")
    s = xp.sum(x)
    return float(s * s)


__all__ = ["sum_of_squares", "sum_of_cubes", "sin_weighted", "log_sum_exp", "square_of_sum"]
