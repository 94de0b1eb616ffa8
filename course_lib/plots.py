"""Figures the chapters draw again and again: training curves, decision boundaries, image grids.

Each function returns its matplotlib ``Figure``. In a notebook, end the line
with ``;`` or assign the result (``fig = plot_history(h)``) so the figure is
shown once.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .backend import to_numpy

_CURVES = ("train_loss", "train_acc", "val_loss", "val_acc")


def _history_lists(history):
    """The four per-epoch lists of a ``train.History`` or of a dict with the same keys."""
    if isinstance(history, dict):
        get = history.get
    elif all(hasattr(history, k) for k in ("train_loss", "val_loss")):
        get = lambda k: getattr(history, k, None)
    else:
        raise TypeError("plot_history expects the History returned by fit() or a dict with "
                        f"train_loss, val_loss, train_acc, val_acc; got {type(history).__name__}")
    curves = {}
    for k in _CURVES:
        values = get(k)       # a list, or a NumPy array (whose truth value is ambiguous)
        curves[k] = [] if values is None else [float(v) for v in values]
    if not curves["train_loss"] and not curves["val_loss"]:
        raise ValueError("the history holds no losses: did training run for at least one epoch?")
    epochs = max(len(v) for v in curves.values())
    for k, v in curves.items():
        if v and len(v) != epochs:
            raise ValueError(f"{k} has {len(v)} entries but the history has {epochs} epochs; "
                             "every curve needs one value per epoch")
    return curves


def plot_history(history, figsize=None):
    """Loss curves (and accuracy curves, for a classifier), training against validation.

    Args:
        history: the ``History`` returned by ``course_lib.train.fit``, or a dict
            with per-epoch lists (or 1-D arrays) ``train_loss``, ``val_loss``,
            ``train_acc``, ``val_acc`` (missing or empty ones are left out).
        figsize: (width, height) in inches.

    Returns:
        The Figure: one panel for the loss, a second for accuracy when there is
        any. A dotted line marks ``history.best_epoch`` when early stopping set it.
    """
    curves = _history_lists(history)
    has_acc = bool(curves["train_acc"] or curves["val_acc"])
    ncols = 2 if has_acc else 1
    fig, axes = plt.subplots(1, ncols, figsize=figsize or (4.5 * ncols, 3.2), squeeze=False)
    best = history.get("best_epoch") if isinstance(history, dict) else getattr(history, "best_epoch", None)
    panels = [("loss", "train_loss", "val_loss")]
    if has_acc:
        panels.append(("accuracy", "train_acc", "val_acc"))
    for ax, (label, train_key, val_key) in zip(axes[0], panels):
        for key, name, style in ((train_key, "train", "-"), (val_key, "validation", "--")):
            values = curves[key]
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o" if len(values) < 30 else None,
                        markersize=3, label=name)
        if best is not None:
            ax.axvline(best, color="gray", linestyle=":", label=f"best epoch ({best})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_decision_boundary(predict_fn, X, y, ax=None, resolution=200, padding=0.5,
                           threshold=0.5, title=None):
    """The regions a classifier assigns to each class in the plane, with the data on top.

    ``predict_fn`` is called once on a ``resolution x resolution`` grid of points
    covering the data (plus ``padding``), as an array of shape (M, 2).

    Args:
        predict_fn: maps points (M, 2) to either class labels (M,) (integers),
            class scores (M, C) (the arg-max is taken), or the probability of
            class 1, (M,) or (M, 1) floats (class 1 where it exceeds ``threshold``).
        X: (N, 2) points; y: (N,) integer labels.
        ax: Axes to draw into (default: a new figure).
        resolution: grid points per axis.
        padding: margin around the data, in data units.
        title: optional axes title.

    Returns:
        The Figure.
    """
    X, y = to_numpy(X), to_numpy(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D points X of shape (N, 2), "
                         f"got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("plot_decision_boundary got no points (N = 0)")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
    if y.dtype.kind not in "iub" and not np.array_equal(y, np.round(y)):
        raise ValueError("y must hold integer class labels, got non-integer values")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"class labels must be >= 0, got {y.min()}")
    if not callable(predict_fn):
        raise TypeError(f"predict_fn must be a function of points (M, 2), got {type(predict_fn).__name__}")
    if int(resolution) < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")

    lo, hi = X.min(axis=0) - padding, X.max(axis=0) + padding
    xs = np.linspace(lo[0], hi[0], int(resolution))
    ys = np.linspace(lo[1], hi[1], int(resolution))
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(X.dtype if X.dtype.kind == "f" else np.float64)
    pred = to_numpy(predict_fn(grid))
    if pred.ndim == 2 and pred.shape[1] > 1:
        pred = pred.argmax(axis=1)
    else:
        if pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred[:, 0]
        if pred.dtype.kind == "f":
            pred = pred > threshold
        pred = pred.astype(np.int64)
    if pred.shape != (grid.shape[0],):
        raise ValueError(f"predict_fn returned shape {pred.shape} for {grid.shape[0]} points; "
                         f"expected ({grid.shape[0]},) labels or ({grid.shape[0]}, C) scores")

    n_classes = int(max(pred.max(), y.max())) + 1
    cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4))
    else:
        fig = ax.figure
    levels = np.arange(n_classes + 1) - 0.5    # one colour band per class
    ax.contourf(gx, gy, pred.reshape(gx.shape), levels=levels, cmap=cmap, vmin=0,
                vmax=cmap.N - 1, alpha=0.3)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=0, vmax=cmap.N - 1, s=14,
               edgecolors="k", linewidths=0.4)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    if title:
        ax.set_title(title)
    return fig


def _as_images(images):
    """(N, H, W) from (N, H, W), (N, 1, H, W) (NCHW, one channel) or (N, D) with D a square."""
    images = to_numpy(images)
    if images.ndim == 4 and images.shape[1] == 1:
        return images[:, 0]
    if images.ndim == 3:
        return images
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f"image_grid got flat images of {images.shape[1]} pixels, which is "
                             "not a square number; pass them as (N, H, W)")
        return images.reshape(-1, side, side)
    raise ValueError(f"image_grid expects images of shape (N, H, W), (N, 1, H, W) or (N, H*W) "
                     f"(e.g. (N, 64) digits), got shape {images.shape}")


def image_grid(images, labels=None, ncols=10, titles=None, cmap="gray_r", figsize=None):
    """Show images in a grid, each with its label as a title.

    Args:
        images: (N, H, W), (N, 1, H, W) or flat (N, H*W) with a square number of
            pixels, such as the (N, 64) digits (shown as 8x8).
        labels: optional (N,) values written above each image.
        ncols: images per row.
        titles: optional list of N strings, used instead of ``labels``.
        cmap: matplotlib colour map (``"gray_r"``: dark ink on white).
        figsize: (width, height) in inches.

    Returns:
        The Figure.
    """
    images = _as_images(images)
    n = images.shape[0]
    if n == 0:
        raise ValueError("image_grid got no images (N = 0)")
    if isinstance(ncols, bool) or int(ncols) != ncols or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    if labels is not None:
        labels = to_numpy(labels).reshape(-1)
        if labels.shape[0] != n:
            raise ValueError(f"got {n} images but {labels.shape[0]} labels")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {n} images but {len(titles)} titles")
    ncols = min(int(ncols), n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=figsize or (1.1 * ncols, 1.25 * nrows))
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap=cmap, interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
        elif labels is not None:
            ax.set_title(str(labels[i]), fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


__all__ = ["plot_history", "plot_decision_boundary", "image_grid"]
