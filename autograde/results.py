"""The grading output folder: one result file per student and chapter, and grades.csv.

Layout of ``OUT_DIR``::

    results/<chapter>/<student_id>.json     score, status, per-test points, hashes
    feedback/<student_id>/<chapter>.html
    grades.csv                              student_id, assignment, score, max_score, status

Several chapters can be graded into one ``OUT_DIR``: each keeps its own
results. Every file is written atomically (a temporary file, then
``os.replace``), so an interrupted run leaves either the old file or the new
one. A result whose hashes match the submission and the chapter is up to
date, and a rerun skips that student; grades.csv is rebuilt from the result
files of every chapter, sorted by student, then chapter.
"""

import csv
import io
import json
import os
import tempfile
from pathlib import Path

CSV_COLUMNS = ("student_id", "assignment", "score", "max_score", "status")


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def format_points(x):
    """Points as text: ``3`` for whole numbers, ``2.5`` otherwise."""
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:.6g}"


def result_path(out_dir, student_id, chapter):
    """``OUT_DIR/results/<chapter>/<student_id>.json``."""
    return Path(out_dir) / "results" / chapter / f"{student_id}.json"


def feedback_path(out_dir, student_id, chapter):
    """``OUT_DIR/feedback/<student_id>/<chapter>.html``."""
    return Path(out_dir) / "feedback" / student_id / f"{chapter}.html"


def save_result(out_dir, result):
    """Write one student's result record atomically."""
    atomic_write_text(result_path(out_dir, result["student_id"], result["assignment"]),
                      json.dumps(result, indent=1, sort_keys=True) + "\n")


def load_result(path):
    """A result record, or None when the file is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_up_to_date(out_dir, student_id, chapter, hashes):
    """True when this student's result and feedback exist and match ``hashes``."""
    result = load_result(result_path(out_dir, student_id, chapter))
    if result is None or result.get("assignment") != chapter:
        return False
    if any(result.get(k) != v for k, v in hashes.items()):
        return False
    return feedback_path(out_dir, student_id, chapter).is_file()


def write_grades_csv(out_dir):
    """Rebuild ``grades.csv`` from the results of every chapter in ``out_dir``; return its rows."""
    rows = {}
    for path in sorted((Path(out_dir) / "results").glob("*/*.json")):
        result = load_result(path)
        if result is None or result.get("assignment") != path.parent.name:
            continue
        student, chapter = str(result["student_id"]), path.parent.name
        rows[student, chapter] = [student, chapter, format_points(result["score"]),
                                  format_points(result["max_score"]), str(result["status"])]
    rows = [rows[key] for key in sorted(rows)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    atomic_write_text(Path(out_dir) / "grades.csv", buf.getvalue())
    return rows
