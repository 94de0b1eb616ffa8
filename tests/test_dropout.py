"""Dropout: the inverted-dropout rule, its statistics, seeding, evaluation mode and bad p."""

import numpy as np
import pytest

from course_lib.gradcheck import check_layer_gradients
from course_lib.layers import Dropout, Layer


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_entries_are_dropped_or_scaled(p):
    x = np.random.default_rng(0).standard_normal((200, 300)) + 3     # no zeros in x
    out = Dropout(p, seed=1).forward(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-12)
    # The kept fraction is Binomial(60000, 1 - p) / 60000: within 5 standard deviations.
    sigma = np.sqrt(p * (1 - p) / x.size)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma


def test_expectation_is_preserved():
    x = np.full((400, 500), 2.0, dtype=np.float32)
    out = Dropout(0.3, seed=2).forward(x)
    # Mean of 200000 entries that are 0 or 2/0.7: standard error ~3e-3.
    assert abs(out.mean() - 2.0) < 0.02
    assert out.dtype == np.float32


def test_backward_uses_the_forward_mask():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 11)) + 5
    layer = Dropout(0.4, seed=4)
    out = layer.forward(x)
    dout = rng.standard_normal(x.shape)
    dx = layer.backward(dout)
    kept = out != 0
    np.testing.assert_array_equal(dx[~kept], 0)
    np.testing.assert_allclose(dx[kept], dout[kept] / 0.6, rtol=1e-12)


class FixedMaskDropout(Layer):
    """A fresh Dropout with the same seed at every forward, so every call draws the same mask
    and the layer is a fixed linear map that central differences can check."""

    def __init__(self, p, seed):
        super().__init__()
        self.p, self.seed = p, seed

    def forward(self, x):
        self.inner = Dropout(self.p, seed=self.seed)
        return self.inner.forward(x)

    def backward(self, dout):
        return self.inner.backward(dout)


@pytest.mark.parametrize("shape", [(1, 6), (4, 3, 2), (2, 3, 4, 5)])
def test_gradient_matches_central_differences(shape):
    rng = np.random.default_rng(5)
    check_layer_gradients(FixedMaskDropout(0.5, 6), rng.standard_normal(shape), rng=rng)


def test_seeded_and_advancing():
    x = np.ones((50, 50))
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))            # same seed, same masks
    assert not np.array_equal(first, a.forward(x))                # the next call draws anew
    assert not np.array_equal(first, Dropout(0.5, seed=8).forward(x))


def test_eval_mode_is_the_identity():
    x = np.random.default_rng(9).standard_normal((5, 6))
    layer = Dropout(0.9).eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    dout = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dout), dout)
    layer.train()
    assert (layer.forward(x) == 0).any()


def test_p_zero_keeps_everything():
    x = np.random.default_rng(10).standard_normal((3, 4))
    layer = Dropout(0.0)
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_bad_probability(p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(p)


@pytest.mark.parametrize("kwargs", [dict(p="0.5"), dict(p=None), dict(p=0.5, seed=1.5)])
def test_bad_types(kwargs):
    with pytest.raises(TypeError):
        Dropout(**kwargs)


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        Dropout(0.5).forward(np.ones((2, 2), dtype=np.int64))


def test_layers_made_without_a_seed_draw_different_masks():
    """Two Dropout layers of one network, both left at the default seed, must not drop the
    same entries (with one shared seed their masks were identical)."""
    x = np.ones((40, 40))
    first, second = Dropout(0.5), Dropout(0.5)
    assert first.seed != second.seed
    assert not np.array_equal(first.forward(x), second.forward(x))
