"""course_lib's word2vec side by side with gensim's: speed and quality on the default corpus.

Both train with the same hyper-parameters (skip-gram, D=100, window 5, 5
negatives, min_count 5, sample 1e-3, lr 0.025, 5 epochs) on
``course_lib.text.load_corpus()``. Speed is corpus words (before
subsampling) per second of training, vocabulary building excluded for both.
Quality is ``course_lib.word2vec.evaluate`` on the packaged evaluation set.

Targets: on the CPU at least half of gensim's words per second with one
worker thread; on a GPU (CuPy), at least three times gensim's rate with two
workers; quality at least gensim's. The runs alternate between the two
libraries so that a machine busy with other work slows both alike.

gensim is optional (the ``bench`` extra): without it the script says so and
exits cleanly. Usage::

    python benchmarks/word2vec_vs_gensim.py [--epochs 5] [--seeds 0 1] [--skip-gpu]
"""

import argparse
import os
import sys
import time

# One BLAS thread, so the CPU comparison is one core against one gensim worker.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from course_lib.backend import gpu_available, gpu_unavailable_reason  # noqa: E402
from course_lib.text import load_corpus  # noqa: E402
from course_lib.word2vec import Word2Vec, evaluate  # noqa: E402

PARAMS = dict(vector_size=100, window=5, negative=5, min_count=5, sample=1e-3)


def train_gensim(sentences, epochs, seed, workers, sg=True):
    """A trained gensim model and its training speed in words per second."""
    from gensim.models import Word2Vec as GensimWord2Vec

    model = GensimWord2Vec(sg=int(sg), alpha=0.025, min_alpha=0.025 * 1e-4, seed=seed,
                           workers=workers, **PARAMS)
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=epochs)
    seconds = time.perf_counter() - start
    return model, epochs * model.corpus_total_words / seconds


def train_course_lib(sentences, epochs, seed, device="cpu", sg=True):
    model = Word2Vec(sg=sg, lr=0.025, epochs=epochs, seed=seed, device=device,
                     progress=False, **PARAMS)
    model.fit(sentences)
    return model, model.words_per_second


def scatter_add_methods(V=7000, D=100, P=2048, K=5, repeats=5):
    """Time the ways NumPy can add the output-vector updates of one batch into W.

    ``W[t[p, k]] += c[p, k] * x[p]`` for P pairs with K+1 targets each, the
    targets drawn Zipf-like as in text. Prints milliseconds per batch.
    """
    import scipy.sparse as sp

    from course_lib.word2vec import scatter_add_rows

    rng = np.random.default_rng(0)
    probs = 1.0 / np.arange(1, V + 1) ** 0.75
    t = rng.choice(V, size=(P, K + 1), p=probs / probs.sum())
    c = rng.normal(size=(P, K + 1)).astype(np.float32)
    x = rng.normal(size=(P, D)).astype(np.float32)
    W = np.zeros((V, D), dtype=np.float32)
    flat, pair = t.reshape(-1), np.repeat(np.arange(P), K + 1)

    def add_at():
        np.add.at(W, flat, (c[:, :, None] * x[:, None, :]).reshape(-1, D))

    def sort_reduceat():
        order = np.argsort(flat, kind="stable")
        keys = flat[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        rows = (c.reshape(-1)[order, None] * x[pair[order]])
        W[keys[starts]] += np.add.reduceat(rows, starts, axis=0)

    def bincount_columns():
        rows = (c[:, :, None] * x[:, None, :]).reshape(-1, D)
        W[:] += np.stack([np.bincount(flat, rows[:, j], V) for j in range(D)], axis=1)

    def sparse_product():
        M = sp.csr_matrix((c.reshape(-1), flat, np.arange(0, P * (K + 1) + 1, K + 1)),
                          shape=(P, V))
        W[:] += M.T @ x

    def course_lib_scatter():
        scatter_add_rows(W, flat, x, cols=pair, coef=c)

    print(f"scatter-add of one batch ({P} pairs x {K + 1} targets, D={D}, V={V}), ms:")
    for name, f in [("np.add.at", add_at), ("sort + np.add.reduceat", sort_reduceat),
                    ("np.bincount per column", bincount_columns),
                    ("sparse product, all rows", sparse_product),
                    ("scatter_add_rows (sparse, used rows)", course_lib_scatter)]:
        f()
        start = time.perf_counter()
        for _ in range(repeats):
            f()
        print(f"  {name:38s} {(time.perf_counter() - start) / repeats * 1e3:8.2f}")


def summary(scores):
    keys = ("pair_mean_rank", "pair_accuracy", "analogy_acc@1", "analogy_acc@5")
    return "  ".join(f"{k} {np.mean([s[k] for s in scores]):.3f}" for k in keys)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--cbow", action="store_true", help="also compare CBOW")
    parser.add_argument("--skip-gpu", action="store_true")
    args = parser.parse_args()
    scatter_add_methods()

    try:
        import gensim
    except ImportError:
        print("gensim is not installed: skipping the word2vec comparison "
              "(pip install 'course-lib[bench]' or pip install gensim).")
        return 0

    start = time.perf_counter()
    sentences = load_corpus()
    n_tokens = sum(map(len, sentences))
    print(f"default corpus: {len(sentences):,} sentences, {n_tokens:,} tokens "
          f"(loaded in {time.perf_counter() - start:.2f} s); gensim {gensim.__version__}")

    ok = True
    for sg in ([True, False] if args.cbow else [True]):
        name = "skip-gram" if sg else "CBOW"
        ours_speed, theirs_speed, ours_scores, theirs_scores = [], [], [], []
        for seed in args.seeds:
            g_model, g_wps = train_gensim(sentences, args.epochs, seed, workers=1, sg=sg)
            c_model, c_wps = train_course_lib(sentences, args.epochs, seed, sg=sg)
            theirs_speed.append(g_wps)
            ours_speed.append(c_wps)
            theirs_scores.append(evaluate(g_model))
            ours_scores.append(evaluate(c_model))
            print(f"[{name} seed {seed}] gensim 1 worker {g_wps:,.0f} words/s, "
                  f"course_lib CPU {c_wps:,.0f} words/s")
        ratio = np.median(ours_speed) / np.median(theirs_speed)
        print(f"{name} CPU speed: course_lib / gensim(1 worker) = {ratio:.2f} (target >= 0.5)")
        print(f"{name} quality, gensim:     {summary(theirs_scores)}")
        print(f"{name} quality, course_lib: {summary(ours_scores)}")
        if sg:
            ok &= ratio >= 0.5
            better_pairs = np.mean([s["pair_mean_rank"] for s in ours_scores]) <= \
                np.mean([s["pair_mean_rank"] for s in theirs_scores])
            better_analogies = np.mean([s["analogy_acc@5"] for s in ours_scores]) >= \
                np.mean([s["analogy_acc@5"] for s in theirs_scores])
            print(f"skip-gram quality at least gensim's: pairs {better_pairs}, "
                  f"analogies@5 {better_analogies}")
            ok &= better_pairs and better_analogies

    if args.skip_gpu:
        pass
    elif not gpu_available():
        print(f"GPU comparison skipped: {gpu_unavailable_reason()}")
    else:
        _, g2 = train_gensim(sentences, args.epochs, args.seeds[0], workers=2)
        _, gpu = train_course_lib(sentences, args.epochs, args.seeds[0], device="gpu")
        ratio = gpu / g2
        print(f"skip-gram GPU speed: course_lib {gpu:,.0f} words/s, gensim(2 workers) "
              f"{g2:,.0f} words/s, ratio {ratio:.2f} (target >= 3)")
        ok &= ratio >= 3
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
