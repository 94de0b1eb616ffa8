"""Data sets that need no download, and mini-batches over them."""

from dataclasses import dataclass

import numpy as np

from .backend import get_array_module


@dataclass
class Split:
    """A train/validation/test split: ``X_*`` of shape (N, D) float32, ``y_*`` of shape (N,) int64."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    images_shape: tuple = (8, 8)

    def __repr__(self):
        return (f"Split(train={self.X_train.shape}, val={self.X_val.shape}, "
                f"test={self.X_test.shape}, classes={int(self.y_train.max()) + 1})")


def load_digits(seed=0, val_fraction=0.15, test_fraction=0.2):
    """scikit-learn's 1,797 handwritten digits (8x8 pixels, 10 classes), split and standardised.

    The split is stratified and seeded. Each pixel is standardised with the
    *training* set's mean and standard deviation only, so no information from
    validation or test data leaks into training:
    ``x' = (x - mean_train) / (std_train + 1e-8)``.

    Returns:
        Split with X_* of shape (N, 64) float32 and y_* of shape (N,) int64.
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    X, y = _sk_load_digits(return_X_y=True)
    X = X.astype(np.float64)
    y = y.astype(np.int64)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_fraction / (1 - test_fraction),
        random_state=seed, stratify=y_rest)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0) + 1e-8
    f = lambda a: ((a - mean) / std).astype(np.float32)
    return Split(f(X_train), y_train, f(X_val), y_val, f(X_test), y_test,
                 mean.astype(np.float32), std.astype(np.float32))


class DataLoader:
    """Iterates over ``(X_batch, y_batch)`` mini-batches.

    Args:
        X: array of shape (N, ...); y: array of shape (N, ...) or None.
        batch_size: rows per batch; the last batch may be smaller.
        shuffle: reshuffle at the start of every epoch, from a generator
            seeded with ``seed`` (so epoch k is the same on every run).
    """

    def __init__(self, X, y=None, batch_size=32, shuffle=True, seed=0, drop_last=False):
        if y is not None and len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}: they must match")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.X, self.y = X, y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        n = len(self.X)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.X)
        xp = get_array_module(self.X)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        order = xp.asarray(order)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            if self.y is None:
                yield self.X[idx]
            else:
                yield self.X[idx], self.y[idx]
