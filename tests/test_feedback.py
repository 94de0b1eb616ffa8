"""What a student reads after a failure: hints, explained errors, named hidden checks, validate.

Each test here fails without the feature it names: a hint that is dropped for
a NaN result, a NumPy error that arrives without the call and its shapes, an
edited cell that grading sets aside silently, a validate that cuts messages.
"""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autograde.config import Course, GradingSettings
from autograde.notebook_io import load_chapter, parse_submission, rebuild
from course_lib.checks import check_close, check_scalar, check_shape
from course_lib.explain import describe_call, explain_call_error, usual_cause

FIXTURE = Course(Path(__file__).parent / "fixtures" / "course")
HINT = "exp(1000) overflows: use the stable form."


# ---------------------------------------------------------------------------
# Hints end every failure of a check


@pytest.mark.parametrize("value, expected", [
    (np.array([np.nan, 1.0]), [0.5, 1.0]),          # NaN: the naive formula's 0 / 0
    (np.array([np.inf, 1.0]), [1.0, 1.0]),          # inf: exp overflowed
    (np.array([[0.5, 1.0]]), [0.5, 1.0]),           # wrong shape
    (np.array([0.25, 1.0]), [0.5, 1.0]),            # wrong value
])
def test_check_close_hint_is_shown_for_every_kind_of_failure(value, expected):
    with pytest.raises(AssertionError) as err:
        check_close(value, expected, "sigmoid(x)", hint=HINT)
    assert str(err.value).endswith(HINT), str(err.value)


def test_nan_message_keeps_its_own_diagnosis_before_the_hint():
    with pytest.raises(AssertionError, match=r"contains nan at index \(0,\).*overflow.*" + "stable form"):
        check_close(np.array([np.nan]), [1.0], hint=HINT)


def test_check_scalar_and_check_shape_show_the_hint():
    with pytest.raises(AssertionError, match="did you forget to sum or average.*divide by N"):
        check_scalar(np.ones(3), 1.0, "the loss", hint="divide by N")
    with pytest.raises(AssertionError, match="Did you forget a transpose.*W is \\(D, M\\)"):
        check_shape(np.ones((3, 2)), (2, 3), "dW", hint="W is (D, M)")


# ---------------------------------------------------------------------------
# Sentences for NumPy errors


def _numpy_error(fn):
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    raise AssertionError("expected an error")


@pytest.mark.parametrize("fn, words", [
    (lambda: np.ones((4, 3)) @ np.ones((2, 3)), "transpose (.T)"),
    (lambda: np.dot(np.ones((4, 3)), np.ones((2, 3))), "transpose (.T)"),
    (lambda: np.ones((2, 3)) - np.ones((2, 3)).max(axis=1), "keepdims=True"),
    (lambda: np.ones(3)[5], "past the end of an axis"),
    (lambda: np.ones(3).sum(axis=1), "fewer axes"),
    (lambda: np.ones(6).reshape(4, 2), "does not fit the new shape"),
])
def test_usual_cause_of_real_numpy_errors(fn, words):
    type_name, message = _numpy_error(fn)
    assert words in usual_cause(type_name, message), (type_name, message)


def test_unknown_errors_get_no_invented_cause():
    assert usual_cause("KeyError", "'W'") == ""


def test_explained_call_names_the_function_and_the_shapes():
    call = describe_call("dense_forward", [np.ones((4, 3)), np.ones((2, 3)), np.ones(2)],
                         arg_names=["x", "W", "b"])
    assert call == "dense_forward(x: array (4, 3), W: array (2, 3), b: array (2,))"
    type_name, message = _numpy_error(lambda: np.ones((4, 3)) @ np.ones((2, 3)))
    text = explain_call_error(call, type_name, message)
    assert text.startswith(call + " raised ValueError: matmul")
    assert "transpose" in text
    assert "not solved yet" in explain_call_error("step(x: array (3,))", "NotImplementedError", "")


def _plain(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_explain_errors_in_a_real_kernel():
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3")

    def run(code):
        kc.execute(code)
        errors = []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["msg_type"] == "error":
                errors.append(msg["content"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return errors

    try:
        assert run("import numpy as np\nfrom course_lib.explain import explain_errors\n"
                   "explain_errors()\n"
                   "def dense_forward(x, W, b):\n    return x @ W + b\n") == []
        (err,) = run("dense_forward(np.ones((4, 3)), np.ones((2, 3)), np.ones(2))")
        assert err["ename"] == "ValueError"          # still an error: the cell fails as before
        shown = err["traceback"]
        assert max(len(_plain(line)) for line in "\n".join(shown[-6:]).split("\n")) <= 80
        text = " ".join(_plain("\n".join(shown)).split())
        assert ("What this usually means: dense_forward(x: array (4, 3), W: array (2, 3), b: array (2,)) "
                "raised ValueError: matmul") in text
        assert text.endswith("whether one needs a transpose (.T).")
        (err,) = run("assert 1 == 2, 'a check of the test itself'")
        assert "usually means" not in "".join(err["traceback"])   # test failures speak for themselves
        (err,) = run("np.ones(3) @ np.ones(2)")                     # not in a student function
        assert "usually means" not in "".join(err["traceback"])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# ---------------------------------------------------------------------------
# The judge explains student errors and names hidden checks


STUDENT = '''
import numpy as np

def dense_forward(x, W, b):
    return x @ W + b

def unsolved(x):
    raise NotImplementedError()
'''


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    from autograde.client import RunnerClient
    from autograde.judge import Judge
    client = RunnerClient(tmp_path_factory.mktemp("runner"), GradingSettings().limits())
    client.start()
    reply, _ = client.request({"op": "exec", "source": STUDENT}, None, time.monotonic() + 60)
    assert reply["ok"], reply
    yield Judge(client, ["dense_forward", "unsolved"],
                {"dense_forward": ["x", "W", "b"], "unsolved": ["x"]})
    client.stop()


def test_judge_explains_a_matmul_error_with_the_argument_shapes(judge):
    verdict = judge.run_test("import numpy as np\n"
                             "dense_forward(np.ones((4, 3)), np.ones((2, 3)), np.ones(2))",
                             time.monotonic() + 60)
    assert not verdict.passed
    assert verdict.message.startswith("ValueError: dense_forward(x: array (4, 3), W: array (2, 3), "
                                      "b: array (2,)) raised ValueError: matmul"), verdict.message
    assert "transpose" in verdict.message


def test_judge_explained_error_keeps_its_type_for_the_test_code(judge):
    verdict = judge.run_test("import numpy as np\ntry:\n    dense_forward(np.ones((4, 3)), np.ones((2, 3)), 0)\n"
                             "except ValueError as e:\n    assert 'array (4, 3)' in str(e)\n",
                             time.monotonic() + 60)
    assert verdict.passed, verdict.message


def test_judge_says_an_exercise_is_not_solved(judge):
    verdict = judge.run_test("unsolved(1)", time.monotonic() + 60)
    assert "unsolved is not solved yet" in verdict.message


def test_hidden_failure_inside_a_student_call_names_the_check_only(judge):
    source = ("import numpy as np\n### BEGIN HIDDEN TESTS\n# check: a batch of one sample\n"
              "dense_forward(np.ones((1, 3)), np.ones((2, 3)), np.ones(2))\n### END HIDDEN TESTS\n")
    verdict = judge.run_test(source, time.monotonic() + 60)
    assert verdict.message == "hidden check failed: a batch of one sample (ValueError)"


# ---------------------------------------------------------------------------
# Validate and grading agree


def _toy():
    chapter = FIXTURE.source_notebook("toy")
    return load_chapter(chapter, FIXTURE.release_notebook("toy"), "toy")


def test_an_edited_setup_cell_is_reported_when_grading_sets_it_aside():
    nb = json.loads(FIXTURE.release_notebook("toy").read_text())
    nb["cells"][1]["source"] += "\nimport scipy  # the student's own import\n"
    rebuilt = rebuild(_toy(), parse_submission(json.dumps(nb).encode()))
    assert "edited cells run as released: cell 2" in rebuilt.notes


def test_an_untouched_notebook_has_no_note():
    nb = json.loads(FIXTURE.release_notebook("toy").read_text())
    assert rebuild(_toy(), parse_submission(json.dumps(nb).encode())).notes == []


def _toy_submission(tmp_path, relu_source):
    nb = json.loads(FIXTURE.release_notebook("toy").read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "relu":
            cell["source"] = relu_source
    path = tmp_path / "toy.ipynb"
    path.write_text(json.dumps(nb))
    return path


def _validate(path):
    return subprocess.run([sys.executable, "-m", "autograde", "--course-root", str(FIXTURE.root),
                           "validate", str(path)], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_validate_prints_long_messages_in_full_and_fails(tmp_path):
    path = _toy_submission(tmp_path, "import numpy as np\n\ndef relu(x):\n    return -np.maximum(x, 0)\n")
    proc = _validate(path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = " ".join(proc.stdout.split())          # undo the line wrapping
    assert "FAIL test_relu (0/1 points)" in out
    assert "relu([-1, 0, 2]) is wrong at index (2,): expected 2, got -2. Every entry has the wrong sign." in out
    assert "softmax is not solved yet: replace `raise NotImplementedError()` in its answer cell with " \
           "your solution, run that cell, then this test again." in out
    assert "0 of 4 test cells pass (0 of 6 points in the visible tests)." in out


@pytest.mark.slow
def test_validate_and_grading_agree_on_an_in_place_relu(tmp_path):
    # Grading passes copies of the arguments; validate runs through the same path,
    # so a relu that modifies its input is judged the same way by both.
    in_place = "def relu(x):\n    x[x < 0] = 0\n    return x\n"
    path = _toy_submission(tmp_path, in_place)
    proc = _validate(path)
    assert "PASS  test_relu" in proc.stdout, proc.stdout + proc.stderr

    from autograde.grade import grade
    subs = tmp_path / "subs" / "ann"
    subs.mkdir(parents=True)
    shutil.copy(path, subs / "toy.ipynb")
    course = Course(FIXTURE.root, state=tmp_path / "state")
    grade("toy", tmp_path / "subs", tmp_path / "out", course=course, progress=False)
    result = json.loads((tmp_path / "out" / "results" / "toy" / "ann.json").read_text())
    relu = next(t for t in result["tests"] if t["grade_id"] == "test_relu")
    assert relu["passed"], relu


def test_validate_refuses_a_notebook_of_no_chapter(tmp_path):
    path = tmp_path / "mine.ipynb"
    path.write_text(FIXTURE.release_notebook("toy").read_text())
    proc = _validate(path)
    assert proc.returncode == 2
    assert "mine.ipynb is not a chapter's notebook (chapters: toy)" in proc.stderr


def test_long_messages_are_wrapped_so_that_validate_cuts_nothing():
    from course_lib.explain import LINE_WIDTH, wrap_error_line
    message = "relu(x) is wrong at index (2,): expected 2, got -2. " + "A hint the student must read. " * 6
    entry = wrap_error_line("\x1b[31mAssertionError\x1b[39m: " + message + "\nsecond line", "AssertionError")
    plain = entry.replace("\x1b[31m", "").replace("\x1b[39m", "")
    lines = plain.split("\n")
    assert len(lines[0]) <= LINE_WIDTH
    assert all(len(line) <= LINE_WIDTH for line in lines[1:])
    assert " ".join(plain.split()) == " ".join(("AssertionError: " + message + " second line").split())
    assert lines[-1] == "second line"                        # the message's own breaks are kept


@pytest.mark.slow
def test_nbgrader_validate_in_the_repository_finds_its_configuration():
    repo = Path(__file__).resolve().parent.parent
    notebook = FIXTURE.release_notebook("toy")
    proc = subprocess.run([str(Path(sys.executable).with_name("nbgrader")), "validate", str(notebook)],
                          cwd=repo, capture_output=True, text=True, timeout=300)
    assert "No nbgrader_config.py file found" not in proc.stdout + proc.stderr
    assert "VALIDATION FAILED" in proc.stdout, proc.stdout + proc.stderr   # the stubs fail


def test_an_answer_cell_that_does_not_run_is_named_in_the_status_and_its_tests(tmp_path):
    from autograde.grade import grade
    path = _toy_submission(tmp_path, "def relu(x):\nreturn x\n")      # IndentationError
    subs = tmp_path / "subs" / "ann"
    subs.mkdir(parents=True)
    shutil.copy(path, subs / "toy.ipynb")
    grade("toy", tmp_path / "subs", tmp_path / "out", course=Course(FIXTURE.root, state=tmp_path / "s"),
          progress=False)
    result = json.loads((tmp_path / "out" / "results" / "toy" / "ann.json").read_text())
    assert "cell 4 (relu) raised IndentationError and did not run" in result["status"]
    relu = next(t for t in result["tests"] if t["grade_id"] == "test_relu")
    assert relu["message"].startswith("NameError: name 'relu' is not defined")
    assert "Its answer cell raised IndentationError when it ran" in relu["message"]


def test_lint_accepts_a_hidden_helper_defined_before_the_first_check(tmp_path):
    from autograde.lint import lint_notebook
    cells = [{"cell_type": "code", "id": "a", "metadata": {"nbgrader": {
                 "grade": False, "grade_id": "f", "locked": False, "solution": True}},
              "source": "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n",
              "outputs": [], "execution_count": None},
             {"cell_type": "code", "id": "t", "metadata": {"nbgrader": {
                 "grade": True, "grade_id": "t", "locked": True, "points": 1, "solution": False}},
              "source": "### BEGIN HIDDEN TESTS\ndef twice_f(v):\n    return 2 * f(v)\n"
                        "# check: f doubled\nassert twice_f(1) == 2\n### END HIDDEN TESTS\n",
              "outputs": [], "execution_count": None}]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert lint_notebook(path) == []
    cells[1]["source"] = cells[1]["source"].replace("# check: f doubled\nassert", "assert")
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert any("before any `# check:" in p for p in lint_notebook(path))
