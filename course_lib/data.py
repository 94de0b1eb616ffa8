"""Data sets and mini-batches over them.

``load_digits`` needs no download (scikit-learn ships the 8x8 digits).
``load_mnist`` downloads the four MNIST files once into a cache, checks their
SHA-256 sums, and reads them with ``read_idx``, a small parser for the IDX
format they are stored in.
"""

import gzip
from numbers import Integral
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backend import get_array_module


@dataclass
class Split:
    """A train/validation/test split: ``X_*`` of shape (N, D) float32, ``y_*`` of shape (N,) int64.

    ``mean`` and ``std`` are the training statistics the inputs were standardised
    with (``x' = (x - mean) / std``), kept so new inputs can be treated the same
    way; ``images_shape`` is the (H, W) of one image.
    """
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


def _training_std(X_train, axis=0, min_std=1e-8):
    """Standard deviation of the training data, never below ``min_std``.

    Dividing by a tiny standard deviation blows up a feature that is almost
    constant in training but not in a later image: a digits pixel that is lit
    in one training image in a thousand has std 0.03 and would turn a
    held-out stroke into a value near 200. A feature constant in training
    (std below 1e-8) is only centred.
    """
    return _floor_std(X_train.std(axis=axis), min_std)


def _floor_std(std, min_std):
    """``max(std, min_std)``, and 1 where ``std < 1e-8`` (a constant feature is only centred)."""
    return np.where(std < 1e-8, 1.0, np.maximum(std, min_std))


def _pixel_mean_std(images, min_std=1e-8):
    """Mean and standard deviation of ``images / 255`` for uint8 images, from a histogram.

    With ``n_v`` pixels of value v (v = 0..255) out of ``n`` and ``x_v = v / 255``::

        mean = sum_v n_v x_v / n,    std = sqrt(sum_v n_v (x_v - mean)^2 / n)

    the same numbers as ``(images / 255).mean()`` and ``.std()`` up to rounding,
    without a float64 copy of the images (314 MB for MNIST's training set).
    The std is floored as in :func:`_training_std`.

    Returns:
        (mean, std) as floats.
    """
    flat = images.reshape(-1)
    counts = np.zeros(256, dtype=np.int64)
    for start in range(0, flat.shape[0], 1 << 20):   # bincount makes an int64 copy: 8 MB at a time
        counts += np.bincount(flat[start:start + (1 << 20)], minlength=256)
    values = np.arange(256) / 255.0
    mean = counts @ values / counts.sum()
    std = np.sqrt(counts @ (values - mean) ** 2 / counts.sum())
    return float(mean), float(_floor_std(std, min_std))


def load_digits(seed=0, val_fraction=0.15, test_fraction=0.2):
    """scikit-learn's 1,797 handwritten digits (8x8 pixels, 10 classes), split and standardised.

    The split is stratified and seeded. Each pixel is standardised with the
    *training* set's mean and standard deviation only, so no information from
    validation or test data leaks into training:
    ``x' = (x - mean_train) / max(std_train, 1)``. Pixels take the values
    0..16, so the floor of one grey level only touches pixels that are almost
    always blank in training; without it a rare stroke in a held-out image
    would become a value near 200 (a pixel constant in training is only centred).

    Returns:
        Split with X_* of shape (N, 64) float32 and y_* of shape (N,) int64.
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < frac < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {frac}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be below 1 (some data must be left "
                         f"for training), got {val_fraction} + {test_fraction}")
    X, y = _sk_load_digits(return_X_y=True)
    X = X.astype(np.float64)
    y = y.astype(np.int64)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_fraction / (1 - test_fraction),
        random_state=seed, stratify=y_rest)
    mean = X_train.mean(axis=0)
    std = _training_std(X_train, min_std=1.0)
    f = lambda a: ((a - mean) / std).astype(np.float32)
    return Split(f(X_train), y_train, f(X_val), y_val, f(X_test), y_test,
                 mean.astype(np.float32), std.astype(np.float32))


# ---------------------------------------------------------------- IDX files

# The third byte of an IDX file's magic number says how each entry is stored;
# multi-byte entries are big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read an IDX file (the format of the MNIST files), plain or gzip-compressed.

    Layout: a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then
    ``ndim`` big-endian uint32 sizes, then the entries in C order. The dtype
    codes are 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64.

    Returns:
        A NumPy array of shape given by the sizes, in native byte order.

    Raises:
        ValueError when the magic number is malformed or the number of bytes
        does not match the sizes in the header (a truncated download, say).
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip's own magic number
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path.name}: the gzip data is damaged ({exc}); "
                             "delete the file and download it again") from None
    if len(raw) < 4:
        raise ValueError(f"{path.name}: {len(raw)} bytes is too short for an IDX file "
                         "(the header alone takes at least 8)")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES:
        raise ValueError(f"{path.name}: not an IDX file (magic number {raw[:4].hex()}; expected "
                         "00 00, a dtype code among 08 09 0b 0c 0d 0e, and the rank)")
    if ndim == 0:
        raise ValueError(f"{path.name}: the IDX header says the array has 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path.name}: the file ends inside its header ({len(raw)} bytes, "
                         f"the header of a {ndim}-D array takes {header})")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path.name}: the header announces shape {shape} of {dtype.name}, "
                         f"that is {expected} bytes, but the file has {len(raw)}: "
                         "it is truncated or damaged")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


# ---------------------------------------------------------------- MNIST

#: The mirror TensorFlow and others use since the original site stopped serving the files.
MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

#: File name and SHA-256 of each of the four gzip-compressed IDX files.
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz",
                     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train_labels": ("train-labels-idx1-ubyte.gz",
                     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "test_images": ("t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}


def _check_mnist_pair(images, labels, names):
    """The images must be (N, 28, 28) uint8 and the labels (N,) uint8 in 0..9."""
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{names[0]}: expected uint8 images of shape (N, 28, 28), got "
                         f"{images.dtype} of shape {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{names[1]}: expected uint8 labels of shape (N,), got "
                         f"{labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{names[0]} holds {len(images)} images but {names[1]} "
                         f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{names[1]}: labels must lie in 0..9, found {labels.max()}")


def _fetch_mnist(cache_dir):
    """Paths of the four MNIST files, downloaded into the cache folder if not there yet."""
    from .download import fetch, get_cache_dir

    folder = get_cache_dir(cache_dir)
    paths = {}
    for key, (filename, sha256) in MNIST_FILES.items():
        try:
            paths[key] = fetch(MNIST_URL + filename, sha256, folder, filename)
        except OSError as exc:  # ConnectionError from fetch: no network, DNS, HTTP error
            raise ConnectionError(
                f"MNIST is not in the cache folder {folder} and {filename} could not be "
                f"downloaded from {MNIST_URL} ({exc}). Either connect to the internet and call "
                "load_mnist() once (later calls need no network), or download the four files "
                f"{', '.join(name for name, _ in MNIST_FILES.values())} elsewhere and copy them "
                f"into {folder} (or into a folder you pass as cache_dir). Without MNIST, "
                "load_digits() gives a smaller digits data set that needs no download.") from exc
    return paths


def load_mnist(cache_dir=None, seed=0, val_size=10_000, flatten=True):
    """MNIST: 70,000 handwritten digits of 28x28 pixels, 10 classes, split and standardised.

    The four IDX files are downloaded once into ``cache_dir`` and their SHA-256
    checked (see ``course_lib.download.fetch``); later calls read the cache and
    need no network. The official 10,000 test images are the test set; a
    stratified, seeded draw of ``val_size`` of the 60,000 training images is the
    validation set. Pixels are scaled to [0, 1] and then standardised with one
    mean and one standard deviation computed on the training images only
    (about 0.13 and 0.31): ``x' = (x/255 - mean) / std``.

    Args:
        cache_dir: folder for the downloaded files (None: ``$COURSE_LIB_CACHE``,
            else ``~/.cache/course_lib``; see ``course_lib.download.get_cache_dir``).
        seed: seed of the validation draw.
        val_size: number of training images set aside for validation.
        flatten: X of shape (N, 784) if True, (N, 1, 28, 28) (PyTorch's NCHW) if False.

    Returns:
        Split with X_* float32 and y_* of shape (N,) int64; ``images_shape`` (28, 28).

    Raises:
        ConnectionError saying what to do when the files are not cached and
        cannot be downloaded; ValueError when a file's checksum or content is wrong.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < int(val_size) < 60_000:
        raise ValueError(f"val_size must lie between 1 and 59,999, got {val_size}")
    paths = _fetch_mnist(cache_dir)
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        _check_mnist_pair(arrays[f"{split}_images"], arrays[f"{split}_labels"],
                          (paths[f"{split}_images"].name, paths[f"{split}_labels"].name))

    X = arrays["train_images"]
    y = arrays["train_labels"].astype(np.int64)
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=int(val_size), random_state=seed, stratify=y)
    mean, std = _pixel_mean_std(X_train)
    shape = (-1, 784) if flatten else (-1, 1, 28, 28)
    f = lambda a: ((a.astype(np.float32) / 255.0 - mean) / std).astype(np.float32).reshape(shape)
    return Split(f(X_train), y_train, f(X_val), y_val,
                 f(arrays["test_images"]), arrays["test_labels"].astype(np.int64),
                 np.float32(mean), np.float32(std), images_shape=(28, 28))


# ---------------------------------------------------------------- mini-batches

class DataLoader:
    """Iterates over ``(X_batch, y_batch)`` mini-batches (or ``X_batch`` alone when ``y`` is None).

    Args:
        X: array of shape (N, ...), NumPy or CuPy; y: array of shape (N, ...) or None.
        batch_size: rows per batch; the last batch may be smaller unless
            ``drop_last`` is True.
        shuffle: reshuffle at the start of every epoch, from a generator
            seeded with ``seed`` (so epoch k is the same on every run).
        drop_last: skip a last batch smaller than ``batch_size``.

    Every epoch visits each row exactly once (with ``drop_last``, at most once).
    """

    def __init__(self, X, y=None, batch_size=32, shuffle=True, seed=0, drop_last=False):
        if not hasattr(X, "shape") or len(X.shape) == 0:
            raise TypeError(f"X must be an array of shape (N, ...), got {type(X).__name__}"
                            + (f" of shape {tuple(X.shape)}" if hasattr(X, "shape") else ""))
        if y is not None and (not hasattr(y, "shape") or len(y.shape) == 0):
            raise TypeError(f"y must be an array of shape (N, ...) or None, got {type(y).__name__}")
        if y is not None and len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}: they must match")
        if (isinstance(batch_size, bool) or not isinstance(batch_size, Integral)
                or batch_size < 1):
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
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        # Each array is indexed with indices on its own device (X may be CuPy, y NumPy).
        order_X = get_array_module(self.X).asarray(order)
        order_y = None if self.y is None else get_array_module(self.y).asarray(order)
        for i in range(len(self)):
            batch = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if self.y is None:
                yield self.X[order_X[batch]]
            else:
                yield self.X[order_X[batch]], self.y[order_y[batch]]


# ---------------------------------------------------------------- augmentation

def random_shifts(images, rng, max_shift=1):
    """Each image moved by its own random whole-pixel offset, the uncovered border filled with 0.

    Data augmentation for small images: a digit moved by a pixel is still the
    same digit, so a network trained on shifted copies learns to ignore such
    moves. Image n is moved down by ``di[n]`` and right by ``dj[n]`` pixels,
    both drawn uniformly from ``-max_shift..max_shift`` (negative: up or left)::

        out[n, c, i, j] = images[n, c, i - di[n], j - dj[n]]   (0 outside the image)

    Pixels moved past the edge are lost. Loops over the (2*max_shift + 1)**2
    offsets, never over images.

    Args:
        images: array of shape (N, C, H, W) (NumPy or CuPy), zero where blank.
        rng: ``numpy.random.Generator`` that draws the offsets.
        max_shift: largest move in pixels along each axis, an int >= 0 and
            smaller than H and W.

    Returns:
        A new array of the same shape and dtype.
    """
    if not hasattr(images, "shape") or images.ndim != 4:
        raise ValueError("random_shifts expects images of shape (N, C, H, W), got "
                         + (f"shape {tuple(images.shape)}" if hasattr(images, "shape")
                            else type(images).__name__))
    if isinstance(max_shift, bool) or not isinstance(max_shift, Integral) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}")
    N, _, H, W = images.shape
    m = int(max_shift)
    if m >= min(H, W):
        raise ValueError(f"max_shift={m} would move a {H}x{W} image out of the frame; "
                         f"use at most {min(H, W) - 1}")
    xp = get_array_module(images)
    offsets = rng.integers(-m, m + 1, size=(2, N))
    padded = xp.pad(images, ((0, 0), (0, 0), (m, m), (m, m)))
    out = xp.empty_like(images)
    for di in range(-m, m + 1):
        for dj in range(-m, m + 1):
            chosen = xp.asarray(np.flatnonzero((offsets[0] == di) & (offsets[1] == dj)))
            # out[i, j] = images[i - di, j - dj] = padded[i - di + m, j - dj + m]
            out[chosen] = padded[chosen, :, m - di:m - di + H, m - dj:m - dj + W]
    return out
