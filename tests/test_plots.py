"""Plot functions: they draw on typical input and reject bad shapes (Agg backend, nothing shown)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib.plots import image_grid, plot_decision_boundary, plot_history  # noqa: E402
from course_lib.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def labelled_lines(fig):
    return sorted(line.get_label() for ax in fig.axes for line in ax.get_lines()
                  if not line.get_label().startswith("_"))


# ---------------------------------------------------------------- plot_history

def test_plot_history_classification_has_two_panels():
    h = History(train_loss=[1.0, 0.6, 0.4], train_acc=[0.5, 0.7, 0.8],
                val_loss=[1.1, 0.7, 0.6], val_acc=[0.4, 0.6, 0.7], best_epoch=3)
    fig = plot_history(h)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[1].get_ydata(), [1.1, 0.7, 0.6])
    assert "best epoch (3)" in labelled_lines(fig)


def test_plot_history_regression_dict_without_validation():
    fig = plot_history({"train_loss": [3.0, 2.0, 1.5, 1.2], "val_loss": [], "train_acc": []})
    assert len(fig.axes) == 1
    assert labelled_lines(fig) == ["train"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), [1, 2, 3, 4])


def test_plot_history_dict_of_arrays():
    """Curves saved with np.savez come back as arrays, whose truth value is ambiguous."""
    fig = plot_history({"train_loss": np.array([1.0, 0.5]), "val_loss": np.array([1.2, 0.7]),
                        "train_acc": np.array([]), "val_acc": None})
    assert len(fig.axes) == 1 and labelled_lines(fig) == ["train", "validation"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[1].get_ydata(), [1.2, 0.7])


@pytest.mark.parametrize("history, error, match", [
    ({"train_loss": []}, ValueError, "no losses"),
    ({"train_loss": [1.0, 0.5], "val_loss": [1.0]}, ValueError, "val_loss has 1"),
    ([1.0, 0.5], TypeError, "History"),
])
def test_plot_history_errors(history, error, match):
    with pytest.raises(error, match=match):
        plot_history(history)


# ---------------------------------------------------------------- plot_decision_boundary

def two_moons_like(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)


def test_decision_boundary_from_labels_scores_and_probabilities():
    X, y = two_moons_like()
    calls = []

    def labels(P):
        calls.append(P.shape)
        return (P[:, 0] + 0.5 * P[:, 1] > 0).astype(int)

    fig = plot_decision_boundary(labels, X, y, resolution=50, title="linear")
    assert isinstance(fig, Figure) and calls == [(2500, 2)]   # one vectorised call
    assert fig.axes[0].get_title() == "linear"
    scores = lambda P: np.column_stack([-P.sum(axis=1), P.sum(axis=1), np.zeros(len(P))])
    plot_decision_boundary(scores, X, y, resolution=30)
    probs = lambda P: 1 / (1 + np.exp(-(P[:, :1] - P[:, 1:])))       # (M, 1) floats
    plot_decision_boundary(probs, X, y, resolution=30)


def rule(P):
    """The classifier behind the tests below: class 1 where x + y/2 > 0."""
    return P[:, 0] + 0.5 * P[:, 1] > 0


def classes_drawn_at(fig, points):
    """The class of the filled region under each point, read back from the drawn contours.

    ``contourf`` draws one (compound) path per colour band; band i spans the
    levels i - 0.5 .. i + 0.5, i.e. class i. Each point must lie in exactly one.
    """
    (bands,) = [c for c in fig.axes[0].collections if isinstance(c, ContourSet)]
    found = []
    for point in points:
        inside = [int(round(level)) for level, path in zip(bands.get_array(), bands.get_paths())
                  if path.contains_point(point)]
        assert len(inside) == 1, f"{point} lies in the bands of classes {inside}"
        found.append(inside[0])
    return np.array(found)


@pytest.mark.parametrize("predict_fn", [
    lambda P: rule(P).astype(np.int64),                                   # labels
    lambda P: np.column_stack([-(P[:, 0] + 0.5 * P[:, 1]), P[:, 0] + 0.5 * P[:, 1]]),  # scores
    lambda P: 1 / (1 + np.exp(-4 * (P[:, 0] + 0.5 * P[:, 1]))),          # P(class 1), (M,)
    lambda P: 1 / (1 + np.exp(-4 * (P[:, :1] + 0.5 * P[:, 1:]))),        # P(class 1), (M, 1)
], ids=["labels", "scores", "probabilities", "probabilities (M, 1)"])
def test_decision_regions_are_where_the_classifier_puts_them(predict_fn):
    X, y = two_moons_like()
    fig = plot_decision_boundary(predict_fn, X, y, resolution=50)
    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    # Probe points on a 15 x 15 grid inside the plotted box, away from its edges. The drawn
    # boundary lies within one grid cell (about 0.13 here) of the true line, so points
    # closer to the line than 0.4 (|x + y/2| < 0.45) are left out.
    gx, gy = np.meshgrid(*np.linspace(lo + 0.1, hi - 0.1, 15).T)
    probes = np.column_stack([gx.ravel(), gy.ravel()])
    probes = probes[np.abs(probes[:, 0] + 0.5 * probes[:, 1]) > 0.45]
    expected = rule(probes).astype(np.int64)
    assert 0.2 < expected.mean() < 0.8                  # both regions are probed
    np.testing.assert_array_equal(classes_drawn_at(fig, probes), expected)


def test_decision_boundary_into_given_axes():
    X, y = two_moons_like()
    fig, (a, b) = plt.subplots(1, 2)
    out = plot_decision_boundary(lambda P: (P[:, 0] > 0).astype(int), X, y, ax=b, resolution=20)
    assert out is fig and len(b.collections) > 0 and len(a.collections) == 0


@pytest.mark.parametrize("X, y, fn, match", [
    (np.zeros((5, 3)), np.zeros(5, dtype=int), lambda P: P[:, 0], r"\(N, 2\)"),
    (np.zeros((5, 2)), np.zeros(4, dtype=int), lambda P: P[:, 0], r"y must have shape \(5,\)"),
    (np.zeros((5, 2)), np.full(5, 0.5), lambda P: P[:, 0], "integer class labels"),
    (np.zeros((0, 2)), np.zeros(0, dtype=int), lambda P: P[:, 0], "no points"),
    (np.random.default_rng(0).normal(size=(5, 2)), np.zeros(5, dtype=int),
     lambda P: np.zeros((3, 3)), "predict_fn returned shape"),
])
def test_decision_boundary_errors(X, y, fn, match):
    with pytest.raises(ValueError, match=match):
        plot_decision_boundary(fn, X, y, resolution=10)


# ---------------------------------------------------------------- image_grid

@pytest.mark.parametrize("shape, side", [((12, 64), 8), ((7, 28, 28), 28), ((5, 1, 6, 6), 6),
                                         ((3, 5, 9), None)])
def test_image_grid_shapes(shape, side):
    rng = np.random.default_rng(0)
    images = rng.random(shape)
    labels = np.arange(shape[0]) % 10
    fig = image_grid(images, labels, ncols=5)
    n = shape[0]
    ncols = min(5, n)
    assert len(fig.axes) == ncols * -(-n // ncols)          # full rows, spare axes hidden
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == n
    first = shown[0].images[0].get_array()
    assert first.shape == ((side, side) if side else shape[1:])
    np.testing.assert_allclose(first, images[0].reshape(first.shape))
    assert [ax.get_title() for ax in shown] == [str(v) for v in labels]


def test_image_grid_titles_and_few_images():
    fig = image_grid(np.zeros((2, 64)), titles=["a", "b"], ncols=10)
    assert len(fig.axes) == 2                               # no empty columns for 2 images
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]


@pytest.mark.parametrize("images, kwargs, match", [
    (np.zeros((4, 63)), {}, "not a square number"),
    (np.zeros(64), {}, r"\(N, H, W\)"),
    (np.zeros((2, 3, 8, 8)), {}, r"\(N, 1, H, W\)"),
    (np.zeros((0, 8, 8)), {}, "no images"),
    (np.zeros((4, 64)), {"labels": np.arange(3)}, "4 images but 3 labels"),
    (np.zeros((4, 64)), {"titles": ["x"]}, "4 images but 1 titles"),
    (np.zeros((4, 64)), {"ncols": 0}, "ncols"),
])
def test_image_grid_errors(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        image_grid(images, **kwargs)
