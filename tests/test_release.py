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
