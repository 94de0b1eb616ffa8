"""Grades out: ``python -m autograde export OUT_DIR``.

Reads what ``grade --out OUT_DIR`` wrote (``grades.csv``: student_id, assignment, score, max_score,
status; and one result file per student and chapter) and writes, into ``OUT_DIR/export`` or
``--to DIR``:

* ``gradebook.csv``  a row per student, a column per chapter (points), then ``total``; a second
  row ``max_score`` holds each chapter's points possible. A chapter a student has no result for
  is an empty cell.
* ``canvas.csv``     Canvas's gradebook import: ``Student, ID, SIS User ID, SIS Login ID,
  Section``, then one column per chapter; its second row is ``Points Possible``. The student id
  (the hub's user name) goes into ``SIS Login ID``, by which Canvas matches the row to a student;
  the other identifying columns stay empty. A chapter column that matches no Canvas assignment
  creates one on import.
* ``moodle.csv``     Moodle's CSV grade import: ``ID number``, then one column per chapter (a
  grade item each). On import, map *Identify user by* ``ID number`` to the user field that holds
  the hub's user name (``username`` or ``idnumber``) and each chapter column to its grade item.

and writes each student's points per test cell into nbgrader's gradebook database (the course's,
``autograde/state/gradebook.db``), so that formgrader lists them under Manage Submissions.
Every text field is made spreadsheet-safe as ``grades.csv`` is (``results.csv_field``).
"""

import csv
import io
import os
from pathlib import Path

from autograde.config import Course, venv_bin_on_path
from autograde.results import atomic_write_text, csv_field, format_points, load_result, result_path

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


class ExportError(Exception):
    """The grades cannot be exported (the message says why)."""


def read_grades(out_dir):
    """``(chapters, max_scores, scores)`` from ``OUT_DIR/grades.csv``.

    ``chapters`` sorted; ``max_scores[chapter]`` its points possible (the largest of its rows);
    ``scores[student][chapter]`` a float.
    """
    path = Path(out_dir) / "grades.csv"
    if not path.is_file():
        raise ExportError(f"no grades.csv in {out_dir}: grade a chapter with `python -m autograde "
                          "grade CHAPTER SUBMISSIONS --out OUT_DIR` first")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"student_id", "assignment", "score", "max_score"} - set(reader.fieldnames or ())
        if missing:
            raise ExportError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
        max_scores, scores = {}, {}
        for line, row in enumerate(reader, start=2):
            try:
                score, max_score = float(row["score"]), float(row["max_score"])
            except (TypeError, ValueError):
                raise ExportError(f"{path}, line {line}: score {row['score']!r} or max_score "
                                  f"{row['max_score']!r} is not a number") from None
            chapter = row["assignment"]
            max_scores[chapter] = max(max_scores.get(chapter, 0.0), max_score)
            scores.setdefault(row["student_id"], {})[chapter] = score
    return sorted(max_scores), max_scores, dict(sorted(scores.items()))


def _csv(rows):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _cell(scores, chapter):
    return format_points(scores[chapter]) if chapter in scores else ""


def plain_csv(chapters, max_scores, scores):
    """A row per student: student_id, a column per chapter, total."""
    rows = [["student_id", *map(csv_field, chapters), "total"],
            ["max_score", *(format_points(max_scores[c]) for c in chapters),
             format_points(sum(max_scores.values()))]]
    for student, mine in scores.items():
        rows.append([csv_field(student), *(_cell(mine, c) for c in chapters),
                     format_points(sum(mine.values()))])
    return _csv(rows)


def canvas_csv(chapters, max_scores, scores):
    """Canvas's gradebook import: identifying columns, a Points Possible row, a column per chapter."""
    rows = [[*CANVAS_COLUMNS, *map(csv_field, chapters)],
            ["Points Possible", "", "", "", "", *(format_points(max_scores[c]) for c in chapters)]]
    for student, mine in scores.items():
        rows.append([csv_field(student), "", "", csv_field(student), "",
                     *(_cell(mine, c) for c in chapters)])
    return _csv(rows)


def moodle_csv(chapters, max_scores, scores):
    """Moodle's grade import: ``ID number`` and a column per grade item (chapter)."""
    rows = [["ID number", *map(csv_field, chapters)]]
    for student, mine in scores.items():
        rows.append([csv_field(student), *(_cell(mine, c) for c in chapters)])
    return _csv(rows)


def to_gradebook(out_dir, db_url, chapters, scores, course_id="default_course"):
    """Write every result's points per test cell into nbgrader's gradebook at ``db_url``.

    Each chapter becomes an assignment with one notebook of the same name; each test cell a grade
    cell (its ``grade_id`` and points, kept where the release already created it); each result a
    submission (with nbgrader's submission time, where the result has one) whose grades are the
    grader's ``auto_score``. Running it again updates the same rows. Returns the number of
    submissions written.
    """
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.utils import parse_utc
    venv_bin_on_path()   # nbgrader upgrades a new database with the `alembic` command
    results = {}
    for student, mine in scores.items():
        for chapter in mine:
            result = load_result(result_path(out_dir, student, chapter))
            if result is not None and result.get("assignment") == chapter:
                results[student, chapter] = result
    written = 0
    with Gradebook(db_url, course_id=course_id) as gb:
        cells = {}
        for (_, chapter), result in results.items():
            for test in result.get("tests", []):
                cells.setdefault(chapter, {})[str(test["grade_id"])] = float(test["max_points"])
        for chapter in chapters:
            gb.update_or_create_assignment(chapter)
            try:
                gb.find_notebook(chapter, chapter)
            except MissingEntry:
                gb.add_notebook(chapter, chapter)
            for grade_id, max_points in sorted(cells.get(chapter, {}).items()):
                try:
                    gb.find_grade_cell(grade_id, chapter, chapter)
                except MissingEntry:
                    gb.add_grade_cell(grade_id, chapter, chapter, max_score=max_points,
                                      cell_type="code")
        for (student, chapter), result in sorted(results.items()):
            gb.update_or_create_student(student)
            submitted = parse_utc(result["timestamp"]) if result.get("timestamp") else None
            gb.update_or_create_submission(chapter, student, timestamp=submitted)
            for test in result.get("tests", []):
                grade = gb.find_grade(str(test["grade_id"]), chapter, chapter, student)
                grade.auto_score = float(test["points"])
                grade.needs_manual_grade = False
            written += 1
        gb.db.commit()
    return written


def export(out_dir, to=None, course=None, gradebook=True, db_url=None):
    """Write the three CSV files (and, unless ``gradebook`` is False, the gradebook); return paths."""
    out_dir = Path(out_dir)
    chapters, max_scores, scores = read_grades(out_dir)
    to = Path(to) if to is not None else out_dir / "export"
    to.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = 0o600 if os.stat(to).st_mode & 0o077 == 0 else 0o644
    written = []
    for name, make in (("gradebook.csv", plain_csv), ("canvas.csv", canvas_csv),
                       ("moodle.csv", moodle_csv)):
        atomic_write_text(to / name, make(chapters, max_scores, scores), mode)
        written.append(to / name)
    if gradebook:
        course = course or Course()
        if db_url is None:
            course.state.mkdir(parents=True, exist_ok=True, mode=0o700)
            db_url = "sqlite:///" + str(course.state / "gradebook.db")
        to_gradebook(out_dir, db_url, chapters, scores)
        written.append(db_url)
    return written
