"""Autoencoder against PCA on scikit-learn's digits, at the same code size.

Both methods squeeze each standardised 8x8 digit (D = 64) into K numbers and
rebuild it; the score is the test reconstruction error
``MSE = mean((x_hat - x)^2)`` over all test pixels. PCA keeps the K leading
principal directions of the training set, ``x_hat = mean + (x - mean) V V^T``
with V of shape (D, K): the best *linear* code of size K for the training
data. A non-linear autoencoder (``course_lib.models.dense_autoencoder``,
hidden layers mirrored around a linear code layer) can bend its code
surface, so it should do at least as well.

For every code size the script prints training time (wall clock and CPU),
train and test MSE for PCA, the autoencoder and a denoising autoencoder
(several seeds: mean, min and max), and, for K = 2, how well a 5-nearest-
neighbour classifier on the 2-D codes (fit on the training codes) predicts the
test digits' classes, a number for how well the classes separate. It saves a
scatter plot of the 2-D test codes (PCA, the autoencoder and the denoising one) and a strip
of reconstructions under ``--out``.

The architecture, activation, noise level, learning rate and number of
epochs were chosen on the validation split (looking at its reconstruction
error and 5-NN accuracy), never on the test split. Every test image counts
in the test MSE, for PCA and the autoencoders alike. ``load_digits`` floors
each pixel's standard deviation at one grey level, so a pixel that is almost
always blank in training cannot blow up a held-out image: no standardised
validation or test value exceeds 10 in magnitude.

BLAS runs on one thread by default: the matrices here are tiny (64 x 128 per
batch), and on a busy 2-core machine OpenBLAS threads waiting for each other
made training more than ten times slower in wall-clock time.

Usage::

    python benchmarks/autoencoder_vs_pca.py [--out DIR] [--code-sizes 2 8]
        [--epochs 300] [--seeds 3] [--threads 1]
"""

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from course_lib.data import DataLoader, load_digits
from course_lib.losses import MSELoss
from course_lib.models import dense_autoencoder, reconstruction_error
from course_lib.optim import Adam

#: Hidden widths between the input (64) and the code; the decoder mirrors them.
HIDDEN = [128, 32]
ACTIVATION = "softplus"
LEARNING_RATE = 3e-3
BATCH_SIZE = 64
#: Standard deviation of the denoising variant's Gaussian noise (inputs are standardised).
NOISE_LEVEL = 0.5


def train_autoencoder(model, X, epochs, lr, batch_size, seed, desc):
    """Adam on the MSE ``mean((model(x) - x)^2)`` with a cosine learning-rate decay.

    The rate at step t of T is ``lr * (1 + cos(pi t / T)) / 2``: large steps
    early, small ones at the end so the parameters settle.
    Returns ``(wall_seconds, cpu_seconds)`` of the training loop.
    """
    loss = MSELoss()
    optimizer = Adam(model.parameters(), lr=lr)
    loader = DataLoader(X, X, batch_size=batch_size, shuffle=True, seed=seed)
    total_steps, step = epochs * len(loader), 0
    wall, cpu = time.perf_counter(), time.process_time()
    model.train()
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", leave=False):
        for x, target in loader:
            optimizer.lr = lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
            step += 1
            out = model(x)
            loss.forward(out, target)    # target is the clean x, also for the denoising model
            optimizer.zero_grad()
            model.backward(loss.backward())
            optimizer.step()
    model.eval()
    return time.perf_counter() - wall, time.process_time() - cpu


def pca_codes(data, K):
    """PCA with K components fit on the training set: ``(pca, train MSE, test MSE)``."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=K, svd_solver="full").fit(data.X_train)
    mse = [float(np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2))
           for X in (data.X_train, data.X_test)]
    return pca, mse[0], mse[1]


def knn_accuracy(codes_train, y_train, codes_test, y_test):
    """Test accuracy of a 5-nearest-neighbour classifier on the codes."""
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(5).fit(codes_train, y_train).score(codes_test, y_test))


def summary(values):
    values = np.asarray(values)
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} [{values.min():.4f}, {values.max():.4f}]"


def plot_codes(data, panels, path):
    """Scatter plots of 2-D test codes, one panel per ``(title, codes)`` pair, coloured by digit.

    Each panel shows the 1st to 99th percentile of the codes along each axis
    (plus a margin): the code layer is linear, hence unbounded, and a few test
    images land far out in its tails (an autoencoder code near -200 where the
    rest lie within +-110), which would squeeze the picture. The title says how
    many points fall outside the view.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5))
    colours = plt.get_cmap("tab10")
    for ax, (title, codes) in zip(np.atleast_1d(axes), panels):
        low, high = np.percentile(codes, [1, 99], axis=0)
        margin = 0.08 * (high - low)
        low, high = low - margin, high + margin
        outside = int(np.sum(np.any((codes < low) | (codes > high), axis=1)))
        for digit in range(10):
            pts = codes[data.y_test == digit]
            ax.scatter(pts[:, 0], pts[:, 1], s=9, color=colours(digit), alpha=0.7, label=str(digit))
            cx, cy = np.median(pts, axis=0)
            ax.text(cx, cy, str(digit), fontsize=15, weight="bold", ha="center", va="center",
                    color=colours(digit), bbox=dict(facecolor="white", alpha=0.7, lw=0))
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(low[1], high[1])
        ax.set_title(f"{title}\n({outside} of {len(codes)} test points outside the view)",
                     fontsize=10)
        ax.set_xlabel("code 1")
        ax.set_ylabel("code 2")
    np.atleast_1d(axes)[-1].legend(title="digit", markerscale=2, fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reconstructions(data, pca, model, path):
    """One test image of each digit: original, PCA and autoencoder reconstructions (K = 2)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = [int(np.flatnonzero(data.y_test == d)[0]) for d in range(10)]
    x = data.X_test[idx]
    rows = [("original", x), ("PCA", pca.inverse_transform(pca.transform(x))),
            ("autoencoder", model(x))]
    fig, axes = plt.subplots(3, 10, figsize=(10, 3.3))
    for r, (name, images) in enumerate(rows):
        pixels = images * data.std + data.mean      # undo the standardisation for display
        for c in range(10):
            ax = axes[r, c]
            ax.imshow(pixels[c].reshape(data.images_shape), cmap="gray_r", vmin=0, vmax=16)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the PNG files (default: a new temporary folder)")
    parser.add_argument("--code-sizes", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3, help="autoencoders trained per code size")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = parser.parse_args()
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="autoencoder_vs_pca_"))
    out_dir.mkdir(parents=True, exist_ok=True)

    data = load_digits()
    print(f"digits: {data}; {args.epochs} epochs, batch {BATCH_SIZE}, Adam lr {LEARNING_RATE} "
          f"with cosine decay, {ACTIVATION} hidden layers, BLAS threads {args.threads}")
    print(f"trivial predictor (training mean image): test MSE "
          f"{np.mean((data.X_test - data.X_train.mean(axis=0)) ** 2):.4f}")
    header = f"{'K':>2}  {'model':<28} {'train s (wall/cpu)':>20}  {'train MSE':>26}  {'test MSE':>26}"
    with threadpool_limits(args.threads):
        for K in args.code_sizes:
            pca, pca_train, pca_test = pca_codes(data, K)
            print("\n" + header)
            print(f"{K:>2}  {'PCA':<28} {'':>20}  {pca_train:>26.4f}  {pca_test:>26.4f}")
            first_models = {}
            for noise in (None, "gaussian"):
                name = "autoencoder" if noise is None else f"denoising, Gaussian {NOISE_LEVEL}"
                walls, cpus, train_mse, test_mse, knn = [], [], [], [], []
                for seed in range(args.seeds):
                    model = dense_autoencoder([64, *HIDDEN, K], activation=ACTIVATION,
                                              noise=noise, level=NOISE_LEVEL, seed=seed,
                                              rng=np.random.default_rng(seed))
                    wall, cpu = train_autoencoder(model, data.X_train, args.epochs, LEARNING_RATE,
                                                  BATCH_SIZE, seed, f"K={K} {name} seed {seed}")
                    walls.append(wall)
                    cpus.append(cpu)
                    train_mse.append(reconstruction_error(model, data.X_train))
                    test_mse.append(reconstruction_error(model, data.X_test))
                    if K == 2:
                        knn.append(knn_accuracy(model.encode(data.X_train), data.y_train,
                                                model.encode(data.X_test), data.y_test))
                    first_models.setdefault(noise, model)
                times = f"{np.mean(walls):.1f}/{np.mean(cpus):.1f}"
                print(f"{K:>2}  {name:<28} {times:>20}  {summary(train_mse):>26}  "
                      f"{summary(test_mse):>26}")
                verdict = "at least as good as" if max(test_mse) <= pca_test else "WORSE than"
                print(f"    every seed's test MSE is {verdict} PCA's "
                      f"(worst {max(test_mse):.4f} vs {pca_test:.4f}); slowest training "
                      f"{max(walls):.1f} s wall")
                if knn:
                    pca_knn = knn_accuracy(pca.transform(data.X_train), data.y_train,
                                           pca.transform(data.X_test), data.y_test)
                    print(f"    5-NN accuracy on the 2-D test codes: {summary(knn)} "
                          f"(PCA codes: {pca_knn:.4f})")
            if K == 2:
                arch = "-".join(map(str, [64, *HIDDEN, 2]))
                panels = [("PCA, K = 2", pca.transform(data.X_test)),
                          (f"autoencoder {arch}", first_models[None].encode(data.X_test)),
                          (f"denoising autoencoder {arch}",
                           first_models["gaussian"].encode(data.X_test))]
                plot_codes(data, panels, out_dir / "autoencoder_codes.png")
                plot_reconstructions(data, pca, first_models[None],
                                     out_dir / "autoencoder_reconstructions.png")
    print(f"\nplots saved in {out_dir}")


if __name__ == "__main__":
    main()
