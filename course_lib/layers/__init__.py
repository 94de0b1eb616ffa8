"""Layers: each maps ``x`` to ``out`` in ``forward`` and ``dout`` to ``dx`` in ``backward``."""

from .base import Layer, check_input
from .dense import Linear
from .activations import Identity, ReLU, LeakyReLU, Sigmoid, Tanh, Softplus, Softmax
from .container import Sequential
