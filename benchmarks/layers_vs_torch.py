"""course_lib's CNN and recurrent layers next to PyTorch's CPU implementation, on the same float32 data.

    python benchmarks/layers_vs_torch.py                 # 1 and 2 threads
    python benchmarks/layers_vs_torch.py --threads 1 --repeat 50
    python benchmarks/layers_vs_torch.py --threads 1 --only RNN LSTM   # some workloads

For each workload both libraries run in alternating blocks of calls, so a
disturbance on a busy machine hits both alike; the table shows
the median and the best time of each and the ratio course_lib / PyTorch
(below 1: course_lib is faster). Targets are judged on the ratio of the best
times, the cost of the work itself: on a quiet machine median and best agree,
on a busy one the median mostly measures the other programs. Both are limited to the same number of
threads: ``torch.set_num_threads`` for PyTorch, ``threadpoolctl`` for the BLAS
behind NumPy (NumPy's own element-wise code always runs on one thread).

Workloads, with the target ratio each should stay under:

* LeNet-sized convolutions, forward + backward (dx, dW, db), batch 64:
  1->16 channels 5x5 padding 2 on 28x28, and 16->32 channels 3x3 padding 1
  on 14x14 (each alone and both together); target 2.
* BatchNorm2d forward + backward in training mode on (64, 32, 14, 14); target 1.3.
* One training step of a small CNN on 8x8 digit-sized images, batch 64:
  conv 1->16 3x3 pad 1, ReLU, max-pool 2, conv 16->32 3x3 pad 1, ReLU,
  max-pool 2, flatten, linear 128->10, cross-entropy, Adam; target 2.5.
* Max- and average pooling, forward + backward (no target; for information).
* RNN (tanh) and LSTM over 50 time steps, forward + backward through time
  (dx, dW_x, dW_h, db), (N, T, D, H) = (64, 50, 32, 128), batch-first; target 2.
* For information, the three matrix products inside the 16->32 convolution
  (forward, dW, dx's columns) timed alone, on arrays of the shapes the layer
  uses, next to PyTorch's whole layer: whatever the layer does besides them
  (im2col, col2im, transposes) can only add to this time, so its ratio is a
  floor for the layer's ratio as long as NumPy's BLAS does the arithmetic.

PyTorch is optional (the 'bench' extra); without it the script says so and stops.
"""

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib.layers import (LSTM, RNN, AvgPool2D, BatchNorm2d, Conv2D, Flatten,  # noqa: E402
                               Linear, MaxPool2D, ReLU, Sequential)
from course_lib.losses import CrossEntropyLoss  # noqa: E402
from course_lib.optim import Adam  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:
    threadpool_info = threadpool_limits = None


def time_pair(ours, theirs, repeat, block=5, warmup=3):
    """Time ``ours`` and ``theirs`` in alternating blocks of ``block`` calls; return the seconds
    of every call of each.

    Alternating spreads slow phases of a busy machine over both libraries;
    blocks (rather than single calls) keep one library's idle threads, which
    spin for a while after a parallel section, from eating into the other's
    first call too often.
    """
    for _ in range(warmup):
        ours()
        theirs()
    times = ([], [])
    for _ in range(max(1, repeat // block)):
        for fn, t in zip((ours, theirs), times):
            for _ in range(block):
                start = time.perf_counter()
                fn()
                t.append(time.perf_counter() - start)
    return times


# --- workloads: each returns (course_lib callable, PyTorch callable) -------------------------

def forward_backward_pair(ours, theirs, x, dout, zero_grad=None):
    """Two closures running one forward and backward pass, of course_lib's layer and of PyTorch's.

    PyTorch's input requires a gradient, so it computes dx as course_lib does.
    ``theirs`` is a module, or a function of the input with ``zero_grad`` its module's.
    """
    tx = torch.from_numpy(x).requires_grad_(True)
    tdout = torch.from_numpy(dout)
    zero_grad = zero_grad or theirs.zero_grad

    def run_ours():
        ours.zero_grad()
        ours.forward(x)
        ours.backward(dout)

    def run_theirs():
        zero_grad()
        tx.grad = None
        theirs(tx).backward(tdout)

    return run_ours, run_theirs


def conv_case(N, C, F, H, k, p, seed=0):
    """Forward + backward of one convolution, with the same weights in both libraries."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    ours = Conv2D(C, F, k, padding=p, rng=rng)
    ours.b.data[:] = rng.standard_normal(F, dtype=np.float32)
    dout = rng.standard_normal(ours.output_shape(x.shape), dtype=np.float32)

    theirs = torch.nn.Conv2d(C, F, k, padding=p)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.W.data))
        theirs.bias.copy_(torch.from_numpy(ours.b.data))
    return forward_backward_pair(ours, theirs, x, dout)


def conv_products_case(N, C, F, H, k, p, seed=0):
    """Only the three matrix products of Conv2D's forward + backward, next to PyTorch's whole layer.

    The products (forward ``W @ cols``, ``dW = dout @ cols.T``, ``dcols = W.T @ dout``)
    run on arrays of the shapes the layer uses, chunk by chunk, and nothing
    else: a lower bound on the layer's time that no rearranging of the other
    work can beat while NumPy's BLAS does the arithmetic.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    layer = Conv2D(C, F, k, padding=p, rng=rng)
    _, _, H_out, W_out = layer.output_shape(x.shape)
    W2 = layer.W.data.reshape(F, -1)
    chunks = []
    for _, n in layer._chunks(x):
        cols = rng.standard_normal((W2.shape[1], H_out * W_out * n), dtype=np.float32)
        dout2 = rng.standard_normal((F, cols.shape[1]), dtype=np.float32)
        chunks.append((cols, dout2, np.empty_like(dout2), np.empty_like(cols)))

    def run_products():
        for cols, dout2, out2, dcols in chunks:
            np.matmul(W2, cols, out=out2)
            dout2 @ cols.T
            np.matmul(W2.T, dout2, out=dcols)

    return run_products, conv_case(N, C, F, H, k, p, seed)[1]


def two_convs_case():
    a_ours, a_theirs = conv_case(64, 1, 16, 28, 5, 2, seed=1)
    b_ours, b_theirs = conv_case(64, 16, 32, 14, 3, 1, seed=2)
    return (lambda: (a_ours(), b_ours())), (lambda: (a_theirs(), b_theirs()))


def batchnorm_case(shape=(64, 32, 14, 14), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32) * 2 + 0.5
    dout = rng.standard_normal(shape, dtype=np.float32)
    ours = BatchNorm2d(shape[1])
    theirs = torch.nn.BatchNorm2d(shape[1])
    return forward_backward_pair(ours, theirs, x, dout)


def pool_case(kind, shape=(64, 16, 28, 28), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    ours = MaxPool2D(2) if kind == "max" else AvgPool2D(2)
    theirs = torch.nn.MaxPool2d(2) if kind == "max" else torch.nn.AvgPool2d(2)
    dout = rng.standard_normal(ours.forward(x).shape, dtype=np.float32)
    return forward_backward_pair(ours, theirs, x, dout)


def recurrent_case(kind, N=64, T=50, D=32, H=128, seed=0):
    """Forward + backward through time of an RNN or LSTM, with the same weights in both libraries.

    PyTorch stores the transposed weights and two bias vectors; course_lib's single bias is
    their sum, so PyTorch gets it as ``bias_ih`` and zeros as ``bias_hh``.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D), dtype=np.float32)
    dout = rng.standard_normal((N, T, H), dtype=np.float32)
    ours = RNN(D, H, rng=rng) if kind == "rnn" else LSTM(D, H, rng=rng)
    theirs = (torch.nn.RNN if kind == "rnn" else torch.nn.LSTM)(D, H, batch_first=True)
    with torch.no_grad():
        theirs.weight_ih_l0.copy_(torch.from_numpy(ours.W_x.data.T.copy()))
        theirs.weight_hh_l0.copy_(torch.from_numpy(ours.W_h.data.T.copy()))
        theirs.bias_ih_l0.copy_(torch.from_numpy(ours.b.data))
        theirs.bias_hh_l0.zero_()
    return forward_backward_pair(ours, lambda tx: theirs(tx)[0], x, dout, theirs.zero_grad)


def training_step_case(N=64, seed=0):
    """One Adam step of the same small CNN, from the same weights, on 8x8 images."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, size=N)
    model = Sequential(Conv2D(1, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
                       Conv2D(16, 32, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
                       Flatten(), Linear(128, 10, rng=rng))
    loss_fn = CrossEntropyLoss()
    optimizer = Adam(model.parameters(), lr=1e-3)

    tmodel = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.MaxPool2d(2),
                                 torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.MaxPool2d(2),
                                 torch.nn.Flatten(), torch.nn.Linear(128, 10))
    with torch.no_grad():
        for ours, theirs in [(model[0], tmodel[0]), (model[3], tmodel[3])]:
            theirs.weight.copy_(torch.from_numpy(ours.W.data))
            theirs.bias.copy_(torch.from_numpy(ours.b.data))
        tmodel[7].weight.copy_(torch.from_numpy(model[7].W.data.T.copy()))  # torch stores (out, in)
        tmodel[7].bias.copy_(torch.from_numpy(model[7].b.data))
    toptimizer = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def run_ours():
        optimizer.zero_grad()
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        optimizer.step()

    def run_theirs():
        toptimizer.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
        toptimizer.step()

    return run_ours, run_theirs


WORKLOADS = [
    # (name, builder, target ratio or None)
    ("Conv2D 1->16 5x5 p2, 64x28x28 (fwd+bwd)", lambda: conv_case(64, 1, 16, 28, 5, 2), 2.0),
    ("Conv2D 16->32 3x3 p1, 64x14x14 (fwd+bwd)", lambda: conv_case(64, 16, 32, 14, 3, 1), 2.0),
    ("  its 3 matrix products alone (see below)", lambda: conv_products_case(64, 16, 32, 14, 3, 1),
     None),
    ("both LeNet convolutions (fwd+bwd)", two_convs_case, 2.0),
    ("BatchNorm2d 64x32x14x14 (fwd+bwd, train)", batchnorm_case, 1.3),
    ("MaxPool2D 2x2, 64x16x28x28 (fwd+bwd)", lambda: pool_case("max"), None),
    ("AvgPool2D 2x2, 64x16x28x28 (fwd+bwd)", lambda: pool_case("avg"), None),
    ("CNN training step, 64 digits 8x8 (Adam)", training_step_case, 2.5),
    ("RNN tanh 64x50x32 -> 128 (fwd+bwd)", lambda: recurrent_case("rnn"), 2.0),
    ("LSTM 64x50x32 -> 128 (fwd+bwd)", lambda: recurrent_case("lstm"), 2.0),
]


def blas_description():
    if threadpool_info is None:
        return "unknown (threadpoolctl is not installed)"
    parts = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')} kernels)"
             for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(parts) or "none found"


def openblas_hint():
    """A note when OpenBLAS runs its AVX2 (Haswell) kernels on a CPU that has AVX-512.

    OpenBLAS picks its kernels from the CPU model it recognises; on processors
    newer than the library it may fall back to AVX2 code, which halves the
    speed of every matrix product. ``OPENBLAS_CORETYPE`` overrides the choice.
    """
    if threadpool_info is None:
        return None
    archs = {i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"}
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return None
    if "Haswell" in archs and "avx512f" in flags:
        return ("note: this CPU has AVX-512 but OpenBLAS uses its Haswell (AVX2) kernels; "
                "OPENBLAS_CORETYPE=SkylakeX before starting Python lets it use AVX-512 "
                "(PyTorch's oneDNN already does)")
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=40, help="timed calls per library and workload")
    parser.add_argument("--only", nargs="+", metavar="WORD",
                        help="run only the workloads whose name contains one of these words")
    args = parser.parse_args()
    workloads = [w for w in WORKLOADS
                 if not args.only or any(word.lower() in w[0].lower() for word in args.only)]
    if not workloads:
        parser.error(f"no workload name contains any of {args.only}")

    if torch is None:
        print("PyTorch is not installed, so there is nothing to compare with; install the "
              "optional extra with `pip install -e .[bench]` (CPU wheels are enough).")
        return 0
    if threadpool_limits is None:
        print("note: threadpoolctl is not installed, so NumPy's BLAS threads cannot be limited; "
              "set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before starting Python instead.")

    print(f"Python {platform.python_version()}, NumPy {np.__version__} with BLAS: {blas_description()}")
    print(f"PyTorch {torch.__version__}; {platform.machine()} CPU; float32 throughout; "
          f"{args.repeat} timed calls per library and workload")
    hint = openblas_hint()
    if hint:
        print(hint)
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        limits = threadpool_limits(limits=threads, user_api="blas") if threadpool_limits else None
        print(f"\n== {threads} thread(s) ==")
        print(f"{'workload':44s} {'course_lib ms':>19s} {'PyTorch ms':>19s} {'ratio':>13s} {'target':>7s}")
        print(f"{'':44s} {'median   best':>19s} {'median   best':>19s} {'median best':>13s}")
        for name, build, target in workloads:
            ours, theirs = build()
            t_ours, t_theirs = time_pair(ours, theirs, args.repeat)
            med_o, med_t = statistics.median(t_ours), statistics.median(t_theirs)
            best_o, best_t = min(t_ours), min(t_theirs)
            ratio_med, ratio_best = med_o / med_t, best_o / best_t
            verdict = "" if target is None else (f"{target:4.1f} " + ("ok" if ratio_best <= target else "MISSED"))
            print(f"{name:44s} {med_o * 1e3:9.3f} {best_o * 1e3:8.3f} {med_t * 1e3:9.3f} "
                  f"{best_t * 1e3:8.3f} {ratio_med:6.2f} {ratio_best:5.2f}  {verdict}")
            results.append((threads, name, ratio_best, target))
        if limits is not None:
            limits.restore_original_limits()
    missed = [(t, n, r, g) for t, n, r, g in results if g is not None and r > g]
    print("\nAll targets met (ratios of the best times)." if not missed else
          "\nMissed: " + "; ".join(f"{n} at {t} thread(s): {r:.2f} > {g}" for t, n, r, g in missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
