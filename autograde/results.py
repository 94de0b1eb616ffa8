"""The grading output folder: one result file per student and chapter, and grades.csv.

Layout of ``OUT_DIR``::

    results/<chapter>/<student_id>.json     score, status, per-test points, hashes
    feedback/<student_id>/<chapter>.html
    grades.csv                              student_id, assignment, score, max_score, status

Several chapters can be graded into one ``OUT_DIR``: each keeps its own
results. Every file is written atomically (a temporary file, then
``os.replace``), so an interrupted run leaves either the old file or the new
one. A result whose fingerprint (submission, chapter, settings, key, grader)
matches is up to date, and a rerun skips that student; grades.csv is rebuilt
from the result files of every chapter, sorted by student, then chapter.

Everything below ``OUT_DIR`` takes its permissions from ``OUT_DIR`` itself
(:func:`prepare`): private to the instructor (folders 0700, files 0600)
unless asked otherwise. grades.csv is safe to open in a spreadsheet: no
field holds a line break or another control character, and none starts with
a character that makes a formula (``= + - @``).
"""

import csv
import io
import json
import os
import re
import tempfile
from pathlib import Path

CSV_COLUMNS = ("student_id", "assignment", "score", "max_score", "status", "timestamp")

#: The fields of a result that say what it was graded from: all must match for "up to date".
FINGERPRINT = ("submission_sha256", "timestamp", "source_sha256", "release_sha256",
               "settings_sha256", "key_id", "grader_version")

# Control characters, line and paragraph separators, and the invisible
# direction marks and overrides that can make a row read differently.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u2069\ufeff]")
_FORMULA_START = ("=", "+", "-", "@")


def prepare(out_dir, private=True):
    """Create ``out_dir`` (and its ``results``/``feedback``), 0700 when ``private`` else 0755."""
    out_dir = Path(out_dir)
    mode = 0o700 if private else 0o755
    for d in (out_dir, out_dir / "results", out_dir / "feedback"):
        d.mkdir(mode=mode, parents=True, exist_ok=True)
        os.chmod(d, mode)


def folder_mode(out_dir):
    """The permissions of ``out_dir``, which every folder made below it gets (0700 if missing)."""
    try:
        return os.stat(out_dir).st_mode & 0o777
    except OSError:
        return 0o700


def atomic_write_text(path, text, mode=0o600):
    """Write ``text`` to ``path`` (permissions ``mode``) through a temporary file beside it.

    Missing folders on the way are made with ``mode`` plus the search bits.
    """
    path = Path(path)
    _make_folders(path.parent, mode | (mode & 0o444) >> 2)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _make_folders(folder, mode):
    """``mkdir -p`` where each folder made gets ``mode`` (whatever the umask)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=mode)
        except FileExistsError:
            continue
        os.chmod(d, mode)


def file_mode(out_dir):
    """The permissions of files written below ``out_dir``: its own, without execute bits."""
    return folder_mode(out_dir) & 0o666


def csv_field(value):
    """``value`` as text that a spreadsheet shows as written.

    Control characters (a bare carriage return would end the record for some
    readers) and invisible direction marks become ``\\uXXXX``; a leading ``= + - @``
    gets an apostrophe, so it is not taken for a formula.
    """
    text = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))
    return "'" + text if text.startswith(_FORMULA_START) else text


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
                      json.dumps(result, indent=1, sort_keys=True) + "\n", file_mode(out_dir))


def load_result(path):
    """A result record, or None when the file is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_up_to_date(out_dir, student_id, chapter, hashes):
    """True when this student's result and feedback exist and match ``hashes``.

    ``hashes`` holds every field of FINGERPRINT; a result that lacks one
    (written by an older grader) is out of date.
    """
    result = load_result(result_path(out_dir, student_id, chapter))
    if result is None or result.get("assignment") != chapter:
        return False
    if set(hashes) != set(FINGERPRINT) or any(result.get(k) != v for k, v in hashes.items()):
        return False
    return feedback_path(out_dir, student_id, chapter).is_file()


def write_grades_csv(out_dir):
    """Rebuild ``grades.csv`` from the results of every chapter in ``out_dir``; return its rows."""
    rows = {}
    for path in sorted((Path(out_dir) / "results").glob("*/*.json")):
        result = load_result(path)
        if result is None or result.get("assignment") != path.parent.name:
            continue
        try:
            student, chapter = str(result["student_id"]), path.parent.name
            rows[student, chapter] = [csv_field(student), csv_field(chapter),
                                      format_points(result["score"]),
                                      format_points(result["max_score"]),
                                      csv_field(result["status"]),
                                      csv_field(result.get("timestamp", ""))]
        except (KeyError, TypeError, ValueError):
            continue  # a damaged result file: that student is graded again next time
    rows = [rows[key] for key in sorted(rows)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    atomic_write_text(Path(out_dir) / "grades.csv", buf.getvalue(), file_mode(out_dir))
    return rows
