"""Data sets, the IDX parser and the mini-batch loader.

Nothing here touches the network: the MNIST tests write small IDX files of
their own and serve them as if they had been downloaded.
"""

import gzip
import struct

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

from course_lib.data import DataLoader, load_digits, read_idx

N_DIGITS = 1797


# ---------------------------------------------------------------- digits

def raw_pixels(X, split):
    """Undo the standardisation; the digits' raw pixels are integers 0..16."""
    return X.astype(np.float64) * split.std + split.mean


@pytest.mark.parametrize("seed, val_fraction, test_fraction", [(0, 0.15, 0.2), (3, 0.1, 0.3)])
def test_digits_split_sizes_and_stratification(seed, val_fraction, test_fraction):
    split = load_digits(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    n_train, n_val, n_test = len(split.y_train), len(split.y_val), len(split.y_test)
    assert n_train + n_val + n_test == N_DIGITS
    assert abs(n_test - test_fraction * N_DIGITS) <= 1
    assert abs(n_val - val_fraction * N_DIGITS) <= 1
    assert split.X_train.shape == (n_train, 64) and split.X_train.dtype == np.float32
    assert split.y_train.dtype == np.int64

    _, y_all = sk_load_digits(return_X_y=True)
    full = np.bincount(y_all, minlength=10)
    parts = [np.bincount(y, minlength=10) for y in (split.y_train, split.y_val, split.y_test)]
    np.testing.assert_array_equal(sum(parts), full)   # every image in exactly one split
    for counts in parts:
        # Stratified: each class's share of a split matches its share of the whole,
        # up to the rounding of two successive splits (2 images).
        expected = full / N_DIGITS * counts.sum()
        assert np.abs(counts - expected).max() <= 2, (counts, expected)


def test_digits_standardised_with_training_statistics_only():
    split = load_digits(seed=1)
    X_raw, _ = sk_load_digits(return_X_y=True)
    for X in (split.X_train, split.X_val, split.X_test):
        raw = raw_pixels(X, split)
        # float32 storage of values up to ~35 in standard units: 1e-3 absorbs rounding.
        np.testing.assert_allclose(raw, np.round(raw), atol=1e-3)
        assert raw.min() > -1e-3 and raw.max() < 16 + 1e-3
    train_raw = np.round(raw_pixels(split.X_train, split))
    np.testing.assert_allclose(split.mean, train_raw.mean(axis=0), rtol=1e-5, atol=1e-5)
    train_std = train_raw.std(axis=0)
    varying = train_std > 0
    # the training std, floored at one grey level (constant pixels get 1: they are only centred)
    np.testing.assert_allclose(split.std, np.maximum(train_std, 1.0), rtol=1e-5)
    assert (train_std[varying] < 1.0).any(), "the floor should matter for some rare pixels"
    np.testing.assert_allclose(split.X_train[:, varying].mean(axis=0), 0, atol=1e-5)
    unfloored = train_std >= 1.0
    np.testing.assert_allclose(split.X_train[:, unfloored].std(axis=0), 1, rtol=1e-4)
    # The validation data were not used: their mean is not zero.
    assert np.abs(split.X_val.mean(axis=0)).max() > 0.05
    # A pixel that never lights up in training must not explode elsewhere.
    assert np.abs(split.X_test).max() < 1e3 and np.abs(split.X_val).max() < 1e3
    assert X_raw.shape == (N_DIGITS, 64)


def test_digits_seeding():
    a, b, c = load_digits(seed=5), load_digits(seed=5), load_digits(seed=6)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)


@pytest.mark.parametrize("kwargs, match", [
    ({"val_fraction": 0.0}, "val_fraction"),
    ({"test_fraction": 1.2}, "test_fraction"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "below 1"),
])
def test_digits_bad_fractions(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits(**kwargs)


# ---------------------------------------------------------------- DataLoader

@pytest.mark.parametrize("n, batch_size", [(1, 1), (10, 3), (64, 16), (37, 50), (100, 7)])
def test_loader_covers_every_index_once_per_epoch(n, batch_size):
    X = np.arange(n, dtype=np.float64).reshape(n, 1) * np.ones((1, 2))
    y = np.arange(n)
    loader = DataLoader(X, y, batch_size=batch_size, shuffle=True, seed=1)
    assert len(loader) == -(-n // batch_size)
    orders = []
    for _ in range(3):
        batches = list(loader)
        assert len(batches) == len(loader)
        seen = np.concatenate([yb for _, yb in batches])
        np.testing.assert_array_equal(np.sort(seen), np.arange(n))   # each row exactly once
        for Xb, yb in batches:
            np.testing.assert_array_equal(Xb[:, 0], yb)              # rows stay paired
        sizes = [len(yb) for _, yb in batches]
        assert all(s == batch_size for s in sizes[:-1])
        assert sizes[-1] == (n % batch_size or batch_size)           # the last, partial batch
        orders.append(seen)
    if n > 5:
        assert not np.array_equal(orders[0], orders[1]), "every epoch should be reshuffled"


def test_loader_drop_last_and_no_shuffle():
    X = np.arange(10.0).reshape(10, 1)
    loader = DataLoader(X, batch_size=4, shuffle=False, drop_last=True)
    batches = list(loader)
    assert len(loader) == 2 and len(batches) == 2
    np.testing.assert_array_equal(np.concatenate(batches)[:, 0], np.arange(8))   # X alone, in order


def test_loader_seeding():
    X = np.arange(50.0).reshape(50, 1)
    run = lambda seed: [np.concatenate(list(DataLoader(X, batch_size=8, seed=seed)))]
    first = [np.concatenate([b for b in DataLoader(X, batch_size=8, seed=2)]) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])               # same seed, same first epoch
    loader_a, loader_b = DataLoader(X, batch_size=8, seed=2), DataLoader(X, batch_size=8, seed=2)
    for _ in range(3):                                              # ... and same later epochs
        np.testing.assert_array_equal(np.concatenate(list(loader_a)), np.concatenate(list(loader_b)))
    assert not np.array_equal(run(2)[0], run(3)[0])


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((np.zeros((5, 2)), np.zeros(4)), {}, ValueError, "5 rows but y has 4"),
    ((np.zeros((5, 2)),), {"batch_size": 0}, ValueError, "batch_size"),
    ((np.zeros((5, 2)),), {"batch_size": 2.5}, ValueError, "batch_size"),
    (([1, 2, 3],), {}, TypeError, "array"),
    ((np.float64(3.0),), {}, TypeError, "array"),
])
def test_loader_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        DataLoader(*args, **kwargs)


# ---------------------------------------------------------------- IDX

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array, code=None):
    """An IDX file written by hand: magic 00 00 <code> <ndim>, big-endian sizes, big-endian data."""
    code = IDX_CODES[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("dtype", list(IDX_CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    shape = (3, 5, 2) if dtype in (np.uint8, np.float32) else (7,)
    array = (rng.normal(size=shape) * 50).astype(dtype)
    data = idx_bytes(array)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path)
    assert out.shape == shape and out.dtype == np.dtype(dtype)
    assert out.dtype.byteorder in "=|"
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b"\x01" + b[1:], "not an IDX file"),
    (lambda b: b[:2] + b"\x07" + b[3:], "not an IDX file"),
    (lambda b: b[:-3], "truncated"),
    (lambda b: b + b"\x00", "truncated"),
    (lambda b: b[:6], "header"),
    (lambda b: b[:2], "too short"),
    (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
    (lambda b: gzip.compress(b)[:-10], "gzip"),
])
def test_read_idx_rejects_bad_files(tmp_path, mutate, match):
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    path = tmp_path / "bad.idx"
    path.write_bytes(mutate(good))
    with pytest.raises(ValueError, match=match):
        read_idx(path)


# ---------------------------------------------------------------- MNIST, offline

def no_network(*args, **kwargs):
    raise OSError("network disabled in this test")


def write_fake_mnist(folder, n_train=40, n_test=12, seed=0):
    """Four small IDX files shaped like MNIST's; returns their contents and a checksum table."""
    import hashlib

    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    from course_lib.data import MNIST_FILES
    table = {}
    for key, (filename, _) in MNIST_FILES.items():
        data = gzip.compress(idx_bytes(arrays[key]))
        (folder / filename).write_bytes(data)
        table[key] = (filename, hashlib.sha256(data).hexdigest())
    return arrays, table


def test_mnist_checksum_table_is_well_formed():
    from course_lib.data import MNIST_FILES, MNIST_URL
    assert MNIST_URL.startswith("https://") and MNIST_URL.endswith("/")
    assert sorted(name for name, _ in MNIST_FILES.values()) == sorted(
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
    for _, sha in MNIST_FILES.values():
        assert len(sha) == 64 and set(sha) <= set("0123456789abcdef")


@pytest.mark.parametrize("flatten", [True, False])
def test_load_mnist_from_cache(tmp_path, monkeypatch, flatten):
    import urllib.request

    import course_lib.data as data
    arrays, table = write_fake_mnist(tmp_path)
    monkeypatch.setattr(data, "MNIST_FILES", table)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)   # the cache alone must do
    split = data.load_mnist(cache_dir=tmp_path, val_size=10, flatten=flatten)

    shape = (784,) if flatten else (1, 28, 28)
    assert split.X_train.shape == (30,) + shape and split.X_val.shape == (10,) + shape
    assert split.X_test.shape == (12,) + shape and split.images_shape == (28, 28)
    assert split.X_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert sorted(split.y_val.tolist()) == list(range(10))           # stratified: one per class
    to_pixels = lambda X: (X.astype(np.float64) * split.std + split.mean) * 255
    # float32 storage: 1e-3 of a grey level absorbs the rounding.
    np.testing.assert_allclose(to_pixels(split.X_test).reshape(12, 28, 28),
                               arrays["test_images"], atol=1e-3)      # test set in file order
    np.testing.assert_array_equal(split.y_test, arrays["test_labels"])
    train_pixels = np.round(to_pixels(split.X_train)) / 255
    assert split.mean == pytest.approx(train_pixels.mean(), rel=1e-6)  # training statistics only
    assert split.std == pytest.approx(train_pixels.std(), rel=1e-6)
    every = np.concatenate([np.round(to_pixels(split.X_train)), np.round(to_pixels(split.X_val))])
    np.testing.assert_array_equal(np.sort(every.reshape(40, -1), axis=0),
                                  np.sort(arrays["train_images"].reshape(40, -1), axis=0))


@pytest.mark.parametrize("images", [
    np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8),
    # MNIST-like, mostly dark; 1.1 million pixels, more than the histogram counts in one pass
    (np.random.default_rng(1).beta(0.3, 2, size=(1400, 28, 28)) * 255).astype(np.uint8),
    np.full((3, 28, 28), 200, dtype=np.uint8),                                      # constant
])
def test_pixel_statistics_from_the_histogram_equal_the_direct_ones(images):
    """load_mnist's statistics come from a 256-bin histogram; in float64 they agree with the
    direct computation up to rounding (~1e-16), and a constant image set is only centred."""
    from course_lib.data import _pixel_mean_std

    scaled = images.astype(np.float64) / 255
    mean, std = _pixel_mean_std(images)
    assert mean == pytest.approx(scaled.mean(), rel=1e-12)
    assert std == pytest.approx(scaled.std() if scaled.std() > 1e-8 else 1.0, rel=1e-12)


def test_load_mnist_offline_without_cache_says_what_to_do(tmp_path, monkeypatch):
    import urllib.request

    from course_lib.data import load_mnist
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(ConnectionError) as info:
        load_mnist(cache_dir=tmp_path)
    message = str(info.value)
    for words in (str(tmp_path), "train-images-idx3-ubyte.gz", "connect to the internet",
                  "load_digits"):
        assert words in message, words


def test_load_mnist_rejects_a_damaged_cache(tmp_path, monkeypatch):
    import urllib.request

    import course_lib.data as data
    _, table = write_fake_mnist(tmp_path)
    monkeypatch.setattr(data, "MNIST_FILES", table)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    name = table["test_labels"][0]
    (tmp_path / name).write_bytes((tmp_path / name).read_bytes()[:-5])  # checksum no longer matches
    with pytest.raises(ConnectionError, match=name):
        data.load_mnist(cache_dir=tmp_path)


def test_load_mnist_checks_content(tmp_path, monkeypatch):
    import hashlib
    import urllib.request

    import course_lib.data as data
    _, table = write_fake_mnist(tmp_path)
    bad = gzip.compress(idx_bytes(np.zeros((40, 28, 27), dtype=np.uint8)))   # 27 columns
    name = table["train_images"][0]
    (tmp_path / name).write_bytes(bad)
    table["train_images"] = (name, hashlib.sha256(bad).hexdigest())
    monkeypatch.setattr(data, "MNIST_FILES", table)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        data.load_mnist(cache_dir=tmp_path, val_size=10)
    with pytest.raises(ValueError, match="val_size"):
        data.load_mnist(cache_dir=tmp_path, val_size=0)


def test_rare_pixels_do_not_blow_up_held_out_images():
    """Pixels take values 0..16; with the std floored at one grey level no standardised value
    can exceed (16 - 0) / 1 = 16 in magnitude, whereas dividing by the raw std of a pixel lit
    once in a thousand training images gives values near 200."""
    for seed in range(3):
        split = load_digits(seed=seed)
        for name in ("X_train", "X_val", "X_test"):
            worst = float(np.abs(getattr(split, name)).max())
            assert worst <= 16.0, f"seed {seed}: {name} reaches {worst:.1f}"
        assert split.std.min() >= 1.0 - 1e-6
