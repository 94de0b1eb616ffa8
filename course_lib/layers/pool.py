"""Max and average pooling over (kh, kw) windows of NCHW arrays, as PyTorch's pooling layers.

Shapes: ``x`` (N, C, H, W) -> ``out`` (N, C, H_out, W_out) with
``H_out = (H - kh)/sh + 1`` and ``W_out = (W - kw)/sw + 1`` (no padding); the
stride defaults to the kernel size, giving non-overlapping windows. As in
``Conv2D``, a size that does not divide evenly is refused with a ValueError
(PyTorch would floor it and silently ignore the last rows or columns).

Both layers loop over the kh*kw positions (u, v) inside a window, never over
samples or pixels: ``x[:, :, u::sh, v::sw]`` (cut to H_out x W_out) is the
(u, v) entry of every window at once. Windows may overlap (stride < kernel);
the backward passes then add the contributions of all windows a pixel is in.
"""

from .base import Layer, check_dout, check_input
from .conv import _pair, conv_output_size


class _Pool2D(Layer):
    """Shared shape handling: kernel, stride (default: the kernel) and the output size."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", 1)

    def _out_size(self, x):
        name = type(self).__name__
        xp = check_input(x, 4, name, "(N, C, H, W)")
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        H_out = conv_output_size(x.shape[2], kh, sh, 0, "rows", name)
        W_out = conv_output_size(x.shape[3], kw, sw, 0, "columns", name)
        return xp, H_out, W_out

    def _window_entries(self, a, H_out, W_out):
        """Yields ``(u*kw + v, view)`` for each position (u, v) inside a window, in row-major order.

        ``view`` is the (u, v) entry of every window of ``a`` at once, shape
        (N, C, H_out, W_out); writing to it writes to ``a``.
        """
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        for u in range(kh):
            for v in range(kw):
                yield u * kw + v, a[:, :, u:u + sh * H_out:sh, v:v + sw * W_out:sw]

    @property
    def _overlapping(self):
        """Whether windows overlap (stride < kernel): a pixel may then be in several."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return sh < kh or sw < kw

    def __repr__(self):
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride})"


class MaxPool2D(_Pool2D):
    """``out[n, c, i, j] = max_{u, v} x[n, c, i*sh + u, j*sw + v]``, as ``torch.nn.MaxPool2d``.

    Shapes: ``x`` (N, C, H, W) -> ``out`` (N, C, H_out, W_out).

    Backward: the whole of ``dout[n, c, i, j]`` flows to the one input that
    was the maximum of its window; all other inputs of the window get 0. When
    several entries tie for the maximum, the first in row-major order within
    the window takes the gradient (as PyTorch). With overlapping windows an
    input that is the maximum of several windows collects the sum of their
    gradients.

    Args:
        kernel_size: int or pair (kh, kw).
        stride: int or pair; default the kernel size.
    """

    def forward(self, x):
        xp, H_out, W_out = self._out_size(x)
        kh, kw = self.kernel_size
        entries = self._window_entries(x, H_out, W_out)
        out = next(entries)[1].copy()
        # argmax[n, c, i, j] = u*kw + v, the position of the maximum inside its window
        argmax = xp.zeros(out.shape, dtype=xp.int8 if kh * kw <= 127 else xp.int32)
        for position, entry in entries:
            larger = entry > out              # strictly larger: a tie keeps the earlier position
            # Positions only grow, so max() records the newest larger one (and branch-free
            # arithmetic is several times faster than a masked copy).
            xp.maximum(argmax, larger * argmax.dtype.type(position), out=argmax)
            xp.maximum(out, entry, out=out)
        self.cache = (x.shape, argmax)
        return out

    def backward(self, dout):
        x_shape, argmax = self.cache
        xp = check_dout(self, dout, argmax.shape)
        H_out, W_out = argmax.shape[2:]
        dx = xp.zeros(x_shape, dtype=dout.dtype)
        for position, target in self._window_entries(dx, H_out, W_out):
            is_max = argmax == position
            if self._overlapping:             # a pixel may be the maximum of several windows
                target += dout * is_max
            else:
                xp.multiply(dout, is_max, out=target)
        return dx


class AvgPool2D(_Pool2D):
    """``out[n, c, i, j] = mean_{u, v} x[n, c, i*sh + u, j*sw + v]``, as ``torch.nn.AvgPool2d``.

    Shapes: ``x`` (N, C, H, W) -> ``out`` (N, C, H_out, W_out).

    Backward: every input of a window receives ``dout / (kh*kw)`` from it
    (summed over the windows it belongs to when they overlap).

    Args:
        kernel_size: int or pair (kh, kw).
        stride: int or pair; default the kernel size.
    """

    def forward(self, x):
        xp, H_out, W_out = self._out_size(x)
        kh, kw = self.kernel_size
        entries = self._window_entries(x, H_out, W_out)
        out = next(entries)[1].copy()
        for _, entry in entries:
            out += entry
        out *= 1.0 / (kh * kw)
        self.cache = (x.shape, out.shape)
        return out

    def backward(self, dout):
        x_shape, out_shape = self.cache
        xp = check_dout(self, dout, out_shape)
        kh, kw = self.kernel_size
        H_out, W_out = dout.shape[2:]
        share = dout * (1.0 / (kh * kw))
        dx = xp.zeros(x_shape, dtype=dout.dtype)
        for _, target in self._window_entries(dx, H_out, W_out):
            if self._overlapping:             # a pixel may belong to several windows
                target += share
            else:
                target[...] = share
        return dx
