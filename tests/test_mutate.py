"""Mutation analysis: the operators, the mutants' ids, and grading mutants in the sandbox.

The operator tests build small answer cells and check that each operator
makes exactly the expected one-line change. The grading tests build a tiny
chapter under tmp_path whose tests are either weak (they let bugs through) or
strong, and check what survives, what is killed, and how the report and the
equivalents file are read.
"""

import ast
import json
import tempfile
import textwrap
from pathlib import Path

import pytest

from autograde import sandbox
from autograde.__main__ import main
from autograde.config import Course
from autograde.mutants import cell_mutants, solution_regions
from autograde.mutate import analyse, format_report, read_equivalents
from autograde.notebook_io import cell_text, load_chapter, read_json

FIXTURE = Course(Path(__file__).parent / "fixtures" / "course")
REPO = Course()


def answer_cell(body, name="f", args="x, W, b, n, lr", before="", after=""):
    """An answer cell defining ``name`` whose solution region holds ``body``."""
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return (f"{before}def {name}({args}):\n"
            f'    """A docstring: x (N, D), W (D, M), b (M,); 1 + 2 * 3."""\n'
            f"    ### BEGIN SOLUTION\n{body}\n    ### END SOLUTION\n{after}")


def by_id(source, exercise="ex"):
    mutants = cell_mutants(source, exercise)
    return {m.id: m for m in mutants}


def changed_lines(mutant):
    """(removed, added) lines of a mutant's diff, stripped."""
    lines = mutant.diff.splitlines()
    removed = [ln[1:].strip() for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:].strip() for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    return removed, added


# ---------------------------------------------------------------------------
# Operators


ONE_LINE_CASES = [
    # (solution line, mutant id, the line as mutated)
    ("return np.exp(-x)", "f:drop-minus:1", "return np.exp(x)"),
    ("return x @ W + b", "f:swap-matmul:1", "return W @ x + b"),
    ("return x @ W + b", "f:matmul->mul:1", "return x * W + b"),
    ("return x @ W + b", "f:drop-right-term:1", "return x @ W"),
    ("return x @ W + b", "f:add->sub:1", "return x @ W - b"),
    ("return x - b", "f:swap-sub:1", "return b - x"),
    ("return x - b", "f:drop-left-term:1", "return -b"),
    ("return x / b", "f:swap-div:1", "return b / x"),
    ("return x / b", "f:drop-divisor:1", "return x"),
    ("return lr * x", "f:drop-left-factor:1", "return x"),
    ("return x @ W.T", "f:drop-.T:1", "return x @ W"),
    ("return x.sum(axis=0)", "f:axis0->1:1", "return x.sum(axis=1)"),
    ("return np.max(x, axis=-1)", "f:axis-1->0:1", "return np.max(x, axis=0)"),
    ("return np.max(x, axis=-1)", "f:drop-axis:1", "return np.max(x)"),
    ("return np.max(x, axis=-1)", "f:max->min:1", "return np.min(x, axis=-1)"),
    ("return np.sum(x, axis=1)", "f:sum->mean:1", "return np.mean(x, axis=1)"),
    ("return x.mean()", "f:mean->sum:1", "return x.sum()"),
    ("return (x > 0).astype(float)", "f:gt->ge:1", "return (x >= 0).astype(float)"),
    ("return (x > 0).astype(float)", "f:drop-astype:1", "return x > 0"),
    ("return x < b", "f:lt->le:1", "return x <= b"),
    ("return x >= b", "f:ge->gt:1", "return x > b"),
    ("return np.maximum(x, 0.0)", "f:maximum->minimum:1", "return np.minimum(x, 0.0)"),
    ("return np.maximum(x, 0.0)", "f:drop-maximum:1", "return x"),
    ("return max(n, 0.0)", "f:drop-max:1", "return n"),
    ("return x[:, 1]", "f:const1->0:1", "return x[:, 0]"),
    ("return x[:, 1]", "f:const1->2:1", "return x[:, 2]"),
    ("return 0.5 * x", "f:const0.5->1.0:1", "return 1.0 * x"),
    ("return 2.0 * x", "f:const2.0->1.0:1", "return 1.0 * x"),
    ("return 2.0 * x", "f:const2.0->4.0:1", "return 4.0 * x"),
    ("return x - x.max(axis=1, keepdims=True)", "f:drop-keepdims:1", "return x - x.max(axis=1)"),
    ("return np.log(x)", "f:log->exp:1", "return np.exp(x)"),
    ("return np.exp(x)", "f:exp->log:1", "return np.log(x)"),
    ("return np.log1p(x)", "f:log1p->log:1", "return np.log(x)"),
    ("return np.sqrt(x)", "f:drop-sqrt:1", "return x"),
    ("return np.abs(x)", "f:drop-abs:1", "return x"),
    ("return np.zeros(n)", "f:zeros->ones:1", "return np.ones(n)"),
    ("return np.where(x > 0, x, lr * x)", "f:swap-where:1", "return np.where(x > 0, lr * x, x)"),
    ("return np.dot(x, W)", "f:swap-dot:1", "return np.dot(W, x)"),
    ("return x[:, None]", "f:swap-newaxis:1", "return x[None, :]"),
    ("return x[np.arange(n), b]", "f:arange->colon:1", "return x[:, b]"),
    ("return 1.0 if n > 0 else 0.0", "f:swap-branches:1", "return 0.0 if n > 0 else 1.0"),
    ("return n > 0 and b", "f:and->or:1", "return n > 0 or b"),
    ("return not b", "f:drop-not:1", "return b"),
    ("return x.copy()", "f:drop-copy:1", "return x"),
    ("return n == 0", "f:eq->ne:1", "return n != 0"),
    ("return [x for i in range(n)]", "f:range-stop-1:1", "return [x for i in range(n - 1)]"),
    ("return list(range(0, n, 2))", "f:range-stop-1:1", "return list(range(0, n - 1, 2))"),
    ("return np.random.default_rng(0).permutation(n)", "f:permutation->arange:1",
     "return np.arange(n)"),
    ("W -= lr * x", "f:sub=->add=:1", "W += lr * x"),
    ("W *= lr", "f:mul=->div=:1", "W /= lr"),
]


@pytest.mark.parametrize("line, mutant_id, mutated", ONE_LINE_CASES,
                         ids=[case[1] + " " + case[0] for case in ONE_LINE_CASES])
def test_operator_changes_exactly_one_line(line, mutant_id, mutated):
    mutants = by_id(answer_cell(line))
    assert mutant_id in mutants, sorted(mutants)
    assert changed_lines(mutants[mutant_id]) == ([line], [mutated])


def test_dropped_statement_keeps_the_block_valid():
    mutants = by_id(answer_cell("""
        for i in range(n):
            W -= lr * x
        x[0] = 1.0
        b.append(n)
        return W
    """))
    assert changed_lines(mutants["f:drop-update:1"]) == (["W -= lr * x"], ["pass"])
    assert changed_lines(mutants["f:drop-update:2"]) == (["x[0] = 1.0"], [])
    assert changed_lines(mutants["f:drop-call-statement:1"]) == (["b.append(n)"], [])


def test_statement_moved_out_of_and_into_a_loop():
    source = answer_cell("""
        history = []
        for epoch in range(n):
            count = 0
            for i in range(n):
                count += 1
            total = count + epoch
        history.append(count)
        return history
    """)
    mutants = by_id(source)
    hoisted = mutants["f:hoist-out-of-loop:1"].source
    assert "    count = 0\n    for epoch in range(n):\n        for i in range(n):" in hoisted
    # total reads the loop's variable: it cannot move out of the loop
    assert "f:hoist-out-of-loop:2" not in mutants
    sunk = mutants["f:sink-into-loop:1"].source
    assert "            count += 1\n            total = count + epoch\n    history" in sunk
    sunk = mutants["f:sink-into-loop:2"].source
    assert "        total = count + epoch\n        history.append(count)\n    return" in sunk


def test_confusable_local_names_are_swapped():
    mutants = by_id(answer_cell("""
        idx = np.arange(n)
        xb = x[idx]
        return xb @ W
    """))
    assert changed_lines(mutants["f:name-xb->x:1"]) == (["return xb @ W"], ["return x @ W"])
    # W and idx look nothing alike: no swap between them
    assert not [i for i in mutants if i.startswith("f:name-W") or i.startswith("f:name-idx")]


def test_only_the_solution_region_is_mutated():
    helper = "def g(x):\n    return x + 1.0 - 2 * x.T\n\n\n"
    source = answer_cell("return x @ W + b", before=helper, after="\nOTHER = 3 - 1\n")
    mutants = cell_mutants(source, "ex")
    assert mutants
    assert {m.function for m in mutants} == {"f"}
    first, last = solution_regions(source)[0]
    lines = source.splitlines()
    for m in mutants:
        changed = m.source.splitlines()
        assert changed[:first - 1] == lines[:first - 1]
        assert changed[len(changed) - (len(lines) - last):] == lines[last:]
    assert cell_mutants("def f(x):\n    return x + 1\n", "ex") == []


def test_code_outside_functions_is_named_after_the_exercise():
    source = "### BEGIN SOLUTION\nSCALE = 2.0 * 3.0\n### END SOLUTION\n"
    assert "half:const2.0->1.0:1" in by_id(source, "half")


def test_ids_do_not_move_when_the_cell_changes_elsewhere():
    body = """
        shifted = x - x.max(axis=1, keepdims=True)  # no overflow
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)
    """
    before = by_id(answer_cell(body))
    edited = answer_cell("z = np.asarray(x)\n" + textwrap.dedent(body).strip("\n"),
                         before="def helper(v):\n    return v - 1\n\n\n")
    after = by_id(edited)
    assert before
    for mutant_id, mutant in before.items():
        assert mutant_id in after
        assert changed_lines(after[mutant_id]) == changed_lines(mutant)
        assert after[mutant_id].line == mutant.line + 5  # the helper and the new line


def chapter_cells():
    """Every answer cell of the fixture's and the course's sources (a release is not needed)."""
    for course in (FIXTURE, REPO):
        for chapter in course.chapters():
            for cell in read_json(course.source_notebook(chapter))["cells"]:
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                    yield pytest.param(grade_id, cell_text(cell["source"]),
                                       id=f"{chapter}-{grade_id}")


@pytest.mark.parametrize("grade_id, source", list(chapter_cells()))
def test_every_mutant_of_every_chapter_is_valid_and_distinct(grade_id, source):
    mutants = cell_mutants(source, grade_id)
    assert mutants, f"no mutant of {grade_id}"
    original = ast.dump(ast.parse(source))
    dumps = set()
    for m in mutants:
        dump = ast.dump(ast.parse(m.source))   # valid Python
        assert dump != original, m.id
        dumps.add(dump)
        assert m.diff.startswith(f"--- {grade_id} (solution)\n+++ {m.id}\n"), m.id
        assert " " not in m.id and "#" not in m.id, m.id
    assert len(dumps) == len(mutants)
    assert len({m.id for m in mutants}) == len(mutants)


def test_equivalents_file_reasons(tmp_path):
    path = tmp_path / "equivalent_mutants.txt"
    path.write_text("# sigmoid is 0.5 at zero from either side\n"
                    "sigmoid:ge->gt:1\n"
                    "leaky_relu:gt->ge:1\n"
                    "\n"
                    "relu:drop-astype:1   # booleans compare equal to 0.0 and 1.0\n"
                    "  softmax:max->min:1\n", encoding="utf-8")
    assert read_equivalents(path) == {
        "sigmoid:ge->gt:1": "sigmoid is 0.5 at zero from either side",
        "leaky_relu:gt->ge:1": "sigmoid is 0.5 at zero from either side",
        "relu:drop-astype:1": "booleans compare equal to 0.0 and 1.0",
        "softmax:max->min:1": ""}
    assert read_equivalents(tmp_path / "missing.txt") == {}


# ---------------------------------------------------------------------------
# Grading mutants in the sandbox

RELU = answer_cell("return np.maximum(x, 0.0)", name="relu", args="x")
HALF = "### BEGIN SOLUTION\nHALF = [0.0, 0.5][1]\n### END SOLUTION\n"
COUNT_DOWN = answer_cell("""
    steps = 0
    while n > 0:
        n -= 1
        steps += 1
    return steps
""", name="count_down", args="n")

WEAK_RELU_TEST = """\
import numpy as np
from course_lib.checks import check_close

check_close(relu(np.array([1.0, 2.0])), np.array([1.0, 2.0]), "relu([1, 2])")
"""
STRONG_RELU_TEST = WEAK_RELU_TEST + """\
### BEGIN HIDDEN TESTS
from course_lib.checks import rng_for
# check: negative inputs and inputs between 0 and 1
x = rng_for("relu-x").uniform(-1.0, 1.0, size=(4, 3))
check_close(relu(x), np.where(x > 0, x, 0.0), "relu(x)")
### END HIDDEN TESTS
"""
# It uses relu too: a relu mutant must be undone before the next exercise's mutants run.
HALF_TEST = """\
import numpy as np

assert HALF == 0.5, "HALF should be 0.5"
assert relu(np.array([-HALF]))[0] == 0.0
"""
COUNT_DOWN_TEST = "assert count_down(3) == 3\nassert count_down(0) == 0\n"


def _cell(kind, source, nbgrader=None):
    cell = {"cell_type": kind, "id": f"c{abs(hash((kind, source))) % 10**8}", "metadata": {},
            "source": source}
    if nbgrader:
        cell["metadata"]["nbgrader"] = {"schema_version": 3, "task": False, **nbgrader}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _stub(source):
    out, inside = [], False
    for line in source.splitlines(keepends=True):
        if line.strip() == "### BEGIN SOLUTION":
            inside = True
            out.append(line.replace("### BEGIN SOLUTION", "raise NotImplementedError()"))
        elif line.strip() == "### END SOLUTION":
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out)


def tiny_course(root, relu_test, equivalents=None, count_down=False):
    """A course with one chapter ``tiny``: relu, HALF (and count_down), each with one test cell."""
    cells = [_cell("markdown", "# Tiny"), _cell("code", "import numpy as np\n")]
    exercises = [("relu", RELU, relu_test), ("half", HALF, HALF_TEST)]
    if count_down:   # three of its mutants loop for ever: each costs a timeout
        exercises.append(("count_down", COUNT_DOWN, COUNT_DOWN_TEST))
    for gid, answer, test in exercises:
        cells.append(_cell("code", answer, {"grade": False, "grade_id": gid, "locked": False,
                                            "solution": True}))
        cells.append(_cell("code", test, {"grade": True, "grade_id": f"test_{gid}",
                                          "locked": True, "points": 1, "solution": False}))
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    for folder, stub in (("solutions", False), ("notebooks", True)):
        nb = {"cells": [dict(c, source=_stub(c["source"])) if stub else c for c in cells],
              "metadata": meta, "nbformat": 4, "nbformat_minor": 5}
        path = Path(root) / folder / "tiny" / "tiny.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    if equivalents is not None:
        (Path(root) / "solutions" / "tiny" / "equivalent_mutants.txt").write_text(
            equivalents, encoding="utf-8")
    return Course(root, state=Path(root) / "state")


def outcomes(report, exercise):
    ex = next(e for e in report.exercises if e.exercise == exercise)
    return ex, {mid: (o.status, o.killed_by) for mid, o in ex.outcomes.items()}


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A temporary folder of its own for the workers' folders, so leftovers can be counted."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(sandbox, "_SCRATCH", None)   # this process's scratch folder goes there too
    yield folder
    sandbox.remove_scratch()


def test_a_weak_test_lets_bugs_survive_and_a_strong_one_kills_them(tmp_path, private_tmp):
    weak = analyse(tiny_course(tmp_path / "weak", WEAK_RELU_TEST), "tiny", exercise="relu",
                   workers=1, progress=False)
    ex, result = outcomes(weak, "relu")
    assert result == {"relu:maximum->minimum:1": ("killed", "test_relu"),
                      "relu:drop-maximum:1": ("survived", ""),
                      "relu:const0.0->1.0:1": ("survived", "")}
    assert ex.score == pytest.approx(1 / 3)
    text = format_report(weak)
    assert "Surviving mutants (2)" in text and "below 95.0%" in text
    assert "relu:drop-maximum:1   (line 4 of relu)" in text
    assert "    -    return np.maximum(x, 0.0)\n    +    return x" in text

    strong = analyse(tiny_course(tmp_path / "strong", STRONG_RELU_TEST), "tiny", exercise="relu",
                     workers=1, progress=False)
    ex, result = outcomes(strong, "relu")
    assert set(result.values()) == {("killed", "test_relu")}
    assert strong.score == 1.0 and "Surviving" not in format_report(strong)
    assert list(private_tmp.glob("autograde-*/.lock"))   # the worker's folder was in there ...
    assert not list(private_tmp.rglob("mutate-*"))      # ... and is gone


def test_equivalent_stale_and_invalid_mutants(tmp_path):
    course = tiny_course(tmp_path, WEAK_RELU_TEST, equivalents=(
        "relu:const0.0->1.0:1  # counted apart\n"
        "half:const0.0->1.0:1  # only the list's second entry is read\n"
        "half:const1->0:1      # wrongly listed: a test tells it apart\n"
        "relu:no-such-operator:1\n"))
    report = analyse(course, "tiny", exercise="half", workers=1, progress=False)
    ex, result = outcomes(report, "half")
    assert result == {"half:const0.0->1.0:1": ("survived", ""),
                      "half:const0.5->1.0:1": ("killed", "test_half"),
                      "half:const1->0:1": ("killed", "test_half"),
                      "half:const1->2:1": ("invalid", "")}
    assert "IndexError" in ex.outcomes["half:const1->2:1"].message
    assert ex.killed == ["half:const0.5->1.0:1"] and ex.survived == []
    assert ex.equivalent_killed == ["half:const1->0:1"]
    assert ex.score == 1.0
    assert report.stale == ["relu:no-such-operator:1"]   # ids of all exercises are known
    text = format_report(report)
    for part in ("Listed as equivalent but killed", "half:const1->0:1: test_half",
                 "Stale ids", "relu:no-such-operator:1", "Invalid mutants", "half:const1->2:1"):
        assert part in text

    everything = analyse(course, "tiny", exercise="relu", workers=1, progress=False)
    ex, _ = outcomes(everything, "relu")
    assert ex.equivalent == {"relu:const0.0->1.0:1": "counted apart"}
    assert ex.survived == ["relu:drop-maximum:1"] and ex.score == 0.5


def test_a_mutant_that_never_ends_is_killed_and_the_next_one_graded(tmp_path):
    course = tiny_course(tmp_path, WEAK_RELU_TEST, count_down=True)
    report = analyse(course, "tiny", exercise="count_down", workers=1, progress=False,
                     min_timeout=1.0, timeout_factor=1.0)
    ex, result = outcomes(report, "count_down")
    endless = {"count_down:sub=->add=:1", "count_down:drop-update:1", "count_down:const1->0:1"}
    assert {mid for mid, r in result.items() if r == ("killed", "timeout")} == endless
    # the mutants after them ran in a fresh process that holds the notebook again
    assert result["count_down:add=->sub=:1"] == ("killed", "test_count_down")
    assert set(result.values()) == {("killed", "timeout"), ("killed", "test_count_down")}
    assert ex.score == 1.0


def test_command_line_in_parallel_writes_json_and_fails_below_the_minimum(
        tmp_path, private_tmp, capsys):
    course = tiny_course(tmp_path / "course", WEAK_RELU_TEST)
    out = tmp_path / "report.json"
    argv = ["--course-root", str(course.root), "--state", str(course.state), "mutate", "tiny",
            "--workers", "2", "--json", str(out), "--quiet"]
    assert main(argv + ["--exercise", "relu"]) == 1
    printed = capsys.readouterr().out
    assert "relu:const0.0->1.0:1" in printed and "below the minimum score of 95%: tiny" in printed
    data = json.loads(out.read_text())
    assert data["passed"] is False and data["min_score"] == 0.95
    assert data["could_not_analyse"] == []
    (chapter,) = data["chapters"]
    (relu,) = chapter["exercises"]
    assert relu["surviving"] == ["relu:drop-maximum:1", "relu:const0.0->1.0:1"]
    assert {d["id"]: d["status"] for d in relu["details"]}["relu:maximum->minimum:1"] == "killed"
    assert main(argv + ["--exercise", "relu", "--min-score", "0.3"]) == 0
    assert not list(private_tmp.rglob("mutate-*"))   # both workers removed theirs
    assert main(argv + ["--exercise", "nope"]) == 2
    assert "has no exercise 'nope'" in capsys.readouterr().err
    # a chapter that cannot be analysed does not stop the others
    assert main(argv[:4] + ["mutate", "no_such_chapter", "tiny", "--quiet", "--workers", "1",
                            "--min-score", "0.1", "--json", str(out)]) == 2
    assert "unknown chapter 'no_such_chapter'" in capsys.readouterr().err
    data = json.loads(out.read_text())
    assert data["could_not_analyse"] == ["no_such_chapter"] and data["passed"] is False
    assert [c["chapter"] for c in data["chapters"]] == ["tiny"]


def test_solution_that_fails_its_own_tests_is_reported(tmp_path, capsys):
    wrong = WEAK_RELU_TEST.replace('np.array([1.0, 2.0]), "relu', 'np.array([1.0, 3.0]), "relu')
    assert wrong != WEAK_RELU_TEST
    course = tiny_course(tmp_path, wrong)
    status = main(["--course-root", str(course.root), "mutate", "tiny", "--exercise", "relu",
                   "--workers", "1", "--quiet"])
    assert status == 2
    assert "the solution of relu fails test_relu" in capsys.readouterr().err


def test_the_equivalents_file_stays_out_of_the_release(tmp_path):
    from autograde.release import release
    course = tiny_course(tmp_path / "course", WEAK_RELU_TEST,
                         equivalents="relu:const0.0->1.0:1  # a reason\n")
    (tmp_path / "course" / "solutions" / "tiny" / "data.csv").write_text("1,2\n")
    release(course, ["tiny"], out_dir=tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "tiny").iterdir()) == ["data.csv",
                                                                            "tiny.ipynb"]


def test_verdicts_agree_with_grading_the_mutant_as_a_submission(tmp_path):
    """The fast path (one process, cells swapped in and out) gives what full grading gives."""
    from autograde.config import load_settings
    from autograde.mutate import SECRET
    from autograde.notebook_io import open_submission
    from autograde.submission import grade_submission
    course = tiny_course(tmp_path / "course", STRONG_RELU_TEST)
    report = analyse(course, "tiny", workers=1, progress=False)
    chapter = load_chapter(course.source_notebook("tiny"), course.release_notebook("tiny"), "tiny")
    source = json.loads(course.source_notebook("tiny").read_text())
    statuses = set()
    for ex in report.exercises:
        for mutant in ex.mutants:
            nb = json.loads(json.dumps(source))
            for cell in nb["cells"]:
                if cell["metadata"].get("nbgrader", {}).get("grade_id") == ex.exercise:
                    cell["source"] = mutant.source
            path = tmp_path / "submissions" / mutant.id.replace(":", "_") / "tiny.ipynb"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(nb))
            graded = grade_submission(chapter, "s", open_submission(path), load_settings(), SECRET)
            points = {t["grade_id"]: t["passed"] for t in graded.result["tests"]}
            status = ex.outcomes[mutant.id].status
            statuses.add(status)
            if status == "invalid":   # its cell raised, so its own test fails when graded
                assert points[f"test_{ex.exercise}"] is False, mutant.id
            else:
                assert points[f"test_{ex.exercise}"] is (status == "survived"), mutant.id
            if ex.exercise == "half":   # test_half uses relu, test_relu uses nothing of half
                assert points["test_relu"], mutant.id
    assert statuses == {"killed", "survived", "invalid"}
