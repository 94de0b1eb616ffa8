"""The embedding layer: a one-hot vector times a matrix, computed as a row lookup."""

import numpy as np

from ..backend import asarray, get_array_module
from ..parameter import Parameter
from ..sparse import scatter_add_rows
from .base import Layer, check_dout


class Embedding(Layer):
    """``out[..., :] = W[idx[...], :]``, as ``torch.nn.Embedding``.

    Multiplying a one-hot row vector ``e_i`` (length V) by ``W`` (V, D) picks
    row i of ``W``; this layer does that lookup directly, without building
    the one-hot vectors.

    Shapes: ``idx`` integers of any shape with values in [0, V);
    ``W`` (V, D); ``out`` (*idx.shape, D).

    Backward: row i of ``W`` receives the sum of ``dout`` over every position
    where ``idx == i`` (an index that occurs twice in the batch collects both
    gradients)::

        dW[i] += sum_{k : idx[k] = i} dout[k]

    ``backward`` returns None: the indices are integers, so there is no
    gradient with respect to them; an Embedding is the first layer of a model.

    Args:
        num_embeddings: V, the number of rows (e.g. the vocabulary size).
        embedding_dim: D.
        rng: ``numpy.random.Generator`` (default: seeded with 0).
        dtype: parameter dtype.

    ``W`` starts as N(0, 1) entries, as PyTorch initialises it.
    """

    def __init__(self, num_embeddings, embedding_dim, rng=None, dtype=np.float32):
        super().__init__()
        if int(num_embeddings) < 1 or int(embedding_dim) < 1:
            raise ValueError(f"Embedding needs positive sizes, got "
                             f"num_embeddings={num_embeddings}, embedding_dim={embedding_dim}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        rng = rng if rng is not None else np.random.default_rng(0)
        W = rng.standard_normal((self.num_embeddings, self.embedding_dim))
        self.W = Parameter(asarray(W, dtype=dtype), name="W")   # on the default device

    def forward(self, idx):
        if not hasattr(idx, "dtype"):
            idx = get_array_module(self.W.data).asarray(idx)
        xp = get_array_module(idx, self.W.data)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding expects integer indices, got dtype {idx.dtype}; "
                            "convert with idx.astype(np.int64) if the values are whole numbers")
        if idx.size:
            low, high = int(idx.min()), int(idx.max())
            if low < 0 or high >= self.num_embeddings:
                raise ValueError(f"Embedding indices must lie in [0, {self.num_embeddings - 1}] "
                                 f"for {self.num_embeddings} rows, got values from {low} to {high}")
        self.cache = idx
        return xp.take(self.W.data, idx, axis=0)     # W[idx], without fancy-indexing overhead

    def backward(self, dout):
        D = self.embedding_dim
        check_dout(self, dout, self.cache.shape + (D,))
        # Every occurrence counts: scatter_add_rows sums the rows of repeated indices.
        scatter_add_rows(self.W.grad, self.cache.reshape(-1), dout.reshape(-1, D))
        return None

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"
