"""Grading one submission: read it, rebuild it, run it, judge each test cell.

The student's code runs in one sandboxed process (``runner.py``) per
submission; test cells run in this process (``judge.py``). When the student's
process times out or dies, the status says where, a fresh process replays
the cells that had succeeded (skipping the one that failed) and grading goes
on, so one bad cell costs only what depends on it.

What one submission can make the grader keep is bounded: each cell's output
by ``GradingSettings.output_cap`` (cut in ``client.check_reply``), all of it
together by :data:`OUTPUT_BUDGET`, the status by :data:`STATUS_CAP`; the
status says what was cut, and what of the submission was set aside (tags of
locked cells, a changed kernelspec).
"""

import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.checks import SECRET_ENV

from autograde.client import RunnerClient, RunnerFailure
from autograde.judge import Judge, Verdict
from autograde.notebook_io import SubmissionError, defined_names, parse_submission, rebuild

_UNDEFINED = re.compile(r"NameError: name '(\w+)' is not defined")


def _names_of(source):
    """Top-level names an answer cell defines; for one that does not parse, its def and class lines."""
    return defined_names(source) or re.findall(r"^(?:def|class)\s+(\w+)", source, re.M)
from autograde.sandbox import scratch_dir

#: Characters of output (stdout, stderr, tracebacks) kept of one submission in all.
OUTPUT_BUDGET = 1_000_000
#: Longest status; the rest is replaced by a count of the notes left out.
STATUS_CAP = 1000
#: Cells named in one note before "and N more".
LABELS_SHOWN = 5


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


def grade_submission(chapter, student_id, submitted, settings, secret, *, hidden=(),
                     kernelspec=None):
    """Grade ``submitted`` (a notebook_io.SubmittedFile) of ``student_id``; return a Graded.

    ``secret`` seeds the hidden tests (it is put into this process's
    environment while the test cells run, never into the student's).
    ``hidden``: host paths the student's sandbox masks (the course, the
    grading state, the output and submissions folders). ``kernelspec``: the
    release's, so that the status can say the submission changed it.
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
        cells = parse_submission(submitted.raw)
        rebuilt = rebuild(chapter, cells)
    except SubmissionError as exc:
        result["status"] = _status([str(exc)])
        result["tests"] = [_test_entry(c.grade_id, c.index, c.points, Verdict(False, "not graded: "
                                       + str(exc))) for c in chapter.tests()]
        return Graded(result)

    # In this process's scratch folder, which a later run sweeps away if this one is killed.
    with tempfile.TemporaryDirectory(prefix="work-", dir=scratch_dir(),
                                     ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp) / "notebook"
        workdir.mkdir()
        # The bytes graded, not the file again: the submission itself is never touched.
        (workdir / submitted.name).write_bytes(submitted.raw)
        run = _Execution(chapter, rebuilt, settings, workdir, hidden)
        saved = os.environ.get(SECRET_ENV)
        os.environ[SECRET_ENV] = secret
        try:
            records = run.run()
        finally:
            if saved is None:
                os.environ.pop(SECRET_ENV, None)
            else:
                os.environ[SECRET_ENV] = saved
    notes = list(rebuilt.notes) + _set_aside(chapter, cells, kernelspec) + run.notes
    if run.cut:
        notes.append("output truncated: " + _labels(run.cut))
    result["status"] = _status(notes)
    for rec in records:
        if rec.cell.kind == "test":
            origin = rec.cell.origin
            result["tests"].append(_test_entry(origin.grade_id, rec.cell.index, origin.points,
                                               rec.verdict))
    result["score"] = sum(t["points"] for t in result["tests"])
    return Graded(result, records)


def _labels(labels):
    """``cell 4 (relu), cell 9``, naming at most LABELS_SHOWN cells."""
    more = len(labels) - LABELS_SHOWN
    return ", ".join(labels[:LABELS_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _status(notes):
    """The notes joined with ``; ``, at most STATUS_CAP characters, else ``ok``."""
    if not notes:
        return "ok"
    text = "; ".join(notes)
    if len(text) <= STATUS_CAP:
        return text
    kept = []
    for note in notes:
        candidate = "; ".join(kept + [note[:STATUS_CAP // 2]])
        if len(candidate) > STATUS_CAP - 40:
            break
        kept.append(note[:STATUS_CAP // 2])
    return "; ".join(kept + [f"{len(notes) - len(kept)} more notes left out"])


def _set_aside(chapter, cells, kernelspec):
    """Notes on what the grader ignored of the submission's metadata.

    Tags of locked cells (tests, read-only cells) that neither the source nor
    the release gives them, and a kernelspec other than the release's: the
    grader runs the source's cells with its own kernel either way, but the
    instructor should see the attempt.
    """
    notes = []
    by_grade_id = {c.grade_id: c for c in chapter.cells if c.grade_id}
    by_id = {c.id: c for c in chapter.cells if c.id}
    tagged = []
    for cell in cells:
        gid = cell["nbgrader"].get("grade_id")
        target = (by_grade_id.get(gid) if isinstance(gid, str) else None) or by_id.get(cell["id"])
        given = set(target.tags) | set(target.release_tags) if target is not None else set()
        if target is not None and target.locked and set(cell.get("tags", ())) - given:
            if target.label not in tagged:
                tagged.append(target.label)
    if tagged:
        notes.append("tags of locked cells ignored: " + _labels(tagged))
    asked = getattr(cells, "kernelspec", None)
    if kernelspec is not None and isinstance(asked, str) and asked != kernelspec.get("name"):
        notes.append(f"kernelspec restored ({asked[:40]!r} asked for, "
                     f"{kernelspec.get('name')!r} used)")
    return notes


def _test_entry(grade_id, index, max_points, verdict):
    return {"grade_id": grade_id, "cell": index, "max_points": max_points,
            "points": max_points if verdict.passed else 0.0,
            "passed": verdict.passed, "message": verdict.message}


class _Execution:
    """Runs the rebuilt notebook's cells in order, restarting the student's process if needed."""

    def __init__(self, chapter, rebuilt, settings, workdir, hidden=()):
        self.rebuilt = rebuilt
        self.settings = settings
        self.client = RunnerClient(workdir, settings.limits(), settings.output_cap,
                                   hidden=hidden)
        self.judge = Judge(self.client, chapter.answer_names(), chapter.signatures())
        self.notes = []
        self.succeeded = []      # sources of the cells that ran without error, for replays
        self.restarts = 0
        self.stopped = ""        # why the remaining cells are not run
        self.cut = []            # labels of the cells whose output was cut
        self.broken = {}         # name an answer cell defines -> what that cell raised
        self.budget = OUTPUT_BUDGET

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
        cut = reply.get("truncated", False)
        rec.stdout, rec.stderr = reply.get("stdout") or "", reply.get("stderr") or ""
        rec.error = reply.get("error")
        if len(rec.stdout) + len(rec.stderr) + len((rec.error or {}).get("traceback", "")) \
                > self.budget:
            rec.stdout, rec.stderr = self.keep(rec.stdout), self.keep(rec.stderr)
            if rec.error and "traceback" in rec.error:
                rec.error = dict(rec.error, traceback=self.keep(rec.error["traceback"]))
            cut = True
        else:
            self.budget -= len(rec.stdout) + len(rec.stderr) \
                + len((rec.error or {}).get("traceback", ""))
        if cut:
            self.cut.append(rec.cell.label)
        if rec.ok:
            self.succeeded.append(rec.cell.source)
        elif rec.error and rec.error.get("type") == "MemoryError":
            self.notes.append(f"memory limit in {rec.cell.label}")
        elif rec.cell.kind == "answer":
            # Its tests would only say "name ... is not defined": say why.
            what = str((rec.error or {}).get("type") or "an error")[:80]
            self.notes.append(f"{rec.cell.label} raised {what} and did not run")
            for name in _names_of(rec.cell.source):
                self.broken[name] = what

    def keep(self, text):
        """What fits of ``text`` in the submission's output budget, with a note if cut."""
        if len(text) <= self.budget:
            self.budget -= len(text)
            return text
        kept, self.budget = text[:self.budget], 0
        return kept + f"\n[output truncated: the notebook's output reached " \
                      f"{OUTPUT_BUDGET:,} characters]\n"

    def run_test(self, rec, deadline):
        """Run a test cell here, against the student's process."""
        rec.ran = True
        rec.verdict = self.judge.run_test(rec.cell.source, deadline)
        if rec.verdict.failure is not None:
            self.recover(rec.verdict.failure, rec.cell)
        elif not rec.verdict.passed:
            match = _UNDEFINED.match(rec.verdict.message)
            if match and match.group(1) in self.broken:
                rec.verdict.message += (f" Its answer cell raised {self.broken[match.group(1)]} when "
                                        "it ran, so nothing in it was defined: fix that error first.")

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
