"""Grading round trips, and submissions that try to break or fool the grader.

Each chapter (the fixture and every chapter in ``solutions/``) is graded once
as a batch of submissions: the solution (full marks), the untouched release
(zero), and for each exercise the release with only that answer cell solved
(exactly the points of the test cells between that answer cell and the next).
The fixture's batch also holds broken and hostile submissions.
"""

import ast
import copy
import csv
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograde.config import Course, GradingSettings
from autograde.grade import GradingError, grade, secret_key
from autograde.notebook_io import (BEGIN_HIDDEN, END_HIDDEN, cell_text, load_chapter,
                                   open_submission, parse_submission, python_source, read_json,
                                   rebuild)
from autograde.results import CSV_COLUMNS, format_points
from autograde.sandbox import capabilities

FIXTURE = Course(Path(__file__).parent / "fixtures" / "course")
REPO = Course()
CHAPTERS = ([pytest.param(FIXTURE, ch, id=f"fixture-{ch}") for ch in FIXTURE.chapters()]
            + [pytest.param(REPO, ch, id=ch) for ch in REPO.chapters()])

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------
# Building submissions


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def set_answer(nb, gid, source):
    for cell in nb["cells"]:
        if grade_id(cell) == gid:
            cell["source"] = source
            return nb
    raise KeyError(gid)


def answers(nb):
    return {grade_id(c): cell_text(c["source"]) for c in nb["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")}


def write(folder, student, chapter, content):
    path = folder / student / f"{chapter}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, (dict, list)):
        content = json.dumps(content, indent=1)
    path.write_text(content, encoding="utf-8")
    return path


def stubbed_names(release_source):
    """Top-level functions and classes of a release answer cell that hold a stub."""
    try:
        tree = ast.parse(python_source(release_source))
    except SyntaxError:
        return set()
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and "NotImplementedError" in ast.unparse(node)}


def exercise_dependencies(chapter):
    """{answer grade_id: grade_ids of the other exercises its solution calls}, transitively.

    An exercise depends on another when its solution uses a name that the
    other's release stub leaves unimplemented.
    """
    owner = {name: cell.grade_id for cell in chapter.answers()
             for name in stubbed_names(cell.release_source)}
    direct = {}
    for cell in chapter.answers():
        used = {n.id for n in ast.walk(ast.parse(python_source(cell.source)))
                if isinstance(n, ast.Name)}
        direct[cell.grade_id] = {owner[n] for n in used if n in owner} - {cell.grade_id}
    closure = {}
    for gid in direct:
        seen, todo = set(), list(direct[gid])
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo.extend(direct[dep])
        closure[gid] = seen - {gid}
    return closure


def round_trip_submissions(course, chapter, folder):
    """solution, release, and per exercise the release with only that answer solved.

    An exercise whose solution calls another exercise's function also gets a
    ``with_deps_<grade_id>`` submission with those answers solved too.
    Returns the chapter.
    """
    source = read_json(course.source_notebook(chapter))
    released = read_json(course.release_notebook(chapter))
    chap = load_chapter(course.source_notebook(chapter), course.release_notebook(chapter), chapter)
    solved = answers(source)
    write(folder, "solution", chapter, source)
    write(folder, "release", chapter, released)
    for gid, deps in exercise_dependencies(chap).items():
        write(folder, f"only_{gid}", chapter, set_answer(copy.deepcopy(released), gid, solved[gid]))
        if deps:
            nb = copy.deepcopy(released)
            for name in deps | {gid}:
                set_answer(nb, name, solved[name])
            write(folder, f"with_deps_{gid}", chapter, nb)
    return chap


def hostile_submissions(folder):
    """The fixture's broken, tampered and hostile submissions: {student: expectation}."""
    source = read_json(FIXTURE.source_notebook("toy"))
    released = read_json(FIXTURE.release_notebook("toy"))
    solved = answers(source)

    def solution_with(**replaced):
        nb = copy.deepcopy(released)
        for gid, text in solved.items():
            set_answer(nb, gid, replaced.get(gid, text))
        return nb

    expect = {}
    write(folder, "broken_json", "toy", '{"cells": [')
    expect["broken_json"] = (0, "invalid notebook: the file is not valid JSON")
    write(folder, "empty_file", "toy", "")
    expect["empty_file"] = (0, "empty notebook file")
    write(folder, "no_notebook", "other", released)
    expect["no_notebook"] = (0, "missing notebook toy.ipynb (found: other.ipynb)")
    write(folder, "version_3", "toy", {"nbformat": 3, "nbformat_minor": 0, "worksheets": []})
    expect["version_3"] = (0, "unsupported notebook format version 3 (expected 4)")
    other = copy.deepcopy(released)
    for cell in other["cells"]:
        if grade_id(cell):
            cell["metadata"]["nbgrader"]["grade_id"] = "other_" + grade_id(cell)
    write(folder, "wrong_chapter", "toy", other)
    expect["wrong_chapter"] = (0, "wrong chapter: no answer cell of toy found")

    nb = solution_with()
    cells = nb["cells"]
    by_gid = {grade_id(c): c for c in cells}
    by_gid["test_relu"]["source"] = "pass\n"
    by_gid["test_relu"]["metadata"]["nbgrader"]["points"] = 100
    cells.remove(by_gid["test_softmax_shape"])
    cells.append(copy.deepcopy(by_gid["test_running_mean"]))
    for cell in cells:  # the release gives test cells `raises-exception`; `skip-execution` is new
        cell.setdefault("metadata", {})["tags"] = ["raises-exception", "skip-execution"]
    nb["metadata"]["kernelspec"] = {"name": "evil", "display_name": "evil", "language": "python"}
    write(folder, "tampered", "toy", nb)
    expect["tampered"] = (6, "tampered cells restored: test_relu; deleted cells restored: "
                             "test_softmax_shape; duplicated cells ignored: test_running_mean; "
                             "tags of locked cells ignored: test_relu, test_softmax_values, "
                             "test_running_mean; kernelspec restored ('evil' asked for, "
                             "'python3' used)")

    nb = solution_with(relu=solved["relu"] + "\nwhile True:\n    pass\n")
    write(folder, "infinite_loop", "toy", nb)
    expect["infinite_loop"] = (5, "timeout in cell 4 (relu)")

    nb = solution_with(softmax="import os\n\ndef softmax(z):\n    os._exit(3)\n")
    write(folder, "kills_itself", "toy", nb)
    expect["kills_itself"] = (3, "kernel died in cell 8 (test_softmax_shape): exit code 3; "
                                 "kernel died in cell 9 (test_softmax_values): exit code 3")

    nb = solution_with(relu="def relu(x):\n    return np.maximum(x, 0) if x.shape == (3,) else x\n")
    write(folder, "hidden_fail", "toy", nb)
    expect["hidden_fail"] = (5, "ok")

    liar = ("class Liar:\n    def __eq__(self, other):\n        return True\n"
            "    def __bool__(self):\n        return True\n"
            "    def __array__(self, *args, **kwargs):\n        return np.array([0.0, 0.0, 2.0])\n\n"
            "def relu(x):\n    return Liar()\n")
    write(folder, "liar", "toy", solution_with(relu=liar))
    expect["liar"] = (5, "ok")

    patch = ("import course_lib.checks\n"
             "course_lib.checks.check_close = lambda *args, **kwargs: None\n"
             "def relu(x):\n    return x\n")
    write(folder, "monkeypatch", "toy", solution_with(relu=patch))
    expect["monkeypatch"] = (5, "ok")

    spy = ("import os\n\ndef relu(x):\n"
           "    assert os.environ.get('COURSE_GRADING_SECRET') is None\n"
           f"    assert not os.path.exists({str(FIXTURE.source_dir)!r})\n"
           "    return np.maximum(x, 0)\n")
    write(folder, "spy", "toy", solution_with(relu=spy))
    expect["spy"] = (6, "ok")

    nb = solution_with(relu="def relu(x):\n    return positive_part(x)\n")
    position = next(i for i, c in enumerate(nb["cells"]) if grade_id(c) == "relu")
    for i, text in enumerate(["def positive_part(x):\n    return np.maximum(x, 0)\n",
                              "check_close = lambda *args, **kwargs: None\n"]):
        nb["cells"].insert(position + i, {"cell_type": "code", "execution_count": None,
                                          "id": f"added-{i}", "metadata": {}, "outputs": [],
                                          "source": text})
    write(folder, "added_cells", "toy", nb)
    expect["added_cells"] = (6, "ok")

    nb = solution_with(relu="%%time\n" + solved["relu"])
    nb["nbformat_minor"] = 4
    for cell in nb["cells"]:
        cell.pop("id", None)
    write(folder, "magic_no_ids", "toy", nb)
    expect["magic_no_ids"] = (6, "ok")

    nb = solution_with(relu=solved["relu"] + "\nhuge = np.ones(2**40)\n")
    write(folder, "memory", "toy", nb)
    expect["memory"] = (6, "memory limit in cell 4 (relu)")

    nb = solution_with(relu=solved["relu"] + "\nprint('x' * 10**7)\n")
    write(folder, "flood", "toy", nb)
    expect["flood"] = (6, "output truncated: cell 4 (relu)")

    # JupyterLab's copy of a cell keeps its metadata: the copy holding the answer counts.
    nb = solution_with()
    position = next(i for i, c in enumerate(nb["cells"]) if grade_id(c) == "relu")
    stub = copy.deepcopy(nb["cells"][position])
    stub["source"] = answers(released)["relu"]
    stub["id"] = "relu-original"
    nb["cells"].insert(position, stub)
    write(folder, "copied_answer", "toy", nb)
    expect["copied_answer"] = (6, "duplicated cells ignored: relu")

    write(folder / "nbgrader_layout", "toy", "toy", solution_with())  # <student>/toy/toy.ipynb
    expect["nbgrader_layout"] = (6, "ok")

    # Links to the instructor's solution, and a FIFO that would block a reader.
    (folder / "symlink").mkdir()
    (folder / "symlink" / "toy.ipynb").symlink_to(FIXTURE.source_notebook("toy"))
    expect["symlink"] = (0, "refused: toy.ipynb is a symbolic link, not a notebook file")
    (folder / "symlinked_folder").symlink_to(FIXTURE.source_notebook("toy").parent)
    expect["symlinked_folder"] = (0, "refused: the folder symlinked_folder is a symbolic link")
    (folder / "fifo").mkdir()
    os.mkfifo(folder / "fifo" / "toy.ipynb")
    expect["fifo"] = (0, "refused: toy.ipynb is not a regular file")
    return expect


# ---------------------------------------------------------------------------
# One graded batch per chapter, shared by the tests of this module


class Batch:
    def __init__(self, course, chapter, root):
        self.course, self.chapter = course, chapter
        self.submissions = root / "submissions"
        self.out = root / "out"
        self.state = root / "state"
        self.chap = round_trip_submissions(course, chapter, self.submissions)
        self.expect = hostile_submissions(self.submissions) if course is FIXTURE else {}
        self.hashes_before = file_hashes(self.submissions)
        # A shorter cell limit for the fixture's infinite loop; the default for real chapters.
        self.settings = GradingSettings(cell_timeout=30.0) if course is FIXTURE else GradingSettings()
        self.report = self.run()
        assert not self.report.failed, f"grading could not run: {self.report.failed}"
        self.csv_bytes = (self.out / "grades.csv").read_bytes()
        self.rows = {r["student_id"]: r for r in csv.DictReader(self.csv_bytes.decode().splitlines())}

    def run(self):
        course = Course(self.course.root, state=self.state)
        return grade(self.chapter, self.submissions, self.out, course=course, workers=2,
                     settings=self.settings, progress=False)

    def result(self, student):
        return json.loads((self.out / "results" / self.chapter / f"{student}.json").read_text())

    def feedback(self, student):
        return (self.out / "feedback" / student / f"{self.chapter}.html").read_text()


def file_hashes(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    cache = {}

    def get(course, chapter):
        key = (course.root, chapter)
        if key not in cache:
            cache[key] = Batch(course, chapter, tmp_path_factory.mktemp(chapter))
        return cache[key]

    return get


def hidden_lines(course, chapter):
    """Lines that occur only inside the hidden tests of the chapter's source."""
    inside, outside = set(), set()
    for cell in read_json(course.source_notebook(chapter))["cells"]:
        hidden = False
        for line in cell_text(cell["source"]).splitlines():
            marker = line.strip()
            if marker in (BEGIN_HIDDEN, END_HIDDEN):
                hidden = marker == BEGIN_HIDDEN
            elif marker:
                (inside if hidden else outside).add(marker)
    return {line for line in inside - outside if len(line) > 3}


# ---------------------------------------------------------------------------
# Round trips, on every chapter


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_solution_gets_full_marks(batches, course, chapter):
    batch = batches(course, chapter)
    row = batch.rows["solution"]
    assert row["status"] == "ok", batch.result("solution")
    assert row["score"] == row["max_score"] == format_points(batch.chap.max_score), \
        [t for t in batch.result("solution")["tests"] if not t["passed"]]


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_untouched_release_gets_zero(batches, course, chapter):
    batch = batches(course, chapter)
    assert batch.rows["release"]["score"] == "0", \
        [t["grade_id"] for t in batch.result("release")["tests"] if t["passed"]]
    assert batch.rows["release"]["status"] == "ok"


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_one_solved_exercise_gets_exactly_its_points(batches, course, chapter):
    """The points of an exercise are those of the test cells between its answer cell and the next.

    An exercise that calls another exercise's function is checked with that
    one solved too (alone, its tests cannot pass).
    """
    batch = batches(course, chapter)
    for gid, deps in exercise_dependencies(batch.chap).items():
        student = f"with_deps_{gid}" if deps else f"only_{gid}"
        tests = [t for g in sorted(deps | {gid}) for t in batch.chap.tests_of(g)]
        expected = sum(t.points for t in tests)
        got = {t["grade_id"]: t["points"] for t in batch.result(student)["tests"] if t["passed"]}
        assert float(batch.rows[student]["score"]) == expected, \
            f"{student}: expected {expected} points from {[t.grade_id for t in tests]}, got {got}"


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_feedback_exists_and_shows_no_hidden_test(batches, course, chapter):
    batch = batches(course, chapter)
    secret = hidden_lines(course, chapter)
    for student in batch.rows:
        page = batch.feedback(student)
        assert batch.chapter in page
        shown = {html.unescape(re.sub(r"<[^>]+>", "", line)).strip() for line in page.splitlines()}
        leaked = sorted(secret & shown)
        assert not leaked, f"{student}'s feedback shows hidden lines: {leaked[:3]}"


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_grades_csv_has_exactly_the_documented_columns(batches, course, chapter):
    batch = batches(course, chapter)
    lines = batch.csv_bytes.decode().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert sorted(batch.rows) == list(batch.rows) == sorted(p.name for p in
                                                           batch.submissions.iterdir())
    assert all(r["assignment"] == chapter for r in batch.rows.values())
    assert not batch.report.failed


@pytest.mark.parametrize("course, chapter", CHAPTERS)
def test_submissions_are_never_modified(batches, course, chapter):
    batch = batches(course, chapter)
    assert file_hashes(batch.submissions) == batch.hashes_before


# ---------------------------------------------------------------------------
# Broken and hostile submissions (fixture chapter)


CAPS = capabilities()
# The spy looks for the instructor's folder, which only an allow-list root hides.
SPY = pytest.param("spy", marks=pytest.mark.skipif(
    not CAPS["allowlist_root"],
    reason=f"allowlist_root unavailable: {CAPS.get('reason_allowlist_root', 'not detected')}"))
HOSTILE = ["broken_json", "empty_file", "no_notebook", "version_3", "wrong_chapter", "tampered",
           "infinite_loop", "kills_itself", "hidden_fail", "liar", "monkeypatch", SPY,
           "added_cells", "magic_no_ids", "memory", "flood", "copied_answer", "nbgrader_layout",
           "symlink", "symlinked_folder", "fifo"]


@pytest.mark.parametrize("student", HOSTILE)
def test_hostile_submission(batches, student):
    batch = batches(FIXTURE, "toy")
    score, status = batch.expect[student]
    row = batch.rows[student]
    assert (row["score"], row["status"]) == (format_points(score), status), batch.result(student)


def test_hidden_failure_message_names_only_the_check_and_the_exception_type(batches):
    batch = batches(FIXTURE, "toy")
    test = next(t for t in batch.result("hidden_fail")["tests"] if t["grade_id"] == "test_relu")
    expected = "hidden check failed: random inputs of both signs (AssertionError)"
    assert test["message"] == expected
    assert expected in batch.feedback("hidden_fail")


def test_visible_failure_message_is_shown(batches):
    batch = batches(FIXTURE, "toy")
    test = next(t for t in batch.result("monkeypatch")["tests"] if t["grade_id"] == "test_relu")
    assert test["message"].startswith("AssertionError: relu([-1, 0, 2]) is wrong at index (0,)")


def test_feedback_escapes_student_output_and_caps_it(batches):
    batch = batches(FIXTURE, "toy")
    assert len(batch.feedback("flood")) < 1_000_000
    assert "[output truncated]" in batch.feedback("flood")


def test_grader_skip_cells_do_not_run(batches):
    batch = batches(FIXTURE, "toy")
    page = batch.feedback("solution")
    assert "not run while grading (grader-skip)" in page
    assert "a slow demo ran</pre>" not in page


def test_feedback_shows_the_output_of_the_students_notebook(batches):
    batch = batches(FIXTURE, "toy")
    assert "relu is not implemented yet: solve exercise 1 to see its plot." in batch.feedback("release")
    assert "Figure size" in batch.feedback("solution")


def test_rerun_skips_everyone_and_writes_identical_csv(batches):
    batch = batches(FIXTURE, "toy")
    again = batch.run()
    assert again.graded == [] and sorted(again.skipped) == sorted(batch.rows)
    assert (batch.out / "grades.csv").read_bytes() == batch.csv_bytes


def test_regrading_gives_identical_results(batches):
    batch = batches(FIXTURE, "toy")
    path = batch.out / "results" / "toy" / "hidden_fail.json"
    before = path.read_bytes()
    path.unlink()
    again = batch.run()
    assert again.graded == ["hidden_fail"]
    assert path.read_bytes() == before
    assert (batch.out / "grades.csv").read_bytes() == batch.csv_bytes


# ---------------------------------------------------------------------------
# The command line


def run_cli(*args, state):
    return subprocess.run([sys.executable, "-m", "autograde", "--course-root", str(FIXTURE.root),
                           "--state", str(state), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_grades_a_broken_batch_and_exits_zero(tmp_path):
    write(tmp_path / "subs", "alice", "toy", "not json")
    (tmp_path / "subs" / "bob").mkdir()
    (tmp_path / "subs" / "carol.ipynb").write_text("{}")
    proc = run_cli("grade", "toy", tmp_path / "subs", "--out", tmp_path / "out",
                   "--workers", "2", state=tmp_path / "state")
    assert proc.returncode == 0, proc.stderr
    assert "grading toy" in proc.stderr  # the progress bar
    assert "warning: ignored, not in a student's folder: carol.ipynb" in proc.stderr
    assert (tmp_path / "out" / "grades.csv").read_text().splitlines() == [
        "student_id,assignment,score,max_score,status,timestamp",
        "alice,toy,0,6,invalid notebook: the file is not valid JSON,",
        "bob,toy,0,6,missing notebook toy.ipynb,"]
    assert (tmp_path / "out" / "feedback" / "bob" / "toy.html").is_file()


@pytest.mark.parametrize("chapter, folder", [("no_such_chapter", "subs"), ("toy", "missing")])
def test_cli_fails_when_grading_cannot_run(tmp_path, chapter, folder):
    (tmp_path / "subs").mkdir()
    proc = run_cli("grade", chapter, tmp_path / folder, "--out", tmp_path / "out",
                   state=tmp_path / "state")
    assert proc.returncode == 2
    assert "grading failed" in proc.stderr


def test_cli_refuses_notebooks_without_student_folders(tmp_path):
    write(tmp_path, "subs", "alice", read_json(FIXTURE.source_notebook("toy")))  # subs/alice.ipynb
    proc = run_cli("grade", "toy", tmp_path / "subs", "--out", tmp_path / "out",
                   state=tmp_path / "state")
    assert proc.returncode == 2
    assert "holds notebooks but no student folders" in proc.stderr
    assert "SUBMISSIONS_DIR/<student_id>/<chapter>.ipynb" in proc.stderr


# ---------------------------------------------------------------------------
# Several chapters, resubmissions, copied cells, the secret key


ATTACKS_COURSE = Path(__file__).parent / "fixtures" / "attacks"  # chapters attacks and other


def test_chapters_graded_into_one_folder_keep_their_results(tmp_path):
    course = Course(ATTACKS_COURSE, state=tmp_path / "state")
    subs, out = tmp_path / "subs", tmp_path / "out"
    for chapter in ("attacks", "other"):
        write(subs, "alice", chapter, read_json(course.source_notebook(chapter)))
        write(subs, "bob", chapter, read_json(course.release_notebook(chapter)))

    def run(chapter):
        return grade(chapter, subs, out, course=course, settings=GradingSettings(cell_timeout=30),
                     progress=False)

    def rows():
        return [tuple(r.values()) for r in csv.DictReader((out / "grades.csv").open())]

    run("attacks")
    first = file_hashes(out / "results" / "attacks")
    assert run("other").graded == ["alice", "bob"]
    assert rows() == [("alice", "attacks", "4", "4", "ok", ""), ("alice", "other", "1", "1", "ok", ""),
                      ("bob", "attacks", "0", "4", "ok", ""), ("bob", "other", "0", "1", "ok", "")]
    again = run("attacks")
    assert again.graded == [] and again.skipped == ["alice", "bob"]
    # A resubmission is graded again for its own chapter only.
    write(subs, "bob", "other", read_json(course.source_notebook("other")))
    assert run("other").graded == ["bob"]
    assert file_hashes(out / "results" / "attacks") == first
    assert ("bob", "other", "1", "1", "ok", "") in rows() and len(rows()) == 4


def test_nbgrader_layout_keeps_the_submission_time(tmp_path):
    """`nbgrader collect`'s layout: timestamp.txt beside the notebook is kept; a new one regrades."""
    course = Course(ATTACKS_COURSE, state=tmp_path / "state")
    subs, out = tmp_path / "submitted", tmp_path / "out"
    solved = json.dumps(read_json(course.source_notebook("other")))
    stamps = {"alice": "2026-12-04 10:15:02.123456 UTC", "bob": "=HYPERLINK(\"x\")",
              "carol": "2026-12-04 11:00:00.000001 UTC"}
    for student, stamp in stamps.items():
        folder = subs / student / "other"
        folder.mkdir(parents=True)
        (folder / "other.ipynb").write_text(solved)
        (folder / "timestamp.txt").write_text(stamp + "\n")
    (subs / "carol" / "other" / "timestamp.txt").unlink()  # a link to another student's is refused
    (subs / "carol" / "other" / "timestamp.txt").symlink_to(subs / "alice" / "other" / "timestamp.txt")

    def run():
        return grade("other", subs, out, course=course, settings=GradingSettings(cell_timeout=30),
                     progress=False)

    def rows():
        return {r["student_id"]: r for r in csv.DictReader((out / "grades.csv").open())}

    assert run().graded == ["alice", "bob", "carol"]
    assert rows()["alice"]["timestamp"] == stamps["alice"] and rows()["alice"]["score"] == "1"
    assert rows()["bob"]["timestamp"] == rows()["carol"]["timestamp"] == ""  # no timestamp, no points lost
    assert rows()["bob"]["score"] == "1"
    result = json.loads((out / "results" / "other" / "alice.json").read_text())
    assert result["timestamp"] == stamps["alice"]
    # The same notebook submitted again later: graded again, with its new time.
    later = "2026-12-05 09:00:00.000000 UTC"
    (subs / "alice" / "other" / "timestamp.txt").write_text(later + "\n")
    assert run().graded == ["alice"]
    assert rows()["alice"]["timestamp"] == later


@pytest.mark.parametrize("copies, kept", [
    (("stub", "solved"), "solved"), (("solved", "stub"), "solved"), (("empty", "solved"), "solved"),
    (("wrong", "solved"), "wrong"), (("stub", "empty"), "stub")])
def test_of_copied_answer_cells_the_first_that_holds_an_answer_counts(copies, kept):
    chap = load_chapter(FIXTURE.source_notebook("toy"), FIXTURE.release_notebook("toy"), "toy")
    released = read_json(FIXTURE.release_notebook("toy"))
    text = {"stub": answers(released)["relu"], "empty": "\n",
            "solved": answers(read_json(FIXTURE.source_notebook("toy")))["relu"],
            "wrong": "def relu(x):\n    return x\n"}
    position = next(i for i, c in enumerate(released["cells"]) if grade_id(c) == "relu")
    original = released["cells"].pop(position)
    for offset, name in enumerate(copies):
        cell = copy.deepcopy(original)
        cell["source"], cell["id"] = text[name], f"copy-{offset}"
        released["cells"].insert(position + offset, cell)
    rebuilt = rebuild(chap, parse_submission(json.dumps(released).encode()))
    relu = next(c for c in rebuilt.cells if c.kind == "answer" and c.origin.grade_id == "relu")
    assert relu.source == text[kept]
    assert rebuilt.notes == ["duplicated cells ignored: relu"]


def test_the_bytes_read_are_the_bytes_graded(tmp_path):
    from autograde.submission import grade_submission
    path = write(tmp_path, "student", "toy", read_json(FIXTURE.source_notebook("toy")))
    submitted = open_submission(path)
    path.write_text("replaced after it was read")
    chap = load_chapter(FIXTURE.source_notebook("toy"), FIXTURE.release_notebook("toy"), "toy")
    result = grade_submission(chap, "student", submitted, GradingSettings(), "secret").result
    assert (result["score"], result["status"]) == (6, "ok")
    assert result["submission_sha256"] == hashlib.sha256(submitted.raw).hexdigest()


def test_secret_key_is_made_once(tmp_path):
    course = Course(FIXTURE.root, state=tmp_path / "state")
    key = secret_key(course)
    assert len(key) == 32 and secret_key(course) == key
    assert os.listdir(course.state) == ["secret"]
    assert (course.state / "secret").stat().st_mode & 0o777 == 0o600


def test_an_interrupted_key_creation_leaves_no_key(tmp_path, monkeypatch):
    # Killed between creating the file and writing the key: the next run
    # must make a whole key, not use an empty one.
    course = Course(FIXTURE.root, state=tmp_path / "state")

    def killed(n):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "urandom", killed)
    with pytest.raises(KeyboardInterrupt):
        secret_key(course)
    monkeypatch.undo()
    assert len(secret_key(course)) == 32


@pytest.mark.parametrize("content", [b"", b"0123456789"])
def test_a_damaged_secret_key_is_refused(tmp_path, content):
    course = Course(FIXTURE.root, state=tmp_path / "state")
    course.state.mkdir()
    (course.state / "secret").write_bytes(content)
    with pytest.raises(GradingError, match="damaged. Delete it and grade again"):
        secret_key(course)


# ---------------------------------------------------------------------------
# The judge against a live student process


STUDENT_CODE = '''
import numpy as np
SIZE = 3
NAMES = ["a", "b"]

def apply(f, x):
    return f(x)

def twice(x):
    return 2 * x

class Box:
    def __init__(self, v):
        self.v = v
        self.items = {"k": np.arange(3)}

    def get(self):
        return self.v

def weird():
    return {1, 2}

def boom():
    raise ValueError("bad input: x has shape (2,)")

def custom():
    class Oops(Exception):
        pass
    raise Oops("custom")

def chatty():
    print("hi" * 100000)
    return 1

def spin():
    while True:
        pass

def clip_(x):
    np.maximum(x, 0, out=x)

def step_(params, grads, lr):
    for name in params:
        params[name] -= lr * grads[name]
'''
NAMES = ["SIZE", "NAMES", "apply", "twice", "Box", "weird", "boom", "custom", "chatty", "spin",
         "clip_", "step_", "missing"]


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    from autograde.client import RunnerClient
    from autograde.judge import Judge
    client = RunnerClient(tmp_path_factory.mktemp("runner"), GradingSettings().limits())
    client.start()
    reply, _ = client.request({"op": "exec", "source": STUDENT_CODE}, None, time.monotonic() + 60)
    assert reply["ok"], reply
    yield Judge(client, NAMES)
    client.stop()


@pytest.mark.parametrize("source", [
    "assert SIZE == 3 and NAMES == ['a', 'b'] and type(NAMES) is list",
    "import numpy as np\nnp.testing.assert_array_equal(twice(np.arange(3)), [0, 2, 4])",
    "import numpy as np\nassert apply(np.sum, np.arange(4)) == 6",
    "import numpy as np\nfrom course_lib.backend import to_numpy\n"
    "assert apply(to_numpy, [1, 2]).tolist() == [1, 2] and apply(np.exp, 0.0) == 1.0",
    "b = Box(5)\nassert b.get() == 5 and b.v == 5\nb.v = 7\nassert b.get() == 7\n"
    "assert b.items['k'].tolist() == [0, 1, 2]",
    "b = Box([1, 2])\nassert b.v == [1, 2]\nb.v[0] = 9\nassert b.get() == [1, 2]  # copies, not views",
    "s = weird()\nassert not isinstance(s, set)",
    "try:\n    boom()\nexcept ValueError as e:\n    assert 'shape (2,)' in str(e)\n"
    "else:\n    raise AssertionError('boom() should raise')",
    "assert chatty() == 1",
    # Student code works on its own copies of the arguments: what it changes in
    # place never reaches the grader's arrays, so it cannot alter expected values.
    "import numpy as np\nx = np.array([-1.0, 2.0])\n"
    "assert clip_(x) is None and x.tolist() == [-1, 2]",
    "import numpy as np\np = {'W': np.ones(2), 'b': np.zeros(1)}\n"
    "step_(p, {'W': np.ones(2), 'b': np.ones(1)}, 0.5)\n"
    "assert p['W'].tolist() == [1, 1] and p['b'].tolist() == [0]",
    "import numpy as np\nx = np.array([-1.0, 2.0])\ny = twice(x)\nassert x.tolist() == [-1, 2]",
])
def test_judge_passes(judge, source):
    verdict = judge.run_test(source, time.monotonic() + 60)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("source, message", [
    ("apply(lambda x: x, 1)", "TypeError: cannot pass function"),
    ("b = Box(1)\nif b:\n    pass", "TypeError: an object returned by student code has no truth"),
    ("b = Box(1)\nb.__dict__", "AttributeError: __dict__"),
    ("import numpy as np\nfrom course_lib.checks import check_close\n"
     "check_close(Box(1), np.ones(1), 'the box')", "AssertionError: the box should be a numeric"),
    ("custom()", "Oops: custom"),
    ("missing(1)", "NameError: name 'missing' is not defined"),
    ("x = twice(1)\n### BEGIN HIDDEN TESTS\nassert x == 3, 'secret input 42'\n### END HIDDEN TESTS",
     "a hidden test failed (AssertionError)"),
    # the name of the nearest check above the failing line, also from inside a loop or a helper
    ("### BEGIN HIDDEN TESTS\n# check: small inputs\nassert twice(1) == 2\n# check: a loop of inputs\n"
     "for i in range(3):\n    # check: not a top-level name\n    assert twice(i) == 2 * i + (i == 2)\n"
     "# check: never reached\n### END HIDDEN TESTS", "hidden check failed: a loop of inputs (AssertionError)"),
    ("### BEGIN HIDDEN TESTS\n# check: a helper's own assertion\ndef h(v):\n    assert twice(v) == 0, v\n"
     "# check: the helper called on 5\nh(5)\n### END HIDDEN TESTS",
     "hidden check failed: the helper called on 5 (AssertionError)"),
])
def test_judge_failures_and_messages(judge, source, message):
    verdict = judge.run_test(source, time.monotonic() + 60)
    assert not verdict.passed and verdict.failure is None
    assert verdict.message.startswith(message), verdict.message


def test_judge_reports_a_call_that_never_returns(tmp_path):
    from autograde.client import RunnerClient
    from autograde.judge import Judge
    client = RunnerClient(tmp_path, GradingSettings().limits())
    client.start()
    try:
        client.request({"op": "exec", "source": STUDENT_CODE}, None, time.monotonic() + 60)
        verdict = Judge(client, NAMES).run_test("spin()", time.monotonic() + 2)
        assert not verdict.passed and verdict.failure.kind == "timeout"
        assert not client.alive  # killed; the grader restarts it and replays the cells
    finally:
        client.stop()


# ---------------------------------------------------------------------------
# Limits that end grading early


def grade_fixture_variant(tmp_path, settings, chapter="toy", **answers_replaced):
    from autograde.submission import grade_submission
    source = read_json(FIXTURE.source_notebook(chapter))
    nb = read_json(FIXTURE.release_notebook(chapter))
    for gid, text in answers(source).items():
        set_answer(nb, gid, answers_replaced.get(gid, text))
    path = write(tmp_path, "student", chapter, nb)
    chap = load_chapter(FIXTURE.source_notebook(chapter), FIXTURE.release_notebook(chapter),
                        chapter)
    return grade_submission(chap, "student", open_submission(path), settings, "secret").result


def test_total_time_limit_stops_grading(tmp_path):
    slow = "import time\ntime.sleep(60)\n"
    result = grade_fixture_variant(tmp_path, GradingSettings(cell_timeout=60, total_timeout=8),
                                   relu=slow)
    assert result["status"] == ("timeout in cell 4 (relu); total time limit reached; "
                                "later cells not run")
    assert result["score"] == 0


def test_no_restart_left(tmp_path):
    result = grade_fixture_variant(tmp_path, GradingSettings(max_restarts=0),
                                   softmax="import os\n\ndef softmax(z):\n    os._exit(3)\n")
    assert result["status"] == ("kernel died in cell 8 (test_softmax_shape): exit code 3; "
                                "no restart left; later cells not run")
    assert result["score"] == 1  # relu only: running_mean's test never ran
