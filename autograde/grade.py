"""Grading a batch: every ``SUBMISSIONS_DIR/<student_id>/<chapter>.ipynb``.

Each student is graded by :func:`grade_one` (in worker processes when
``workers > 1``), which writes the feedback page and the result file. Students
whose result is up to date (same submission, same chapter) are skipped, so an
interrupted batch resumes where it stopped and a second run changes nothing.
At the end grades.csv is rebuilt from all results.

A broken or missing notebook is a status in grades.csv, never a crash. Only
problems of the grading itself (unknown chapter, unreadable folder, a student
process that cannot be started) make :func:`grade` raise or report failures.
"""

import hashlib
import hmac
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from autograde import feedback, results
from autograde.client import RunnerStartError
from autograde.config import Course, load_settings
from autograde.notebook_io import load_chapter, open_submission
from autograde.submission import grade_submission

#: Bytes of the course's secret key.
SECRET_BYTES = 32


class GradingError(Exception):
    """Grading could not run at all (the message says why)."""


@dataclass
class BatchReport:
    """What a call of :func:`grade` did."""

    graded: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)   # student_id -> why grading could not run
    rows: list = field(default_factory=list)     # the rows of grades.csv
    warnings: list = field(default_factory=list)  # things the instructor should know


def secret_key(course):
    """The course's secret key (``<state>/secret``), created with os.urandom on first use.

    Raises GradingError when the file is shorter than a key: a damaged key
    would make the hidden inputs guessable.
    """
    path = course.state / "secret"
    course.state.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_secret(path)
    key = path.read_bytes()
    if len(key) < SECRET_BYTES:
        raise GradingError(f"the secret key {path} holds {len(key)} bytes instead of "
                           f"{SECRET_BYTES}: it is damaged. Delete it and grade again; a new key "
                           "is made (results already written are kept)")
    return key


def _create_secret(path):
    """Write a fresh key to ``path`` unless one exists: complete or not at all.

    The key is written to a temporary file and then linked to its name, which
    fails if another grading run got there first; both runs then use that key.
    """
    fd, tmp = tempfile.mkstemp(prefix=".secret-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def student_secret(key, chapter, student_id, submission_sha256):
    """The value of COURSE_GRADING_SECRET for one graded submission.

    It depends on the key, the chapter, the student and the submission's
    hash: grading the same file twice draws the same hidden inputs, while
    any change to the file draws new ones, so inputs a submission managed to
    print into its feedback are of no use to the next submission.
    """
    message = f"{chapter}\0{student_id}\0{submission_sha256}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def find_students(submissions_dir):
    """Student ids: the sub-folders of ``submissions_dir`` (hidden ones excluded), sorted.

    Raises GradingError when the folder cannot be read, or when it holds
    notebooks but no student folder (a flat layout, which would grade nobody).
    """
    submissions_dir = Path(submissions_dir)
    try:
        entries = list(submissions_dir.iterdir())
    except OSError as exc:
        raise GradingError(f"cannot read the submissions folder {submissions_dir}: "
                           f"{exc.strerror or exc}") from None
    students = sorted(p.name for p in entries if p.is_dir() and not p.name.startswith("."))
    if not students and stray_notebooks(submissions_dir):
        raise GradingError(f"{submissions_dir} holds notebooks but no student folders: put each "
                           "student's notebook in a folder of its own, "
                           "SUBMISSIONS_DIR/<student_id>/<chapter>.ipynb")
    return students


def stray_notebooks(submissions_dir):
    """Names of the notebooks lying directly in ``submissions_dir`` (no student's folder)."""
    return sorted(p.name for p in Path(submissions_dir).glob("*.ipynb"))


def notebook_path(submissions_dir, student, chapter):
    """Where ``student``'s notebook of ``chapter`` is.

    ``<student>/<chapter>.ipynb``, or nbgrader's own layout
    ``<student>/<chapter>/<chapter>.ipynb`` when only that one exists.
    """
    folder = Path(submissions_dir) / student
    flat = folder / f"{chapter}.ipynb"
    nested = folder / chapter / f"{chapter}.ipynb"
    if not os.path.lexists(flat) and os.path.lexists(nested):
        return nested
    return flat


def grade(chapter, submissions_dir, out_dir, *, course=None, workers=1, settings=None,
          progress=True):
    """Grade every student of ``submissions_dir`` for ``chapter``; return a BatchReport.

    Raises GradingError for an unknown chapter, an unreadable folder or a
    folder without student folders.
    """
    course = course or Course()
    if chapter not in course.chapters():
        raise GradingError(f"unknown chapter {chapter!r} (known: "
                           f"{', '.join(course.chapters()) or 'none'})")
    settings = settings or load_settings()
    chap = load_chapter(course.source_notebook(chapter), course.release_notebook(chapter), chapter)
    students = find_students(submissions_dir)
    out_dir = Path(out_dir)
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    key = secret_key(course)

    report = BatchReport()
    stray = stray_notebooks(submissions_dir)
    if stray:
        report.warnings.append(f"ignored, not in a student's folder: {', '.join(stray)}")
    todo = []
    for student in students:
        path = notebook_path(submissions_dir, student, chapter)
        hashes = {"submission_sha256": open_submission(path, submissions_dir).sha256,
                  "source_sha256": chap.source_sha256, "release_sha256": chap.release_sha256}
        if results.is_up_to_date(out_dir, student, chapter, hashes):
            report.skipped.append(student)
        else:
            todo.append((student, path))

    jobs = [(chap, student, str(path), str(out_dir), settings, key, str(submissions_dir))
            for student, path in todo]
    bar = tqdm(total=len(jobs), desc=f"grading {chapter}", unit="student", disable=not progress)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                _collect(report, job[1], _safe_grade_one, job)
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {pool.submit(_safe_grade_one, job): job[1] for job in jobs}
                for future in as_completed(futures):
                    _collect(report, futures[future], future.result)
                    bar.update()
    finally:
        bar.close()
        report.rows = results.write_grades_csv(out_dir)
    return report


def _collect(report, student, func, *args):
    try:
        error = func(*args)
    except Exception as exc:  # a worker process crashed: the student stays ungraded
        error = f"grading crashed: {type(exc).__name__}: {exc}"
    if error:
        report.failed[student] = error
    else:
        report.graded.append(student)


def _safe_grade_one(job):
    """Run :func:`grade_one`; return None, or the reason grading could not run."""
    try:
        grade_one(*job)
    except RunnerStartError as exc:
        return str(exc)
    return None


def grade_one(chapter, student_id, notebook, out_dir, settings, key, submissions_dir=None):
    """Grade one student of ``chapter`` (a notebook_io.Chapter); write feedback, then result.

    The notebook is read once here: its hash, its hidden inputs and what
    runs all come from the same bytes.
    """
    submitted = open_submission(notebook, submissions_dir)
    secret = student_secret(key, chapter.name, student_id, submitted.sha256)
    graded = grade_submission(chapter, student_id, submitted, settings, secret)
    feedback.write(results.feedback_path(out_dir, student_id, chapter.name), graded.result,
                   graded.records)
    results.save_result(out_dir, graded.result)  # last: its presence means "done"
    return graded.result
