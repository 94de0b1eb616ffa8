"""course_lib: a small deep-learning library written to be read.

NumPy on the CPU, CuPy on a GPU (see ``course_lib.backend``). Layers follow
PyTorch's conventions for shapes and definitions, so what a student learns
here carries over.
"""

from .parameter import Parameter
from .backend import get_array_module, to_numpy, asarray, set_device, get_device
from .word2vec import Word2Vec

__version__ = "0.1.0"

__all__ = ["Parameter", "get_array_module", "to_numpy", "asarray", "set_device",
           "get_device", "Word2Vec", "__version__"]
