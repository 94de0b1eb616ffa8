"""word2vec: skip-gram and CBOW with negative sampling, trained in vectorised mini-batches.

The model (Mikolov et al. 2013) has two embedding matrices, ``W_in`` (V, D)
for words in the input role and ``W_out`` (V, D) for words in the output
role. Looking up a row is the same as multiplying a one-hot vector by the
matrix (:func:`embedding_forward`). For one (center, context) pair with
input vector ``v = W_in[center]``, output vector ``u_o = W_out[context]`` and
K negatives ``u_k = W_out[n_k]`` drawn from the noise distribution, the
skip-gram negative-sampling (SGNS) loss is::

    loss = -log sigmoid(u_o . v) - sum_k log sigmoid(-u_k . v)

CBOW uses the mean of the context words' input vectors in place of ``v`` and
predicts the center word. The pure functions :func:`sgns_loss_and_grads`,
:func:`cbow_mean` and :func:`embedding_backward` state the math; the
:class:`Word2Vec` trainer computes the same gradients for thousands of
pairs at once and adds them into the matrices with sparse products
(:mod:`course_lib.sparse`).

Conventions follow word2vec's C code and gensim where they matter for
results: a dynamic window (the window of each center word is drawn
uniformly from 1..window), subsampling before windows are formed,
``W_in`` initialised uniformly in [-0.5/D, 0.5/D) and ``W_out`` at zero,
a learning rate decaying linearly to ``lr * 1e-4``, CBOW's input update
(see :func:`cbow_step`). Skip-gram takes the
center word as input and predicts each context word (the paper's
orientation; the C code swaps the two roles, which gives the same pairs
in expectation because windows are symmetric).
"""

import json
import time
from pathlib import Path

import numpy as np

from .backend import asarray, get_array_module, to_numpy
from .layers.activations import sigmoid, softplus
from .sparse import scatter_add_rows, sparse_rows_product
from .text import NegativeSampler, Vocab, _check_sentences, keep_probabilities, subsample

MIN_LR_RATIO = 1e-4   # the learning rate ends at lr * 1e-4, as in word2vec and gensim


# ----------------------------------------------------------------------------
# The math, as pure functions
# ----------------------------------------------------------------------------

def log_sigmoid(x):
    """``log sigmoid(x) = -log(1 + exp(-x)) = -softplus(-x)``, stable for large ``|x|``."""
    return -softplus(-x)


def embedding_forward(W, ids):
    """Look up rows: ``out = W[ids]``, the same as ``one_hot(ids) @ W``.

    Args:
        W: (V, D) embedding matrix; ids: int array of any shape S.

    Returns:
        out: array of shape S + (D,).
    """
    return W[ids]


def embedding_backward(dout, ids, num_embeddings):
    """Gradient of :func:`embedding_forward` with respect to ``W``.

    ``dW[v] = sum over positions i with ids[i] == v of dout[i]`` (a word that
    appears twice collects both gradients), i.e. ``one_hot(ids).T @ dout``.

    Args:
        dout: array of shape S + (D,); ids: int array of shape S;
        num_embeddings: V.

    Returns:
        dW: array of shape (V, D).
    """
    xp = get_array_module(dout)
    D = dout.shape[-1]
    dW = xp.zeros((int(num_embeddings), D), dtype=dout.dtype)
    scatter_add_rows(dW, xp.asarray(ids).reshape(-1), dout.reshape(-1, D))
    return dW


def sgns_loss_and_grads(v_center, u_context, u_negatives):
    """Skip-gram negative-sampling loss of N pairs and its gradients.

    ``loss = sum_i [ -log s(u_o,i . v_i) - sum_k log s(-u_k,i . v_i) ]`` with
    ``s`` the sigmoid; the loss is summed (not averaged) over the N pairs,
    so the gradient of each pair is the one word2vec's SGD step uses. With
    ``g_o = s(u_o . v) - 1`` and ``g_k = s(u_k . v)``::

        dv   = g_o u_o + sum_k g_k u_k
        du_o = g_o v
        du_k = g_k v

    Args:
        v_center: (N, D) input vectors of the center words.
        u_context: (N, D) output vectors of the context (positive) words.
        u_negatives: (N, K, D) output vectors of the negative samples.

    Returns:
        loss (float), dv_center (N, D), du_context (N, D), du_negatives (N, K, D).
    """
    xp = get_array_module(v_center, u_context, u_negatives)
    if v_center.ndim != 2 or u_context.shape != v_center.shape:
        raise ValueError(f"v_center and u_context must both be (N, D), got "
                         f"{v_center.shape} and {u_context.shape}")
    if u_negatives.ndim != 3 or u_negatives.shape[0] != v_center.shape[0] \
            or u_negatives.shape[2] != v_center.shape[1]:
        raise ValueError(f"u_negatives must be (N, K, D) = ({v_center.shape[0]}, K, "
                         f"{v_center.shape[1]}), got {u_negatives.shape}")
    score_pos = xp.einsum("nd,nd->n", v_center, u_context)
    score_neg = xp.einsum("nkd,nd->nk", u_negatives, v_center)
    loss = -(log_sigmoid(score_pos).sum() + log_sigmoid(-score_neg).sum())
    g_pos = sigmoid(score_pos) - 1.0          # d loss / d score_pos
    g_neg = sigmoid(score_neg)                # d loss / d score_neg
    dv_center = g_pos[:, None] * u_context + xp.einsum("nk,nkd->nd", g_neg, u_negatives)
    du_context = g_pos[:, None] * v_center
    du_negatives = g_neg[:, :, None] * v_center[:, None, :]
    return float(loss), dv_center, du_context, du_negatives


def sgns_embedding_loss_and_grads(W_in, W_out, centers, contexts, negatives):
    """The SGNS loss as a function of the two embedding matrices.

    Looks up ``v = W_in[centers]``, ``u_o = W_out[contexts]``,
    ``u_k = W_out[negatives]``, calls :func:`sgns_loss_and_grads` and sends
    the gradients back to the matrices with :func:`embedding_backward`, so a
    word used several times in the batch (as center, context or negative)
    gets the sum of its gradients.

    Args:
        W_in, W_out: (V, D); centers, contexts: int (N,); negatives: int (N, K).

    Returns:
        loss (float), dW_in (V, D), dW_out (V, D).
    """
    loss, dv, du_o, du_k = sgns_loss_and_grads(
        embedding_forward(W_in, centers), embedding_forward(W_out, contexts),
        embedding_forward(W_out, negatives))
    V = W_in.shape[0]
    dW_in = embedding_backward(dv, centers, V)
    dW_out = embedding_backward(du_o, contexts, V) + embedding_backward(du_k, negatives, V)
    return loss, dW_in, dW_out


def cbow_mean(v_context, mask):
    """CBOW's hidden vector: the mean of the context vectors that are present.

    ``h_i = sum_j mask_ij v_ij / sum_j mask_ij`` (word2vec's default
    ``cbow_mean=1``). Rows without any context give ``h_i = 0``.

    Args:
        v_context: (N, C, D) input vectors of up to C context words per center.
        mask: (N, C) 1 where a context word is present, 0 for padding.

    Returns:
        h: (N, D).
    """
    xp = get_array_module(v_context)
    mask = xp.asarray(mask, dtype=v_context.dtype)
    count = xp.maximum(mask.sum(axis=1), 1.0)
    return xp.einsum("nc,ncd->nd", mask, v_context) / count[:, None]


def cbow_mean_backward(dh, mask):
    """Gradient of :func:`cbow_mean`: each present context vector gets ``dh_i / count_i``.

    Args:
        dh: (N, D); mask: (N, C).

    Returns:
        dv_context: (N, C, D), zero where ``mask`` is 0.
    """
    xp = get_array_module(dh)
    mask = xp.asarray(mask, dtype=dh.dtype)
    count = xp.maximum(mask.sum(axis=1), 1.0)
    return (mask / count[:, None])[:, :, None] * dh[:, None, :]


# ----------------------------------------------------------------------------
# Training steps on a mini-batch
# ----------------------------------------------------------------------------

def skipgram_pairs(kept_ids, kept_sentences, start, stop, window, rng):
    """(center, context) positions for the center words at positions ``start..stop-1``.

    Each center word gets its own window ``b`` drawn uniformly from
    ``1..window`` (word2vec's dynamic window, which weights near words more);
    its contexts are the words at most ``b`` positions away in the same
    sentence. Pairs come out grouped by center, in text order.

    Args:
        kept_ids: (T,) word ids after subsampling; kept_sentences: (T,) sentence of each.
        start, stop: the center positions of this batch.
        window: the largest window.
        rng: random generator of the array module.

    Returns:
        center_pos, context_pos: int arrays of shape (P,), positions into ``kept_ids``.
    """
    xp = get_array_module(kept_ids)
    n = stop - start
    T = kept_ids.shape[0]
    pos = xp.arange(start, stop)
    reduced = rng.integers(1, window + 1, size=n)
    offsets = xp.concatenate((xp.arange(-window, 0), xp.arange(1, window + 1)))
    context = pos[:, None] + offsets[None, :]                       # (n, 2 window)
    valid = (xp.abs(offsets)[None, :] <= reduced[:, None]) & (context >= 0) & (context < T)
    context = xp.clip(context, 0, T - 1)
    valid &= kept_sentences[context] == kept_sentences[pos][:, None]
    row, col = xp.nonzero(valid)
    return pos[row], context[row, col]


def _negative_sampling_grads(h, u, lr, want_loss):
    """Shared core of the skip-gram and CBOW steps.

    Args:
        h: (N, D) input-side vectors; u: (N, K+1, D) output vectors, column 0
            the positive word.

    Returns:
        coef (N, K+1) = ``-lr * d loss / d score``, dh (N, D) = ``-lr * d loss / d h``,
        and the summed loss (or None).
    """
    xp = get_array_module(h)
    score = xp.matmul(u, h[:, :, None])[:, :, 0]       # (N, K+1): u_k . h
    coef = sigmoid(score)                              # d loss / d score: s for negatives,
    coef[:, 0] -= 1.0                                  # s - 1 for the positive word
    loss = None
    if want_loss:
        score[:, 1:] *= -1.0
        loss = float(-log_sigmoid(score).sum())
    coef *= -lr                                        # the step is W -= lr * grad
    dh = xp.matmul(coef[:, None, :], u)[:, 0, :]       # (N, D)
    return coef, dh, loss


def sgns_step(W, V, centers, contexts, negatives, lr, max_updates=None, want_loss=False):
    """One SGD step of skip-gram with negative sampling on a batch of P pairs, in place.

    ``W`` stacks the two embedding matrices, ``W[:V] = W_in`` and
    ``W[V:] = W_out``, so a single sparse product adds all updates. Computes
    the gradients of :func:`sgns_loss_and_grads` for every pair from the
    current matrices and applies ``W -= lr * dW``, the gradients of a
    repeated word summed (:func:`scatter_add_rows`). The (P, K+1, D) array of
    output-vector gradients is never built: it is a sparse matrix of
    coefficients times the (P, D) center vectors.

    Args:
        W: (2V, D) float32, updated in place; V: vocabulary size.
        centers, contexts: int (P,); negatives: int (P, K).
        lr: learning rate; max_updates: see ``Word2Vec``.

    Returns:
        the summed loss of the batch when ``want_loss``, else None.
    """
    xp = get_array_module(W)
    P, K1 = negatives.shape[0], negatives.shape[1] + 1
    targets = xp.empty((P, K1), dtype=xp.intp)
    targets[:, 0] = contexts
    targets[:, 1:] = negatives
    targets += V                                       # rows of W_out inside W
    h = xp.take(W, centers, axis=0)                    # (P, D)
    u = xp.take(W, targets, axis=0)                    # (P, K+1, D)
    coef, dh, loss = _negative_sampling_grads(h, u, lr, want_loss)
    pair = xp.arange(P)
    rows = xp.concatenate((targets.reshape(-1), centers))
    cols = xp.concatenate((xp.repeat(pair, K1), pair + P))
    weights = xp.concatenate((coef.reshape(-1), xp.ones(P, dtype=W.dtype)))
    scatter_add_rows(W, rows, xp.concatenate((h, dh)), cols, weights, max_updates)
    return loss


def cbow_step(W, V, groups, contexts, centers, negatives, lr, max_updates=None,
              want_loss=False):
    """One SGD step of CBOW with negative sampling on a batch of N centers, in place.

    Center ``i`` has the context words ``contexts[e]`` for which
    ``groups[e] == i`` (``groups`` sorted); its hidden vector is their mean
    ``h_i`` (:func:`cbow_mean`), which predicts ``centers[i]`` against
    ``negatives[i]`` with the loss of :func:`sgns_loss_and_grads`. The output
    vectors get ``-lr`` times their gradient. Each context vector is moved by
    ``-lr * dh_i``, as word2vec's C code and gensim do with ``cbow_mean=1``:
    that is ``count_i`` times the exact gradient of the mean
    (:func:`cbow_mean_backward` gives ``dh_i / count_i``), i.e. a larger
    learning rate for the input vectors. ``W`` stacks ``W_in`` and ``W_out``
    as in :func:`sgns_step`.

    Args:
        W: (2V, D) float32, updated in place; V: vocabulary size.
        groups: int (E,) sorted center index of each context entry; contexts: int (E,).
        centers: int (N,); negatives: int (N, K).
        lr: learning rate; max_updates: see ``Word2Vec``.

    Returns:
        the summed loss of the batch when ``want_loss``, else None.
    """
    xp = get_array_module(W)
    N, K1 = negatives.shape[0], negatives.shape[1] + 1
    count = xp.bincount(groups, minlength=N).astype(W.dtype)
    h = sparse_rows_product(N, groups, W, cols=contexts, coef=(1.0 / count)[groups])   # means
    targets = xp.empty((N, K1), dtype=xp.intp)
    targets[:, 0] = centers
    targets[:, 1:] = negatives
    targets += V
    u = xp.take(W, targets, axis=0)
    coef, dh, loss = _negative_sampling_grads(h, u, lr, want_loss)
    rows = xp.concatenate((targets.reshape(-1), contexts))
    cols = xp.concatenate((xp.repeat(xp.arange(N), K1), groups + N))
    weights = xp.concatenate((coef.reshape(-1), xp.ones(contexts.shape[0], dtype=W.dtype)))
    scatter_add_rows(W, rows, xp.concatenate((h, dh)), cols, weights, max_updates)
    return loss


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------

class Word2Vec:
    """word2vec with negative sampling: skip-gram (``sg=True``) or CBOW (``sg=False``).

    Training walks through the (subsampled) corpus ``batch_size`` center
    words at a time. For each batch it makes all (center, context) pairs
    with array operations, draws the negatives in bulk, computes every
    pair's gradient from the current matrices with batched matrix products,
    and adds the updates with one sparse product (see :func:`sgns_step`,
    :func:`cbow_step`). Within a batch the updates are summed, where
    word2vec's C code applies them one after the other; for a word that
    occurs many times in one batch (a frequent word drawn as a negative
    hundreds of times) the sum can overshoot, so a row's summed update is
    scaled down to ``max_updates`` single updates when it occurs more often
    than that. Rare and mid-frequency words are never affected.

    Args:
        vector_size: D, the embedding size.
        window: largest distance between a center and a context word; each
            center word draws its own window from 1..window.
        negative: K, negatives per positive word.
        sg: skip-gram when True, CBOW (mean of the context vectors) when False.
            For CBOW, word2vec's C code defaults to ``lr=0.05``.
        min_count: drop words seen fewer times.
        sample: subsampling threshold t (see ``course_lib.text.keep_probabilities``).
        lr: initial learning rate; decays linearly to ``lr * 1e-4`` over training.
        epochs: passes over the corpus.
        seed: seeds the initialisation, subsampling, windows and negatives.
        batch_size: center words per SGD step (skip-gram makes about four
            pairs from each on the default corpus). None: 512 on the CPU,
            4096 on a GPU, where each step costs about the same whatever its
            size, so larger steps mean fewer of them.
        device: ``"cpu"`` or ``"gpu"`` (default: ``course_lib.get_device()``).
        max_updates: cap on the updates a row receives in one batch (default
            32; None: no cap, plain summed mini-batch SGD, which diverges on
            small vocabularies).
        progress: show a tqdm progress bar.

    Attributes after ``fit``:
        vocab: the ``course_lib.text.Vocab``; ``words`` (list) and ``index``
            (word -> row) for plotting.
        W_in, W_out: (V, D) float32 raw input and output embeddings (on the
            device; views into one (2V, D) array).
        vectors: (V, D) float32 NumPy array of the *input* embeddings scaled
            to unit length (what ``similarity`` and ``most_similar`` use).
        losses: list of (words processed, mean loss per positive word).
        words_per_second: training speed of the last ``fit`` (corpus words,
            counted before subsampling, per second, as gensim counts them).
    """

    def __init__(self, vector_size=100, window=5, negative=5, sg=True, min_count=5,
                 sample=1e-3, lr=0.025, epochs=5, seed=0, batch_size=None, device=None,
                 max_updates=32, progress=True):
        sizes = [("vector_size", vector_size), ("window", window), ("negative", negative),
                 ("min_count", min_count), ("epochs", epochs)]
        if batch_size is not None:
            sizes.append(("batch_size", batch_size))
        for name, value in sizes:
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr!r}")
        if not sample >= 0:
            raise ValueError(f"sample must be >= 0, got {sample!r}")
        if max_updates is not None and not max_updates > 0:
            raise ValueError(f"max_updates must be positive or None, got {max_updates!r}")
        self.vector_size, self.window, self.negative = int(vector_size), int(window), int(negative)
        self.sg, self.min_count, self.sample = bool(sg), int(min_count), float(sample)
        self.lr, self.epochs, self.seed = float(lr), int(epochs), int(seed)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.device, self.progress = device, progress
        self.max_updates = max_updates
        self.vocab = None
        self.W = None
        self._vectors = None
        self.losses = []
        self.words_per_second = None

    @property
    def W_in(self):
        """(V, D) input embeddings (a view into ``W``)."""
        self._check_fitted()
        return self.W[:len(self.vocab)]

    @property
    def W_out(self):
        """(V, D) output embeddings (a view into ``W``)."""
        self._check_fitted()
        return self.W[len(self.vocab):]

    # -- training --------------------------------------------------------------

    def fit(self, sentences):
        """Build the vocabulary from ``sentences`` (lists of str tokens) and train.

        ``sentences`` may be any iterable, a generator included: it is read
        into a list once, since the vocabulary and the encoding each need a pass.

        Returns:
            self.
        """
        from tqdm.auto import tqdm

        sentences = _check_sentences(sentences)
        vocab = Vocab.build(sentences, self.min_count)
        ids, sentence_ids = vocab.encode(sentences)
        if ids.shape[0] < 2:
            raise ValueError("fewer than two tokens are left after min_count: nothing to train on")
        V, D = len(vocab), self.vector_size
        init = np.random.default_rng(self.seed)
        W = np.zeros((2 * V, D), dtype=np.float32)          # W_out starts at zero ...
        W[:V] = (init.random((V, D), dtype=np.float32) - 0.5) / D   # ... W_in small, uniform
        self.vocab, self.W = vocab, asarray(W, device=self.device)
        xp = get_array_module(self.W)
        counts = xp.asarray(vocab.counts)
        keep_prob = keep_probabilities(counts, self.sample).astype(xp.float32)
        sampler = NegativeSampler(counts, 0.75, seed=self.seed + 1)
        rng = xp.random.default_rng(self.seed + 2)
        ids, sentence_ids = xp.asarray(ids), xp.asarray(sentence_ids)
        T = int(ids.shape[0])
        total = self.epochs * T
        self.losses, self._vectors = [], None
        start_time = time.perf_counter()
        with tqdm(total=total, unit="word", unit_scale=True, disable=not self.progress,
                  desc="word2vec " + ("skip-gram" if self.sg else "CBOW")) as bar:
            for epoch in range(self.epochs):
                kept = subsample(ids, keep_prob, rng)
                # Raw (before subsampling) word counts drive the learning rate and the bar.
                raw_done = np.append(to_numpy(xp.flatnonzero(kept)), T) + epoch * T
                self._train_epoch(ids[kept], sentence_ids[kept], raw_done, total,
                                  sampler, rng, bar)
                if not bool(xp.isfinite(self.W).all()):
                    raise FloatingPointError(
                        f"training diverged in epoch {epoch + 1} (the embeddings hold inf or "
                        "NaN): lower lr or batch_size, or set max_updates")
        self.words_per_second = total / (time.perf_counter() - start_time)
        return self

    _CHUNK_BATCHES = 16   # pairs and negatives are made for this many batches at once

    def _train_epoch(self, kept_ids, kept_sentences, raw_done, total, sampler, rng, bar):
        """One pass over the subsampled tokens, ``batch_size`` center words per step."""
        xp = get_array_module(kept_ids)
        n_kept = int(kept_ids.shape[0])
        bs = self.batch_size or (512 if xp is np else 4096)
        V = len(self.vocab)
        n_steps = 0
        for chunk_start in range(0, n_kept, bs * self._CHUNK_BATCHES):
            chunk_stop = min(chunk_start + bs * self._CHUNK_BATCHES, n_kept)
            center_pos, context_pos = skipgram_pairs(kept_ids, kept_sentences, chunk_start,
                                                     chunk_stop, self.window, rng)
            starts = np.arange(chunk_start, chunk_stop + bs, bs).clip(max=chunk_stop)
            bounds = to_numpy(xp.searchsorted(center_pos, xp.asarray(starts)))
            if self.sg:
                contexts = kept_ids[context_pos]
                negatives = sampler.sample(contexts, self.negative)
                centers = kept_ids[center_pos]
            else:
                chunk_ids = kept_ids[chunk_start:chunk_stop]
                negatives = sampler.sample(chunk_ids, self.negative)
            for b in range(len(starts) - 1):
                p0, p1 = int(bounds[b]), int(bounds[b + 1])
                s0, s1 = int(starts[b]), int(starts[b + 1])
                progress = raw_done[s1] / total
                lr = self.lr * (1.0 - (1.0 - MIN_LR_RATIO) * progress)
                want_loss = n_steps % 50 == 0
                n_steps += 1
                if p1 > p0 and self.sg:
                    loss = sgns_step(self.W, V, centers[p0:p1], contexts[p0:p1],
                                     negatives[p0:p1], lr, self.max_updates, want_loss)
                    n = p1 - p0
                elif p1 > p0:
                    # CBOW: one example per center word with at least one context word.
                    groups = center_pos[p0:p1] - s0
                    has = xp.bincount(groups, minlength=s1 - s0) > 0
                    renumber = (xp.cumsum(has) - 1).astype(groups.dtype)
                    offset = s0 - chunk_start
                    loss = cbow_step(self.W, V, renumber[groups], kept_ids[context_pos[p0:p1]],
                                     chunk_ids[offset:offset + s1 - s0][has],
                                     negatives[offset:offset + s1 - s0][has],
                                     lr, self.max_updates, want_loss)
                    n = int(has.sum())
                if want_loss and p1 > p0:
                    self.losses.append((int(raw_done[s1]), loss / n))
                bar.update(int(raw_done[s1]) - bar.n)

    # -- queries ---------------------------------------------------------------

    def _check_fitted(self):
        if self.vocab is None:
            raise RuntimeError("this Word2Vec has not been trained yet: call fit(sentences) first")

    @property
    def words(self):
        """The vocabulary, ``words[i]`` is the word of row ``i``."""
        self._check_fitted()
        return self.vocab.words

    @property
    def index(self):
        """dict word -> row of ``vectors``."""
        self._check_fitted()
        return self.vocab.index

    @property
    def vectors(self):
        """(V, D) float32 NumPy array: the input embeddings ``W_in`` scaled to unit length."""
        self._check_fitted()
        if self._vectors is None:
            W = to_numpy(self.W_in).astype(np.float32)
            norms = np.linalg.norm(W, axis=1, keepdims=True)
            self._vectors = W / np.maximum(norms, 1e-12)
        return self._vectors

    def __contains__(self, word):
        return self.vocab is not None and word in self.vocab

    def __getitem__(self, word):
        """The raw input embedding of ``word`` (a NumPy (D,) array)."""
        self._check_fitted()
        return to_numpy(self.W_in[self.vocab.lookup(word)])

    def similarity(self, a, b):
        """Cosine similarity of the embeddings of words ``a`` and ``b``."""
        self._check_fitted()
        vecs = self.vectors
        return float(vecs[self.vocab.lookup(a)] @ vecs[self.vocab.lookup(b)])

    def _nearest(self, query, exclude, topn):
        scores = self.vectors @ (query / max(np.linalg.norm(query), 1e-12))
        scores[list(exclude)] = -np.inf
        topn = min(int(topn), len(scores) - len(set(exclude)))
        best = np.argpartition(-scores, topn - 1)[:topn] if topn > 0 else np.array([], int)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.vocab.words[i], float(scores[i])) for i in best]

    def most_similar(self, word, topn=10):
        """The ``topn`` words with the largest cosine similarity to ``word`` (itself excluded).

        Returns:
            list of (word, cosine) pairs, most similar first.
        """
        self._check_fitted()
        i = self.vocab.lookup(word)
        return self._nearest(self.vectors[i], [i], topn)

    def analogy(self, a, b, c, topn=1):
        """"``a`` is to ``b`` as ``c`` is to ?", answered with 3CosAdd.

        Returns the words ``x`` maximising ``cos(x, b - a + c)`` on unit-length
        vectors, excluding ``a``, ``b`` and ``c`` themselves (as word2vec's
        ``compute-accuracy`` and gensim's ``most_similar`` do).

        Returns:
            list of (word, cosine) pairs, best first.
        """
        self._check_fitted()
        ia, ib, ic = (self.vocab.lookup(w) for w in (a, b, c))
        vecs = self.vectors
        return self._nearest(vecs[ib] - vecs[ia] + vecs[ic], [ia, ib, ic], topn)


# ----------------------------------------------------------------------------
# Evaluation on word pairs and analogies written for the default corpus
# ----------------------------------------------------------------------------

EVAL_PATH = Path(__file__).parent / "resources" / "w2v_eval.json"


def load_eval_set(path=EVAL_PATH):
    """The evaluation set: ``{"pairs": [[a, b], ...], "analogies": [[a, b, c, d], ...]}``."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return {"pairs": [tuple(p) for p in data["pairs"]],
            "analogies": [tuple(q) for q in data["analogies"]]}


class KeyedVectorsAdapter:
    """Gives a gensim ``KeyedVectors`` (``model.wv``) the ``similarity``/``analogy`` methods."""

    def __init__(self, keyed_vectors):
        self.kv = keyed_vectors

    def similarity(self, a, b):
        return float(self.kv.similarity(a, b))

    def analogy(self, a, b, c, topn=1):
        return self.kv.most_similar(positive=[b, c], negative=[a], topn=topn)


def evaluate(model, eval_set=None, k=5):
    """Score word vectors on the evaluation set.

    Pairs: for each pair (a, b), ``b`` competes with the second words of all
    other pairs (the distractors) for the highest ``model.similarity(a, .)``;
    its rank is 1 when it wins. Analogies ``a : b :: c : d``: a hit at k when
    ``d`` is among ``model.analogy(a, b, c, topn=k)``. A word missing from
    the model's vocabulary counts as the worst rank or a miss.

    Args:
        model: anything with ``similarity(a, b)`` and ``analogy(a, b, c, topn)``
            (a ``Word2Vec``; for gensim pass ``KeyedVectorsAdapter(model.wv)``
            or the gensim model itself, which is wrapped automatically).
        eval_set: as from :func:`load_eval_set` (default: the packaged set).
        k: the cut-off of the second analogy accuracy.

    Returns:
        dict with ``pair_mean_rank`` (1 is best), ``pair_accuracy`` (fraction
        ranked first), ``analogy_acc@1``, ``analogy_acc@k`` and the counts.
    """
    if not hasattr(model, "analogy") and hasattr(model, "wv"):
        model = KeyedVectorsAdapter(model.wv)
    eval_set = eval_set or load_eval_set()
    pairs, analogies = eval_set["pairs"], eval_set["analogies"]
    seconds = [b for _, b in pairs]

    def similarity(a, b):
        try:
            return float(model.similarity(a, b))
        except KeyError:          # a word the model does not know
            return -np.inf

    ranks = []
    for i, (a, b) in enumerate(pairs):
        distractors = [w for j, w in enumerate(seconds) if j != i and w not in (a, b)]
        target = similarity(a, b)
        if np.isfinite(target):
            ranks.append(1 + sum(similarity(a, w) > target for w in distractors))
        else:
            ranks.append(1 + len(distractors))
    hits1 = hitsk = 0
    for a, b, c, d in analogies:
        try:
            answers = [w for w, _ in model.analogy(a, b, c, topn=k)]
        except KeyError:
            continue
        hits1 += answers[:1] == [d]
        hitsk += d in answers
    return {"pair_mean_rank": float(np.mean(ranks)),
            "pair_accuracy": float(np.mean([r == 1 for r in ranks])),
            "analogy_acc@1": hits1 / len(analogies),
            f"analogy_acc@{k}": hitsk / len(analogies),
            "n_pairs": len(pairs), "n_analogies": len(analogies)}
