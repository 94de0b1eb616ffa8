"""Layers that only change an array's shape."""

import math

from .base import Layer, check_dout, check_input


class Flatten(Layer):
    """``out = x.reshape(N, -1)``: (N, d1, d2, ...) -> (N, d1*d2*...), as ``torch.nn.Flatten``.

    The bridge from convolutional feature maps (N, C, H, W) to a ``Linear``
    layer that expects (N, C*H*W); entries are taken in C order (the last
    axis varies fastest), like PyTorch. Backward reshapes ``dout`` back:
    ``dx = dout.reshape(x.shape)``.
    """

    def forward(self, x):
        check_input(x, range(1, 33), "Flatten", "(N, ...)")
        self.cache = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, dout):
        x_shape = self.cache
        check_dout(self, dout, (x_shape[0], math.prod(x_shape[1:])))
        return dout.reshape(x_shape)
