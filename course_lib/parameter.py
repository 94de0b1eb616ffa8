"""A trainable array and the gradient that backpropagation accumulates into it."""

from .backend import get_array_module


class Parameter:
    """A trainable array.

    Attributes:
        data: the values, any shape.
        grad: the gradient of the loss with respect to ``data``, same shape and
            dtype. Layers *add* into it during ``backward``, so several uses of
            one parameter sum their contributions; optimizers zero it with
            ``zero_grad``.
    """

    def __init__(self, data, name=None):
        xp = get_array_module(data)
        self.data = data
        self.grad = xp.zeros_like(data)
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    def zero_grad(self):
        self.grad[...] = 0

    def __repr__(self):
        label = f"{self.name}, " if self.name else ""
        return f"Parameter({label}shape={tuple(self.data.shape)}, dtype={self.data.dtype})"
