"""2-D convolution, as PyTorch's ``Conv2d``: a cross-correlation over NCHW arrays.

Shapes: input ``x`` (N, C, H, W); weight ``W`` (F, C, kh, kw) with
F = out_channels; bias ``b`` (F,); output ``out`` (N, F, H_out, W_out) with

    H_out = floor((H + 2*ph - kh) / sh) + 1      W_out = floor((W + 2*pw - kw) / sw) + 1

for padding (ph, pw) and stride (sh, sw). Each output is one window of the
zero-padded input multiplied entry by entry with one filter and summed::

    out[n, f, i, j] = b[f] + sum_{c, u, v} W[f, c, u, v] * x_pad[n, c, i*sh + u, j*sw + v]

(no kernel flip: "convolution" in deep learning is cross-correlation).

Two implementations live here. ``conv2d_naive`` is the formula above as
plain loops: slow, but every line can be checked by hand, and the tests use
it as the reference. ``Conv2D`` computes the same thing with one matrix
product (im2col): copy every window into a column of a matrix ``cols`` of
shape (C*kh*kw, N*H_out*W_out), so that all N*H_out*W_out dot products become
``W.reshape(F, -1) @ cols``. The copy is built with one strided slice per
kernel position (kh*kw slices, each covering every sample and pixel), and the
backward pass adds the columns back with the same slices (col2im). On the
CPU a large batch is processed a few samples at a time, so that each chunk's
``cols`` (about 2 MiB) stays in the processor's cache between the copy and the
matrix product. The intermediate arrays (padded input, ``cols`` and their
gradients) are kept in a ``Workspace`` and reused from call to call; returned
arrays are always new.

Unlike PyTorch, which floors the output size and silently ignores the last
rows or columns of the input when ``(H + 2p - k)`` is not a multiple of the
stride, these layers refuse a configuration that would lose input pixels that
way, with a ValueError naming them (see ``conv_output_size``).
"""

import inspect

import numpy as np

from .. import init as initialisers
from ..backend import asarray, get_array_module
from ..parameter import Parameter
from .base import Layer, check_dout, check_input
from .workspace import Workspace


def _pair(value, name, minimum):
    """``value`` as a pair of ints ``(vertical, horizontal)``; an int is used for both."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                 for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_output_size(size, kernel, stride, padding, what="rows", layer="Conv2D"):
    """Output length ``floor((size + 2*padding - kernel) / stride) + 1`` along one axis.

    Raises a ValueError when the kernel is larger than the padded input, or
    when the windows would stop short of the last *input* rows (or columns):
    the last ``(size + 2*padding - kernel) % stride`` rows of the padded input
    are never covered by a window, and when that remainder exceeds the padding
    some real pixels would be dropped without a trace. PyTorch floors the size
    and drops them; here that is an error, so a wrong stride or padding is
    noticed. (A remainder that only cuts into the zero padding is harmless and
    allowed, e.g. the usual 3x3, stride 2, padding 1 convolution on an even size.)
    """
    padded = size + 2 * padding
    if kernel > padded:
        raise ValueError(
            f"{layer}: the kernel covers {kernel} {what} but the input has only {padded} "
            f"{what} ({size} + 2*{padding} padding); use a smaller kernel or more padding")
    span = padded - kernel
    uncovered = span % stride                  # trailing rows of the padded input no window reaches
    if uncovered > padding:
        first = size - (uncovered - padding)   # first real row that is lost
        lost = f"{what[:-1]} {first}" if first == size - 1 else f"{what} {first}..{size - 1}"
        raise ValueError(
            f"{layer}: with {size} {what}, padding {padding}, kernel {kernel} and stride {stride}, "
            f"(size + 2*padding - kernel) = {span} is not a multiple of the stride, so {lost} "
            f"of the input (counting from 0) would never be covered by a window and would be "
            f"silently dropped (PyTorch floors the output size here; course_lib refuses). "
            f"Change the padding or stride, or crop the input to {size - uncovered} {what}.")
    return span // stride + 1


def conv2d_naive(x, W, b=None, stride=1, padding=0):
    """Reference 2-D cross-correlation written as loops over every output entry.

    Args:
        x: input of shape (N, C, H, W).
        W: filters of shape (F, C, kh, kw).
        b: bias of shape (F,) or None.
        stride, padding: int or pair (vertical, horizontal), as PyTorch.
    Returns:
        out of shape (N, F, H_out, W_out) with
        ``out[n, f, i, j] = b[f] + sum(W[f] * x_pad[n, :, i*sh:i*sh+kh, j*sw:j*sw+kw])``.

    Slow (four nested Python loops); meant for reading and for testing ``Conv2D``.
    """
    xp = get_array_module(x, W)
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    N, C, H_in, W_in = x.shape
    F, C_w, kh, kw = W.shape
    if C != C_w:
        raise ValueError(f"conv2d_naive: x has {C} channels but W expects {C_w}")
    H_out = conv_output_size(H_in, kh, sh, ph, "rows", "conv2d_naive")
    W_out = conv_output_size(W_in, kw, sw, pw, "columns", "conv2d_naive")
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = xp.zeros((N, F, H_out, W_out), dtype=xp.result_type(x, W))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[n, f, i, j] = xp.sum(window * W[f])
            if b is not None:
                out[n, f] += b[f]
    return out


def _init_weight(init, shape, rng):
    """Draw a convolution kernel; fan-in/out use the (C_out, C_in, kh, kw) layout."""
    fn = initialisers.get(init)
    kwargs = {"layout": "out_in"} if "layout" in inspect.signature(fn).parameters else {}
    return fn(shape, rng=rng, **kwargs)


class Conv2D(Layer):
    """2-D convolution layer (cross-correlation), as ``torch.nn.Conv2d``.

    Shapes: ``x`` (N, C, H, W) with C = in_channels; ``W`` (F, C, kh, kw) with
    F = out_channels; ``b`` (F,); ``out`` (N, F, H_out, W_out), where
    ``H_out = floor((H + 2*ph - kh)/sh) + 1`` and likewise ``W_out``. Where
    PyTorch's flooring would silently skip the last rows or columns of the
    input, a ValueError names them instead (flooring that only skips zero
    padding is allowed).

    Forward (im2col): ``cols`` (C*kh*kw, N*H_out*W_out) holds every window as
    a column, and ``out = W.reshape(F, -1) @ cols + b``. Backward, with
    ``dout`` reshaped to (F, N*H_out*W_out)::

        db    = dout.sum over (N, H_out, W_out)
        dW    = dout @ cols.T                       (F, C*kh*kw)
        dcols = W.reshape(F, -1).T @ dout           (C*kh*kw, N*H_out*W_out)
        dx    = col2im(dcols): each column added back onto the window it came from

    On the CPU the batch goes through these steps in chunks of samples whose
    ``cols`` take about ``chunk_bytes`` (an attribute, 2 MiB); dW and db add up
    over the chunks. The result does not depend on the chunking beyond float
    rounding.

    Args:
        in_channels, out_channels: C and F.
        kernel_size, stride, padding: int or pair (vertical, horizontal).
            Padding adds zeros on both sides, as PyTorch.
        bias: whether to learn ``b`` (it starts at 0).
        init: name of a ``course_lib.init`` initialiser for ``W`` (default He
            uniform, fans from the (F, C, kh, kw) layout: fan_in = C*kh*kw).
        rng: ``numpy.random.Generator`` (default: seeded with 0).
        dtype: parameter dtype (float32 for speed, float64 for gradient checks).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 init="he_uniform", rng=None, dtype=np.float32):
        super().__init__()
        if int(in_channels) < 1 or int(out_channels) < 1:
            raise ValueError(f"Conv2D needs positive channel counts, got "
                             f"in_channels={in_channels}, out_channels={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        rng = rng if rng is not None else np.random.default_rng(0)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        # Parameters start on the default device (course_lib.backend.get_device()).
        self.W = Parameter(asarray(_init_weight(init, shape, rng), dtype=dtype), name="W")
        self.b = Parameter(asarray(np.zeros(self.out_channels), dtype=dtype), name="b") if bias else None
        self._work = Workspace()             # intermediate arrays reused between calls
        self.chunk_bytes = 2 ** 21           # see _chunks

    def output_shape(self, input_shape):
        """``(N, F, H_out, W_out)`` for an input of shape ``(N, C, H, W)`` (raises if invalid)."""
        N, _, H_in, W_in = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (N, self.out_channels,
                conv_output_size(H_in, kh, sh, ph, "rows"),
                conv_output_size(W_in, kw, sw, pw, "columns"))

    def forward(self, x):
        check_input(x, 4, "Conv2D", "(N, C, H, W)")
        xp = get_array_module(x, self.W.data)     # a clear error when x and W are on different devices
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2D expects {self.in_channels} input channels (W has shape "
                f"{tuple(self.W.data.shape)}), but x has shape {tuple(x.shape)} with "
                f"{x.shape[1]} channels along axis 1; is the input NCHW?")
        out_shape = self.output_shape(x.shape)
        F, H_out, W_out = out_shape[1:]
        W2 = self.W.data.reshape(F, -1)
        out = xp.empty(out_shape, dtype=xp.result_type(W2, x))
        chunks = self._chunks(x)
        for s, n in chunks:
            cols = self._im2col(x[s], xp)                     # (C*kh*kw, H_out*W_out*n)
            out2 = self._work.get(f"out{n}", (F, cols.shape[1]), out.dtype, xp)
            xp.matmul(W2, cols, out=out2)
            # Back to (n, F, H_out, W_out), adding the bias on the way.
            out2 = self._as_grid(out2, (F,), H_out, W_out, n).transpose(3, 0, 1, 2)
            if self.b is None:
                out[s] = out2
            else:
                xp.add(out2, self.b.data[:, None, None], out=out[s])
        # A batch done in one chunk keeps its column matrix for the backward pass;
        # with several, each chunk's is made again there (see _chunks).
        self.cache = (x, out_shape, cols if len(chunks) == 1 else None)
        return out

    def backward(self, dout):
        x, out_shape, kept_cols = self.cache
        xp = check_dout(self, dout, out_shape)
        F, H_out, W_out = out_shape[1:]
        W2 = self.W.data.reshape(F, -1)
        dx = xp.empty(x.shape, dtype=xp.result_type(W2, dout))
        for s, n in self._chunks(x):
            cols = kept_cols if kept_cols is not None else self._im2col(x[s], xp)
            # dout's columns in the same order as those of cols.
            dout2 = self._work.get(f"dout{n}", (F, cols.shape[1]), dout.dtype, xp)
            self._as_grid(dout2, (F,), H_out, W_out, n)[...] = dout[s].transpose(1, 2, 3, 0)
            if self.b is not None:
                self.b.grad += dout2.sum(axis=1)
            self.W.grad += (dout2 @ cols.T).reshape(self.W.data.shape)
            dcols = self._work.get(f"dcols{n}", cols.shape, dx.dtype, xp)
            xp.matmul(W2.T, dout2, out=dcols)
            dx[s] = self._col2im(dcols, x[s].shape, xp)
        return dx

    def _chunks(self, x):
        """Slices of the batch, with their sizes, processed one after the other.

        On the CPU, a chunk's column matrix is kept to about ``chunk_bytes``
        (2 MiB by default), so that it is still in the processor's cache when
        the matrix product reads it; one column matrix for a whole batch of 64
        would be 7 MB for a 16->32 3x3 layer on 14x14 images, and slower (measured
        with benchmarks/layers_vs_torch.py). With several chunks the backward pass
        builds each chunk's column matrix again rather than keeping them all:
        copying from the input is cheaper than reading 7 MB back from memory, and
        the layer's memory stays small on large images. On a GPU the whole batch is
        one chunk.
        """
        N, C, H_in, W_in = x.shape
        if N == 0 or get_array_module(x) is not np:
            return [(slice(0, N), N)]
        kh, kw = self.kernel_size
        _, _, H_out, W_out = self.output_shape(x.shape)
        per_sample = C * kh * kw * H_out * W_out * x.dtype.itemsize
        count = -(-N // max(1, self.chunk_bytes // per_sample))    # chunks needed (ceil division)
        size = -(-N // count)                   # as equal as possible; the last may be smaller
        return [(slice(i, min(i + size, N)), min(size, N - i)) for i in range(0, N, size)]

    def _im2col(self, x, xp):
        """The column matrix of a chunk x (n, C, H, W): shape (C*kh*kw, H_out*W_out*n).

        ``cols[(c, u, v), (i, j, m)] = x_pad[m, c, i*sh + u, j*sw + v]``; the column
        order (i, j, m) or (m, i, j) is chosen by ``_samples_last``.
        """
        n, C, H_in, W_in = x.shape
        _, _, H_out, W_out = self.output_shape(x.shape)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        # Channels first; all indexing below uses the axis order (C, H, W, n).
        if ph or pw:
            # The border is zeroed once, when the work array is made; each call
            # only overwrites the interior.
            x_pad = self._grid(f"x_pad{n}", (C,), H_in + 2 * ph, W_in + 2 * pw, n, x.dtype, xp)
            x_pad[:, ph:ph + H_in, pw:pw + W_in, :] = x.transpose(1, 2, 3, 0)
        else:
            x_pad = x.transpose(1, 2, 3, 0)
        cols = self._work.get(f"cols{n}", (C * kh * kw, H_out * W_out * n), x.dtype, xp)
        cols_grid = self._as_grid(cols, (C, kh, kw), H_out, W_out, n)
        for u in range(kh):
            for v in range(kw):
                cols_grid[:, u, v] = x_pad[:, u:u + sh * H_out:sh, v:v + sw * W_out:sw]
        return cols

    def _col2im(self, dcols, x_shape, xp):
        """Adds every column of dcols back onto the window it came from.

        The inverse bookkeeping of ``_im2col`` for a chunk of input shape
        ``x_shape`` (n, C, H, W); returns the gradient of that shape (a view of
        a work array: the caller copies it).
        """
        n, C, H_in, W_in = x_shape
        _, _, H_out, W_out = self.output_shape(x_shape)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        dcols = self._as_grid(dcols, (C, kh, kw), H_out, W_out, n)
        dx_pad = self._grid(f"dx_pad{n}", (C,), H_in + 2 * ph, W_in + 2 * pw, n, dcols.dtype, xp)
        dx_pad[...] = 0
        for u in range(kh):
            for v in range(kw):
                dx_pad[:, u:u + sh * H_out:sh, v:v + sw * W_out:sw] += dcols[:, u, v]
        return dx_pad[:, ph:ph + H_in, pw:pw + W_in].transpose(3, 0, 1, 2)

    @property
    def _samples_last(self):
        """Whether work arrays store (..., H, W, N) rather than (..., N, H, W).

        Samples last makes one window row of every sample, x_pad[c, i, j:j+W_out, :],
        a single contiguous run of W_out*N numbers (runs of N with a horizontal
        stride), so the kh*kw copies of im2col and the adds of col2im move long
        runs instead of rows of a few pixels. It costs a slower transpose of the
        input, output and their gradients (N moves to the last axis), which only
        pays off when there are several input channels (measured with
        benchmarks/layers_vs_torch.py); with one, (..., N, H, W) is faster.
        """
        return self.in_channels > 1

    def _as_grid(self, array, lead, H, W, N):
        """View with axes (*lead, H, W, N) of a work array stored as ``_samples_last`` says."""
        if self._samples_last:
            return array.reshape(lead + (H, W, N))
        xp = get_array_module(array)
        return xp.moveaxis(array.reshape(lead + (N, H, W)), len(lead), -1)

    def _grid(self, name, lead, H, W, N, dtype, xp):
        """Work array ``name`` seen with axes (*lead, H, W, N); see ``_as_grid``."""
        stored = lead + ((H, W, N) if self._samples_last else (N, H, W))
        return self._as_grid(self._work.get(name, stored, dtype, xp), lead, H, W, N)

    def __repr__(self):
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.b is not None})")
