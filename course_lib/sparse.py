"""Scatter-add of rows: ``W[rows[e]] += coef[e] * X[cols[e]]``, with repeated rows adding up.

The gradient of a row lookup ``out = W[idx]`` is such a sum: row ``i`` of
``dW`` collects ``dout`` from every position where ``idx == i``. Embedding
layers and word2vec's training steps all need it, for thousands of entries
at a time, many of them repeats. Plain ``W[rows] += X`` keeps only one
update of a repeated row, so it is wrong; ``np.add.at`` is right but slow.

On the CPU the entries become a SciPy sparse matrix ``M`` with ``coef[e]``
at ``(rows[e], cols[e])``, and the update is the product ``M @ X``
(:func:`sparse_rows_product`); on a GPU, CuPy's ``add.at`` sums with atomic
additions. :func:`scatter_add_rows` adds the result into ``W`` in place.
"""

import numpy as np

from .backend import get_array_module


def _indptr(sorted_keys, n):
    """CSR row pointers for keys sorted in non-decreasing order, ``n`` rows."""
    return np.concatenate(([0], np.cumsum(np.bincount(sorted_keys, minlength=n))))


def sparse_rows_product(n_rows, rows, X, cols=None, coef=None):
    """``Y`` of shape (n_rows, D) with ``Y[rows[e]] += coef[e] * X[cols[e]]`` for every e.

    That is ``Y = M @ X`` for the sparse (n_rows, len(X)) matrix M with
    entries ``coef[e]`` at ``(rows[e], cols[e])`` (duplicates add up).
    ``cols`` defaults to ``arange(len(rows))``, ``coef`` to ones.

    On NumPy this is a SciPy sparse-matrix product, which never builds the
    (E, D) array of scaled rows; entries are grouped without sorting when
    ``rows`` or ``cols`` is already sorted. It is one to two orders of
    magnitude faster than ``np.add.at``, sorting with ``np.add.reduceat`` or
    one ``np.bincount`` per column (``benchmarks/word2vec_vs_gensim.py``
    times all four). On CuPy it is ``add.at``, which uses atomic additions on
    the GPU.
    """
    xp = get_array_module(X)
    rows = xp.asarray(rows).reshape(-1)
    cols = xp.arange(rows.shape[0]) if cols is None else xp.asarray(cols).reshape(-1)
    if xp is not np:
        Y = xp.zeros((int(n_rows), X.shape[1]), dtype=X.dtype)
        values = X[cols] if coef is None else xp.asarray(coef, X.dtype).reshape(-1, 1) * X[cols]
        xp.add.at(Y, rows, values)
        return Y
    import scipy.sparse as sp

    data = (np.ones(rows.shape[0], X.dtype) if coef is None
            else np.asarray(coef, X.dtype).reshape(-1))
    n_x = X.shape[0]
    if rows.size < 2 or (rows[1:] >= rows[:-1]).all():
        M = sp.csr_matrix((data, cols, _indptr(rows, n_rows)), shape=(n_rows, n_x))
    elif (cols[1:] >= cols[:-1]).all():
        M = sp.csr_matrix((data, rows, _indptr(cols, n_x)), shape=(n_x, n_rows)).T
    else:
        order = np.argsort(rows, kind="stable")
        M = sp.csr_matrix((data[order], cols[order], _indptr(rows[order], n_rows)),
                          shape=(n_rows, n_x))
    return np.asarray(M @ X)


def scatter_add_rows(W, rows, X, cols=None, coef=None, max_updates=None):
    """In place: ``W[rows[e]] += coef[e] * X[cols[e]]`` for every e (repeated rows add up).

    Unlike ``W[rows] += X`` (where a repeated row keeps only one update), every
    entry counts. Only the rows that occur are touched. ``cols`` defaults to
    ``arange(len(rows))``, ``coef`` to ones. See :func:`sparse_rows_product`.

    ``max_updates``: a row that occurs ``m > max_updates`` times gets its
    summed update scaled by ``max_updates / m`` (``course_lib.word2vec.Word2Vec``
    uses it to keep frequent words from overshooting).

    Args:
        W: (V, D), updated in place; rows: ints in [0, V), shape (E,);
        X: (n, D); cols: ints in [0, n), shape (E,); coef: (E,).

    Returns:
        W.
    """
    xp = get_array_module(W, X)
    # As intp: NumPy 1's bincount refuses uint64 indices (which Embedding accepts).
    rows = xp.asarray(rows).reshape(-1).astype(xp.intp, copy=False)
    if xp is not np:
        # GPU: atomic adds straight into W; the cap scales each entry of a busy row.
        values = X[:rows.shape[0]] if cols is None else X[xp.asarray(cols).reshape(-1)]
        weight = None if coef is None else xp.asarray(coef, W.dtype).reshape(-1)
        if max_updates is not None:
            count = xp.bincount(rows, minlength=W.shape[0])
            cap = xp.minimum(1.0, max_updates / count[rows]).astype(W.dtype)
            weight = cap if weight is None else weight * cap
        xp.add.at(W, rows, values if weight is None else weight[:, None] * values)
        return W
    # Renumber the rows that occur as 0..n_used-1: the product is (n_used, D), not (V, D).
    count = np.bincount(rows, minlength=W.shape[0])
    used = np.flatnonzero(count)
    renumber = np.empty(W.shape[0], dtype=np.intp)
    renumber[used] = np.arange(used.shape[0])
    update = sparse_rows_product(used.shape[0], renumber[rows], X, cols, coef)
    if max_updates is not None:
        # Scaling a row's summed update is the same as scaling each of its entries.
        update *= np.minimum(1.0, max_updates / count[used]).astype(W.dtype)[:, None]
    W[used] += update
    return W


__all__ = ["scatter_add_rows", "sparse_rows_product"]
