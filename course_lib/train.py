"""The training loop: ``fit`` runs epochs of mini-batch updates, ``evaluate`` measures a model.

One step of training, for a batch ``(x, y)``::

    out = model(x)                 # forward, caches what backward needs
    L = loss.forward(out, y)       # a float, the mean over the batch
    optimizer.zero_grad()          # layers *add* into .grad
    model.backward(loss.backward())
    optimizer.step()

Accuracy is reported only for classification, recognised by integer targets.
"""

from dataclasses import dataclass, field
from numbers import Integral, Real

from tqdm.auto import tqdm

from .backend import get_array_module


def accuracy(scores, labels, threshold=0.0):
    """Fraction of correct predictions.

    Args:
        scores: (N, C) logits or probabilities (the prediction is the arg-max
            of each row, the same for both), or (N,) / (N, 1) scores of one
            class against the other (the prediction is ``score > threshold``:
            0 for logits, pass 0.5 for probabilities).
        labels: (N,) integer class labels (for (N, 1) scores, (N, 1) works too).

    Returns:
        A float in [0, 1]: ``mean(prediction == label)``.
    """
    if not hasattr(scores, "shape") or not hasattr(labels, "shape"):
        raise TypeError("accuracy expects arrays for scores and labels, got "
                        f"{type(scores).__name__} and {type(labels).__name__}")
    xp = get_array_module(scores, labels)
    if labels.dtype.kind not in "iub":
        raise TypeError(f"accuracy expects integer class labels, got dtype {labels.dtype}")
    if scores.ndim == 2 and scores.shape[1] == 1 and labels.ndim == 2:
        labels = labels[:, 0]
    if scores.ndim not in (1, 2) or labels.ndim != 1 or labels.shape[0] != scores.shape[0]:
        raise ValueError(f"accuracy expects scores of shape (N, C) or (N,) and labels of shape "
                         f"(N,), got {tuple(scores.shape)} and {tuple(labels.shape)}")
    if scores.shape[0] == 0:
        raise ValueError("accuracy of an empty batch is undefined (N = 0)")
    if scores.ndim == 2 and scores.shape[1] > 1:
        predicted = xp.argmax(scores, axis=1)
    else:
        predicted = (scores.reshape(-1) > threshold).astype(labels.dtype)
    return float((predicted == labels).mean())


def _is_classification(y):
    return y.dtype.kind in "iu"


def _batches(loader, name):
    """Yield ``(x, y)`` from a loader, with a clear error when it yields something else."""
    for batch in loader:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise TypeError(f"{name} must yield (x, y) pairs; got a {type(batch).__name__}. "
                            "Build it as DataLoader(X, y, ...) with targets.")
        yield batch


def evaluate(model, loss, loader):
    """Mean loss (and accuracy) of ``model`` over every batch of ``loader``, in eval mode.

    Batches are weighted by their size, so the result is the mean over samples
    even when the last batch is smaller. The model's training/eval mode is
    restored afterwards.

    Returns:
        ``(mean_loss, accuracy)``; accuracy is None unless the targets are integers.
    """
    was_training = getattr(model, "training", True)
    model.eval()
    total_loss, total_correct, n, classification = 0.0, 0.0, 0, None
    try:
        for x, y in _batches(loader, "the evaluation loader"):
            out = model(x)
            total_loss += loss.forward(out, y) * len(y)
            if classification is None:
                classification = _is_classification(y)
            if classification:
                total_correct += accuracy(out, y) * len(y)
            n += len(y)
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("the evaluation loader yielded no samples")
    return total_loss / n, (total_correct / n if classification else None)


@dataclass
class History:
    """What ``fit`` measured, one entry per epoch run.

    ``train_loss`` / ``train_acc`` are means over the epoch's mini-batches, taken
    in training mode while the parameters were changing; ``val_loss`` /
    ``val_acc`` are measured in eval mode after the epoch. A list is empty when
    it does not apply (no validation loader; accuracy for a regression).
    ``best_epoch`` (1-based, the epoch with the lowest validation loss) and
    ``stopped_epoch`` are set when early stopping was used.
    """
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    best_epoch: int = None
    stopped_epoch: int = None

    @property
    def epochs(self):
        """Number of epochs run."""
        return len(self.train_loss)

    def __len__(self):
        return self.epochs

    def __getitem__(self, key):
        """``history["val_loss"]`` works like ``history.val_loss``."""
        if key not in ("train_loss", "train_acc", "val_loss", "val_acc"):
            raise KeyError(f"History has train_loss, train_acc, val_loss and val_acc, not {key!r}")
        return getattr(self, key)


def _state_arrays(model):
    """Every array that defines what ``model`` computes: Parameter values and buffers.

    Buffers are the non-trainable arrays a layer keeps (the running statistics
    of batch norm); ``cache`` holds activations for backward and is skipped.
    """
    from .layers.base import Layer
    from .parameter import Parameter

    found, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        for name, value in vars(layer).items():
            if name == "cache":
                continue
            if isinstance(value, Parameter):
                found.append((value, "data"))
            elif hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "copy"):
                found.append((layer, name))
            elif isinstance(value, Layer):
                stack.append(value)
            elif isinstance(value, (list, tuple)):
                stack.extend(item for item in value if isinstance(item, Layer))
                found.extend((item, "data") for item in value if isinstance(item, Parameter))
    return found


class EarlyStopping:
    """Stop training when the validation loss has not improved for ``patience`` epochs.

    An epoch improves on the best so far when ``val_loss < best - min_delta``.
    With ``restore_best`` the model's parameters (and buffers such as batch
    norm's running statistics) are copied at the best epoch and put back when
    training ends, so the model returned is the one that validated best.

    Args:
        patience: epochs without improvement before stopping (>= 1).
        min_delta: smallest decrease that counts as an improvement (>= 0).
        restore_best: put back the best parameters at the end.
    """

    def __init__(self, patience=5, min_delta=0.0, restore_best=True):
        if isinstance(patience, bool) or not isinstance(patience, Integral) or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, Real) or not min_delta >= 0:
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best = bool(restore_best)
        self.reset()

    def reset(self):
        """Forget the best value, so the object can watch a new run."""
        self.best = float("inf")
        self.best_epoch = None
        self.bad_epochs = 0
        self._saved = None

    def step(self, val_loss, model, epoch):
        """Record epoch ``epoch`` (1-based); return True when training should stop."""
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            if self.restore_best:
                self._saved = [(owner, name, getattr(owner, name).copy())
                               for owner, name in _state_arrays(model)]
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, model):
        """Copy the saved best arrays back into the model, in place."""
        if self._saved is None:
            return
        for owner, name, saved in self._saved:
            current = getattr(owner, name)
            if current.shape == saved.shape and current.dtype == saved.dtype:
                current[...] = saved
            else:
                setattr(owner, name, saved.copy())

    def __repr__(self):
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
                f"restore_best={self.restore_best})")


def fit(model, loss, optimizer, train_loader, epochs, val_loader=None, early_stopping=None,
        progress=True):
    """Train ``model`` for ``epochs`` passes over ``train_loader``.

    Each batch runs forward, loss, ``optimizer.zero_grad()``, backward and
    ``optimizer.step()`` (see the module docstring). After each epoch the model
    is evaluated on ``val_loader`` (if given) in eval mode. A tqdm bar counts
    epochs and shows the latest losses.

    Args:
        model: a course_lib Layer (``model(x)``, ``model.backward(dout)``,
            ``train()``/``eval()``).
        loss: a course_lib loss (``forward(out, y) -> float``, ``backward() -> dout``).
        optimizer: a ``course_lib.optim`` optimizer over ``model.parameters()``.
        train_loader, val_loader: iterables of ``(x, y)`` batches, e.g. DataLoader.
        epochs: number of passes over the training data (>= 1).
        early_stopping: an ``EarlyStopping``, which watches the validation loss
            (needs ``val_loader``).
        progress: show the progress bar.

    Returns:
        History with one entry per epoch run.

    Raises:
        FloatingPointError when the training loss becomes NaN or infinite.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    for name, obj, methods in (("model", model, ("forward", "backward", "train", "eval")),
                               ("loss", loss, ("forward", "backward")),
                               ("optimizer", optimizer, ("step", "zero_grad"))):
        missing = [m for m in methods if not callable(getattr(obj, m, None))]
        if missing:
            raise TypeError(f"{name} must have the method(s) {', '.join(missing)}; "
                            f"got a {type(obj).__name__}")
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            raise TypeError(f"early_stopping must be an EarlyStopping, got "
                            f"{type(early_stopping).__name__}")
        if val_loader is None:
            raise ValueError("early stopping watches the validation loss: pass a val_loader")
        early_stopping.reset()

    history = History()
    bar = tqdm(range(1, epochs + 1), desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        total_loss, total_correct, n, classification = 0.0, 0.0, 0, None
        for x, y in _batches(train_loader, "train_loader"):
            out = model(x)
            batch_loss = loss.forward(out, y)
            if batch_loss != batch_loss or abs(batch_loss) == float("inf"):
                raise FloatingPointError(
                    f"the training loss became {batch_loss} in epoch {epoch}: the learning rate "
                    "is probably too large (or the inputs are not standardised)")
            optimizer.zero_grad()
            model.backward(loss.backward())
            optimizer.step()
            if classification is None:
                classification = _is_classification(y)
            total_loss += batch_loss * len(y)
            if classification:
                total_correct += accuracy(out, y) * len(y)
            n += len(y)
        if n == 0:
            raise ValueError("train_loader yielded no samples")

        history.train_loss.append(total_loss / n)
        if classification:
            history.train_acc.append(total_correct / n)
        postfix = {"train_loss": f"{total_loss / n:.4f}"}
        if val_loader is not None:
            val_loss, val_acc = evaluate(model, loss, val_loader)
            history.val_loss.append(val_loss)
            postfix["val_loss"] = f"{val_loss:.4f}"
            if val_acc is not None:
                history.val_acc.append(val_acc)
                postfix["val_acc"] = f"{val_acc:.3f}"
        bar.set_postfix(postfix)

        if early_stopping is not None and early_stopping.step(history.val_loss[-1], model, epoch):
            history.stopped_epoch = epoch
            break
    bar.close()

    if early_stopping is not None:
        history.best_epoch = early_stopping.best_epoch
        if early_stopping.restore_best:
            early_stopping.restore(model)
    return history


__all__ = ["accuracy", "evaluate", "fit", "History", "EarlyStopping"]
