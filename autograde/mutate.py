"""Mutation analysis of a chapter's tests: does every plausible bug lose points?

Each mutant (``autograde.mutants``) is one answer cell of the instructor's
source with a single small bug in its solution; every other cell stays
correct. A mutant is *killed* when at least one test cell of its exercise
fails, or when it makes the student's process time out or die; it
*survives* when all of them pass, which means the tests would give full
marks to that bug. The score of an exercise is killed / (killed + survived).

Mutants are graded in the same sandbox and by the same :class:`Judge` as
real submissions, with one fixed secret so that a rerun draws the same hidden
inputs. A worker starts one student process, runs the solution notebook's
code cells once (all but test cells and ``grader-skip`` cells), and then,
per mutant, runs the mutant's cell, that exercise's test cells, and the
original cell again. Only a mutant that kills the process costs a restart.

Mutants that cannot change any result (equivalent mutants) are listed by id
in ``solutions/<chapter>/equivalent_mutants.txt``; they still run, are
reported apart and do not count in the score.
"""

import atexit
import json
import multiprocessing
import os
import shutil
import tempfile
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from course_lib.checks import SECRET_ENV

from autograde.client import RunnerClient, RunnerFailure
from autograde.config import load_settings
from autograde.judge import Judge
from autograde.mutants import cell_mutants
from autograde.notebook_io import load_chapter
from autograde.sandbox import scratch_dir

#: The secret the hidden tests are seeded with during mutation analysis.
SECRET = "mutation-analysis"
DEFAULT_MIN_SCORE = 0.95
EQUIVALENTS_FILE = "equivalent_mutants.txt"
#: A mutant's tests may take this many times as long as the solution's ...
TIMEOUT_FACTOR = 10.0
#: ... but never less than this many seconds (a loaded machine must not kill a correct mutant).
MIN_TIMEOUT = 10.0


class MutationError(Exception):
    """The analysis cannot run: unknown chapter, or a solution that fails its own tests."""


@dataclass
class Outcome:
    """What grading one mutant gave."""

    id: str
    exercise: str
    status: str          # killed, survived or invalid
    killed_by: str = ""  # the first failing test cell's grade_id, or "timeout", "crash", ...
    message: str = ""    # that test's verdict message, or why the mutant is invalid
    seconds: float = 0.0


@dataclass
class ExerciseReport:
    """The mutants of one answer cell and what became of them."""

    exercise: str
    mutants: list                                     # mutants.Mutant, in source order
    outcomes: dict = field(default_factory=dict)      # id -> Outcome
    equivalent: dict = field(default_factory=dict)    # id -> reason, for this exercise's mutants

    def _ids(self, status, equivalent=False):
        return [m.id for m in self.mutants
                if m.id in self.outcomes and self.outcomes[m.id].status == status
                and (m.id in self.equivalent) == equivalent]

    @property
    def killed(self):
        """Ids of the killed mutants that are not listed as equivalent."""
        return self._ids("killed")

    @property
    def survived(self):
        """Ids of the surviving mutants that are not listed as equivalent."""
        return self._ids("survived")

    @property
    def invalid(self):
        """Ids of the mutants whose cell raised when it ran (they define nothing to test)."""
        return [m.id for m in self.mutants if m.id in self.outcomes
                and self.outcomes[m.id].status == "invalid"]

    @property
    def equivalent_killed(self):
        """Ids listed as equivalent that a test killed anyway: the list is wrong about them."""
        return self._ids("killed", equivalent=True)

    @property
    def score(self):
        """killed / (killed + survived), or None when nothing counts."""
        counted = len(self.killed) + len(self.survived)
        return len(self.killed) / counted if counted else None


@dataclass
class ChapterReport:
    """The mutation analysis of one chapter."""

    chapter: str
    exercises: list                                 # ExerciseReport, in notebook order
    stale: list = field(default_factory=list)       # listed equivalent ids no mutant has
    equivalents_file: str = ""
    seconds: float = 0.0
    workers: int = 1

    @property
    def killed(self):
        """How many counted mutants were killed."""
        return sum(len(e.killed) for e in self.exercises)

    @property
    def survived(self):
        """How many counted mutants survived."""
        return sum(len(e.survived) for e in self.exercises)

    @property
    def score(self):
        """killed / (killed + survived) over the whole chapter, or None when nothing counts."""
        counted = self.killed + self.survived
        return self.killed / counted if counted else None

    def mutant(self, mutant_id):
        """The Mutant with this id."""
        for ex in self.exercises:
            for m in ex.mutants:
                if m.id == mutant_id:
                    return m
        raise KeyError(mutant_id)


# ---------------------------------------------------------------------------
# Equivalent mutants


def read_equivalents(path):
    """``{id: reason}`` from an equivalents file ({} when there is none).

    One id per line; ``# ...`` starts a comment. A comment after an id is its
    reason; an id without one takes the comment lines just above it, so one
    reason can cover a group of ids.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    out, reason = {}, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        text, _, comment = line.partition("#")
        mutant_id, comment = text.strip(), comment.strip()
        if mutant_id:
            out[mutant_id] = comment or reason
        elif comment:
            reason = comment
        else:
            reason = ""
    return out


# ---------------------------------------------------------------------------
# Running the analysis


def chapter_mutants(chapter):
    """``{grade_id: [Mutant, ...]}`` for every answer cell that the grader runs."""
    return {cell.grade_id: cell_mutants(cell.source, cell.grade_id)
            for cell in chapter.answers() if not cell.skip}


def analyse(course, chapter_name, *, exercise=None, workers=2, settings=None, progress=True,
            timeout_factor=TIMEOUT_FACTOR, min_timeout=MIN_TIMEOUT):
    """Grade every mutant of ``chapter_name`` (or of one ``exercise``); return a ChapterReport.

    Raises MutationError when the chapter or exercise is unknown, when a
    cell of the solution fails, or when the solution fails its own tests.
    Raises client.RunnerStartError when no student process can be started.
    """
    start = time.perf_counter()
    if chapter_name not in course.chapters():
        raise MutationError(f"unknown chapter {chapter_name!r} (known: "
                            f"{', '.join(course.chapters()) or 'none'})")
    chapter = load_chapter(course.source_notebook(chapter_name),
                           course.release_notebook(chapter_name), chapter_name)
    by_exercise = chapter_mutants(chapter)
    if exercise is not None and exercise not in by_exercise:
        raise MutationError(f"{chapter_name} has no exercise {exercise!r} (answer cells: "
                            f"{', '.join(by_exercise)})")
    equivalents_path = course.source_dir / chapter_name / EQUIVALENTS_FILE
    equivalents = read_equivalents(equivalents_path)
    all_ids = {m.id for ms in by_exercise.values() for m in ms}
    shown_path = equivalents_path.relative_to(course.root) \
        if equivalents_path.is_relative_to(course.root) else equivalents_path
    report = ChapterReport(chapter_name, [], stale=sorted(set(equivalents) - all_ids),
                           equivalents_file=str(shown_path), workers=max(1, workers))
    for gid, mutants in by_exercise.items():
        if exercise is None or gid == exercise:
            report.exercises.append(ExerciseReport(
                gid, mutants, equivalent={m.id: equivalents[m.id] for m in mutants
                                          if m.id in equivalents}))
    todo = [m for ex in report.exercises for m in ex.mutants]
    settings = settings or load_settings()
    # As in grading, the student's process does not see the course or its grading state.
    hidden = tuple(str(Path(p).resolve()) for p in (course.root, course.state))
    job = _Job(chapter, settings, timeout_factor, min_timeout, hidden)
    outcomes = _run(job, todo, report.workers, progress)
    for ex in report.exercises:
        ex.outcomes = {m.id: outcomes[m.id] for m in ex.mutants}
    report.seconds = time.perf_counter() - start
    return report


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs, picklable for worker processes."""

    chapter: object          # notebook_io.Chapter
    settings: object         # config.GradingSettings
    timeout_factor: float
    min_timeout: float
    hidden: tuple = ()       # host paths the sandbox masks


def _run(job, mutants, workers, progress):
    """``{id: Outcome}`` for ``mutants``, graded by ``workers`` processes."""
    outcomes = {}
    bar = tqdm(total=len(mutants), desc=f"mutants of {job.chapter.name}", unit="mutant",
               disable=not progress)
    try:
        if workers <= 1 or len(mutants) <= 1:
            with _secret():
                worker = _Worker(job)
                try:
                    for mutant in mutants:
                        outcomes[mutant.id] = worker.grade(mutant)
                        bar.update()
                finally:
                    worker.close()
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                     initializer=_init_process, initargs=(job,)) as pool:
                futures = [pool.submit(_grade_in_process, m) for m in mutants]
                try:
                    for future in as_completed(futures):
                        outcome = future.result()
                        outcomes[outcome.id] = outcome
                        bar.update()
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
    finally:
        bar.close()
    return outcomes


class _secret:
    """Seed the hidden tests with :data:`SECRET` for the duration of a block."""

    def __enter__(self):
        self.saved = os.environ.get(SECRET_ENV)
        os.environ[SECRET_ENV] = SECRET

    def __exit__(self, *exc):
        if self.saved is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = self.saved


_WORKER = None


def _init_process(job):
    global _WORKER
    os.environ[SECRET_ENV] = SECRET
    _WORKER = _Worker(job)
    atexit.register(_WORKER.close)


def _grade_in_process(mutant):
    return _WORKER.grade(mutant)


class _Worker:
    """One student process holding the solved notebook; grades one mutant at a time."""

    def __init__(self, job):
        self.job = job
        chapter = job.chapter
        self.settings = job.settings
        self.setup = [c.source for c in chapter.cells
                      if c.cell_type == "code" and c.role != "test" and not c.skip]
        self.originals = {c.grade_id: c.source for c in chapter.answers()}
        self.tests = {c.grade_id: [(t.grade_id, t.source) for t in chapter.tests_of(c.grade_id)
                                   if not t.skip] for c in chapter.answers()}
        self.labels = {c.source: c.label for c in chapter.cells}
        # In this process's scratch folder, which a later run sweeps away if this one is killed.
        self.workdir = Path(tempfile.mkdtemp(prefix="mutate-", dir=scratch_dir()))
        self.client = RunnerClient(self.workdir, self.settings.limits(), self.settings.output_cap,
                                   hidden=job.hidden)
        self.judge = Judge(self.client, chapter.answer_names())
        self.baseline = {}   # grade_id -> seconds the solution's tests took

    def close(self):
        """Stop the student's process and remove the working folder."""
        self.client.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def start(self):
        """A fresh student process that has run the solution notebook's code cells.

        As in grading, a demo cell that raises is passed over; an answer cell
        that raises, or any cell that kills the process, is a MutationError.
        """
        self.client.start()
        answers = set(self.originals.values())
        for source in self.setup:
            label = self.labels.get(source, "a cell")
            try:
                ok, why = self.exec(source)
            except RunnerFailure as failure:
                raise MutationError(f"the solution notebook cannot run: "
                                    f"{failure.describe(label)}") from None
            if not ok and source in answers:
                self.client.stop()
                raise MutationError(f"{label} of the solution fails: {why}")

    def exec(self, source):
        """Run ``source`` in the student's process: ``(ok, why not)``; RunnerFailure if it dies."""
        deadline = time.monotonic() + self.settings.cell_timeout
        reply, _ = self.client.request({"op": "exec", "source": source}, None, deadline)
        if reply.get("ok"):
            return True, ""
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        return False, f"{error.get('type', 'error')}: {error.get('message', '')}".strip()

    def run_tests(self, exercise, seconds):
        """``(None, "")`` when every test cell of ``exercise`` passes, else the first failure.

        A failure is ``(label, message)`` with the test cell's grade_id, or
        RunnerFailure's kind (``timeout``, ``died``, ...) when the process failed.
        """
        deadline = time.monotonic() + seconds
        for label, source in self.tests[exercise]:
            verdict = self.judge.run_test(source, deadline)
            if verdict.failure is not None:
                self.client.stop()
                return verdict.failure.kind, verdict.message
            if not verdict.passed:
                return label, verdict.message
        return None, ""

    def grade(self, mutant):
        """Run one mutant's tests; return its Outcome."""
        began = time.perf_counter()
        if not self.client.alive:
            self.start()
        exercise = mutant.exercise
        if exercise not in self.baseline:
            self.baseline[exercise] = self.measure(exercise)
        limit = max(self.job.min_timeout, self.job.timeout_factor * self.baseline[exercise])
        try:
            ok, why = self.exec(mutant.source)
        except RunnerFailure as failure:
            return Outcome(mutant.id, exercise, "killed", failure.kind,
                           failure.describe("the mutant's cell"), time.perf_counter() - began)
        if not ok:
            outcome = Outcome(mutant.id, exercise, "invalid", "", why)
        else:
            label, message = self.run_tests(exercise, limit)
            outcome = Outcome(mutant.id, exercise, "killed" if label else "survived", label or "",
                              message)
        if self.client.alive:
            self.restore(exercise)
        outcome.seconds = time.perf_counter() - began
        return outcome

    def restore(self, exercise):
        """Run the original answer cell again (the process is restarted if that fails)."""
        try:
            ok, _ = self.exec(self.originals[exercise])
        except RunnerFailure:
            ok = False
        if not ok:
            self.client.stop()

    def measure(self, exercise):
        """Seconds the solution's tests of ``exercise`` take; MutationError if they fail."""
        if not self.tests[exercise]:
            raise MutationError(f"exercise {exercise} has no test cell that the grader runs")
        began = time.perf_counter()
        label, message = self.run_tests(exercise, self.settings.cell_timeout
                                        * len(self.tests[exercise]))
        if label:
            raise MutationError(f"the solution of {exercise} fails {label}: {message}")
        return time.perf_counter() - began


# ---------------------------------------------------------------------------
# Reporting


def _percent(score):
    return "n/a" if score is None else f"{100 * score:.1f}%"


def format_report(report, min_score=DEFAULT_MIN_SCORE):
    """The report of one chapter as text: a table, then every surviving mutant with its diff."""
    lines = [f"Mutation analysis of {report.chapter}: "
             f"{sum(len(e.mutants) for e in report.exercises)} mutants of "
             f"{len(report.exercises)} exercise(s), {report.workers} worker(s), "
             f"{report.seconds:.0f} s", ""]
    width = max([len("exercise"), len("chapter")] + [len(e.exercise) for e in report.exercises])

    def row(name, mutants, invalid, equivalent, killed, survived, score):
        return (f"{name:<{width}}  {mutants:7d}  {invalid:7d}  {equivalent:10d}  {killed:6d}  "
                f"{survived:8d}  {_percent(score):>6}")

    header = f"{'exercise':<{width}}  mutants  invalid  equivalent  killed  survived   score"
    lines += [header, "-" * len(header)]
    for ex in report.exercises:
        lines.append(row(ex.exercise, len(ex.mutants), len(ex.invalid), len(ex.equivalent),
                         len(ex.killed), len(ex.survived), ex.score))
    flag = "" if report.score is None or report.score >= min_score else \
        f"   below {_percent(min_score)}"
    lines += ["-" * len(header),
              row("chapter", sum(len(e.mutants) for e in report.exercises),
                  sum(len(e.invalid) for e in report.exercises),
                  sum(len(e.equivalent) for e in report.exercises), report.killed,
                  report.survived, report.score) + flag]
    survivors = [(ex, mid) for ex in report.exercises for mid in ex.survived]
    if survivors:
        lines += [""] + textwrap.wrap(
            f"Surviving mutants ({len(survivors)}): the tests give full marks to each of these "
            "bugs. Add a hidden check that fails on it, or, if it cannot change any result, list "
            f"its id in {report.equivalents_file} with a # reason.", 100)
        for ex, mid in survivors:
            mutant = report.mutant(mid)
            lines += ["", f"{mid}   (line {mutant.line} of {ex.exercise})"]
            lines += ["    " + line for line in mutant.diff.rstrip("\n").splitlines()]
    wrong = [(ex, mid) for ex in report.exercises for mid in ex.equivalent_killed]
    if wrong:
        lines += [""] + textwrap.wrap(
            "Listed as equivalent but killed (a test tells them apart from the solution, so they "
            "are not equivalent: remove them from the list):", 100)
        lines += [f"  {mid}: {ex.outcomes[mid].killed_by}" for ex, mid in wrong]
    if report.stale:
        lines += [""] + textwrap.wrap(
            f"Stale ids in {report.equivalents_file} (no mutant has them any more: remove them, "
            "or find the mutant's new id):", 100)
        lines += [f"  {mid}" for mid in report.stale]
    invalid = [(ex, mid) for ex in report.exercises for mid in ex.invalid]
    if invalid:
        lines += ["", "Invalid mutants (their cell raised when it ran; not counted):"]
        lines += [f"  {mid}: {ex.outcomes[mid].message[:100]}" for ex, mid in invalid]
    return "\n".join(lines)


def report_json(report):
    """The report of one chapter as plain data (for ``--json``)."""
    exercises = []
    for ex in report.exercises:
        mutants = []
        for m in ex.mutants:
            outcome = ex.outcomes.get(m.id)
            mutants.append({"id": m.id, "function": m.function, "operator": m.operator,
                            "line": m.line, "status": outcome.status if outcome else "not run",
                            "equivalent": m.id in ex.equivalent,
                            "equivalent_reason": ex.equivalent.get(m.id),
                            "killed_by": outcome.killed_by if outcome else "",
                            "message": outcome.message if outcome else "",
                            "seconds": round(outcome.seconds, 3) if outcome else None,
                            "diff": m.diff})
        exercises.append({"exercise": ex.exercise, "mutants": len(ex.mutants),
                          "invalid": len(ex.invalid), "equivalent": len(ex.equivalent),
                          "killed": len(ex.killed), "survived": len(ex.survived),
                          "score": ex.score, "surviving": ex.survived,
                          "equivalent_but_killed": ex.equivalent_killed, "details": mutants})
    return {"chapter": report.chapter, "score": report.score, "killed": report.killed,
            "survived": report.survived, "seconds": round(report.seconds, 1),
            "workers": report.workers, "stale_equivalents": report.stale,
            "exercises": exercises}


def write_json(path, reports, min_score, failed=()):
    """Write the reports of every chapter analysed, and the chapters that failed, to ``path``."""
    data = {"min_score": min_score,
            "passed": not failed and all(r.score is None or r.score >= min_score for r in reports),
            "could_not_analyse": list(failed),
            "chapters": [report_json(r) for r in reports]}
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
