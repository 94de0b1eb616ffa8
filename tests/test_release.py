"""The student release: up to date, free of solutions and hidden tests, lint-clean.

Every test runs on the small fixture chapter and on each chapter found in
``solutions/``, so new chapters are covered as soon as they appear.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograde.config import Course
from autograde.lint import lint_notebook
from autograde.notebook_io import (BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION,
                                   cell_text, read_json)
from autograde.release import release

FIXTURE = Course(Path(__file__).parent / "fixtures" / "course")
REPO = Course()
CHAPTERS = ([pytest.param(FIXTURE, ch, id=f"fixture-{ch}") for ch in FIXTURE.chapters()]
            + [pytest.param(REPO, ch, id=ch) for ch in REPO.chapters()])


def normalized(path):
    """A notebook as a JSON value, independent of formatting."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def region_lines(source, begin, end):
    """Stripped non-empty lines inside begin/end regions, and those outside."""
    inside, outside, state = set(), set(), False
    for line in source.splitlines():
        marker = line.strip()
        if marker in (begin, end):
            state = marker == begin
            continue
        if marker:
            (inside if state else outside).add(marker)
    return inside, outside


def secret_lines(course, chapter, begin, end):
    """Lines that occur only inside begin/end regions of the chapter's source."""
    inside, outside = set(), set()
    for cell in read_json(course.source_notebook(chapter))["cells"]:
        i, o = region_lines(cell_text(cell["source"]), begin, end)
        inside |= i
        outside |= o
    return inside - outside


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    """Every chapter released into temporary folders: {(course root, chapter): notebook}."""
    out = {}
    for course in (FIXTURE, REPO):
        if course.chapters():
            target = tmp_path_factory.mktemp("release")
            for path in release(course, out_dir=target):
                out[(course.root, path.parent.name)] = path
    return out


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_committed_release_is_up_to_date(fresh_release, course, chapter):
    committed = course.release_notebook(chapter)
    assert committed.is_file(), f"{committed} is missing: run `python -m autograde release {chapter}`"
    assert normalized(fresh_release[(course.root, chapter)]) == normalized(committed), \
        f"notebooks/{chapter} is out of date: run `python -m autograde release {chapter}` and commit"


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_release_holds_no_solution_and_no_hidden_test(course, chapter):
    text = course.release_notebook(chapter).read_text(encoding="utf-8")
    released = "\n".join(cell_text(c["source"]) for c in json.loads(text)["cells"])
    for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
        assert marker not in released
    released_lines = {line.strip() for line in released.splitlines()}
    leaked = (secret_lines(course, chapter, BEGIN_SOLUTION, END_SOLUTION)
              | secret_lines(course, chapter, BEGIN_HIDDEN, END_HIDDEN)) & released_lines
    assert not leaked, f"solution or hidden-test lines in the release: {sorted(leaked)[:5]}"
    outputs = [c.get("outputs") for c in json.loads(text)["cells"] if c["cell_type"] == "code"]
    assert all(not o for o in outputs), "the release must have no outputs"


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_each_solution_region_became_a_stub(course, chapter):
    source = read_json(course.source_notebook(chapter))["cells"]
    released = {c.get("id"): c for c in read_json(course.release_notebook(chapter))["cells"]}
    answers = [c for c in source if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    assert answers, "a chapter needs at least one answer cell"
    for cell in answers:
        regions = cell_text(cell["source"]).count(BEGIN_SOLUTION)
        stub = cell_text(released[cell["id"]]["source"])
        assert stub.count("raise NotImplementedError()") == regions, stub
        namespace = {}
        exec(compile(stub, "<stub>", "exec"), namespace)  # defining the stubs must not raise


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_release_keeps_the_cell_ids_of_the_source(course, chapter):
    """The grader matches a submission's cells to the source by these ids."""
    source = [c.get("id") for c in read_json(course.source_notebook(chapter))["cells"]]
    released = [c.get("id") for c in read_json(course.release_notebook(chapter))["cells"]]
    assert released == source and None not in source


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_chapter_follows_the_authoring_contract(course, chapter):
    assert lint_notebook(course.source_notebook(chapter)) == []


def test_nbgrader_validate_passes_on_the_fixture_solution():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate",
                           str(FIXTURE.source_notebook("toy"))],
                          capture_output=True, text=True, timeout=300, env=env,
                          cwd=FIXTURE.source_notebook("toy").parent)
    assert proc.returncode == 0, proc.stderr
    assert "Success! Your notebook passes all the tests." in proc.stdout, proc.stdout


def test_release_cli_refuses_an_unknown_chapter(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograde", "--course-root", str(FIXTURE.root),
                           "--state", str(tmp_path), "release", "no_such_chapter"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "unknown chapter" in proc.stderr


def _nb_cell(kind, source, nbgrader=None, tags=None, cell_id=None):
    cell = {"cell_type": kind, "id": cell_id, "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    if nbgrader is not None:
        cell["metadata"]["nbgrader"] = {"schema_version": 3, "task": False, **nbgrader}
    if tags:
        cell["metadata"]["tags"] = tags
    return cell


def _answer(gid, source):
    return _nb_cell("code", source, {"grade": False, "grade_id": gid, "locked": False,
                                     "solution": True})


def _test(gid, source, points=1, locked=True, tags=None):
    return _nb_cell("code", source, {"grade": True, "grade_id": gid, "locked": locked,
                                     "points": points, "solution": False}, tags)


LINT_CASES = {
    "duplicate grade_id": ([_answer("f", "def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                    "    ### END SOLUTION\n"),
                            _test("f", "assert f() == 1")], "repeats grade_id 'f'"),
    "zero points": ([_test("t", "assert True", points=0)], "give it points > 0"),
    "unlocked test": ([_test("t", "assert True", locked=False)], "not locked"),
    "skipped test": ([_test("t", "assert True", tags=["grader-skip"])], "it would never score"),
    "region at top level": ([_answer("f", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n")],
                            "outside a function body"),
    "no region": ([_answer("f", "def f():\n    return 1\n")], "without a '### BEGIN SOLUTION'"),
    "unbalanced solution": ([_answer("f", "def f():\n    ### BEGIN SOLUTION\n    return 1\n")],
                            "never closes it"),
    "end without begin": ([_test("t", "x = 1\n### END HIDDEN TESTS\n")],
                          "'### END HIDDEN TESTS' without"),
    "hidden tests in a demo cell": ([_nb_cell("code", "### BEGIN HIDDEN TESTS\n"
                                              "### END HIDDEN TESTS\n")], "only test cells may"),
    "free name": ([_nb_cell("code", "data = [1, 2]"),
                   _test("t", "import numpy as np\ndef g():\n    return helper(data)\n"
                         "assert np.all(g())")], "neither imports nor gets from an earlier answer "
                                                 "cell: data, helper"),
    "answer defined later": ([_test("t", "assert f() == 1"),
                              _answer("f", "def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                      "    ### END SOLUTION\n")], "cell: f"),
    "magic in a test": ([_test("t", "%time x = 1")], "no magics"),
    "no grade_id": ([_nb_cell("code", "assert True", {"grade": True, "locked": True,
                                                      "points": 1, "solution": False})],
                    "without a grade_id"),
    "no cell id": ([{**_nb_cell("markdown", "# hi"), "id": None}], "has no cell id"),
}


@pytest.mark.parametrize("case", sorted(LINT_CASES))
def test_lint_finds_each_breach_of_the_contract(tmp_path, case):
    cells, expected = LINT_CASES[case]
    for i, cell in enumerate(cells):
        if "id" in cell and cell["id"] is None and case != "no cell id":
            cell["id"] = f"c{i}"
    cells = [{k: v for k, v in c.items() if not (k == "id" and v is None)} for c in cells]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    problems = lint_notebook(path)
    assert any(expected in p for p in problems), problems


def test_lint_accepts_names_bound_anywhere_in_the_test_cell(tmp_path):
    cells = [_answer("f", "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"),
             _test("t", "import numpy as np\nfrom course_lib.checks import check_close as cc\n"
                   "def g(v):\n    return [f(u) for u in v]\nclass K:\n    y = len([1])\n"
                   "for i in range(2):\n    cc(np.array(g([i])), np.array([i]))\n"
                   "### BEGIN HIDDEN TESTS\n# check: f on 1\nwith open('/dev/null') as fh:\n"
                   "    pass\ntry:\n    f(1)\nexcept Exception as err:\n    raise err\n"
                   "### END HIDDEN TESTS\n")]
    for i, cell in enumerate(cells):
        cell["id"] = f"c{i}"
    path = tmp_path / "good.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert lint_notebook(path) == []
