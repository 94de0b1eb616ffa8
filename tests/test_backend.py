"""The array backend: device selection, conversions and clear errors when no GPU exists."""

import numpy as np
import pytest

from course_lib import backend
from course_lib.layers import BatchNorm1d, Conv2D, Linear


@pytest.fixture(autouse=True)
def restore_device(monkeypatch):
    saved = backend._device
    yield
    backend._device = saved


def test_numpy_arrays_use_numpy():
    assert backend.get_array_module(np.zeros(3)) is np
    assert backend.get_array_module(np.zeros(3), None, np.ones(2)) is np
    assert backend.device_of(np.zeros(1)) == "cpu"


def test_to_numpy_and_asarray_on_cpu():
    x = [[1, 2], [3, 4]]
    out = backend.asarray(x, device="cpu", dtype=np.float32)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert backend.to_numpy(out) is out


@pytest.mark.parametrize("value, expected", [("cpu", "cpu"), ("", "cpu"), (" CPU ", "cpu")])
def test_environment_variable_picks_the_default(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_LIB_DEVICE", value)
    backend._device = None
    assert backend.get_device() == expected


def test_auto_falls_back_to_cpu_without_gpu(monkeypatch):
    monkeypatch.setattr(backend, "gpu_available", lambda: False)
    monkeypatch.setenv("COURSE_LIB_DEVICE", "auto")
    backend._device = None
    assert backend.get_device() == "cpu"


def test_unknown_device_names_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        backend.set_device("tpu")
    monkeypatch.setenv("COURSE_LIB_DEVICE", "cuda")
    backend._device = None
    with pytest.raises(ValueError, match="cpu, gpu or auto"):
        backend.get_device()


def test_asking_for_an_absent_gpu_says_so(monkeypatch):
    monkeypatch.setattr(backend, "_load_cupy", lambda: None)
    monkeypatch.setattr(backend, "_cupy_error", "ModuleNotFoundError: No module named 'cupy'")
    with pytest.raises(RuntimeError, match="no usable GPU.*No module named 'cupy'"):
        backend.set_device("gpu")
    with pytest.raises(RuntimeError, match="needs a GPU"):
        backend.asarray([1.0], device="gpu")


class FakeCupyArray:
    """Looks like a CuPy array to ``is_gpu_array`` (which only reads the type's module)."""
    __module__ = "cupy._core.core"


def test_gpu_from_the_environment_without_a_gpu_names_the_variable(monkeypatch):
    monkeypatch.setattr(backend, "_load_cupy", lambda: None)
    monkeypatch.setattr(backend, "_cupy_error", "ModuleNotFoundError: No module named 'cupy'")
    monkeypatch.setenv("COURSE_LIB_DEVICE", "gpu")
    backend._device = None
    with pytest.raises(RuntimeError, match="COURSE_LIB_DEVICE=gpu.*No module named 'cupy'"):
        backend.get_device()
    # describe() is how a student finds out what is wrong, so it reports rather than raises.
    line = backend.describe()
    assert "COURSE_LIB_DEVICE=gpu" in line and "No module named 'cupy'" in line


def test_mixing_devices_is_an_error():
    with pytest.raises(TypeError, match="different devices"):
        backend.get_array_module(np.zeros(2), FakeCupyArray())


@pytest.mark.parametrize("make, x", [
    (lambda: Linear(3, 2), np.zeros((2, 3))),
    (lambda: Conv2D(1, 2, 3), np.zeros((1, 1, 4, 4))),
    (lambda: BatchNorm1d(3), np.zeros((2, 3))),
])
def test_layers_refuse_input_on_another_device(make, x):
    """A NumPy input to a layer whose parameters are on the GPU names the problem and the fix."""
    layer = make()
    for p in layer.parameters():
        p.data = FakeCupyArray()
    with pytest.raises(TypeError, match=r"different devices.*\.to\(device\)"):
        layer.forward(x)


def test_only_backend_imports_cupy():
    """Every other module must ask its input array for the module (the design rule of the library)."""
    from pathlib import Path
    import course_lib
    root = Path(course_lib.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "backend.py" and "import cupy" in p.read_text()]
    assert offenders == [], f"these modules import cupy directly: {offenders}"


@pytest.mark.gpu
def test_gpu_round_trip():
    if not backend.gpu_available():
        pytest.skip(backend.gpu_unavailable_reason())
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = backend.asarray(x, device="gpu")
    assert backend.device_of(g) == "gpu"
    assert backend.get_array_module(g).__name__ == "cupy"
    np.testing.assert_array_equal(backend.to_numpy(g), x)


def test_describe_without_cupy_is_one_plain_sentence(monkeypatch):
    """What chapter 00 prints on a machine without CuPy: no exception class names."""
    monkeypatch.setattr(backend, "_load_cupy", lambda: None)
    monkeypatch.setattr(backend, "_cupy_error", "ModuleNotFoundError: No module named 'cupy'")
    monkeypatch.delenv("COURSE_LIB_DEVICE", raising=False)
    backend._device = None
    assert backend.describe() == ("course_lib runs on the CPU by default; no GPU can be used, "
                                  "because CuPy is not installed.")
