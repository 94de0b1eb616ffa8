"""The CNN, batch-norm, dropout and embedding layers give the same results on CuPy as on NumPy.

Each layer is built twice from the same seed; one copy moves to the GPU with
``layer.to("gpu")``. Forward outputs, input gradients, parameter gradients and
running statistics are compared within float32 tolerance: both sides compute
in float32 but sum in different orders (cuBLAS vs OpenBLAS), which moves
results by ~1e-6 relative to their scale, so rtol=atol=1e-4 leaves a margin
and still catches any real difference. Skipped without CuPy and a CUDA device.
"""

import numpy as np
import pytest

from course_lib.backend import asarray, device_of, gpu_available, gpu_unavailable_reason, to_numpy
from course_lib.layers import (AvgPool2D, BatchNorm1d, BatchNorm2d, Conv2D, Dropout, Embedding,
                               Flatten, MaxPool2D)

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not gpu_available(), reason=str(gpu_unavailable_reason()))]

TOL = dict(rtol=1e-4, atol=1e-4)


def run_both(make_layer, x, train=True, steps=1):
    """Forward and backward on a NumPy and a CuPy copy of the same layer; returns both layers and
    the (out, dx) pairs of the last step."""
    rng = np.random.default_rng(0)
    cpu, gpu = make_layer(), make_layer().to("gpu")
    for layer in (cpu, gpu):
        layer.train(train)
    for _ in range(steps):
        out_c = cpu.forward(x)
        out_g = gpu.forward(asarray(x, device="gpu"))
        assert device_of(out_g) == "gpu"
        dout = rng.standard_normal(out_c.shape).astype(np.float32)
        dx_c = cpu.backward(dout)
        dx_g = gpu.backward(asarray(dout, device="gpu"))
    return cpu, gpu, (out_c, to_numpy(out_g)), (dx_c, None if dx_g is None else to_numpy(dx_g))


def assert_same(cpu, gpu, outs, dxs):
    np.testing.assert_allclose(outs[1], outs[0], **TOL)
    if dxs[0] is not None:
        np.testing.assert_allclose(dxs[1], dxs[0], **TOL)
    for p_c, p_g in zip(cpu.parameters(), gpu.parameters()):
        assert device_of(p_g.grad) == "gpu"
        np.testing.assert_allclose(to_numpy(p_g.grad), p_c.grad, **TOL, err_msg=p_c.name)


def images(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("kwargs, shape", [
    (dict(in_channels=3, out_channels=8, kernel_size=3, padding=1), (4, 3, 10, 9)),
    (dict(in_channels=2, out_channels=5, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
     (3, 2, 7, 6)),
    (dict(in_channels=16, out_channels=32, kernel_size=5, padding=2, bias=False), (2, 16, 12, 12)),
])
def test_conv2d(kwargs, shape):
    assert_same(*run_both(lambda: Conv2D(**kwargs, rng=np.random.default_rng(2)), images(shape)))


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("kernel, stride, size", [(2, None, (8, 6)), (3, 1, (9, 8)),
                                                  ((3, 2), (2, 2), (7, 8))])
def test_pooling(cls, kernel, stride, size):
    assert_same(*run_both(lambda: cls(kernel, stride), images((2, 3) + size)))


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 1)])
def test_maxpool_ties(kernel, stride):
    x = np.random.default_rng(3).integers(0, 2, size=(2, 3, 6, 6)).astype(np.float32)
    assert_same(*run_both(lambda: MaxPool2D(kernel, stride), x))


def test_flatten():
    assert_same(*run_both(Flatten, images((3, 2, 4, 5))))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("cls, shape", [(BatchNorm1d, (16, 7)), (BatchNorm2d, (8, 4, 5, 6))])
def test_batchnorm(cls, shape, train):
    x = images(shape) * 3 + 1
    cpu, gpu, outs, dxs = run_both(lambda: cls(shape[1]), x, train=train, steps=3)
    assert_same(cpu, gpu, outs, dxs)
    np.testing.assert_allclose(to_numpy(gpu.running_mean), cpu.running_mean, **TOL)
    np.testing.assert_allclose(to_numpy(gpu.running_var), cpu.running_var, **TOL)


def test_dropout_rule_on_gpu():
    """The GPU draws its own masks (cuRAND), so they differ from NumPy's: check the rule instead."""
    x = images((300, 200)) + 10
    layer = Dropout(0.25, seed=5)
    out = to_numpy(layer.forward(asarray(x, device="gpu")))
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 5 * np.sqrt(0.25 * 0.75 / x.size)
    dx = to_numpy(layer.backward(asarray(np.ones_like(x), device="gpu")))
    np.testing.assert_allclose(dx, kept / 0.75, rtol=1e-6)
    again = Dropout(0.25, seed=5).forward(asarray(x, device="gpu"))
    np.testing.assert_array_equal(to_numpy(again), out)           # seeded on the GPU too
    layer.eval()
    np.testing.assert_array_equal(to_numpy(layer.forward(asarray(x, device="gpu"))), x)


def test_embedding_repeated_indices():
    idx = np.random.default_rng(6).integers(0, 9, size=(40, 7))     # many repeats
    cpu, gpu = Embedding(9, 5), Embedding(9, 5).to("gpu")
    out_c, out_g = cpu.forward(idx), gpu.forward(asarray(idx, device="gpu"))
    np.testing.assert_array_equal(to_numpy(out_g), out_c)
    dout = images(idx.shape + (5,))
    assert cpu.backward(dout) is None and gpu.backward(asarray(dout, device="gpu")) is None
    np.testing.assert_allclose(to_numpy(gpu.W.grad), cpu.W.grad, **TOL)


@pytest.mark.parametrize("make", [lambda: Conv2D(2, 3, 3), lambda: BatchNorm2d(3),
                                  lambda: Embedding(5, 4)])
def test_new_layers_start_on_the_default_device(make):
    """With the GPU as the default device, a new layer's parameters and buffers are CuPy arrays."""
    from course_lib import backend
    previous = backend.get_device()
    backend.set_device("gpu")
    try:
        layer = make()
    finally:
        backend.set_device(previous)
    arrays = [p.data for p in layer.parameters()] + [p.grad for p in layer.parameters()]
    arrays += [getattr(layer, name) for name in ("running_mean", "running_var") if hasattr(layer, name)]
    assert all(device_of(a) == "gpu" for a in arrays)

