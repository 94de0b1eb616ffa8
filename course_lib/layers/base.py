"""The layer interface every part of course_lib follows.

A layer turns an input array into an output array in ``forward`` and, in
``backward``, turns the gradient of the loss with respect to its output
(``dout``) into the gradient with respect to its input (``dx``), adding the
gradients of its own parameters into their ``.grad``. ``forward`` keeps in
``self.cache`` whatever ``backward`` needs, so the two read side by side.
"""

from ..backend import get_array_module
from ..parameter import Parameter


class Layer:
    """Base class: ``y = layer(x)`` calls ``forward``; ``dx = layer.backward(dout)``."""

    def __init__(self):
        self.training = True
        self.cache = None

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, dout):
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, x):
        return self.forward(x)

    def parameters(self):
        """All Parameters of this layer and of the layers it contains, in a fixed order."""
        params = []
        for value in vars(self).values():
            if isinstance(value, Parameter):
                params.append(value)
            elif isinstance(value, Layer):
                params.extend(value.parameters())
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, Layer):
                        params.extend(item.parameters())
                    elif isinstance(item, Parameter):
                        params.append(item)
        return params

    def children(self):
        """The layers directly inside this one."""
        kids = []
        for value in vars(self).values():
            if isinstance(value, Layer):
                kids.append(value)
            elif isinstance(value, (list, tuple)):
                kids.extend(item for item in value if isinstance(item, Layer))
        return kids

    def train(self, mode=True):
        """Switch to training mode (dropout active, batch statistics used)."""
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Switch to evaluation mode (dropout off, running statistics used)."""
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def to(self, device):
        """Move every parameter to ``"cpu"`` or ``"gpu"`` (in place); returns self."""
        from ..backend import asarray
        for p in self.parameters():
            p.data = asarray(p.data, device=device)
            p.grad = asarray(p.grad, device=device)
        self._move_all_buffers(device)
        return self

    def _move_all_buffers(self, device):
        self._move_buffers(device)
        for child in self.children():
            child._move_all_buffers(device)

    def _move_buffers(self, device):
        """Layers with non-trainable state (running statistics) move it here."""

    def __repr__(self):
        return f"{type(self).__name__}()"


def check_input(x, ndim, name, expected="", features=None, feature_axis=-1):
    """Raise a clear error when ``x`` is not an array of the right rank and width.

    Args:
        x: the input array.
        ndim: required number of dimensions (int) or a tuple of allowed ones.
        name: the layer's name, used in the message.
        expected: a human-readable shape such as ``"(N, D)"``.
        features: required size of ``x.shape[feature_axis]``, or None.
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} expects an array, got {type(x).__name__}")
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        raise ValueError(
            f"{name} expects input of shape {expected} ({' or '.join(map(str, allowed))}-D), "
            f"got an array of shape {tuple(x.shape)}")
    if x.dtype.kind not in "fc":
        raise TypeError(
            f"{name} expects a floating-point array, got dtype {x.dtype}; "
            "convert with x.astype(np.float32) or np.float64")
    if features is not None and x.shape[feature_axis] != features:
        raise ValueError(
            f"{name} expects {features} features along axis {feature_axis}, "
            f"got input of shape {tuple(x.shape)}")
    return get_array_module(x)


def check_dout(layer, dout, shape):
    """Raise a clear error unless ``dout`` has ``shape``, the shape of ``layer``'s forward output.

    Without it a wrong-shaped gradient may broadcast silently (an element-wise
    backward) or fail with NumPy's message about operands. Returns the array
    module of ``dout``.
    """
    name = f"{type(layer).__name__}.backward"
    if not hasattr(dout, "shape") or not hasattr(dout, "dtype"):
        raise TypeError(f"{name} expects dout to be an array, got {type(dout).__name__}")
    if tuple(dout.shape) != tuple(shape):
        raise ValueError(f"{name}: dout has shape {tuple(dout.shape)}, expected {tuple(shape)} "
                         "(the shape of the forward output)")
    return get_array_module(dout)

