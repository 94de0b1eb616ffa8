"""Layers: each maps ``x`` to ``out`` in ``forward`` and ``dout`` to ``dx`` in ``backward``."""

from .base import Layer, check_input
from .dense import Linear
from .activations import Identity, ReLU, LeakyReLU, Sigmoid, Tanh, Softplus, Softmax
from .container import Sequential
from .conv import Conv2D, conv2d_naive, conv_output_size
from .pool import MaxPool2D, AvgPool2D
from .shape import Flatten
from .norm import BatchNorm1d, BatchNorm2d
from .dropout import Dropout
from .embedding import Embedding
from .recurrent import RNN, LSTM
