"""Typical mistakes in chapters 00-03 lose points, and the visible tests name them.

Each case is the chapter's solution notebook with exactly one answer changed into a typical
mistake. The graded cases are bugs the hidden tests once let through: graded by the real grader
(sandboxed student process, hidden tests, a secret), the mistaken exercise must lose points while
every other exercise keeps full marks. The validated cases are mistakes whose hint once named the
wrong cause: ``python -m autograde validate`` must show the hint for the actual mistake, and not
the one for another.
"""

import copy
import json
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from autograde.config import Course, GradingSettings
from autograde.grade import grade
from autograde.notebook_io import cell_text, load_chapter, read_json
from autograde.validate import report, validate

REPO = Course()

pytestmark = pytest.mark.slow

TRIPLE_LOOP = '''def pairwise_sq_dists(A, B):
    """Squared distances, one multiply-add at a time (too slow)."""
    N, D = A.shape
    M = B.shape[0]
    out = np.zeros((N, M))
    for i in range(N):
        for j in range(M):
            s = 0.0
            for k in range(D):
                s += (A[i, k] - B[j, k]) ** 2
            out[i, j] = s
    return out
'''


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution_answers(chapter):
    """{answer grade_id: source} of the chapter's solution notebook."""
    return {grade_id(c): cell_text(c["source"]) for c in read_json(REPO.source_notebook(chapter))["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")}


def with_mistakes(chapter, mistakes):
    """The release notebook with every answer solved, then each of ``mistakes`` made.

    ``mistakes`` is a list of (answer grade_id, change): a change {"whole": source} replaces the
    answer cell, {"old": text, "new": text} replaces a text that occurs exactly once in it.
    """
    answers = solution_answers(chapter)
    for exercise, change in mistakes:
        if "whole" in change:
            answers[exercise] = change["whole"]
        else:
            assert answers[exercise].count(change["old"]) == 1, f"{change['old']!r} not once in {exercise}"
            answers[exercise] = answers[exercise].replace(change["old"], change["new"])
    nb = copy.deepcopy(read_json(REPO.release_notebook(chapter)))
    for cell in nb["cells"]:
        if grade_id(cell) in answers:
            cell["source"] = answers[grade_id(cell)]
    return nb


# ---------------------------------------------------------------------------
# Bugs the hidden tests let through before: each now loses its exercise's points, and only those

GRADED = {  # student id: (chapter, exercise, mistake, test cells that must fail)
    "triple_loop": ("00_tools", "pairwise_sq_dists", dict(whole=TRIPLE_LOOP),
                    {"test_pairwise_sq_dists_speed"}),
    "relu_kink_one": ("03_backprop", "scalar_net_backward",
                      dict(old="(1.0 if h_in > 0 else 0.0)", new="(1.0 if h_in >= 0 else 0.0)"),
                      {"test_scalar_net_backward"}),
    "variance_as_std": ("03_backprop", "train_two_layer",
                        dict(old="rng.normal(0.0, np.sqrt(2.0 / D), size=(D, hidden))",
                             new="rng.normal(0.0, 2.0 / D, size=(D, hidden))"),
                        {"test_train_two_layer_step"}),
    "wrong_fan_in": ("03_backprop", "train_two_layer",
                     dict(old="rng.normal(0.0, np.sqrt(2.0 / hidden), size=(hidden, C))",
                          new="rng.normal(0.0, np.sqrt(2.0 / C), size=(hidden, C))"),
                     {"test_train_two_layer_step"}),
    "one_shuffle": ("03_backprop", "train_two_layer",
                    dict(old="        order = rng.permutation(N)\n", new="        order = np.arange(N)\n"),
                    {"test_train_two_layer_step"}),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{student id: result record} of every GRADED case, one batch per chapter."""
    root = tmp_path_factory.mktemp("mistakes")
    course = Course(REPO.root, state=root / "state")
    results = {}
    for chapter in sorted({case[0] for case in GRADED.values()}):
        submissions = root / chapter / "submissions"
        for student, (ch, exercise, mistake, _) in GRADED.items():
            if ch == chapter:
                path = submissions / student / f"{chapter}.ipynb"
                path.parent.mkdir(parents=True)
                path.write_text(json.dumps(with_mistakes(chapter, [(exercise, mistake)])), encoding="utf-8")
        out = root / chapter / "out"
        outcome = grade(chapter, submissions, out, course=course, workers=2, settings=GradingSettings(),
                        progress=False)
        assert not outcome.failed, outcome.failed
        for path in (out / "results" / chapter).glob("*.json"):
            results[path.stem] = json.loads(path.read_text())
    return results


@pytest.mark.parametrize("student", sorted(GRADED))
def test_the_mistake_loses_exactly_its_exercise_points(graded, student):
    chapter, exercise, _, must_fail = GRADED[student]
    result = graded[student]
    chap = load_chapter(REPO.source_notebook(chapter), REPO.release_notebook(chapter), chapter)
    own = {t.grade_id for t in chap.tests_of(exercise)}
    failed = {t["grade_id"]: t["message"] for t in result["tests"] if not t["passed"]}
    assert result["status"] == "ok", result["status"]
    assert must_fail <= set(failed), f"{student} should fail {sorted(must_fail)}; failed: {failed}"
    assert set(failed) <= own, f"{student} also lost points outside {exercise}: {failed}"
    lost = sum(t["max_points"] for t in result["tests"] if not t["passed"])
    assert result["score"] == result["max_score"] - lost > 0


def test_the_speed_failure_names_the_time_and_the_limit(graded):
    message = next(t["message"] for t in graded["triple_loop"]["tests"]
                   if t["grade_id"] == "test_pairwise_sq_dists_speed")
    assert re.search(r"took \d+\.\d\d s for 400 x 300 points .* the limit is \d+\.\d\d s", message), message


def test_the_init_failure_is_named_in_the_visible_test(graded):
    """The visible part already catches a wrong scale, so validate and grading agree on it."""
    for student in ("variance_as_std", "wrong_fan_in"):
        message = next(t["message"] for t in graded[student]["tests"]
                       if t["grade_id"] == "test_train_two_layer_step")
        assert "standard deviation" in message and "hidden check" not in message, message


# ---------------------------------------------------------------------------
# Hints: validate shows the one for the actual mistake


VALIDATED = {  # name: (chapter, exercise, mistake, {test cell: (must appear, must not appear)})
    "softmax_ce_backward_labels": (
        "03_backprop", "softmax_cross_entropy_backward",
        dict(old="dlogits[np.arange(N), labels] -= 1.0", new="dlogits[:, labels] -= 1.0"),
        {"test_softmax_ce_backward": (["p[np.arange(N), labels] -= 1"], ["Divide by N"])}),
    "softmax_ce_backward_no_mean": (
        "03_backprop", "softmax_cross_entropy_backward",
        dict(old="return dlogits / N", new="return dlogits"),
        {"test_softmax_ce_backward": (["Divide by N = 2"], ["np.arange(N)"]),
         "test_softmax_ce_backward_stable": (["divided by N = 2"], ["maximum"])}),
    "softmax_ce_sum": (
        "02_mlp", "softmax_cross_entropy",
        dict(old="return float(np.mean(lse - logits[np.arange(N), labels]))",
             new="return float(np.sum(lse - logits[np.arange(N), labels]))"),
        {"test_softmax_ce_values": (["mean over the N rows, not their sum"], ["np.arange(N)"]),
         "test_softmax_ce_stable": (["the batch loss is their mean"], ["maximum"])}),
    "softmax_ce_labels": (
        "02_mlp", "softmax_cross_entropy",
        dict(old="return float(np.mean(lse - logits[np.arange(N), labels]))",
             new="return float(np.mean(lse - logits[:, labels]))"),
        {"test_softmax_ce_values": (["logits[np.arange(N), labels]"], ["not their sum"])}),
    "softmax_no_keepdims": (
        "01_neurons", "softmax",
        dict(old="np.max(x, axis=-1, keepdims=True)", new="np.max(x, axis=-1)"),
        {"test_softmax_stable": (["softmax(x: array (2, 3)) raised ValueError", "keepdims=True"],
                                 ["whole batch"])}),
    "softmax_batch_max": (
        "01_neurons", "softmax",
        dict(old="np.max(x, axis=-1, keepdims=True)", new="np.max(x)"),
        {"test_softmax_stable": (["one maximum for the whole batch"], [])}),
    "matmul_without_transpose": (
        "00_tools", "pairwise_sq_dists", dict(old="(A @ B.T)", new="(A @ B)"),
        {"test_pairwise_sq_dists": (["pairwise_sq_dists(A: array (3, 2), B: array (4, 2)) raised ValueError",
                                     "transpose"], [])}),
}


def failures(text):
    """{test cell: its failure message} from validate's report."""
    out, current = {}, None
    for line in text.splitlines():
        match = re.match(r"(PASS|FAIL)  (\S+)", line)
        if match:
            current = match.group(2) if match.group(1) == "FAIL" else None
            if current:
                out[current] = ""
        elif current and line.startswith("      "):
            out[current] += " " + line.strip()
    return out


IN_PLACE_RELU = ("01_neurons", "relu", dict(old="return np.maximum(np.asarray(x, dtype=float), 0.0)",
                                            new="x[x < 0] = 0.0\n    return x"))


def validate_text(args):
    """validate's report for the solution of ``chapter`` with ``mistakes`` [(exercise, change)]."""
    chapter, mistakes, folder = args
    nb = with_mistakes(chapter, mistakes)
    path = Path(folder) / f"{chapter}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    return report(validate(path, REPO, chapter))


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """{case: validate's report}; the in-place ReLU rides along with a mistake in softmax."""
    root = tmp_path_factory.mktemp("validate")
    jobs = {}
    for case, (chapter, exercise, mistake, _) in VALIDATED.items():
        mistakes = [(exercise, mistake)]
        if case == "softmax_batch_max":
            mistakes.append(IN_PLACE_RELU[1:])
        jobs[case] = (chapter, mistakes, str(root / case))
    # Each validate waits mostly on its own student process: two at a time fill two cores.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(jobs, pool.map(validate_text, jobs.values())))


@pytest.mark.parametrize("case", sorted(VALIDATED))
def test_validate_shows_the_hint_for_the_actual_mistake(validated, case):
    shown = failures(validated[case])
    for test, (present, absent) in VALIDATED[case][3].items():
        assert test in shown, f"{test} should fail for {case}; failing: {sorted(shown)}"
        for text in present:
            assert text in shown[test], f"{test} for {case} should say {text!r}:\n{shown[test]}"
        for text in absent:
            assert text not in shown[test], f"{test} for {case} should not say {text!r}:\n{shown[test]}"


def test_relu_changing_its_input_in_place_passes_validate_as_it_passes_grading(validated):
    """Grading passes copies, so the visible test must not depend on whether x was changed."""
    assert "PASS  test_relu " in validated["softmax_batch_max"]
