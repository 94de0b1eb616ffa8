"""Grades out: plain CSV, Canvas's and Moodle's import files, and nbgrader's gradebook.

The grading output is written with the grader's own writers (``results.save_result`` and
``results.write_grades_csv``), as ``grade`` writes it; the expected numbers are worked out by hand.
"""

import csv
import io
import subprocess
import sys

import pytest

from autograde.export import ExportError, export, read_grades
from autograde.results import save_result, write_grades_csv

# student -> chapter -> [(grade_id, points, max_points)]
GRADED = {
    "alice": {"01_neurons": [("t_step", 2, 2), ("t_sigmoid", 1.5, 3)],
              "02_mlp": [("t_dense", 4, 4)]},
    "bob": {"01_neurons": [("t_step", 0, 2), ("t_sigmoid", 3, 3)]},
    "carol": {"02_mlp": [("t_dense", 0, 4)]},      # a folder with no notebook: 0 points, a status
}


@pytest.fixture
def out(tmp_path):
    out = tmp_path / "grading-output"
    for student, chapters in GRADED.items():
        for chapter, tests in chapters.items():
            save_result(out, {
                "student_id": student, "assignment": chapter,
                "score": sum(t[1] for t in tests), "max_score": sum(t[2] for t in tests),
                "status": "ok" if student != "carol" else "no submission",
                **({"timestamp": "2026-12-04 10:15:02.123456 UTC"} if student == "alice" else {}),
                "tests": [{"grade_id": g, "points": p, "max_points": m, "passed": p == m,
                           "message": ""} for g, p, m in tests]})
    write_grades_csv(out)
    return out


def rows(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_plain_csv_has_a_row_per_student_and_a_column_per_chapter(out):
    export(out, gradebook=False)
    assert rows(out / "export" / "gradebook.csv") == [
        ["student_id", "01_neurons", "02_mlp", "total"],
        ["max_score", "5", "4", "9"],
        ["alice", "3.5", "4", "7.5"],
        ["bob", "3", "", "3"],
        ["carol", "", "0", "0"],
    ]


def test_canvas_csv_follows_the_gradebook_import_layout(out):
    export(out, gradebook=False)
    table = rows(out / "export" / "canvas.csv")
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "01_neurons", "02_mlp"]
    assert table[1] == ["Points Possible", "", "", "", "", "5", "4"]
    assert table[2:] == [["alice", "", "", "alice", "", "3.5", "4"],
                         ["bob", "", "", "bob", "", "3", ""],
                         ["carol", "", "", "carol", "", "", "0"]]


def test_moodle_csv_maps_by_id_number(out):
    export(out, gradebook=False)
    assert rows(out / "export" / "moodle.csv") == [
        ["ID number", "01_neurons", "02_mlp"],
        ["alice", "3.5", "4"], ["bob", "3", ""], ["carol", "", "0"]]


def test_grades_land_in_nbgraders_gradebook(out, tmp_path):
    from nbgrader.api import Gradebook
    db_url = "sqlite:///" + str(tmp_path / "gradebook.db")
    for _ in range(2):   # a second export updates the same rows
        export(out, gradebook=True, db_url=db_url)
    with Gradebook(db_url) as gb:
        assert sorted(s.id for s in gb.students) == ["alice", "bob", "carol"]
        assert gb.find_submission("01_neurons", "alice").score == pytest.approx(3.5)
        assert gb.find_submission("01_neurons", "alice").max_score == pytest.approx(5)
        # nbgrader's submission time, where the grader kept one (nbgrader's collect layout)
        assert str(gb.find_submission("01_neurons", "alice").timestamp) == "2026-12-04 10:15:02.123456"
        assert gb.find_submission("01_neurons", "bob").timestamp is None
        assert gb.find_submission("02_mlp", "alice").score == pytest.approx(4)
        assert gb.find_submission("01_neurons", "bob").score == pytest.approx(3)
        assert gb.find_grade("t_step", "01_neurons", "01_neurons", "bob").score == 0
        assert gb.find_grade("t_sigmoid", "01_neurons", "01_neurons", "bob").score == 3
        assert gb.find_assignment("01_neurons").num_submissions == 2
        assert len(gb.find_notebook("01_neurons", "01_neurons").grade_cells) == 2


def test_changed_grades_are_updated(out, tmp_path):
    from nbgrader.api import Gradebook
    db_url = "sqlite:///" + str(tmp_path / "gradebook.db")
    export(out, db_url=db_url)
    save_result(out, {"student_id": "bob", "assignment": "01_neurons", "score": 5, "max_score": 5,
                      "status": "ok", "tests": [{"grade_id": "t_step", "points": 2, "max_points": 2},
                                                {"grade_id": "t_sigmoid", "points": 3, "max_points": 3}]})
    write_grades_csv(out)
    export(out, db_url=db_url)
    with Gradebook(db_url) as gb:
        assert gb.find_submission("01_neurons", "bob").score == pytest.approx(5)
    assert rows(out / "export" / "gradebook.csv")[3] == ["bob", "5", "", "5"]


def test_missing_or_broken_grades_are_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="no grades.csv"):
        read_grades(tmp_path)
    (tmp_path / "grades.csv").write_text("student_id,assignment,score,max_score,status\n"
                                         "alice,01_neurons,lots,5,ok\n")
    with pytest.raises(ExportError, match="line 2"):
        read_grades(tmp_path)
    (tmp_path / "grades.csv").write_text("student,score\n")
    with pytest.raises(ExportError, match="assignment"):
        read_grades(tmp_path)


def test_command_line(out, tmp_path):
    run = subprocess.run([sys.executable, "-m", "autograde", "export", str(out), "--to",
                          str(tmp_path / "to"), "--no-gradebook"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "to").iterdir()) == ["canvas.csv", "gradebook.csv",
                                                                   "moodle.csv"]
    bad = subprocess.run([sys.executable, "-m", "autograde", "export", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no grades.csv" in bad.stderr
