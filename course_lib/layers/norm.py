"""Batch normalisation (Ioffe & Szegedy, 2015), as PyTorch's ``BatchNorm1d`` and ``BatchNorm2d``.

Each channel c is normalised with a mean and variance taken over every value
of that channel in the batch (over N for (N, C) input; over N, H and W for
(N, C, H, W) input), then scaled and shifted by learnable ``gamma`` and
``beta``::

    xhat = (x - mean) / sqrt(var + eps)          out = gamma * xhat + beta

Training mode uses the batch's mean and *biased* variance (divide by n, the
number of values per channel) and updates the running statistics as PyTorch
does, with the *unbiased* variance (divide by n - 1)::

    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)

Evaluation mode (``layer.eval()``) normalises with the running statistics
instead, so a prediction does not depend on the other samples in the batch.

Backward in training mode, where mean and var depend on x too, has the
compact closed form (all sums over the n values of a channel)::

    dbeta  = sum(dout)          dgamma = sum(dout * xhat)
    dx     = gamma / (n * sqrt(var + eps)) * (n * dout - dbeta - xhat * dgamma)

In evaluation mode the statistics are constants and ``dx = gamma * dout / sqrt(var + eps)``.
"""

import math

import numpy as np

from ..backend import asarray, get_array_module
from ..parameter import Parameter
from .base import Layer, check_dout, check_input
from .workspace import Workspace


def _per_entry(xp, L):
    """A function (C,) -> (C*L,) that repeats each channel's value L times.

    The element-wise steps then broadcast a (C*L,) vector over the N rows of
    the (N, C*L) view: few long inner loops, about twice as fast in NumPy as
    broadcasting a (C, 1) column over (N, C, L), whose inner loops are L long.
    """
    return lambda v: xp.repeat(v, L)


class _BatchNorm(Layer):
    """Shared code. Subclasses say which input shapes they take; both work on
    (N, C, L) and (N, C*L) views of the input, with L = 1 for (N, C) and
    L = H*W for images."""

    _expected = ""
    _ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        if int(num_features) < 1:
            raise ValueError(f"{type(self).__name__} needs num_features >= 1, got {num_features}")
        if not eps > 0:
            raise ValueError(f"eps must be positive (it keeps 1/sqrt(var + eps) finite), got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        # Parameters and buffers start on the default device (course_lib.backend.get_device()).
        self.gamma = Parameter(asarray(np.ones(self.num_features), dtype=dtype), name="gamma")
        self.beta = Parameter(asarray(np.zeros(self.num_features), dtype=dtype), name="beta")
        # Buffers: state that is not trained but moves with the layer (see _move_buffers).
        self.running_mean = asarray(np.zeros(self.num_features), dtype=dtype)
        self.running_var = asarray(np.ones(self.num_features), dtype=dtype)
        self._work = Workspace()                   # the centred input, reused between calls

    def _move_buffers(self, device):
        self.running_mean = asarray(self.running_mean, device=device)
        self.running_var = asarray(self.running_var, device=device)

    def forward(self, x):
        name = type(self).__name__
        check_input(x, self._ndims, name, self._expected, features=self.num_features, feature_axis=1)
        xp = get_array_module(x, self.gamma.data)  # a clear error when x and gamma are on different devices
        N, C = x.shape[:2]
        L = math.prod(x.shape[2:])                 # values per channel in one sample (H*W, or 1)
        n = N * L                                  # values per channel in the batch
        x2 = x.reshape(N, C * L)                   # for the element-wise steps
        x3 = x2.reshape(N, C, L)                   # for the per-channel sums
        per_entry = _per_entry(xp, L)
        xc = self._work.get("xc", (N, C * L), xp.result_type(x, self.running_mean), xp)
        if self.training:
            if n < 2:
                raise ValueError(
                    f"{name} in training mode needs more than 1 value per channel to compute a "
                    f"variance, got input of shape {tuple(x.shape)}; use a batch of 2 or more "
                    "samples, or call .eval() to use the running statistics")
            mean = xp.einsum("ncl->c", x3) / n
            xp.subtract(x2, per_entry(mean), out=xc)   # centred first: no digits lost in var
            var = xp.einsum("ncl,ncl->c", xc.reshape(N, C, L), xc.reshape(N, C, L)) / n
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += (m * n / (n - 1)) * var
        else:
            mean, var = self.running_mean, self.running_var
            xp.subtract(x2, per_entry(mean), out=xc)
        inv_std = 1 / xp.sqrt(var + self.eps)
        scale = self.gamma.data * inv_std          # out = gamma * xc * inv_std + beta
        out = xc * per_entry(scale)
        out += per_entry(self.beta.data)
        self.cache = (x.shape, xc, inv_std, L, self.training)
        return out.reshape(x.shape)

    def backward(self, dout):
        x_shape, xc, inv_std, L, training = self.cache      # xhat = xc * inv_std
        xp = check_dout(self, dout, x_shape)
        N, C = dout.shape[:2]
        n = N * L
        per_entry = _per_entry(xp, L)
        d2 = dout.reshape(N, C * L)
        d3 = d2.reshape(N, C, L)
        dbeta = xp.einsum("ncl->c", d3)
        dgamma = xp.einsum("ncl,ncl->c", d3, xc.reshape(N, C, L)) * inv_std
        self.beta.grad += dbeta
        self.gamma.grad += dgamma
        scale = self.gamma.data * inv_std
        dx = d2 * per_entry(scale)
        if training:
            # dx = scale * (dout - dbeta/n - xhat * dgamma/n), without a temporary per term
            tmp = self._work.get("tmp", xc.shape, xp.result_type(dx, xc), xp)
            xp.multiply(xc, per_entry(scale * inv_std * dgamma / n), out=tmp)
            dx -= tmp
            dx -= per_entry(scale * dbeta / n)
        return dx.reshape(dout.shape)

    def __repr__(self):
        return (f"{type(self).__name__}({self.num_features}, eps={self.eps}, "
                f"momentum={self.momentum})")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features (or (N, C, L) sequences), as ``torch.nn.BatchNorm1d``.

    Shapes: ``x`` (N, C) -> ``out`` (N, C); ``gamma``, ``beta``,
    ``running_mean``, ``running_var`` (C,). Statistics per feature over the
    batch axis (and L). Training mode needs more than one value per feature:
    a batch of one sample raises a ValueError, as PyTorch does.

    ``out = gamma * (x - mean) / sqrt(var + eps) + beta``; see the module
    docstring for the running statistics and the backward formula.

    Args:
        num_features: C.
        eps: added to the variance before the square root.
        momentum: weight of the new batch in the running statistics (PyTorch's 0.1).
        dtype: parameter and buffer dtype.
    """

    _expected = "(N, C) or (N, C, L)"
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) feature maps, as ``torch.nn.BatchNorm2d``.

    Shapes: ``x`` (N, C, H, W) -> ``out`` (N, C, H, W); ``gamma``, ``beta``,
    ``running_mean``, ``running_var`` (C,). Each channel's statistics are
    taken over its n = N*H*W values, so one image with H*W > 1 is a valid
    training batch.

    ``out = gamma * (x - mean) / sqrt(var + eps) + beta``; see the module
    docstring for the running statistics and the backward formula.

    Args:
        num_features: C.
        eps: added to the variance before the square root.
        momentum: weight of the new batch in the running statistics (PyTorch's 0.1).
        dtype: parameter and buffer dtype.
    """

    _expected = "(N, C, H, W)"
    _ndims = (4,)
