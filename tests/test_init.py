"""Initialisers: the variances they promise, fans as PyTorch defines them, explicit generators."""

import numpy as np
import pytest

from course_lib import init


def test_fans_follow_pytorch():
    assert init.fans((30, 20)) == (30, 20)                       # Linear W: (in, out)
    assert init.fans((16, 3, 5, 5), layout="out_in") == (75, 400)  # Conv W: (C_out, C_in, kh, kw)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.fans((5,))


# With 200*300 = 60,000 draws the sample variance has a relative standard error of about
# sqrt(2/60000) ~ 0.6% (normal) and less for uniform; 3% is five standard errors.
@pytest.mark.parametrize("name, variance", [
    ("glorot_uniform", 2 / 500), ("glorot_normal", 2 / 500),
    ("he_uniform", 2 / 200), ("he_normal", 2 / 200), ("normal", 0.01 ** 2)])
def test_variance_matches_the_formula(name, variance):
    W = init.get(name)((200, 300), rng=np.random.default_rng(0))
    assert W.shape == (200, 300)
    assert abs(W.mean()) < 5 * np.sqrt(variance / W.size)
    assert W.var() == pytest.approx(variance, rel=0.03)


def test_uniform_bounds():
    W = init.glorot_uniform((50, 70), rng=np.random.default_rng(1))
    assert np.abs(W).max() <= np.sqrt(6 / 120)


def test_seeded_generators_repeat_and_differ():
    a = init.he_normal((4, 5), rng=np.random.default_rng(3))
    b = init.he_normal((4, 5), rng=np.random.default_rng(3))
    c = init.he_normal((4, 5), rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_zeros_and_errors():
    assert not init.zeros((3, 2)).any()
    with pytest.raises(TypeError, match="explicit random generator"):
        init.he_uniform((3, 2), rng=0)
    with pytest.raises(ValueError, match="unknown initialiser"):
        init.get("orthogonal")
