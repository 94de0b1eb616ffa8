"""Loss functions: ``forward(pred, target) -> float`` (mean over the batch) and ``backward() -> dpred``.

Definitions follow PyTorch's defaults (``reduction="mean"``), so a value
printed here can be compared with ``torch.nn.functional`` directly.
"""

from .backend import get_array_module
from .layers.activations import sigmoid, softplus


def _check_finite(xp, x, name, loss):
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{loss}: {name} contains NaN or infinite values; "
                         "check the layer before the loss (a learning rate too large?)")


def _check_pair(pred, target, loss, pred_name, target_name):
    """The checks MSE and BCE share: float predictions, matching shapes, finite values in both."""
    _check_float(pred, pred_name, loss)
    if pred.shape != target.shape:
        raise ValueError(f"{loss}: {pred_name} have shape {tuple(pred.shape)} but {target_name} "
                         f"have shape {tuple(target.shape)}; they must match")
    xp = get_array_module(pred, target)
    _check_finite(xp, pred, pred_name, loss)
    _check_finite(xp, target, target_name, loss)
    return xp


def _check_float(x, name, loss):
    if not hasattr(x, "dtype"):
        raise TypeError(f"{loss}: {name} must be an array, got {type(x).__name__}")
    if x.dtype.kind not in "f":
        raise TypeError(f"{loss}: {name} must be a floating-point array, got dtype {x.dtype}")


class Loss:
    """Base class; ``loss(pred, target)`` calls ``forward``."""

    def __call__(self, pred, target):
        return self.forward(pred, target)


class MSELoss(Loss):
    """Mean squared error over all entries: ``L = mean((pred - target)^2)``.

    Shapes: ``pred`` and ``target`` the same shape, e.g. (N, D).
    Backward: ``dpred = 2 (pred - target) / pred.size``.
    """

    def forward(self, pred, target):
        _check_pair(pred, target, "MSELoss", "predictions", "targets")
        # In pred's dtype, as BCE does: float64 targets must not turn a float32
        # network's whole backward pass into float64.
        diff = pred - target.astype(pred.dtype, copy=False)
        self.cache = diff
        return float((diff ** 2).mean())

    def backward(self):
        diff = self.cache
        return 2 * diff / diff.size


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits z with targets y in [0, 1], averaged over all entries.

    ``L = mean(softplus(z) - z*y)`` with ``softplus(z) = log(1 + exp(z))``, which equals
    ``-[y log sigmoid(z) + (1-y) log(1 - sigmoid(z))]`` but never overflows.
    Backward: ``dz = (sigmoid(z) - y) / z.size``.
    """

    def forward(self, pred, target):
        xp = _check_pair(pred, target, "BCEWithLogitsLoss", "logits", "targets")
        if bool(xp.any((target < 0) | (target > 1))):
            raise ValueError("BCEWithLogitsLoss: targets must lie in [0, 1]")
        z, y = pred, target.astype(pred.dtype)
        self.cache = (sigmoid(z), y)
        return float((softplus(z) - z * y).mean())

    def backward(self):
        sig, y = self.cache
        return (sig - y) / y.size


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits, as ``torch.nn.CrossEntropyLoss``.

    Shapes: ``logits`` (N, C), ``labels`` (N,) integers in [0, C).
    ``L = mean_n( logsumexp(z_n) - z_n[y_n] )``, with the log-sum-exp taken
    after subtracting the row maximum so exp never overflows.
    Backward: ``dz = (softmax(z) - onehot(y)) / N``.
    """

    def forward(self, pred, target):
        _check_float(pred, "logits", "CrossEntropyLoss")
        if pred.ndim != 2:
            raise ValueError(f"CrossEntropyLoss expects logits of shape (N, C), got {tuple(pred.shape)}")
        if getattr(target, "ndim", None) != 1 or target.shape[0] != pred.shape[0]:
            raise ValueError(f"CrossEntropyLoss expects labels of shape ({pred.shape[0]},) to match "
                             f"logits {tuple(pred.shape)}, got {tuple(getattr(target, 'shape', ()))}")
        if target.dtype.kind not in "iu":
            raise TypeError(f"CrossEntropyLoss expects integer class labels, got dtype {target.dtype}")
        xp = get_array_module(pred, target)
        _check_finite(xp, pred, "logits", "CrossEntropyLoss")
        N, C = pred.shape
        if N and (int(target.min()) < 0 or int(target.max()) >= C):
            raise ValueError(f"CrossEntropyLoss: labels must lie in [0, {C - 1}] for {C} classes, "
                             f"got values from {int(target.min())} to {int(target.max())}")
        z = pred - pred.max(axis=1, keepdims=True)
        log_sum = xp.log(xp.exp(z).sum(axis=1))
        rows = xp.arange(N)
        self.cache = (z, log_sum, target)
        return float((log_sum - z[rows, target]).mean())

    def backward(self):
        z, log_sum, target = self.cache
        xp = get_array_module(z)
        N = z.shape[0]
        dz = xp.exp(z - log_sum[:, None])      # softmax
        dz[xp.arange(N), target] -= 1
        return dz / N
