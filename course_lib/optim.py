"""Optimizers: each turns the gradients in ``p.grad`` into an update of ``p.data``.

Every optimizer follows the algorithm that PyTorch documents for ``torch.optim``
with the same hyper-parameters (so the numbers agree step for step), written
as a few lines that match the textbook formula. For a parameter ``theta`` with
gradient ``g`` at step ``t = 1, 2, ...``:

========  ==================================================================
SGD       ``b = mu*b + g``; ``g = g + mu*b`` (Nesterov) or ``g = b``;
          ``theta -= lr*g``
AdaGrad   ``s = s + g**2``; ``theta -= lr*g / (sqrt(s) + eps)``
RMSProp   ``v = alpha*v + (1-alpha)*g**2``; ``theta -= lr*g / (sqrt(v) + eps)``
Adam      ``m = b1*m + (1-b1)*g``; ``v = b2*v + (1-b2)*g**2``;
          ``m_hat = m/(1-b1**t)``; ``v_hat = v/(1-b2**t)``;
          ``theta -= lr*m_hat / (sqrt(v_hat) + eps)``
========  ==================================================================

Weight decay is L2 regularisation added to the gradient, ``g = g + wd*theta``,
before the rule runs (as in ``torch.optim.Adam``; this is not AdamW).

An optimizer keeps its state (momentum buffer, squared-gradient sums, moments,
step count) per parameter in ``self.state[p]``. Updates are in place on
``p.data`` and use ``xp = get_array_module(p.data)``, so NumPy and CuPy
parameters both work.

``clip_grad_norm`` (PyTorch's ``clip_grad_norm_``) rescales all gradients
together before ``step`` when their total norm is too large, the usual guard
against the exploding gradients of recurrent networks.
"""

import math
from numbers import Real

import numpy as np

from .backend import get_array_module
from .parameter import Parameter


def _check_number(name, value, low=0.0, high=None, high_open=False):
    """Raise a clear error unless ``low <= value`` (and ``value < high`` or ``<= high``)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    if value != value:  # NaN
        raise ValueError(f"{name} must be a number, got NaN")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must lie in [{low}, {high}{bracket}, got {value}")
    return float(value)


class Optimizer:
    """Base class: holds the parameters, their per-parameter state and ``lr``.

    Args:
        params: an iterable of ``course_lib.Parameter`` (e.g. ``model.parameters()``).
        lr: the learning rate, ``>= 0``.

    Subclasses implement ``_update(p, g, state, xp)``, which changes ``p.data``
    in place given the (weight-decayed) gradient ``g``.
    """

    def __init__(self, params, lr, weight_decay=0.0):
        if isinstance(params, Parameter):
            raise TypeError("params must be an iterable of Parameters, got a single Parameter: "
                            "wrap it in a list, e.g. [p]")
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"params must be an iterable of Parameters, got {type(params).__name__}") from None
        if not params:
            raise ValueError("the optimizer got an empty list of parameters: "
                             "did the model define any Parameters?")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] is a {type(p).__name__}, not a course_lib.Parameter")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a Parameter appears more than once in params; "
                             "it would be updated twice per step")
        self.params = params
        self.lr = _check_number("lr", lr)
        self.weight_decay = _check_number("weight_decay", weight_decay)
        self.state = {p: {} for p in params}

    def zero_grad(self):
        """Set every parameter's ``.grad`` to zero (layers add into it in ``backward``)."""
        for p in self.params:
            p.zero_grad()

    def step(self):
        """Apply one update to every parameter from its current ``.grad``."""
        for p in self.params:
            if p.grad.shape != p.data.shape:
                raise ValueError(f"{p!r} has a gradient of shape {tuple(p.grad.shape)} but data "
                                 f"of shape {tuple(p.data.shape)}; they must match")
            xp = get_array_module(p.data, p.grad)
            g = p.grad
            if self.weight_decay:
                g = g + self.weight_decay * p.data  # L2 term, a new array: p.grad stays as it was
            self._update(p, g, self.state[p], xp)

    def _update(self, p, g, state, xp):
        raise NotImplementedError

    def __repr__(self):
        hyper = ", ".join(f"{k}={v}" for k, v in self._hyper().items())
        return f"{type(self).__name__}({hyper})"

    def _hyper(self):
        return {"lr": self.lr, "weight_decay": self.weight_decay}


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum and weight decay.

    PyTorch's ``torch.optim.SGD`` with ``dampening=0``: the momentum buffer
    starts at zero, so after the first step it equals the gradient.

    ``g = g + wd*theta``;  ``b = mu*b + g``;
    ``theta -= lr*(g + mu*b)`` with Nesterov, ``theta -= lr*b`` without,
    ``theta -= lr*g`` when ``mu = 0``.

    Args:
        params: iterable of Parameters.
        lr: learning rate, ``>= 0``.
        momentum: ``mu`` in ``[0, 1)``.
        nesterov: use Nesterov's look-ahead gradient (needs ``momentum > 0``).
        weight_decay: L2 coefficient ``wd >= 0``.
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum = _check_number("momentum", momentum, 0.0, 1.0, high_open=True)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0 (Nesterov momentum without "
                             "momentum is plain SGD)")
        self.nesterov = bool(nesterov)

    def _update(self, p, g, state, xp):
        if self.momentum == 0:
            p.data -= self.lr * g
            return
        if "b" not in state:
            state["b"] = xp.zeros_like(p.data)
        b = state["b"]
        b *= self.momentum
        b += g                                # b = mu*b + g
        step = g + self.momentum * b if self.nesterov else b
        p.data -= self.lr * step

    def _hyper(self):
        return {**super()._hyper(), "momentum": self.momentum, "nesterov": self.nesterov}


class AdaGrad(Optimizer):
    """AdaGrad: each coordinate's step shrinks with the sum of its squared gradients.

    PyTorch's ``torch.optim.Adagrad`` with ``lr_decay=0`` and
    ``initial_accumulator_value=0``:

    ``g = g + wd*theta``;  ``s = s + g**2``;  ``theta -= lr*g / (sqrt(s) + eps)``.

    Args:
        params: iterable of Parameters.
        lr: learning rate, ``>= 0``.
        eps: ``>= 0``, keeps the division finite where ``s`` is still zero.
        weight_decay: L2 coefficient ``wd >= 0``.
    """

    def __init__(self, params, lr, eps=1e-10, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.eps = _check_number("eps", eps)

    def _update(self, p, g, state, xp):
        if "sum" not in state:
            state["sum"] = xp.zeros_like(p.data)
        s = state["sum"]
        s += g * g                            # s = s + g^2
        p.data -= self.lr * g / (xp.sqrt(s) + self.eps)

    def _hyper(self):
        return {**super()._hyper(), "eps": self.eps}


class RMSProp(Optimizer):
    """RMSProp: divide the step by a running root-mean-square of recent gradients.

    PyTorch's ``torch.optim.RMSprop`` with ``momentum=0`` and ``centered=False``
    (the average starts at zero):

    ``g = g + wd*theta``;  ``v = alpha*v + (1-alpha)*g**2``;
    ``theta -= lr*g / (sqrt(v) + eps)``.

    Args:
        params: iterable of Parameters.
        lr: learning rate, ``>= 0``.
        alpha: decay rate of the average, in ``[0, 1)``.
        eps: ``>= 0``, keeps the division finite.
        weight_decay: L2 coefficient ``wd >= 0``.
    """

    def __init__(self, params, lr, alpha=0.99, eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.alpha = _check_number("alpha", alpha, 0.0, 1.0, high_open=True)
        self.eps = _check_number("eps", eps)

    def _update(self, p, g, state, xp):
        if "v" not in state:
            state["v"] = xp.zeros_like(p.data)
        v = state["v"]
        v *= self.alpha
        v += (1 - self.alpha) * g * g         # v = alpha*v + (1-alpha)*g^2
        p.data -= self.lr * g / (xp.sqrt(v) + self.eps)

    def _hyper(self):
        return {**super()._hyper(), "alpha": self.alpha, "eps": self.eps}


class Adam(Optimizer):
    """Adam: momentum on the gradient and RMSProp-style scaling, both bias-corrected.

    PyTorch's ``torch.optim.Adam`` with ``amsgrad=False``; weight decay is the L2
    term added to the gradient (not AdamW's decoupled decay). At step ``t``:

    ``g = g + wd*theta``;  ``m = b1*m + (1-b1)*g``;  ``v = b2*v + (1-b2)*g**2``;
    ``m_hat = m/(1-b1**t)``;  ``v_hat = v/(1-b2**t)``;
    ``theta -= lr*m_hat / (sqrt(v_hat) + eps)``.

    The bias correction undoes the pull towards the zero start of ``m`` and ``v``
    in the first steps.

    Args:
        params: iterable of Parameters.
        lr: learning rate, ``>= 0``.
        betas: ``(b1, b2)``, each in ``[0, 1)``.
        eps: ``>= 0``, keeps the division finite.
        weight_decay: L2 coefficient ``wd >= 0``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair (b1, b2), got {betas!r}") from None
        self.betas = (_check_number("betas[0]", b1, 0.0, 1.0, high_open=True),
                      _check_number("betas[1]", b2, 0.0, 1.0, high_open=True))
        self.eps = _check_number("eps", eps)

    def _update(self, p, g, state, xp):
        b1, b2 = self.betas
        if "t" not in state:
            state["t"] = 0
            state["m"] = xp.zeros_like(p.data)
            state["v"] = xp.zeros_like(p.data)
        state["t"] += 1
        t, m, v = state["t"], state["m"], state["v"]
        m *= b1
        m += (1 - b1) * g                     # m = b1*m + (1-b1)*g
        v *= b2
        v += (1 - b2) * g * g                 # v = b2*v + (1-b2)*g^2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p.data -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)

    def _hyper(self):
        return {**super()._hyper(), "betas": self.betas, "eps": self.eps}


def clip_grad_norm(params_or_grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their total norm is at most ``max_norm``; in place.

    PyTorch's ``torch.nn.utils.clip_grad_norm_``: the total norm is the norm of
    all gradients joined into one vector,

        total = (sum_p sum_i |g_pi| ** norm_type) ** (1 / norm_type)     (max_i |g_pi| for inf)

    and every gradient is multiplied by ``min(1, max_norm / (total + 1e-6))``,
    so when ``total > max_norm`` the new total is just under ``max_norm``,
    and the direction of the whole update stays the same. The 1e-6 keeps the
    division finite for zero gradients.

    Args:
        params_or_grads: a Parameter or an iterable of Parameters (their ``.grad``
            is scaled), or a gradient array or an iterable of them (scaled in place).
        max_norm: the largest total norm allowed, ``>= 0``.
        norm_type: ``p >= 1`` of the p-norm, or ``math.inf`` for the largest absolute entry.
        error_if_nonfinite: raise when the total norm is NaN or infinite instead of
            scaling by it (which, as in PyTorch, turns the gradients into NaN).
    Returns:
        the total norm before clipping, as a float.
    """
    items = [params_or_grads] if isinstance(params_or_grads, Parameter) or hasattr(
        params_or_grads, "shape") else params_or_grads
    try:
        items = list(items)
    except TypeError:
        raise TypeError("clip_grad_norm expects Parameters or gradient arrays (or a list of them), "
                        f"got {type(params_or_grads).__name__}") from None
    grads = []
    for k, item in enumerate(items):
        g = item.grad if isinstance(item, Parameter) else item
        if not hasattr(g, "shape") or not hasattr(g, "dtype") or g.dtype.kind not in "fc":
            raise TypeError(f"clip_grad_norm: item {k} is a {type(item).__name__}, not a Parameter "
                            "or a floating-point gradient array")
        grads.append(g)
    max_norm = _check_number("max_norm", max_norm)
    norm_type = _check_number("norm_type", norm_type, low=1.0)
    if not grads:
        return 0.0
    # The norm of the per-array norms is the norm of all entries joined (as PyTorch computes it).
    norms = [float(get_array_module(g).linalg.norm(g.ravel(), ord=norm_type)) if g.size else 0.0
             for g in grads]
    total = float(np.linalg.norm(np.array(norms), ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(f"the total gradient norm is {total}: some gradient holds NaN or inf, "
                         "so clipping cannot make it finite")
    coef = max_norm / (total + 1e-6)
    # "not coef >= 1" also holds for NaN: as in PyTorch, a NaN norm makes every gradient NaN.
    if not coef >= 1:
        for g in grads:
            g *= coef
    return total


__all__ = ["Optimizer", "SGD", "AdaGrad", "RMSProp", "Adam", "clip_grad_norm"]
