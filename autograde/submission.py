"""Grading one submission: read it, rebuild it, run it, judge each test cell.

The student's code runs in one sandboxed process (``runner.py``) per
submission; test cells run in this process (``judge.py``). When the student's
process times out or dies, the status says where, a fresh process replays
the cells that had succeeded (skipping the one that failed) and grading goes
on, so one bad cell costs only what depends on it.
"""

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.checks import SECRET_ENV

from autograde.client import RunnerClient, RunnerFailure
from autograde.judge import Judge, Verdict
from autograde.notebook_io import SubmissionError, parse_submission, rebuild


@dataclass
class CellRecord:
    """What happened to one cell of the rebuilt notebook while grading."""

    cell: object                     # notebook_io.RunCell
    ran: bool = False
    ok: bool = True
    stdout: str = ""
    stderr: str = ""
    error: dict | None = None        # {"type", "message", "traceback"} of a failed cell
    note: str = ""                   # why it did not run
    verdict: Verdict | None = None   # test cells only


@dataclass
class Graded:
    """The outcome of one submission: the result record, and what the feedback shows."""

    result: dict
    records: list = field(default_factory=list)


def grade_submission(chapter, student_id, submitted, settings, secret):
    """Grade ``submitted`` (a notebook_io.SubmittedFile) of ``student_id``; return a Graded.

    ``secret`` seeds the hidden tests (it is put into this process's
    environment while the test cells run, never into the student's).
    Raises ``client.RunnerStartError`` when the student's process cannot be
    started at all (a problem of the grading machine, not of the submission).
    """
    result = {
        "student_id": student_id,
        "assignment": chapter.name,
        "score": 0.0,
        "max_score": chapter.max_score,
        "status": "ok",
        "submission_sha256": submitted.sha256,
        "source_sha256": chapter.source_sha256,
        "release_sha256": chapter.release_sha256,
        "tests": [],
    }
    try:
        if submitted.raw is None:
            raise SubmissionError(submitted.problem)
        rebuilt = rebuild(chapter, parse_submission(submitted.raw))
    except SubmissionError as exc:
        result["status"] = str(exc)
        result["tests"] = [_test_entry(c.grade_id, c.index, c.points, Verdict(False, "not graded: "
                                       + str(exc))) for c in chapter.tests()]
        return Graded(result)

    with tempfile.TemporaryDirectory(prefix="autograde-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp) / "notebook"
        workdir.mkdir()
        # The bytes graded, not the file again: the submission itself is never touched.
        (workdir / submitted.name).write_bytes(submitted.raw)
        run = _Execution(chapter, rebuilt, settings, workdir)
        saved = os.environ.get(SECRET_ENV)
        os.environ[SECRET_ENV] = secret
        try:
            records = run.run()
        finally:
            if saved is None:
                os.environ.pop(SECRET_ENV, None)
            else:
                os.environ[SECRET_ENV] = saved
    notes = list(rebuilt.notes) + run.notes
    result["status"] = "; ".join(notes) if notes else "ok"
    for rec in records:
        if rec.cell.kind == "test":
            origin = rec.cell.origin
            result["tests"].append(_test_entry(origin.grade_id, rec.cell.index, origin.points,
                                               rec.verdict))
    result["score"] = sum(t["points"] for t in result["tests"])
    return Graded(result, records)


def _test_entry(grade_id, index, max_points, verdict):
    return {"grade_id": grade_id, "cell": index, "max_points": max_points,
            "points": max_points if verdict.passed else 0.0,
            "passed": verdict.passed, "message": verdict.message}


class _Execution:
    """Runs the rebuilt notebook's cells in order, restarting the student's process if needed."""

    def __init__(self, chapter, rebuilt, settings, workdir):
        self.rebuilt = rebuilt
        self.settings = settings
        self.client = RunnerClient(workdir, settings.limits(), settings.output_cap)
        self.judge = Judge(self.client, chapter.answer_names(), chapter.signatures())
        self.notes = []
        self.succeeded = []      # sources of the cells that ran without error, for replays
        self.restarts = 0
        self.stopped = ""        # why the remaining cells are not run

    def run(self):
        """Run every cell in order; return one CellRecord per cell."""
        records = []
        self.client.start()
        self.total_deadline = time.monotonic() + self.settings.total_timeout
        try:
            for cell in self.rebuilt.cells:
                rec = CellRecord(cell)
                records.append(rec)
                if cell.kind in ("markdown", "raw"):
                    continue
                if cell.skip:
                    rec.note = "not run while grading (grader-skip)"
                    if cell.kind == "test":
                        rec.verdict = Verdict(False, "not run while grading (grader-skip)")
                    continue
                if not self.stopped and time.monotonic() >= self.total_deadline:
                    self.stop(f"total time limit reached at {cell.label}; later cells not run")
                if self.stopped:
                    rec.note = "not run: " + self.stopped
                    if cell.kind == "test":
                        rec.verdict = Verdict(False, rec.note)
                    continue
                deadline = min(time.monotonic() + self.settings.cell_timeout, self.total_deadline)
                if cell.kind == "test":
                    self.run_test(rec, deadline)
                else:
                    self.run_code(rec, deadline)
        finally:
            self.client.stop()
        return records

    def stop(self, why):
        """Run no further cell, and say why in the status."""
        self.stopped = why
        self.notes.append(why)

    def run_code(self, rec, deadline):
        """Run a non-test code cell in the student's process."""
        rec.ran = True
        try:
            reply, _ = self.client.request({"op": "exec", "source": rec.cell.source}, None, deadline)
        except RunnerFailure as failure:
            rec.ok = False
            rec.error = {"type": failure.kind, "message": failure.describe(rec.cell.label)}
            self.recover(failure, rec.cell)
            return
        rec.ok = bool(reply.get("ok"))
        rec.stdout = str(reply.get("stdout") or "")
        rec.stderr = str(reply.get("stderr") or "")
        rec.error = reply.get("error") if isinstance(reply.get("error"), dict) else None
        if rec.ok:
            self.succeeded.append(rec.cell.source)
        elif rec.error and rec.error.get("type") == "MemoryError":
            self.notes.append(f"memory limit in {rec.cell.label}")

    def run_test(self, rec, deadline):
        """Run a test cell here, against the student's process."""
        rec.ran = True
        rec.verdict = self.judge.run_test(rec.cell.source, deadline)
        if rec.verdict.failure is not None:
            self.recover(rec.verdict.failure, rec.cell)

    def recover(self, failure, cell):
        """Note the failure, start a fresh process and replay the cells that had succeeded."""
        self.notes.append(failure.describe(cell.label))
        if time.monotonic() >= self.total_deadline:
            self.stop("total time limit reached; later cells not run")
            return
        if self.restarts >= self.settings.max_restarts:
            self.stop("no restart left; later cells not run")
            return
        self.restarts += 1
        self.client.start()
        for source in self.succeeded:
            deadline = min(time.monotonic() + self.settings.cell_timeout, self.total_deadline)
            try:
                self.client.request({"op": "exec", "source": source}, None, deadline)
            except RunnerFailure as again:
                self.stop(f"{again.describe('a replayed cell')} after a restart; "
                          "later cells not run")
                return
