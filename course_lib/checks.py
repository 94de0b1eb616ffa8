"""Helpers for the notebooks' test cells.

Each helper raises an ``AssertionError`` whose message says, in words a
student can act on, what was expected, what came back and the usual cause.
When a notebook is graded, test cells run in the grader's own process
(see ``autograde``), so these helpers are the grader's copy: redefining them
in a notebook changes nothing about the grade.
"""

import hashlib
import os

import numpy as np

from .backend import to_numpy

#: Environment variable holding the grader's secret; hidden tests derive their
#: random inputs from it, so a submission cannot predict them.
SECRET_ENV = "COURSE_GRADING_SECRET"


def rng_for(label):
    """A NumPy random generator for the test called ``label``.

    In a student's notebook the seed depends only on ``label`` (the same
    inputs on every run). While grading, it also depends on the grader's
    secret, which never reaches the student's process.
    """
    secret = os.environ.get(SECRET_ENV, "")
    digest = hashlib.sha256(f"{secret}\0{label}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _as_array(value, name):
    if value is None:
        raise AssertionError(
            f"{name} is None: did you forget a `return` statement?")
    try:
        arr = to_numpy(value)
    except Exception as exc:  # objects that are not array-like
        raise AssertionError(f"{name} should be an array, got {type(value).__name__}") from exc
    if arr.dtype == object:
        raise AssertionError(f"{name} should be a numeric array, got {type(value).__name__} "
                             "holding Python objects")
    return arr


def _with_hint(message, hint):
    return f"{message} {hint}" if hint else message


def check_shape(value, shape, name="the result", hint=""):
    """Fail unless ``value`` has exactly ``shape``; hints at a missing transpose.

    ``hint``, when given, is added to the message (after the generic hint).
    """
    arr = _as_array(value, name)
    shape = tuple(shape)
    if arr.shape == shape:
        return
    generic = ""
    if arr.shape == shape[::-1] and len(shape) == 2:
        generic = " Did you forget a transpose?"
    elif arr.size == int(np.prod(shape)):
        generic = " The number of entries is right: check how you reshape or transpose."
    elif arr.ndim == len(shape) - 1:
        generic = " One axis is missing: did you sum or average over an axis you should keep?"
    elif arr.ndim == len(shape) + 1:
        generic = " There is one axis too many: did you forget to sum or average over an axis?"
    raise AssertionError(_with_hint(
        f"{name} has shape {arr.shape} but should have shape {shape}.{generic}", hint))


def check_close(value, expected, name="the result", rtol=1e-6, atol=1e-8, hint=""):
    """Fail unless ``value`` equals ``expected`` within ``rtol``/``atol``.

    Checks, in order: that it is an array (not None), its shape, that it is
    finite, then the values; the message names the worst entry. An entry
    passes when ``|value - expected| <= atol + rtol * |expected|``, or when
    both are the same infinity or both NaN. ``hint`` ends the message of
    every failure, whichever of these checks it is.
    """
    arr = _as_array(value, name)
    expected = to_numpy(expected)
    if expected.dtype.kind == "b":              # True/False compare as 1/0
        expected = expected.astype(np.float64)
    check_shape(arr, expected.shape, name, hint=hint)
    if not np.all(np.isfinite(arr)) and np.all(np.isfinite(expected)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise AssertionError(_with_hint(
            f"{name} contains {arr[tuple(bad)]} at index {tuple(int(i) for i in bad)}: "
            "look for an overflow in exp, a log of zero or a division by zero.", hint))
    arr = arr.astype(np.float64) if arr.dtype.kind in "biu" else arr
    with np.errstate(invalid="ignore"):         # inf - inf is NaN; `close` deals with it
        diff = np.abs(arr - expected)
        tol = atol + rtol * np.abs(expected)
        # An infinite expected value makes tol infinite: there only equality counts.
        close = ((diff <= tol) & np.isfinite(expected)) | (arr == expected)
        close |= np.isnan(arr) & np.isnan(expected)
        if np.all(close):
            return
        excess = np.where(close, -np.inf, np.nan_to_num(diff - tol, nan=np.inf))
    worst = np.unravel_index(np.argmax(excess), diff.shape) if diff.ndim else ()
    where = f" at index {tuple(int(i) for i in worst)}" if worst else ""
    got, want = arr[worst], expected[worst]
    message = f"{name} is wrong{where}: expected {want:.6g}, got {got:.6g}."
    if np.allclose(arr, -expected, rtol=rtol, atol=atol):
        message += " Every entry has the wrong sign."
    raise AssertionError(_with_hint(message, hint))


def check_scalar(value, expected, name="the result", rtol=1e-6, atol=1e-8, hint=""):
    """Fail unless ``value`` is a single number close to ``expected``."""
    arr = _as_array(value, name)
    if arr.size != 1:
        raise AssertionError(_with_hint(
            f"{name} should be a single number, got an array of shape {arr.shape}: "
            "did you forget to sum or average?", hint))
    check_close(arr.reshape(()), expected, name, rtol=rtol, atol=atol, hint=hint)


def check_true(condition, message):
    """Fail with ``message`` unless ``condition`` holds."""
    if not bool(condition):
        raise AssertionError(message)
