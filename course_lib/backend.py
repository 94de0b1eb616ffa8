"""The array backend: NumPy on the CPU, CuPy on a GPU.

This is the only module of course_lib that imports CuPy. Every layer asks the
array it was given which module to use::

    xp = get_array_module(x)      # numpy or cupy
    out = xp.maximum(x, 0)

so the same code runs on both devices. The default device for new arrays
(``asarray`` without ``device``) comes from the environment variable
``COURSE_LIB_DEVICE``: ``cpu`` (the default), ``gpu``, or ``auto`` (the GPU
when CuPy and a CUDA device are present, otherwise the CPU).
"""

import os

import numpy as np

_DEVICES = ("cpu", "gpu")
_cupy = None          # the cupy module once imported successfully
_cupy_error = None    # why the GPU is unavailable, for error messages
_device = None        # current default device, resolved lazily


def _load_cupy():
    """Import CuPy once and check that a CUDA device answers."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("CuPy found no CUDA device")
        cupy.zeros(1).sum()  # fails early if the driver cannot run a kernel
        _cupy = cupy
    except Exception as exc:  # ImportError, CUDA driver errors, ...
        _cupy_error = f"{type(exc).__name__}: {exc}"
    return _cupy


def gpu_available():
    """True when CuPy is installed and a CUDA device can run kernels."""
    return _load_cupy() is not None


def gpu_unavailable_reason():
    """A sentence saying why the GPU cannot be used, or None when it can."""
    if gpu_available():
        return None
    return f"no usable GPU: {_cupy_error}"


def set_device(device):
    """Set the default device for ``asarray``: ``"cpu"`` or ``"gpu"``.

    Asking for the GPU where there is none raises a RuntimeError that says why.
    """
    global _device
    if device not in _DEVICES:
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if device == "gpu" and not gpu_available():
        raise RuntimeError(
            "set_device('gpu') was asked for, but "
            f"{gpu_unavailable_reason()}. Install the optional extra "
            "'course-lib[gpu]' on a machine with an NVIDIA GPU, or use 'cpu'.")
    _device = device


def get_device():
    """The current default device, ``"cpu"`` or ``"gpu"``."""
    global _device
    if _device is None:
        wanted = os.environ.get("COURSE_LIB_DEVICE", "cpu").strip().lower() or "cpu"
        if wanted == "auto":
            _device = "gpu" if gpu_available() else "cpu"
        elif wanted in _DEVICES:
            if wanted == "gpu" and not gpu_available():
                raise RuntimeError(
                    f"the environment variable COURSE_LIB_DEVICE=gpu asks for the GPU, but "
                    f"{gpu_unavailable_reason()}; unset it, or set it to cpu or auto")
            set_device(wanted)
        else:
            raise ValueError(
                f"COURSE_LIB_DEVICE must be cpu, gpu or auto, got {wanted!r}")
    return _device


def is_gpu_array(x):
    """True when ``x`` is a CuPy array (checked without importing CuPy)."""
    return type(x).__module__.split(".")[0] == "cupy"


def get_array_module(*arrays):
    """The module (numpy or cupy) that owns the given arrays.

    Mixing a CuPy array with a NumPy array is an error, because it would
    silently copy data between devices on every operation.
    """
    on_gpu = [is_gpu_array(a) for a in arrays if a is not None]
    if any(on_gpu):
        if not all(on_gpu):
            raise TypeError(
                "arrays live on different devices (some NumPy, some CuPy); "
                "move them to one device with course_lib.backend.asarray(x, device=...), "
                "and a layer or model with .to(device)")
        return _load_cupy() or __import__("cupy")
    return np


def to_numpy(x):
    """A NumPy copy of ``x`` (returns NumPy input unchanged)."""
    if is_gpu_array(x):
        return x.get()
    return np.asarray(x)


def asarray(x, device=None, dtype=None):
    """``x`` as an array on ``device`` (default: ``get_device()``)."""
    device = device or get_device()
    if device not in _DEVICES:
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if device == "cpu":
        return np.asarray(to_numpy(x), dtype=dtype)
    cupy = _load_cupy()
    if cupy is None:
        raise RuntimeError(f"asarray(..., device='gpu') needs a GPU, but {gpu_unavailable_reason()}")
    return cupy.asarray(x, dtype=dtype)


def device_of(x):
    """``"gpu"`` for a CuPy array, ``"cpu"`` otherwise."""
    return "gpu" if is_gpu_array(x) else "cpu"


def describe():
    """One sentence: the default device, and whether a GPU can be used (if not, why not)."""
    try:
        device = f"runs on the {get_device().upper()} by default"
    except (RuntimeError, ValueError) as err:      # a COURSE_LIB_DEVICE that cannot be honoured
        device = f"has no default device ({err})"
    if gpu_available():
        gpu = "a GPU is available"
    elif "No module named 'cupy'" in str(_cupy_error):
        gpu = "no GPU can be used, because CuPy is not installed"
    else:
        gpu = f"no GPU can be used ({_cupy_error})"
    return f"course_lib {device}; {gpu}."
