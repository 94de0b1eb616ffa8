"""The training loop, evaluation, accuracy and early stopping, on problems small enough to run in a blink."""

import numpy as np
import pytest

from course_lib.data import DataLoader
from course_lib.layers import Layer, Linear, ReLU, Sequential
from course_lib.losses import CrossEntropyLoss, MSELoss
from course_lib.optim import SGD, Adam
from course_lib.train import EarlyStopping, History, accuracy, evaluate, fit


def blobs(n_per_class=40, classes=3, dim=2, seed=0):
    """Well separated Gaussian clusters (fixed centres, noise drawn from ``seed``)."""
    centres = np.random.default_rng(100).normal(scale=4.0, size=(classes, dim))
    rng = np.random.default_rng(seed)
    X = np.concatenate([c + rng.normal(size=(n_per_class, dim)) for c in centres])
    y = np.repeat(np.arange(classes), n_per_class)
    return X.astype(np.float64), y


def mlp(dim=2, hidden=16, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(dim, hidden, rng=rng, dtype=np.float64), ReLU(),
                      Linear(hidden, classes, rng=rng, dtype=np.float64))


# ---------------------------------------------------------------- accuracy

def test_accuracy_by_hand():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.5, 0.2], [0.1, 0.0, 3.0], [1.0, 0.0, 0.0]])
    labels = np.array([0, 1, 0, 2])
    assert accuracy(logits, labels) == 0.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert accuracy(probs, labels) == 0.5          # arg-max is the same for probabilities
    binary_logits = np.array([-1.0, 2.0, 0.5, -0.1, 3.0])
    binary_labels = np.array([0, 1, 0, 0, 0])
    assert accuracy(binary_logits, binary_labels) == 0.6
    assert accuracy(binary_logits[:, None], binary_labels[:, None]) == 0.6
    assert accuracy(np.array([0.2, 0.7, 0.4]), np.array([0, 1, 1]), threshold=0.5) == pytest.approx(2 / 3)


@pytest.mark.parametrize("scores, labels, error, match", [
    (np.zeros((4, 3)), np.zeros(5, dtype=int), ValueError, r"\(4, 3\) and \(5,\)"),
    (np.zeros((4, 3)), np.zeros(4), TypeError, "integer class labels"),
    (np.zeros((2, 3, 4)), np.zeros(2, dtype=int), ValueError, "shape"),
    (np.zeros((0, 3)), np.zeros(0, dtype=int), ValueError, "empty"),
    ([[1.0, 2.0]], np.zeros(1, dtype=int), TypeError, "arrays"),
])
def test_accuracy_errors(scores, labels, error, match):
    with pytest.raises(error, match=match):
        accuracy(scores, labels)


# ---------------------------------------------------------------- fit

def test_fit_classification_loss_drops_and_history_is_complete():
    X, y = blobs()
    Xv, yv = blobs(n_per_class=10, seed=1)
    model = mlp()
    initial_loss, _ = evaluate(model, CrossEntropyLoss(), DataLoader(X, y))
    history = fit(model, CrossEntropyLoss(), Adam(model.parameters(), lr=0.05),
                  DataLoader(X, y, batch_size=16, seed=0), epochs=6,
                  val_loader=DataLoader(Xv, yv, batch_size=7, shuffle=False), progress=False)
    assert isinstance(history, History)
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert len(history[key]) == 6, key
    assert history.epochs == len(history) == 6
    assert history.train_loss[-1] < 0.3 * initial_loss
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_loss[-1] < 0.2 * initial_loss
    assert history.val_acc[-1] >= 0.9 and 0 <= min(history.train_acc) <= max(history.train_acc) <= 1
    assert history.best_epoch is None and history.stopped_epoch is None


def test_fit_regression_has_no_accuracy_and_no_validation():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = Linear(3, 1, rng=rng, dtype=np.float64)
    history = fit(model, MSELoss(), SGD(model.parameters(), lr=0.1, momentum=0.5),
                  DataLoader(X, y, batch_size=16), epochs=5, progress=False)
    assert len(history.train_loss) == 5
    assert history.train_acc == [] and history.val_loss == [] and history.val_acc == []
    assert history.train_loss[-1] < 0.05 * history.train_loss[0]


def test_fit_with_progress_bar_runs(capsys):
    X, y = blobs(n_per_class=5)
    model = mlp()
    fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), DataLoader(X, y, batch_size=4),
        epochs=2, val_loader=DataLoader(X, y, batch_size=4), progress=True)
    assert "training" in capsys.readouterr().err


def test_fit_history_weights_uneven_batches():
    """With lr = 0 the parameters never change, so the epoch's training loss and accuracy
    must equal one evaluation of the whole set: every sample counts once, including the
    three of the short last batch. Sums of 33 float64 terms agree to ~1e-15."""
    X, y = blobs(n_per_class=11)          # 33 samples: batches of 10, 10, 10, 3
    model = mlp()
    history = fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.0),
                  DataLoader(X, y, batch_size=10, shuffle=False), epochs=1, progress=False)
    loss, acc = evaluate(model, CrossEntropyLoss(), DataLoader(X, y, batch_size=33))
    assert 0 < acc < 1                    # untrained: neither all right nor all wrong
    assert history.train_loss[0] == pytest.approx(loss, rel=1e-12)
    assert history.train_acc[0] == pytest.approx(acc, rel=1e-12)


def test_fit_is_reproducible():
    X, y = blobs()
    runs = []
    for _ in range(2):
        model = mlp()
        fit(model, CrossEntropyLoss(), Adam(model.parameters(), lr=0.01),
            DataLoader(X, y, batch_size=8, seed=4), epochs=2, progress=False)
        runs.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- evaluate

def test_evaluate_weights_uneven_batches_and_restores_mode():
    X, y = blobs(n_per_class=11)          # 33 samples: batches of 10, 10, 10, 3
    model = mlp()
    model.train()
    mean_loss, acc = evaluate(model, CrossEntropyLoss(), DataLoader(X, y, batch_size=10))
    assert model.training, "evaluate must leave the model in the mode it found it in"
    # Independent oracle: softmax cross-entropy of the whole set at once.
    logits = model(X)
    z = logits - logits.max(axis=1, keepdims=True)
    expected = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y])
    assert mean_loss == pytest.approx(expected, rel=1e-12)
    assert acc == pytest.approx(np.mean(logits.argmax(axis=1) == y))
    model.eval()
    evaluate(model, CrossEntropyLoss(), DataLoader(X, y, batch_size=10))
    assert not model.training


# ---------------------------------------------------------------- early stopping

class RunningMean(Layer):
    """Identity with a batch-norm-like buffer, to check that buffers are restored too."""

    def __init__(self, dim):
        super().__init__()
        self.running_mean = np.zeros(dim)

    def forward(self, x):
        if self.training:
            self.running_mean = 0.9 * self.running_mean + 0.1 * x.mean(axis=0)
        return x

    def backward(self, dout):
        return dout


def run_to_be_stopped(epochs, early_stopping=None):
    # Every fifth validation label is wrong. While the model learns, the correct
    # four fifths pull the validation loss down; once it grows confident, the
    # loss on the wrong labels grows without bound and the total rises again.
    X, y = blobs(seed=2)
    y_val = np.where(np.arange(len(y)) % 5 == 0, (y + 1) % 3, y)
    model = Sequential(RunningMean(2), *mlp(seed=3).layers)
    history = fit(model, CrossEntropyLoss(), Adam(model.parameters(), lr=0.005),
                  DataLoader(X, y, batch_size=16, seed=1), epochs=epochs,
                  val_loader=DataLoader(X, y_val, batch_size=64, shuffle=False),
                  early_stopping=early_stopping, progress=False)
    return model, history


def test_early_stopping_stops_and_restores_best():
    model, history = run_to_be_stopped(50, EarlyStopping(patience=3))
    best = int(np.argmin(history.val_loss)) + 1
    assert best > 1, "the validation loss should first fall, then rise"
    assert history.best_epoch == best
    assert history.stopped_epoch == best + 3 == len(history.val_loss)
    assert all(len(history[k]) == history.stopped_epoch for k in ("train_loss", "val_loss", "val_acc"))
    # The same run cut at the best epoch must give exactly the restored model.
    reference, _ = run_to_be_stopped(best)
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    np.testing.assert_array_equal(model[0].running_mean, reference[0].running_mean)


def test_early_stopping_without_restore_keeps_last_parameters():
    model, history = run_to_be_stopped(50, EarlyStopping(patience=2, restore_best=False))
    reference, _ = run_to_be_stopped(history.stopped_epoch)
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_early_stopping_min_delta():
    stopper = EarlyStopping(patience=2, min_delta=0.1, restore_best=False)
    model = mlp()
    assert not stopper.step(1.0, model, 1)
    assert not stopper.step(0.95, model, 2)       # better, but by less than min_delta
    assert stopper.step(0.92, model, 3)
    assert stopper.best_epoch == 1


# ---------------------------------------------------------------- errors

def test_fit_errors():
    X, y = blobs(n_per_class=4)
    model = mlp()
    args = (model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), DataLoader(X, y))
    with pytest.raises(ValueError, match="epochs"):
        fit(*args, epochs=0, progress=False)
    with pytest.raises(ValueError, match="val_loader"):
        fit(*args, epochs=1, early_stopping=EarlyStopping(), progress=False)
    with pytest.raises(TypeError, match="EarlyStopping"):
        fit(*args, epochs=1, val_loader=DataLoader(X, y), early_stopping=3, progress=False)
    with pytest.raises(TypeError, match=r"\(x, y\) pairs"):
        fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), DataLoader(X),
            epochs=1, progress=False)
    with pytest.raises(TypeError, match="optimizer must have"):
        fit(model, CrossEntropyLoss(), object(), DataLoader(X, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match="no samples"):
        fit(*args[:3], [], epochs=1, progress=False)
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="patience"):
            EarlyStopping(patience=bad)
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=-1)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_fit_reports_divergence():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3)) * 100
    y = rng.normal(size=(32, 1)) * 100
    model = Linear(3, 1, rng=rng, dtype=np.float64)
    with pytest.raises((FloatingPointError, ValueError), match="learning rate"):
        fit(model, MSELoss(), SGD(model.parameters(), lr=10.0), DataLoader(X, y, batch_size=8),
            epochs=20, progress=False)


def test_history_rejects_unknown_key():
    with pytest.raises(KeyError, match="val_loss"):
        History()["loss"]
