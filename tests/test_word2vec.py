"""Tests for course_lib.word2vec: gradients, the mini-batch steps, training and queries."""

import numpy as np
import pytest
import scipy.stats

from course_lib.backend import gpu_available, gpu_unavailable_reason, to_numpy
from course_lib.gradcheck import numerical_gradient, relative_error
from course_lib.text import Vocab
from course_lib.word2vec import (KeyedVectorsAdapter, Word2Vec, cbow_mean, cbow_mean_backward,
                                 cbow_step, embedding_backward, embedding_forward, evaluate,
                                 load_eval_set, scatter_add_rows, sgns_embedding_loss_and_grads,
                                 sgns_loss_and_grads, sgns_step, skipgram_pairs,
                                 sparse_rows_product)

# Central differences in float64 with h = 1e-5 agree with a correct gradient to
# about 1e-9 relative (truncation O(h^2), rounding ~1e-16/h); a wrong sign,
# factor or missing term gives errors of order 1. 1e-6 leaves a wide margin.
TOL = 1e-6


def _check_grad(f, x, analytic, name):
    numeric = numerical_gradient(f, x)
    err = relative_error(analytic, numeric).max()
    assert err < TOL, f"gradient of {name}: max relative error {err:.2e}"


def _reference_loss(v, u_o, u_k):
    """The SGNS loss written independently: -log s(u_o.v) - sum_k log s(-u_k.v)."""
    pos = np.sum(v * u_o, axis=1)
    neg = np.sum(u_k * v[:, None, :], axis=2)
    return np.sum(np.log1p(np.exp(-pos))) + np.sum(np.log1p(np.exp(neg)))


# -- the pure functions ------------------------------------------------------------

@pytest.mark.parametrize("N, K, D", [(1, 1, 2), (3, 4, 5), (6, 2, 7)])
def test_sgns_gradients_match_central_differences(N, K, D):
    rng = np.random.default_rng(N * 100 + K * 10 + D)
    v, u_o, u_k = rng.normal(size=(N, D)), rng.normal(size=(N, D)), rng.normal(size=(N, K, D))
    loss, dv, du_o, du_k = sgns_loss_and_grads(v, u_o, u_k)
    assert loss == pytest.approx(_reference_loss(v, u_o, u_k), rel=1e-12)
    assert dv.shape == (N, D) and du_o.shape == (N, D) and du_k.shape == (N, K, D)
    _check_grad(lambda x: sgns_loss_and_grads(x, u_o, u_k)[0], v, dv, "v_center")
    _check_grad(lambda x: sgns_loss_and_grads(v, x, u_k)[0], u_o, du_o, "u_context")
    _check_grad(lambda x: sgns_loss_and_grads(v, u_o, x)[0], u_k, du_k, "u_negatives")


def test_sgns_loss_is_stable_for_large_scores():
    v = np.full((1, 4), 30.0)
    loss, dv, _, _ = sgns_loss_and_grads(v, -v, v[:, None, :])   # scores -3600 and +3600
    assert np.isfinite(loss) and loss == pytest.approx(7200.0)
    assert np.all(np.isfinite(dv))


def test_sgns_shape_errors():
    with pytest.raises(ValueError, match="u_negatives"):
        sgns_loss_and_grads(np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 2, 5)))
    with pytest.raises(ValueError, match="u_context"):
        sgns_loss_and_grads(np.zeros((3, 4)), np.zeros((4, 3)), np.zeros((3, 2, 4)))


def test_gradients_wrt_embedding_matrices_with_repeated_words():
    rng = np.random.default_rng(7)
    V, D = 6, 4
    W_in, W_out = rng.normal(size=(V, D)), rng.normal(size=(V, D))
    # Word 1 is a center twice, word 2 a context twice and also a negative,
    # word 3 appears twice among the negatives of one pair.
    centers = np.array([1, 1, 4, 0])
    contexts = np.array([2, 2, 5, 3])
    negatives = np.array([[3, 3, 0], [2, 4, 5], [0, 1, 3], [2, 2, 1]])
    loss, dW_in, dW_out = sgns_embedding_loss_and_grads(W_in, W_out, centers, contexts, negatives)

    def f_in(W):
        return _reference_loss(W[centers], W_out[contexts], W_out[negatives])

    def f_out(W):
        return _reference_loss(W_in[centers], W[contexts], W[negatives])

    assert loss == pytest.approx(f_in(W_in), rel=1e-12)
    _check_grad(f_in, W_in, dW_in, "W_in")
    _check_grad(f_out, W_out, dW_out, "W_out")
    assert np.all(dW_in[[2, 3, 5]] == 0), "words that are never a center get no input gradient"


def test_cbow_mean_and_its_gradient():
    rng = np.random.default_rng(3)
    N, C, D = 4, 5, 3
    v = rng.normal(size=(N, C, D))
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    h = cbow_mean(v, mask)
    np.testing.assert_allclose(h[0], (v[0, 0] + v[0, 1]) / 2)
    np.testing.assert_allclose(h[1], v[1].mean(axis=0))
    np.testing.assert_allclose(h[2], v[2, 2])
    np.testing.assert_array_equal(h[3], 0.0)
    R = rng.normal(size=(N, D))       # the loss sum(h * R) has dL/dh = R
    dv = cbow_mean_backward(R, mask)
    _check_grad(lambda x: np.sum(cbow_mean(x, mask) * R), v, dv, "cbow_mean")
    assert np.all(dv[mask == 0] == 0)


def test_embedding_forward_and_backward_agree_with_one_hot_products():
    rng = np.random.default_rng(5)
    V, D = 7, 3
    W = rng.normal(size=(V, D))
    ids = np.array([[0, 3, 3], [6, 0, 1]])
    one_hot = np.eye(V)[ids]                                   # (2, 3, V)
    np.testing.assert_allclose(embedding_forward(W, ids), one_hot @ W)
    dout = rng.normal(size=(2, 3, D))
    expected = one_hot.reshape(-1, V).T @ dout.reshape(-1, D)
    np.testing.assert_allclose(embedding_backward(dout, ids, V), expected, rtol=1e-12)


# -- scatter-add functions against np.add.at ------------------------------------------

@pytest.mark.parametrize("order", ["rows sorted", "cols sorted", "neither"])
def test_sparse_rows_product_matches_add_at(order):
    rng = np.random.default_rng(11)
    E, n_x, n_rows, D = 40, 9, 6, 5
    rows, cols = rng.integers(0, n_rows, E), rng.integers(0, n_x, E)
    if order == "rows sorted":
        rows.sort()
    elif order == "cols sorted":
        cols.sort()
    coef, X = rng.normal(size=E), rng.normal(size=(n_x, D))
    expected = np.zeros((n_rows, D))
    np.add.at(expected, rows, coef[:, None] * X[cols])
    np.testing.assert_allclose(sparse_rows_product(n_rows, rows, X, cols, coef), expected,
                               rtol=1e-12, atol=1e-14)


def test_scatter_add_rows_counts_every_repeat_and_caps():
    rng = np.random.default_rng(12)
    W = rng.normal(size=(5, 3))
    rows = np.array([4, 1, 4, 4, 0, 1])
    X = rng.normal(size=(6, 3))
    expected = W.copy()
    np.add.at(expected, rows, X)
    np.testing.assert_allclose(scatter_add_rows(W.copy(), rows, X), expected, rtol=1e-12)
    # With max_updates=2 the row used 3 times gets 2/3 of its summed update.
    capped = scatter_add_rows(W.copy(), rows, X, max_updates=2)
    np.testing.assert_allclose(capped[4], W[4] + X[[0, 2, 3]].sum(axis=0) * 2 / 3, rtol=1e-12)
    np.testing.assert_allclose(capped[[0, 1, 2, 3]], expected[[0, 1, 2, 3]], rtol=1e-12)


# -- the training steps -----------------------------------------------------------------

def test_sgns_step_applies_minus_lr_times_the_gradient():
    rng = np.random.default_rng(21)
    V, D, P, K = 8, 5, 12, 3
    W_in, W_out = rng.normal(size=(V, D)) * 0.5, rng.normal(size=(V, D)) * 0.5
    centers, contexts = rng.integers(0, V, P), rng.integers(0, V, P)
    negatives = rng.integers(0, V, (P, K))
    _, dW_in, dW_out = sgns_embedding_loss_and_grads(W_in, W_out, centers, contexts, negatives)
    W = np.concatenate([W_in, W_out])
    loss = sgns_step(W, V, centers, contexts, negatives, lr=0.1, want_loss=True)
    np.testing.assert_allclose(W[:V], W_in - 0.1 * dW_in, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(W[V:], W_out - 0.1 * dW_out, rtol=1e-10, atol=1e-12)
    assert loss == pytest.approx(_reference_loss(W_in[centers], W_out[contexts],
                                                 W_out[negatives]), rel=1e-10)


def test_cbow_step_follows_the_gradient_with_word2vecs_input_update():
    rng = np.random.default_rng(22)
    V, D, K = 7, 4, 2
    W_in, W_out = rng.normal(size=(V, D)) * 0.5, rng.normal(size=(V, D)) * 0.5
    # Three centers with 2, 1 and 3 context words; word 5 is a context twice.
    groups = np.array([0, 0, 1, 2, 2, 2])
    contexts = np.array([5, 1, 5, 0, 3, 6])
    centers = np.array([2, 4, 1])
    negatives = rng.integers(0, V, (3, K))
    # Reference: padded contexts, cbow_mean, the SGNS gradients, then back to the rows.
    C = 3
    padded, mask = np.zeros((3, C), int), np.zeros((3, C))
    for i in range(3):
        ctx = contexts[groups == i]
        padded[i, :len(ctx)], mask[i, :len(ctx)] = ctx, 1
    h = cbow_mean(W_in[padded], mask)
    loss_ref, dh, du_c, du_k = sgns_loss_and_grads(h, W_out[centers], W_out[negatives])
    # word2vec's convention: each context vector gets dh itself, count times the
    # exact gradient of the mean.
    dv_context = cbow_mean_backward(dh, mask) * mask.sum(axis=1)[:, None, None]
    dW_in = embedding_backward(dv_context, padded, V)
    dW_out = embedding_backward(du_c, centers, V) + embedding_backward(du_k, negatives, V)
    W = np.concatenate([W_in, W_out])
    loss = cbow_step(W, V, groups, contexts, centers, negatives, lr=0.05, want_loss=True)
    assert loss == pytest.approx(loss_ref, rel=1e-10)
    np.testing.assert_allclose(W[:V], W_in - 0.05 * dW_in, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(W[V:], W_out - 0.05 * dW_out, rtol=1e-10, atol=1e-12)


class _FixedWindows:
    """A stand-in random generator whose reduced windows are given."""

    def __init__(self, windows):
        self.windows = np.asarray(windows)

    def integers(self, low, high, size):
        assert low == 1 and np.all(self.windows < high) and len(self.windows) == size
        return self.windows


def test_skipgram_pairs_follow_dynamic_windows_within_sentences():
    kept_ids = np.arange(10, 20)
    sentences = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    windows = [2, 1, 3, 1, 2]                  # for centers 2..6
    center_pos, context_pos = skipgram_pairs(kept_ids, sentences, 2, 7, 3,
                                             _FixedWindows(windows))
    expected = []
    for c, b in zip(range(2, 7), windows):
        for j in range(c - b, c + b + 1):
            if j != c and 0 <= j < 10 and sentences[j] == sentences[c]:
                expected.append((c, j))
    assert list(zip(center_pos.tolist(), context_pos.tolist())) == expected


# -- training on a synthetic language ----------------------------------------------------

CLASSES = {"animal": ["cat", "dog", "cow", "horse", "sheep", "goat"],
           "food": ["apple", "bread", "rice", "cheese", "soup", "cake"],
           "place": ["park", "house", "field", "river", "town", "school"]}
TEMPLATES = ["the animal eats the food", "a animal likes food", "the animal walks to the place",
             "we cook food at the place", "the place is near the place",
             "animal and animal play in the place", "food is sold in the place"]
CLASS_OF = {w: c for c, words in CLASSES.items() for w in words}


def grammar(n, seed=0):
    """Sentences from templates whose slots are filled with a random word of the class."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        out.append([CLASSES[w][rng.integers(6)] if w in CLASSES else w for w in template.split()])
    return out


@pytest.fixture(scope="module")
def synthetic():
    return grammar(3000)


@pytest.mark.parametrize("sg", [True, False])
def test_fit_puts_words_of_one_class_together(synthetic, sg):
    # Words of one class share every context, so a working model makes them similar.
    model = Word2Vec(vector_size=16, window=3, min_count=1, sample=0, epochs=5, sg=sg,
                     progress=False, seed=0).fit(synthetic)
    words = list(CLASS_OF)
    within, across = [], []
    for i, a in enumerate(words):
        for b in words[i + 1:]:
            (within if CLASS_OF[a] == CLASS_OF[b] else across).append(model.similarity(a, b))
    assert np.mean(within) > np.mean(across) + 0.3, (np.mean(within), np.mean(across))
    for w in words:
        nearest = model.most_similar(w, topn=1)[0][0]
        assert CLASS_OF.get(nearest) == CLASS_OF[w], f"{w}'s nearest word is {nearest}"
    first, last = model.losses[0][1], model.losses[-1][1]
    assert first == pytest.approx(6 * np.log(2), rel=1e-3), "W_out starts at zero: loss 6 log 2"
    assert last < 0.7 * first
    assert model.vectors.shape == (len(model.words), 16)
    np.testing.assert_allclose(np.linalg.norm(model.vectors, axis=1), 1.0, rtol=1e-5)


def test_fit_is_reproducible(synthetic):
    kwargs = dict(vector_size=8, window=2, min_count=1, epochs=1, progress=False, seed=3)
    a = Word2Vec(**kwargs).fit(synthetic[:500])
    b = Word2Vec(**kwargs).fit(synthetic[:500])
    np.testing.assert_array_equal(a.W, b.W)


def test_fit_accepts_a_generator_of_sentences(synthetic):
    # The vocabulary and the encoding each read the sentences: a generator must be read once.
    kwargs = dict(vector_size=8, window=2, min_count=1, epochs=1, progress=False, seed=3)
    a = Word2Vec(**kwargs).fit(synthetic[:500])
    b = Word2Vec(**kwargs).fit(sentence for sentence in synthetic[:500])
    assert b.words == a.words
    np.testing.assert_array_equal(a.W, b.W)


def test_fit_subsamples_each_epoch_anew_and_decays_the_learning_rate(monkeypatch):
    """Half the tokens are "the" (f = 0.5); with sample t = 0.01 each is kept with probability
    (sqrt(f/t) + 1) t / f = 0.161, while the other words (f = 0.01) are always kept."""
    import course_lib.word2vec as w2v

    rng = np.random.default_rng(0)
    others = [f"w{i}" for i in range(50)]
    sentences = [[w for _ in range(5) for w in ("the", others[rng.integers(50)])]
                 for _ in range(200)]                             # 2,000 tokens, 1,000 of "the"
    kept, lrs = [], []

    def recording_epoch(self, kept_ids, kept_sentences, raw_done, *args):
        kept.append((to_numpy(kept_ids), raw_done[:-1] % 2000))   # ids, positions in the corpus
        return train_epoch(self, kept_ids, kept_sentences, raw_done, *args)

    def recording_step(W, V, centers, contexts, negatives, lr, *args):
        lrs.append(lr)
        return sgns_step(W, V, centers, contexts, negatives, lr, *args)

    train_epoch = Word2Vec._train_epoch
    monkeypatch.setattr(Word2Vec, "_train_epoch", recording_epoch)
    monkeypatch.setattr(w2v, "sgns_step", recording_step)
    model = Word2Vec(vector_size=8, window=2, min_count=1, sample=0.01, lr=0.05, epochs=2,
                     batch_size=64, progress=False, seed=0).fit(sentences)

    the = model.index["the"]
    p_keep = (np.sqrt(0.5 / 0.01) + 1) * 0.01 / 0.5
    for ids, _ in kept:
        assert np.sum(ids != the) == 1000                          # rare words: all kept
        # Two-sided binomial test of the number of "the" kept (mean 161, standard deviation
        # 12); keeping all 1,000 is 70 standard deviations off. Deterministic with seed 0.
        n_the = int(np.sum(ids == the))
        assert scipy.stats.binomtest(n_the, 1000, p_keep).pvalue > 1e-3, n_the
    assert not np.array_equal(kept[0][1], kept[1][1]), "each epoch draws its own subsample"

    # lr falls linearly with the words processed, from lr (before the first word) to
    # lr * MIN_LR_RATIO after the last; the first step comes after at most 64 of the
    # ~1,160 kept words of each of the two epochs, about 1/18 of the decay.
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert 0.9 * 0.05 < lrs[0] < 0.05
    assert lrs[-1] == pytest.approx(0.05 * w2v.MIN_LR_RATIO, rel=1e-9)
    assert lrs[len(lrs) // 2] == pytest.approx(0.05 / 2, rel=0.1)


# -- queries ------------------------------------------------------------------------------

def _hand_made_model():
    """A Word2Vec whose vectors are set by hand, for checking the queries."""
    rng = np.random.default_rng(8)
    words = [f"w{i}" for i in range(12)]
    model = Word2Vec(vector_size=5, progress=False)
    model.vocab = Vocab(words, np.arange(12, 0, -1))
    model.W = rng.normal(size=(24, 5)).astype(np.float32)
    return model


def test_most_similar_and_similarity_match_brute_force():
    model = _hand_made_model()
    X = model.W[:12] / np.linalg.norm(model.W[:12], axis=1, keepdims=True)
    cos = X @ X.T
    got = model.most_similar("w3", topn=4)
    order = [i for i in np.argsort(-cos[3]) if i != 3][:4]
    assert [w for w, _ in got] == [f"w{i}" for i in order]
    np.testing.assert_allclose([s for _, s in got], cos[3, order], rtol=1e-5)
    assert model.similarity("w1", "w7") == pytest.approx(cos[1, 7], rel=1e-5)
    assert len(model.most_similar("w0", topn=100)) == 11


def test_analogy_is_3cosadd_without_the_query_words():
    model = _hand_made_model()
    X = model.W[:12] / np.linalg.norm(model.W[:12], axis=1, keepdims=True)
    target = X[2] - X[1] + X[5]                      # w1 : w2 :: w5 : ?
    scores = X @ target / np.linalg.norm(target)
    scores[[1, 2, 5]] = -np.inf
    expected = [f"w{i}" for i in np.argsort(-scores)[:3]]
    assert [w for w, _ in model.analogy("w1", "w2", "w5", topn=3)] == expected


def test_unknown_word_names_it_and_suggests():
    model = _hand_made_model()
    with pytest.raises(KeyError, match="'w13'.*Did you mean"):
        model.most_similar("w13")


def test_bad_input_fails_clearly():
    with pytest.raises(ValueError, match="empty"):
        Word2Vec(progress=False).fit([])
    with pytest.raises(ValueError, match="min_count=5"):
        Word2Vec(progress=False).fit([["a", "b", "c"]])
    with pytest.raises(RuntimeError, match="fit"):
        Word2Vec().most_similar("a")
    for bad in (dict(vector_size=0), dict(window=1.5), dict(negative=-1), dict(lr=0),
                dict(sample=-1), dict(max_updates=0), dict(batch_size=True)):
        with pytest.raises(ValueError):
            Word2Vec(**bad)


# -- evaluation ------------------------------------------------------------------------------

def test_eval_set_shape():
    data = load_eval_set()
    assert len(data["pairs"]) >= 40 and all(len(p) == 2 for p in data["pairs"])
    assert len(data["analogies"]) >= 20 and all(len(q) == 4 for q in data["analogies"])


class _Oracle:
    """Knows the answers: the paired word is most similar, analogies return d."""

    def __init__(self, eval_set, wrong=False):
        self.partner = {a: b for a, b in eval_set["pairs"]}
        self.answers = {(a, b, c): d for a, b, c, d in eval_set["analogies"]}
        self.wrong = wrong

    def similarity(self, a, b):
        return float((self.partner.get(a) == b) != self.wrong)

    def analogy(self, a, b, c, topn=1):
        d = self.answers[(a, b, c)]
        return [("nothing", 1.0)] * topn if self.wrong else [(d, 1.0)] + [("x", 0.0)] * (topn - 1)


def test_evaluate_scores_a_perfect_and_a_useless_model():
    data = load_eval_set()
    best = evaluate(_Oracle(data))
    assert best["pair_mean_rank"] == 1.0 and best["pair_accuracy"] == 1.0
    assert best["analogy_acc@1"] == 1.0 and best["analogy_acc@5"] == 1.0
    worst = evaluate(_Oracle(data, wrong=True))
    assert worst["pair_accuracy"] == 0.0 and worst["analogy_acc@5"] == 0.0
    assert worst["pair_mean_rank"] > 30


def test_evaluate_counts_unknown_words_as_misses():
    class Empty:
        def similarity(self, a, b):
            raise KeyError(a)

        def analogy(self, a, b, c, topn=1):
            raise KeyError(a)

    scores = evaluate(Empty())
    assert scores["pair_accuracy"] == 0.0 and scores["analogy_acc@1"] == 0.0


def test_gensim_adapter():
    gensim_models = pytest.importorskip("gensim.models")
    model = gensim_models.Word2Vec(grammar(300), vector_size=8, min_count=1, workers=1, seed=0)
    adapted = KeyedVectorsAdapter(model.wv)
    assert adapted.similarity("cat", "cat") == pytest.approx(1.0, abs=1e-5)
    assert len(adapted.analogy("cat", "dog", "apple", topn=3)) == 3
    assert set(evaluate(model)) >= {"pair_mean_rank", "analogy_acc@1"}


@pytest.mark.slow
def test_every_eval_word_is_in_the_default_vocabulary():
    from course_lib.text import load_corpus

    vocab = Vocab.build(load_corpus(), min_count=5)
    data = load_eval_set()
    missing = {w for group in data["pairs"] + data["analogies"] for w in group} - set(vocab.words)
    assert not missing, f"not in the vocabulary at min_count=5: {sorted(missing)}"


# -- GPU -----------------------------------------------------------------------------------------

@pytest.mark.gpu
def test_gpu_training_and_scatter_agree_with_cpu(synthetic):
    if not gpu_available():
        pytest.skip(gpu_unavailable_reason())
    from course_lib.backend import asarray, to_numpy

    rng = np.random.default_rng(0)
    W = rng.normal(size=(6, 3)).astype(np.float32)
    rows, X = rng.integers(0, 6, 20), rng.normal(size=(20, 3)).astype(np.float32)
    cpu = scatter_add_rows(W.copy(), rows, X, max_updates=3)
    gpu = scatter_add_rows(asarray(W, "gpu"), asarray(rows, "gpu"), asarray(X, "gpu"),
                           max_updates=3)
    np.testing.assert_allclose(to_numpy(gpu), cpu, rtol=1e-5, atol=1e-6)
    model = Word2Vec(vector_size=16, window=3, min_count=1, sample=0, epochs=5, batch_size=512,
                     progress=False, device="gpu").fit(synthetic)
    nearest = model.most_similar("cat", topn=3)
    assert all(CLASS_OF.get(w) == "animal" for w, _ in nearest)
