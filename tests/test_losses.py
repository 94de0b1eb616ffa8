"""Losses: gradient checks, agreement with their textbook definitions, and error messages."""

import numpy as np
import pytest

from course_lib.gradcheck import check_loss_gradient
from course_lib.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss


def shapes(seed):
    rng = np.random.default_rng(seed)
    return rng, int(rng.integers(1, 9)), int(rng.integers(2, 7))


@pytest.mark.parametrize("seed", range(5))
def test_mse_gradient_and_value(seed):
    rng, N, D = shapes(seed)
    pred, target = rng.standard_normal((N, D)), rng.standard_normal((N, D))
    check_loss_gradient(MSELoss(), pred, target)
    assert MSELoss()(pred, target) == pytest.approx(np.mean((pred - target) ** 2), rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_bce_with_logits_gradient_and_value(seed):
    rng, N, D = shapes(seed)
    z, y = rng.standard_normal((N, D)) * 4, rng.uniform(size=(N, D))
    check_loss_gradient(BCEWithLogitsLoss(), z, y)
    p = 1 / (1 + np.exp(-z))
    naive = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert BCEWithLogitsLoss()(z, y) == pytest.approx(naive, rel=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_cross_entropy_gradient_and_value(seed):
    rng, N, C = shapes(seed)
    z, y = rng.standard_normal((N, C)) * 3, rng.integers(0, C, size=N)
    check_loss_gradient(CrossEntropyLoss(), z, y)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    naive = -np.mean(np.log(p[np.arange(N), y]))
    assert CrossEntropyLoss()(z, y) == pytest.approx(naive, rel=1e-10)


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    loss = CrossEntropyLoss()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss(z, np.array([0, 2]))
        grad = loss.backward()
    # row 0 is certain and right (loss 0); row 1 puts the label 1 below the max: loss log(1 + e)
    assert value == pytest.approx((0 + np.log1p(np.e)) / 2, rel=1e-12)
    assert np.all(np.isfinite(grad))


def test_bce_is_stable_for_huge_logits():
    z = np.array([1e4, -1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = BCEWithLogitsLoss()(z, np.array([0.0, 1.0]))
    assert value == pytest.approx(1e4, rel=1e-12)


def test_losses_average_over_the_batch():
    # doubling the batch with a copy of itself must not change a mean loss
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((3, 4)), rng.integers(0, 4, 3)
    twice = CrossEntropyLoss()(np.vstack([z, z]), np.concatenate([y, y]))
    assert twice == pytest.approx(CrossEntropyLoss()(z, y), rel=1e-12)


def test_bad_input_is_named():
    ce = CrossEntropyLoss()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        ce(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="labels of shape"):
        ce(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer class labels"):
        ce(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        ce(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        ce(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        MSELoss()(np.array([np.inf]), np.array([0.0]))
    with pytest.raises(ValueError, match="targets contains NaN or infinite"):
        BCEWithLogitsLoss()(np.zeros(2), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="must match"):
        MSELoss()(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BCEWithLogitsLoss()(np.zeros(2), np.array([0.0, 2.0]))
    with pytest.raises(TypeError, match="floating-point"):
        MSELoss()(np.zeros(2, dtype=int), np.zeros(2))


@pytest.mark.parametrize("loss", [MSELoss(), BCEWithLogitsLoss()])
def test_gradient_keeps_the_predictions_dtype(loss):
    """float64 targets (np.eye one-hots, say) must not turn a float32 network's backward into float64."""
    rng = np.random.default_rng(5)
    pred = rng.standard_normal((4, 3)).astype(np.float32)
    target = np.eye(3)[rng.integers(0, 3, size=4)]           # float64
    loss.forward(pred, target)
    assert loss.backward().dtype == np.float32
