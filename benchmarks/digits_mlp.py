"""Train a 64-128-10 ReLU MLP with Adam on the 8x8 digits; target: >= 97% test accuracy in < 20 s.

Usage: python benchmarks/digits_mlp.py [--seeds 0 1 2] [--threads 2]

The BLAS thread count is capped (2 by default) so the time matches a 2-core
laptop even on a larger machine. Training uses the training split only; the
validation split drives early stopping (which restores the best epoch); the
test split is touched once, at the end. Exits with status 1 when a run misses
the target, so ``make bench`` notices.
"""

import argparse
import os
import sys


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="initialisation and shuffling seeds, one run each")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads")
    parser.add_argument("--progress", action="store_true", help="show the per-epoch progress bar")
    return parser.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # must be set before NumPy loads its BLAS

import time  # noqa: E402

import numpy as np  # noqa: E402

from course_lib.data import DataLoader, load_digits  # noqa: E402
from course_lib.layers import Linear, ReLU, Sequential  # noqa: E402
from course_lib.losses import CrossEntropyLoss  # noqa: E402
from course_lib.optim import Adam  # noqa: E402
from course_lib.train import EarlyStopping, evaluate, fit  # noqa: E402

TARGET_ACC, TARGET_SECONDS = 0.97, 20.0

# Chosen on the validation split: a little L2 (Adam's weight decay) keeps the
# 9,610 parameters from fitting the 1,167 training images too closely.
LR, WEIGHT_DECAY, BATCH_SIZE, MAX_EPOCHS, PATIENCE = 1e-3, 5e-3, 32, 60, 8


def run(seed, split_seed, progress):
    start = time.perf_counter()
    data = load_digits(seed=split_seed)
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(64, 128, rng=rng, init="he_uniform"), ReLU(),
                       Linear(128, 10, rng=rng))
    loss = CrossEntropyLoss()
    history = fit(model, loss, Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY),
                  DataLoader(data.X_train, data.y_train, batch_size=BATCH_SIZE, seed=seed),
                  MAX_EPOCHS,
                  val_loader=DataLoader(data.X_val, data.y_val, batch_size=512, shuffle=False),
                  early_stopping=EarlyStopping(patience=PATIENCE), progress=progress)
    _, test_acc = evaluate(model, loss, DataLoader(data.X_test, data.y_test, batch_size=512,
                                                    shuffle=False))
    seconds = time.perf_counter() - start
    return test_acc, len(data.y_test), seconds, history


def main():
    print(f"digits MLP 64-128-10 (ReLU), Adam lr={LR}, weight decay={WEIGHT_DECAY}, "
          f"batch {BATCH_SIZE}, <= {MAX_EPOCHS} epochs, early stopping patience {PATIENCE}, "
          f"{ARGS.threads} BLAS threads")
    ok = True
    for seed in ARGS.seeds:
        acc, n_test, seconds, history = run(seed, ARGS.split_seed, ARGS.progress)
        met = acc >= TARGET_ACC and seconds < TARGET_SECONDS
        ok &= met
        print(f"seed {seed}: test accuracy {acc:.4f} ({round(acc * n_test)}/{n_test}), {seconds:.2f} s "
              f"(data + training + test), {history.epochs} epochs, best epoch "
              f"{history.best_epoch}, best val acc {max(history.val_acc):.4f} "
              f"[{'ok' if met else 'MISSED'}: target >= {TARGET_ACC:.0%} in < {TARGET_SECONDS:.0f} s]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
