"""The embedding layer: a one-hot vector times a matrix, computed as a row lookup."""

import numpy as np

from ..backend import get_array_module, is_gpu_array
from ..parameter import Parameter
from .base import Layer


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
        self.W = Parameter(np.asarray(W, dtype=dtype), name="W")

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
        idx = self.cache.reshape(-1)
        D = self.embedding_dim
        if dout.shape != self.cache.shape + (D,):
            raise ValueError(f"Embedding.backward: dout has shape {tuple(dout.shape)}, expected "
                             f"{self.cache.shape + (D,)} (the forward output's shape)")
        dout = dout.reshape(-1, D)
        if idx.size == 0:
            return None
        xp = get_array_module(dout)
        if is_gpu_array(dout):
            # On a GPU, add.at is one kernel with atomic additions: repeats are summed correctly.
            xp.add.at(self.W.grad, idx, dout)
            return None
        # On the CPU: sort the indices so that equal ones are neighbours, sum each
        # run of equal indices with one reduceat, then add each sum to its row
        # (every row once, so the fancy-indexed += is safe).
        order = xp.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        starts = xp.flatnonzero(xp.concatenate(([True], sorted_idx[1:] != sorted_idx[:-1])))
        sums = xp.add.reduceat(dout[order], starts, axis=0)
        self.W.grad[sorted_idx[starts]] += sums
        return None

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"
