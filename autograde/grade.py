"""Grading a batch: every ``SUBMISSIONS_DIR/<student_id>/<chapter>.ipynb``.

Each student is graded by :func:`grade_one`, which writes the feedback page
and the result file: in this process with one worker, else in worker
processes of a small pool (:func:`_run_pool`) that gives each worker one
student at a time. A worker that dies (the OOM killer, a crash) is replaced
and its student graded again in a fresh one; a student whose grading ends two
workers gets a status row saying so. Workers, and the sandboxes they start,
die with this process, however it ends.

Students whose result is up to date (same submission and submission time,
chapter, settings, secret key and grader: see ``results.FINGERPRINT``) are
skipped, so an interrupted batch resumes where it stopped and a second run
changes nothing. At the end grades.csv is rebuilt from all results. In
nbgrader's layout (``<student_id>/<chapter>/<chapter>.ipynb``, what ``nbgrader
collect`` writes: the latest submission of each student) the time in
``timestamp.txt`` is kept with the result and in grades.csv.

A broken or missing notebook, and a student folder whose name is not a valid
student id (:data:`STUDENT_ID`), is a status in grades.csv, never a crash.
Only problems of the grading itself (unknown chapter, unreadable folder, a
student process that cannot be started) make :func:`grade` raise or report
failures.
"""

import hashlib
import hmac
import json
import multiprocessing
import os
import re
import sys
import tempfile
import urllib.parse
from collections import Counter, deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from tqdm import tqdm

from autograde import feedback, results, sandbox
from autograde.client import RunnerStartError
from autograde.config import Course, load_settings
from autograde.judge import Verdict
from autograde.notebook_io import load_chapter, open_submission, read_json, submission_timestamp
from autograde.submission import Graded, _test_entry, grade_submission

#: Bytes of the course's secret key.
SECRET_BYTES = 32
#: A valid student id: it names files and folders and is a field of grades.csv.
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}\Z")
STUDENT_ID_RULE = ("letters, digits and . _ @ + - only, starting with a letter or digit, "
                   "at most 64 characters")
#: Workers a student's grading may end before it is given up with a status.
WORKER_ATTEMPTS = 2
#: Workers that may die before they are ready (a fault of the machine, not of a student).
WORKER_START_FAILURES = 3


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
    course.state.mkdir(mode=0o700, parents=True, exist_ok=True)
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


def key_id(key):
    """A name for the secret key that reveals nothing of it (a keyed hash, 16 hex digits)."""
    return hmac.new(key, b"autograde key id", hashlib.sha256).hexdigest()[:16]


_VERSION = None


def grader_version():
    """A hash of what decides a grade besides the chapter: the sources of ``autograde``
    and ``course_lib`` (the test cells' checks), and NumPy's and Python's versions."""
    global _VERSION
    if _VERSION is None:
        import numpy
        import course_lib
        digest = hashlib.sha256(f"{sys.version}\0{numpy.__version__}\0".encode())
        for package in (Path(__file__).parent, Path(course_lib.__file__).parent):
            for path in sorted(package.rglob("*.py")):
                digest.update(f"{path.relative_to(package.parent)}\0".encode())
                digest.update(path.read_bytes())
        _VERSION = digest.hexdigest()[:16]
    return _VERSION


def student_key(folder_name):
    """The student id of a folder: its name when that is a valid id, else a stand-in.

    The stand-in, ``invalid-<12 hex digits of the name's hash>``, names the
    refusal's result and feedback files; the status shows the folder's name
    percent-encoded, so that the instructor can find it.
    """
    if STUDENT_ID.match(folder_name):
        return folder_name
    return "invalid-" + hashlib.sha256(os.fsencode(folder_name)).hexdigest()[:12]


def find_students(submissions_dir):
    """Student folders: the sub-folders of ``submissions_dir`` (hidden ones excluded), sorted.

    A folder name that is not a valid student id is returned too: it gets a
    status row (see :func:`student_key`).

    Raises GradingError when the folder cannot be read, or when it holds
    notebooks but no student folder (a flat layout, which would grade nobody).
    """
    submissions_dir = Path(submissions_dir)
    try:
        entries = list(submissions_dir.iterdir())
    except OSError as exc:
        raise GradingError(f"cannot read the submissions folder {submissions_dir}: "
                           f"{exc.strerror or exc}") from None
    students = sorted(p.name for p in entries if not p.name.startswith(".") and _is_dir(p))
    if not students and stray_notebooks(submissions_dir):
        raise GradingError(f"{submissions_dir} holds notebooks but no student folders: put each "
                           "student's notebook in a folder of its own, "
                           "SUBMISSIONS_DIR/<student_id>/<chapter>.ipynb")
    return students


def _is_dir(path):
    """A folder, or a symbolic link to one (intake refuses the latter with a status)."""
    try:
        return path.is_dir()
    except OSError:  # a name the file system cannot take back (too long) is no folder
        return False


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
          progress=True, private=True, scheduler=None, allow_weak_sandbox=False):
    """Grade every student of ``submissions_dir`` for ``chapter``; return a BatchReport.

    ``OUT_DIR`` and what is written in it are private to the user who grades
    (0700 and 0600) unless ``private`` is False (0755 and 0644). Raises
    GradingError for an unknown chapter, an unreadable folder or a folder
    without student folders. With ``scheduler`` (a Dask scheduler's address,
    or ``local:N``) the students are graded on Dask workers instead of
    ``workers`` local processes (see ``autograde.cluster``); results are
    written here either way.
    """
    course = course or Course()
    if chapter not in course.chapters():
        raise GradingError(f"unknown chapter {chapter!r} (known: "
                           f"{', '.join(course.chapters()) or 'none'})")
    settings = settings or load_settings()
    chap = load_chapter(course.source_notebook(chapter), course.release_notebook(chapter), chapter)
    students = find_students(submissions_dir)
    out_dir = Path(out_dir)
    sandbox.sweep_scratch()  # what graders killed earlier left behind
    results.prepare(out_dir, private)
    key = secret_key(course)
    stamp = {"source_sha256": chap.source_sha256, "release_sha256": chap.release_sha256,
             "settings_sha256": settings.fingerprint(), "key_id": key_id(key),
             "grader_version": grader_version()}
    # What the sandbox must hide even where the course lies below a system folder.
    hidden = tuple(str(Path(p).resolve()) for p in (course.root, course.state, out_dir,
                                                    submissions_dir))
    kernelspec = _release_kernelspec(course, chapter)

    report = BatchReport()
    stray = stray_notebooks(submissions_dir)
    if stray:
        report.warnings.append(f"ignored, not in a student's folder: {', '.join(stray)}")
    jobs = []
    for folder in students:
        student = student_key(folder)
        path = notebook_path(submissions_dir, folder, chapter)
        if student != folder:
            sha = "refused: " + hashlib.sha256(os.fsencode(folder)).hexdigest()
            mine = {**stamp, "timestamp": ""}
        else:
            sha = open_submission(path, submissions_dir).sha256
            mine = {**stamp, "timestamp": submission_timestamp(path, submissions_dir)}
        if results.is_up_to_date(out_dir, student, chapter, {"submission_sha256": sha, **mine}):
            report.skipped.append(student)
            continue
        if student != folder:
            name = urllib.parse.quote(os.fsencode(folder), safe="")
            name = name if len(name) <= 80 else name[:77] + "..."
            _write_refusal(chap, student, out_dir, sha, mine,
                           f"refused: the folder name {name} is not a valid student id "
                           f"({STUDENT_ID_RULE})")
            report.graded.append(student)
            continue
        jobs.append(Job(chap, student, str(path), str(out_dir), settings, key,
                        str(submissions_dir), mine, hidden, kernelspec))

    bar = tqdm(total=len(jobs), desc=f"grading {chapter}", unit="student", disable=not progress)

    def done(job, error):
        if error:
            report.failed[job.student] = error
        else:
            report.graded.append(job.student)
        bar.update()

    try:
        if scheduler:
            from autograde.cluster import run_cluster
            run_cluster(jobs, scheduler, done, course=course,
                        allow_weak_sandbox=allow_weak_sandbox)
        elif workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                done(job, _safe_grade_one(job))
        else:
            _run_pool(jobs, workers, done)
    finally:
        bar.close()
        report.rows = results.write_grades_csv(out_dir)
    return report


@dataclass
class Job:
    """One student to grade, as sent to a worker process."""

    chapter: object            # notebook_io.Chapter
    student: str
    notebook: str
    out_dir: str
    settings: object           # config.GradingSettings
    key: bytes
    submissions_dir: str
    stamp: dict                # the fingerprint fields besides the submission's hash (with
                               # nbgrader's submission time, "" when there is none)
    hidden: tuple = ()
    kernelspec: dict | None = None


def _release_kernelspec(course, chapter):
    """The kernelspec of the chapter's release (a student's notebook should keep it)."""
    spec = read_json(course.release_notebook(chapter)).get("metadata", {}).get("kernelspec")
    return spec if isinstance(spec, dict) else None


def _write_refusal(chapter, student, out_dir, sha, stamp, status):
    """Write the result and feedback of a student who is not graded, with ``status``."""
    result = {"student_id": student, "assignment": chapter.name, "score": 0.0,
              "max_score": chapter.max_score, "status": status, "submission_sha256": sha,
              **stamp,
              "tests": [_test_entry(c.grade_id, c.index, c.points,
                                    Verdict(False, "not graded: " + status))
                        for c in chapter.tests()]}
    _save(out_dir, Graded(result))


def _save(out_dir, graded):
    feedback.write(results.feedback_path(out_dir, graded.result["student_id"],
                                         graded.result["assignment"]),
                   graded.result, graded.records, results.file_mode(out_dir))
    results.save_result(out_dir, graded.result)  # last: its presence means "done"


def _safe_grade_one(job):
    """Run :func:`grade_one`; return None, or the reason grading could not run."""
    try:
        grade_one(job.chapter, job.student, job.notebook, job.out_dir, job.settings, job.key,
                  job.submissions_dir, stamp=job.stamp, hidden=job.hidden,
                  kernelspec=job.kernelspec)
    except RunnerStartError as exc:
        return str(exc)
    except Exception as exc:  # a fault of the grader: say which, grade the others
        return f"grading failed: {type(exc).__name__}: {str(exc)[:300]}"
    return None


def grade_one(chapter, student_id, notebook, out_dir, settings, key, submissions_dir=None, *,
              stamp=None, hidden=(), kernelspec=None):
    """Grade one student of ``chapter`` (a notebook_io.Chapter); write feedback, then result.

    The notebook is read once here: its hash, its hidden inputs and what
    runs all come from the same bytes. ``stamp`` (the fingerprint fields
    besides the submission's hash) is stored with the result.
    """
    submitted = open_submission(notebook, submissions_dir)
    secret = student_secret(key, chapter.name, student_id, submitted.sha256)
    graded = grade_submission(chapter, student_id, submitted, settings, secret, hidden=hidden,
                              kernelspec=kernelspec)
    graded.result.update(stamp or {})
    _save(out_dir, graded)
    return graded.result


# ---------------------------------------------------------------------------
# The worker pool


class _Worker:
    """A worker process and the pipe to it; it grades one job at a time.

    Its first message is ``"ready"``: a worker that dies before it is ready
    could not start, whatever job it was given.
    """

    def __init__(self, context):
        self.ready = False
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, os.getpid()),
                                       daemon=True)
        self.process.start()
        child.close()

    def stop(self, kill=False):
        """End the worker: politely between jobs, with SIGKILL in the middle of one."""
        try:
            if kill:
                self.process.kill()
            else:
                self.conn.send(None)
            self.process.join(timeout=None if kill else 10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        except (OSError, ValueError):
            pass
        self.conn.close()


def _run_pool(jobs, workers, done):
    """Grade ``jobs`` in ``workers`` worker processes; call ``done(job, error)`` for each.

    A worker that dies is replaced; its job goes back to the front of the
    queue, and after WORKER_ATTEMPTS deaths it gets a status row instead.
    Raises GradingError when workers keep dying before they are ready.
    """
    context = multiprocessing.get_context("spawn")
    queue = deque(jobs)
    deaths = Counter()
    start_failures = 0
    idle, busy = [], {}   # busy: worker -> job
    try:
        while queue or busy:
            while queue and len(busy) < workers:
                worker = idle.pop() if idle else _Worker(context)
                try:
                    worker.conn.send(queue[0])
                except OSError:  # it died between two jobs: another takes its place
                    worker.stop(kill=True)
                    continue
                busy[worker] = queue.popleft()
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker, job in list(busy.items()):
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                try:
                    error = worker.conn.recv()
                except (EOFError, OSError):  # it died
                    del busy[worker]
                    worker.stop(kill=True)
                    if not worker.ready:
                        start_failures += 1
                        if start_failures >= WORKER_START_FAILURES:
                            raise GradingError("the grader's worker processes cannot start "
                                               f"(exit code {worker.process.exitcode})")
                        queue.appendleft(job)
                        continue
                    deaths[job.student] += 1
                    if deaths[job.student] < WORKER_ATTEMPTS:
                        queue.appendleft(job)
                    else:
                        done(job, _worker_died(job, worker.process.exitcode))
                    continue
                if error == "ready":
                    worker.ready = True
                    continue
                del busy[worker]
                idle.append(worker)
                done(job, error)
    finally:
        for worker in idle:
            worker.stop()
        for worker in busy:
            worker.stop(kill=True)


def _worker_died(job, exitcode):
    """Record a student whose grading ended WORKER_ATTEMPTS workers; return the report line."""
    how = f"killed by signal {-exitcode}" if exitcode and exitcode < 0 else f"exit code {exitcode}"
    return record_lost(job, f"not graded: grading this submission ended the grader's worker process "
                            f"{WORKER_ATTEMPTS} times ({how}); the next run tries again")


def record_lost(job, status):
    """Write a status row for a student whose grading killed its workers; return the report line."""
    try:
        _write_refusal(job.chapter, job.student, job.out_dir, "not graded: worker died",
                       job.stamp, status)
    except OSError as exc:
        return f"{status}; its status could not be written: {exc.strerror}"
    return status


def _worker_main(conn, parent):
    """A worker process: grade the jobs that come through ``conn`` until it sends None."""
    sandbox.die_with_parent(parent)
    conn.send("ready")
    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            conn.send(_safe_grade_one(job))
    finally:
        sandbox.remove_scratch()
