"""Autoencoders: a network trained to reproduce its own input through a narrow code.

An autoencoder is two networks in a row. The encoder ``f`` maps an input
``x`` of shape (N, D) to a code ``h = f(x)`` of shape (N, K); the decoder
``g`` maps the code back to a reconstruction ``out = g(h)`` of shape (N, D).
Training minimises a reconstruction loss between ``out`` and ``x`` itself,
usually the mean squared error ``L = mean((g(f(x)) - x)^2)``. With K < D
(an *undercomplete* code) the network cannot copy its input and has to keep
what matters most about it in K numbers.

A denoising autoencoder (Vincent et al., 2008) feeds the encoder a corrupted
copy ``x~`` of the input during training and still asks for the clean one:
``L = mean((g(f(x~)) - x)^2)``. To undo the corruption it must learn how the
input's entries depend on each other, which works even when K >= D.

Backward is the chain rule through both halves: ``dh = g.backward(dout)``,
then ``dx = f.backward(dh)``.
"""

from numbers import Integral, Real

import numpy as np

from .backend import get_array_module
from .layers import (Identity, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Softplus, Tanh)
from .layers.base import Layer, check_input

#: Activation names accepted by ``dense_autoencoder``.
ACTIVATIONS = {
    "identity": Identity,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softplus": Softplus,
}

#: Activations whose layers default to He initialisation (half the units are
#: off, so the weights need twice the variance); every other one gets Glorot.
_HE_ACTIVATIONS = (ReLU, LeakyReLU)

NOISE_KINDS = ("gaussian", "mask")


class Autoencoder(Layer):
    """``out = decoder(encoder(x))``: a layer that reconstructs its input.

    Shapes: ``x`` (N, D), code ``h = encoder(x)`` (N, K), ``out`` (N, D).
    Train it with a loss that compares ``out`` with ``x``, e.g.
    ``MSELoss()(model(x), x)``; with a data loader, give it ``X`` both as the
    inputs and as the targets.

    Backward, for ``dout = dL/dout`` of shape (N, D)::

        dh = decoder.backward(dout)     (N, K)
        dx = encoder.backward(dh)       (N, D)

    and the parameters of both halves receive their gradients on the way.
    ``parameters()`` lists the encoder's, then the decoder's.

    The class puts no limit on K: an overcomplete code (K >= D) is allowed,
    because it is useful with a denoising autoencoder; ``dense_autoencoder``
    builds the usual undercomplete kind.

    Args:
        encoder: a Layer mapping (N, D) to (N, K), e.g. a ``Sequential``.
        decoder: a Layer mapping (N, K) back to (N, D).
    """

    def __init__(self, encoder, decoder):
        super().__init__()
        for name, part in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(part, Layer):
                raise TypeError(f"Autoencoder: {name} must be a course_lib Layer "
                                f"(e.g. a Sequential), got {type(part).__name__}")
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x):
        """The code ``h = encoder(x)``, shape (N, K)."""
        return self.encoder.forward(x)

    def decode(self, h):
        """The reconstruction ``out = decoder(h)`` of codes ``h`` of shape (N, K), shape (N, D)."""
        return self.decoder.forward(h)

    def forward(self, x):
        check_input(x, 2, type(self).__name__, "(N, D)")
        out = self.decode(self.encode(x))
        if out.shape != x.shape:
            raise ValueError(
                f"{type(self).__name__}: the decoder returned shape {tuple(out.shape)} for an "
                f"input of shape {tuple(x.shape)}; a reconstruction must have the input's shape "
                "(does the decoder's last layer output as many features as the encoder's first "
                "takes in?)")
        return out

    def backward(self, dout):
        dh = self.decoder.backward(dout)
        return self.encoder.backward(dh)

    def __repr__(self):
        return (f"{type(self).__name__}(\n  encoder={self.encoder!r}\n"
                f"  decoder={self.decoder!r}\n)")


class DenoisingAutoencoder(Autoencoder):
    """An autoencoder that corrupts its input in training mode: ``out = decoder(encoder(x~))``.

    Shapes: ``x`` (N, D), ``out`` (N, D). The loss compares ``out`` with the
    *clean* ``x`` (the caller passes ``x`` as the target, as for any
    autoencoder), so the network learns to remove the corruption.

    Corruption (training mode only; in eval mode ``x~ = x`` and the model is a
    plain autoencoder):

    - ``noise="gaussian"``: ``x~ = x + level * eps`` with ``eps ~ N(0, 1)``
      drawn independently for every entry; backward ``dx = dx~``.
    - ``noise="mask"`` (masking noise): ``x~ = m * x`` with
      ``m ~ Bernoulli(1 - level)`` for every entry, i.e. each input is set to
      0 with probability ``level``; backward ``dx = m * dx~``. Unlike
      dropout, the kept entries are not rescaled by ``1/(1 - level)``: the
      decoder must rebuild the missing values, not their average. On
      standardised data, 0 is the training mean of that feature.

    The noise comes from a NumPy generator seeded with ``seed``, drawn on the
    CPU and copied to the input's device, so a model gives the same corruption
    sequence on NumPy and CuPy, and two models with the same seed repeat each
    other. ``reset_noise()`` restarts the sequence. The corruption of the last
    training-mode forward pass is kept in ``self.cache`` (the mask for
    ``"mask"``, the added noise for ``"gaussian"``).

    Args:
        encoder, decoder: as for ``Autoencoder``.
        noise: ``"gaussian"`` or ``"mask"``.
        level: the noise's standard deviation (``>= 0``) for ``"gaussian"``;
            the probability of zeroing an entry, in ``[0, 1)``, for ``"mask"``.
        seed: seed of the noise generator.
    """

    def __init__(self, encoder, decoder, noise="gaussian", level=0.1, seed=0):
        super().__init__(encoder, decoder)
        if not isinstance(noise, str):
            raise TypeError(f"DenoisingAutoencoder: noise must be a string, one of "
                            f"{NOISE_KINDS}, got {type(noise).__name__}")
        if noise not in NOISE_KINDS:
            raise ValueError(f"DenoisingAutoencoder: unknown noise {noise!r}; choose "
                             f"'gaussian' (additive N(0, level^2)) or 'mask' (zero each input "
                             f"with probability level)")
        if isinstance(level, bool) or not isinstance(level, Real):
            raise TypeError(f"DenoisingAutoencoder: level must be a real number, got {level!r}")
        level = float(level)
        if noise == "gaussian" and not 0 <= level < float("inf"):
            raise ValueError(f"DenoisingAutoencoder: the Gaussian noise's standard deviation "
                             f"level must be finite and >= 0, got {level}")
        if noise == "mask" and not 0 <= level < 1:
            raise ValueError(f"DenoisingAutoencoder: the masking probability level must lie in "
                             f"[0, 1) (1 would erase every input), got {level}")
        if isinstance(seed, bool) or not isinstance(seed, Integral):
            raise TypeError(f"DenoisingAutoencoder: seed must be an integer, got {seed!r}")
        self.noise = noise
        self.level = level
        self.seed = int(seed)
        self.reset_noise()

    def reset_noise(self, seed=None):
        """Restart the noise generator (from ``seed``, default the constructor's seed)."""
        self.rng = np.random.default_rng(self.seed if seed is None else seed)

    def corrupt(self, x):
        """``x~``, a corrupted copy of ``x`` (N, D); the corruption is kept in ``self.cache``."""
        xp = get_array_module(x)
        if self.noise == "gaussian":
            eps = xp.asarray(self.rng.standard_normal(x.shape), dtype=x.dtype)
            self.cache = self.level * eps
            return x + self.cache
        # keep an entry where a uniform draw on [0, 1) is >= level: P(keep) = 1 - level
        m = xp.asarray(self.rng.random(x.shape) >= self.level).astype(x.dtype)
        self.cache = m
        return x * m

    def forward(self, x):
        check_input(x, 2, type(self).__name__, "(N, D)")
        if self.training:
            x = self.corrupt(x)
        else:
            self.cache = None
        return super().forward(x)

    def backward(self, dout):
        dx = super().backward(dout)
        if self.cache is not None and self.noise == "mask":
            dx = dx * self.cache    # x~ = m * x, so dx = m * dx~; additive noise passes dx~ through
        return dx

    def __repr__(self):
        return (f"DenoisingAutoencoder(noise={self.noise!r}, level={self.level}, seed={self.seed},"
                f"\n  encoder={self.encoder!r}\n  decoder={self.decoder!r}\n)")


def _activation_factory(activation, what):
    """A zero-argument callable returning a fresh activation Layer, or None for no activation."""
    if activation is None:
        return None
    if isinstance(activation, str):
        key = activation.lower()
        if key not in ACTIVATIONS:
            raise ValueError(f"dense_autoencoder: unknown {what} {activation!r}; choose one of "
                             f"{sorted(ACTIVATIONS)}, None, or a callable returning a Layer")
        return ACTIVATIONS[key]
    if callable(activation):
        return activation
    raise TypeError(f"dense_autoencoder: {what} must be a name, None or a callable returning a "
                    f"Layer, got {type(activation).__name__}")


def _build_layer(factory, what):
    layer = factory()
    if not isinstance(layer, Layer):
        raise TypeError(f"dense_autoencoder: the {what} callable returned a "
                        f"{type(layer).__name__}, not a Layer")
    return layer


def _check_sizes(sizes):
    """The sizes as a list of ints; they must describe an undercomplete bottleneck."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"dense_autoencoder: sizes must be a list of integers such as "
                        f"[64, 32, 2], got {sizes!r}")
    sizes = list(sizes)
    for i, s in enumerate(sizes):
        if isinstance(s, bool) or not isinstance(s, Integral):
            raise TypeError(f"dense_autoencoder: sizes[{i}] must be an integer, got {s!r}")
        if s < 1:
            raise ValueError(f"dense_autoencoder: sizes must be positive, sizes[{i}] = {s}")
    if len(sizes) < 2:
        raise ValueError(f"dense_autoencoder: sizes needs at least the input size and the code "
                         f"size, e.g. [64, 2], got {sizes}")
    D, K = sizes[0], sizes[-1]
    if K >= D:
        raise ValueError(f"dense_autoencoder builds undercomplete autoencoders: the code size "
                         f"{K} must be smaller than the input size {D}. For a code as large as "
                         "the input, build Autoencoder(encoder, decoder) yourself (and use a "
                         "DenoisingAutoencoder, or the network can learn the identity)")
    narrow = [s for s in sizes[1:-1] if s < K]
    if narrow:
        raise ValueError(f"dense_autoencoder: hidden layer sizes {narrow} are smaller than the "
                         f"code size {K}; the code must be the narrowest layer (the bottleneck), "
                         f"got sizes {sizes}")
    return [int(s) for s in sizes]


def dense_autoencoder(sizes, activation="tanh", output_activation=None, code_activation=None,
                      noise=None, level=0.1, seed=0, init=None, rng=None, dtype=np.float32):
    """An undercomplete fully connected autoencoder with a mirrored decoder.

    ``sizes = [D, H_1, ..., H_m, K]`` gives the encoder
    ``Linear(D, H_1), act, ..., Linear(H_m, K)[, code_act]`` and the decoder
    ``Linear(K, H_m), act, ..., Linear(H_1, D)[, output_act]``: for example
    ``[64, 32, 2]`` is 64-32-2 followed by 2-32-64. Hidden layers may be wider
    than the input (``[64, 128, 2]``); the code must be narrower than the
    input (``K < D``) and than every hidden layer, otherwise ValueError.

    Defaults and why:

    - The code layer is linear (``code_activation=None``). A linear code can
      use the whole real line: tanh would squash the codes towards the
      corners of ``[-1, 1]^K`` and a ReLU code can lose a dimension for good
      when its unit dies. With no hidden layers and linear code and output,
      the best such network spans the same subspace as PCA with K components
      (Baldi & Hornik, 1989), so PCA is the baseline a non-linear one should
      beat.
    - The output layer is linear (``output_activation=None``), which suits
      standardised inputs that take any real value; use ``"sigmoid"`` for
      inputs in [0, 1].
    - Weights: He initialisation for ReLU-like activations, Glorot otherwise
      (``init`` overrides it for every layer); biases start at 0.

    Args:
        sizes: list of ints ``[D, ..., K]``, at least two.
        activation: hidden activation, a name from ``ACTIVATIONS``
            (``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"sigmoid"``,
            ``"softplus"``, ``"identity"``), None, or a zero-argument callable
            returning a Layer (e.g. ``lambda: LeakyReLU(0.1)``).
        output_activation, code_activation: the same choices, applied to the
            reconstruction and to the code; None means linear.
        noise: None for a plain ``Autoencoder``; ``"gaussian"`` or ``"mask"``
            for a ``DenoisingAutoencoder`` with ``level`` and ``seed``.
        init: a ``course_lib.init`` name for every weight, or None for the
            default above.
        rng: ``numpy.random.Generator`` for the weights (default: seeded with 0).
        dtype: parameter dtype (float32 for training, float64 for gradient checks).

    Returns:
        Autoencoder (or DenoisingAutoencoder) whose ``encoder`` and ``decoder``
        are ``Sequential`` layers.
    """
    sizes = _check_sizes(sizes)
    hidden = _activation_factory(activation, "activation")
    output = _activation_factory(output_activation, "output_activation")
    code = _activation_factory(code_activation, "code_activation")
    if init is None:
        # Judge the layer, not the argument: "relu", ReLU and lambda: LeakyReLU(0.1) all count.
        sample = _build_layer(hidden, "activation") if hidden is not None else None
        init = "he_uniform" if isinstance(sample, _HE_ACTIVATIONS) else "glorot_uniform"
    rng = rng if rng is not None else np.random.default_rng(0)

    def stack(widths, last_activation):
        layers = []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(Linear(n_in, n_out, init=init, rng=rng, dtype=dtype))
            is_last = i == len(widths) - 2
            factory = last_activation if is_last else hidden
            if factory is not None:
                layers.append(_build_layer(factory, "activation"))
        return Sequential(*layers)

    encoder = stack(sizes, code)
    decoder = stack(sizes[::-1], output)
    if noise is None:
        return Autoencoder(encoder, decoder)
    return DenoisingAutoencoder(encoder, decoder, noise=noise, level=level, seed=seed)


def reconstruction_error(model, X, batch_size=1024):
    """Mean squared reconstruction error ``mean((model(X) - X)^2)`` in eval mode, as a float.

    Runs in batches of ``batch_size`` rows and restores the model's mode
    afterwards. ``X`` has shape (N, D).
    """
    check_input(X, 2, "reconstruction_error", "(N, D)")
    if len(X) == 0:
        raise ValueError("reconstruction_error: X has no rows")
    was_training = model.training
    model.eval()
    try:
        total = 0.0
        for start in range(0, len(X), batch_size):
            x = X[start:start + batch_size]
            total += float(((model(x) - x) ** 2).sum())
    finally:
        model.train(was_training)
    return total / X.size


__all__ = ["Autoencoder", "DenoisingAutoencoder", "dense_autoencoder", "reconstruction_error",
           "ACTIVATIONS", "NOISE_KINDS"]
