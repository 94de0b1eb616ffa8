"""Grading a batch on a Dask cluster: ``python -m autograde grade ... --scheduler ADDRESS``.

The grading command stays the only writer of ``OUT_DIR``. It reads each
notebook once (with the same intake checks as a local run), derives the
submission's secret from the course key, and sends one Dask task per
submission carrying only a :class:`Task`: the notebook's bytes, the chapter's
name, that derived secret, the settings and the hashes the worker must match.
The course key itself never leaves the command. A worker grades the task with
``submission.grade_submission`` in its own sandbox, renders the feedback page
and returns both; the command checks the reply and writes it as a local run
would, the moment it arrives.

Workers need the course installed: the same ``autograde`` and ``course_lib``
sources, NumPy and Python (``grade.grader_version``) and the same chapter
source and release (their SHA-256). They find the course at
``$AUTOGRADE_COURSE_ROOT``, else at the grader's path (the worker's own
repository when the grader grades its repository). A worker that differs, or
whose sandbox is the rlimits-only fallback (student code would run as the
worker's user) unless ``allow_weak_sandbox``, refuses; the command then stops
with the worker's message. Finished results are on disk, so a rerun resumes.

Faults: a worker that dies mid-task is Dask's to handle: the scheduler runs
the task again on another worker, and after ``distributed.scheduler.
allowed-failures`` deaths (3 by default) the student gets a status row. Losing
the scheduler ends the command with :class:`~autograde.grade.GradingError`.

Dask is imported only here, and this module only with ``--scheduler``.
"""

import os
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from autograde import feedback, results
from autograde.config import REPO_ROOT, Course, GradingSettings
from autograde.grade import (GradingError, _release_kernelspec, grader_version, record_lost,
                             student_secret)
from autograde.notebook_io import SubmittedFile, load_chapter, open_submission

#: ``local:N`` starts a LocalCluster of N worker processes on this machine.
LOCAL_PREFIX = "local:"
MAX_LOCAL_WORKERS = 256
#: Seconds to reach the scheduler, and to wait for it again after losing it.
CONNECT_TIMEOUT = 30
#: Seconds to wait for the first worker to join.
WORKER_WAIT = 120
#: Tasks handed to the scheduler per worker thread: enough to keep workers busy,
#: few enough that the notebooks' bytes are not all held in memory at once.
TASKS_PER_THREAD = 2
#: Environment variable naming the course folder on a worker.
COURSE_ENV = "AUTOGRADE_COURSE_ROOT"


@dataclass(frozen=True)
class Task:
    """What one submission's Dask task carries to a worker (no course key).

    ``expect`` holds ``grader_version``, ``source_sha256`` and
    ``release_sha256`` as the grader sees them; ``course_root`` is None when the
    grader grades its own repository; ``hidden`` are the grader's paths the
    sandbox masks where they exist on the worker (output, submissions).
    """

    chapter: str
    student: str
    submitted: SubmittedFile
    secret: str
    settings: GradingSettings
    expect: dict
    course_root: str | None
    hidden: tuple = ()
    allow_weak_sandbox: bool = False


# ---------------------------------------------------------------------------
# The worker's side


# The student's secret is put into the process environment while test cells run,
# so a worker process grades one submission at a time whatever its thread count.
_GRADING = threading.Lock()
_CHAPTERS = {}   # (source, release) paths -> ((mtime_ns, size) of both, Chapter)


def worker_course(course_root):
    """The course on this worker: ``$AUTOGRADE_COURSE_ROOT``, else ``course_root``, else ours."""
    return Course(os.environ.get(COURSE_ENV) or course_root or REPO_ROOT)


def _chapter(course, name):
    """The chapter as this worker has it, read again only when its files change."""
    paths = (course.source_notebook(name), course.release_notebook(name))
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    cached = _CHAPTERS.get(paths)
    if cached is None or cached[0] != stamp:
        cached = _CHAPTERS[paths] = (stamp, load_chapter(*paths, name))
    return cached[1]


def _where():
    """This worker's address (or host name outside a Dask worker), for messages."""
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        import socket
        return socket.gethostname()


def worker_problem(chapter, expect, course_root, allow_weak_sandbox):
    """Why this worker must not grade ``chapter`` (a sentence), or None when it may."""
    from autograde import sandbox
    mode = sandbox.capabilities().get("mode")
    if mode == "rlimits" and not allow_weak_sandbox:
        return ("its sandbox gives resource limits only (no namespaces: student code would run "
                "as the worker's user and could read its files and use the network); run the "
                "worker as root or where user namespaces are allowed, or pass "
                "--allow-weak-sandbox to accept it")
    if grader_version() != expect["grader_version"]:
        return (f"its course version {grader_version()} differs from the grader's "
                f"{expect['grader_version']} (autograde and course_lib sources, NumPy, Python); "
                "install the same course on every worker")
    course = worker_course(course_root)
    try:
        chap = _chapter(course, chapter)
    except Exception as exc:  # missing or unreadable chapter: the message names it
        return f"cannot read chapter {chapter!r} under {course.root}: {exc}"
    for name in ("source_sha256", "release_sha256"):
        if getattr(chap, name) != expect[name]:
            which = name.split("_")[0]
            return (f"its {which} notebook of {chapter!r} under {course.root} differs from the "
                    f"grader's ({which} SHA-256 {getattr(chap, name)[:12]} instead of "
                    f"{expect[name][:12]}); install the same course, or set {COURSE_ENV}")
    return None


def worker_report(chapter, expect, course_root, allow_weak_sandbox):
    """Run on every worker before grading: None, or why that worker refuses."""
    with _GRADING:
        return worker_problem(chapter, expect, course_root, allow_weak_sandbox)


def grade_task(task):
    """Grade one :class:`Task` on a worker.

    Returns ``{"result": result record, "page": feedback HTML}``, or
    ``{"refused": why}`` when this worker must not grade it.
    """
    from autograde.submission import grade_submission
    with _GRADING:
        problem = worker_problem(task.chapter, task.expect, task.course_root,
                                 task.allow_weak_sandbox)
        if problem:
            return {"refused": f"the Dask worker {_where()} refuses to grade: {problem}"}
        course = worker_course(task.course_root)
        chap = _chapter(course, task.chapter)
        hidden = tuple(task.hidden) + (str(course.root), str(course.state))
        graded = grade_submission(chap, task.student, task.submitted, task.settings, task.secret,
                                  hidden=hidden,
                                  kernelspec=_release_kernelspec(course, task.chapter))
        return {"result": graded.result, "page": feedback.render(graded.result, graded.records)}


# ---------------------------------------------------------------------------
# The grading command's side


def parse_scheduler(address):
    """``("local", N)`` for ``local:N``, else ``("remote", address)``; ValueError when malformed."""
    if address.startswith(LOCAL_PREFIX):
        count = address[len(LOCAL_PREFIX):]
        if not count.isdigit() or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
            raise ValueError(f"--scheduler {address}: N in local:N must be a whole number from "
                             f"1 to {MAX_LOCAL_WORKERS}")
        return "local", int(count)
    if not address.strip():
        raise ValueError("--scheduler needs an address, such as tcp://10.0.0.5:8786, or local:N")
    return "remote", address


def _import_dask():
    try:
        import distributed
    except ImportError:
        raise GradingError("--scheduler needs Dask distributed, which is not installed: "
                           "pip install -e \".[cluster]\"") from None
    return distributed


def connect(address):
    """A Dask Client for ``address`` and the LocalCluster it started (or None)."""
    try:
        kind, value = parse_scheduler(address)
    except ValueError as exc:
        raise GradingError(str(exc)) from None
    distributed = _import_dask()
    if kind == "local":
        try:
            cluster = distributed.LocalCluster(n_workers=value, threads_per_worker=1,
                                               processes=True, host="127.0.0.1",
                                               dashboard_address=None)
        except Exception as exc:
            raise GradingError(f"cannot start a local Dask cluster of {value} workers: "
                               f"{type(exc).__name__}: {exc}") from None
        return distributed.Client(cluster, timeout=CONNECT_TIMEOUT), cluster
    try:
        client = distributed.Client(value, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise GradingError(f"cannot reach the Dask scheduler at {value}: "
                           f"{type(exc).__name__}: {exc}") from None
    return client, None


def _lost(address, out_dir, exc=None):
    why = f" ({type(exc).__name__}: {str(exc)[:200]})" if exc is not None else ""
    return GradingError(f"lost the Dask scheduler at {address}{why}. Every result received so far "
                        f"is in {out_dir}; run the same command again to grade the rest")


def _make_task(job, expect, course_root, allow_weak):
    """The Task of a grade.Job: its notebook read once here, its secret derived here."""
    submitted = open_submission(job.notebook, job.submissions_dir)
    secret = student_secret(job.key, job.chapter.name, job.student, submitted.sha256)
    return Task(job.chapter.name, job.student, submitted, secret, job.settings, expect,
                course_root, tuple(job.hidden), allow_weak)


def _checked(reply, job):
    """The result and page of a worker's reply, or raise ValueError saying what is wrong."""
    if not isinstance(reply, dict) or not {"result", "page"} <= reply.keys():
        raise ValueError("not a result and a page")
    result, page = reply["result"], reply["page"]
    if not isinstance(result, dict) or not isinstance(page, str):
        raise ValueError("a result or page of the wrong type")
    if (result.get("student_id"), result.get("assignment")) != (job.student, job.chapter.name):
        raise ValueError("the result of another submission")
    if len(page.encode("utf-8", "surrogatepass")) > feedback.MAX_PAGE_BYTES:
        raise ValueError(f"a feedback page over {feedback.MAX_PAGE_BYTES} bytes")
    return result, page


def _save(job, result, page):
    """Write what a worker returned, as a local run writes it: page first, result last."""
    result = dict(result, **job.stamp)
    results.atomic_write_text(results.feedback_path(job.out_dir, job.student, job.chapter.name),
                              page, results.file_mode(job.out_dir))
    results.save_result(job.out_dir, result)  # last: its presence means "done"


def _killed(job, exc):
    """Record a student whose task ended the allowed number of workers; return the report line."""
    return record_lost(job, "not graded: grading this submission ended the Dask workers that ran it "
                            "(the scheduler's allowed-failures); the next run tries again")


def run_cluster(jobs, address, done, *, course, allow_weak_sandbox=False):
    """Grade the grade.Jobs ``jobs`` on the Dask scheduler at ``address``; ``done(job, error)`` each.

    Raises GradingError when the scheduler cannot be reached or is lost, when
    no worker joins, or when a worker refuses (the message says why).
    """
    if not jobs:
        return
    client, cluster = connect(address)
    try:
        _grade_all(client, jobs, address, done, course, allow_weak_sandbox)
    finally:
        try:
            client.close(timeout=10)
        except Exception:  # already gone with the scheduler
            pass
        if cluster is not None:
            cluster.close(timeout=30)


def _grade_all(client, jobs, address, done, course, allow_weak):
    distributed = _import_dask()
    first = jobs[0]
    expect = {"grader_version": first.stamp["grader_version"],
              "source_sha256": first.chapter.source_sha256,
              "release_sha256": first.chapter.release_sha256}
    course_root = None if course.root == REPO_ROOT else str(course.root)
    out_dir = first.out_dir
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT)
        # A worker that dies meanwhile answers with an exception: it grades nothing either.
        refusals = client.run(worker_report, first.chapter.name, expect, course_root, allow_weak,
                              on_error="return")
    except TimeoutError:
        raise GradingError(f"no Dask worker joined the scheduler at {address} within "
                           f"{WORKER_WAIT} s") from None
    except OSError as exc:
        raise _lost(address, out_dir, exc) from None
    refusals = {w: why for w, why in refusals.items() if isinstance(why, str)}
    if refusals:
        shown = "; ".join(f"{w}: {why}" for w, why in sorted(refusals.items())[:3])
        more = f" (and {len(refusals) - 3} more)" if len(refusals) > 3 else ""
        raise GradingError(f"{len(refusals)} Dask worker(s) refuse to grade: {shown}{more}")

    queue, running = deque(jobs), {}
    finished = distributed.as_completed()

    def submit():
        try:
            threads = sum(client.nthreads().values())
        except OSError as exc:
            raise _lost(address, out_dir, exc) from None
        while queue and len(running) < max(4, TASKS_PER_THREAD * threads):
            job = queue.popleft()
            future = client.submit(grade_task, _make_task(job, expect, course_root, allow_weak),
                                   key=f"grade-{job.chapter.name}-{uuid.uuid4().hex}",
                                   pure=False, retries=0)
            running[future] = job
            finished.add(future)

    submit()
    try:
        for future in finished:
            job = running.pop(future)
            try:
                reply = future.result()
            except distributed.KilledWorker as exc:
                done(job, _killed(job, exc))
            except distributed.CancelledError as exc:
                raise _lost(address, out_dir, exc) from None
            except OSError as exc:
                raise _lost(address, out_dir, exc) from None
            except Exception as exc:  # the task raised on the worker: a fault of the grader
                done(job, f"grading failed on a Dask worker: {type(exc).__name__}: "
                          f"{str(exc)[:300]}")
            else:
                if isinstance(reply, dict) and "refused" in reply:
                    raise GradingError(str(reply["refused"])[:2000])
                try:
                    result, page = _checked(reply, job)
                except ValueError as exc:
                    done(job, f"grading failed: a Dask worker's reply was refused: {exc}")
                else:
                    _save(job, result, page)
                    done(job, None)
            future.release()
            if client.status != "running":
                raise _lost(address, out_dir)
            submit()
    finally:
        for future in list(running):
            future.cancel()
