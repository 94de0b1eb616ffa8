"""Command line of the grading pipeline: ``python -m autograde {release,grade,lint,validate}``."""

import argparse
import sys
import time
from pathlib import Path

USAGE = """\
python -m autograde release [CHAPTER ...]
    Regenerate notebooks/<ch>/<ch>.ipynb from solutions/<ch>/<ch>.ipynb with
    nbgrader (all chapters when none is given). Commit the result.

python -m autograde grade CHAPTER SUBMISSIONS_DIR --out OUT_DIR [--workers N]
                         [--scheduler ADDRESS|local:N] [--allow-weak-sandbox]
    Grade SUBMISSIONS_DIR/<student_id>/<CHAPTER>.ipynb (or nbgrader's
    <student_id>/<CHAPTER>/<CHAPTER>.ipynb) for every student folder.
    Writes OUT_DIR/feedback/<student_id>/<CHAPTER>.html,
    OUT_DIR/results/<CHAPTER>/<student_id>.json and OUT_DIR/grades.csv
    (student_id, assignment, score, max_score, status) of every chapter
    graded into OUT_DIR. A rerun skips students whose submission has not changed.
    --scheduler grades on the workers of a Dask scheduler (pip install -e
    ".[cluster]"); local:N starts N worker processes here.

python -m autograde lint [CHAPTER ...]
    Check the chapters' source notebooks against docs/authoring.md.

python -m autograde mutate [CHAPTER ...] [--exercise GRADE_ID] [--workers N]
                           [--json OUT] [--min-score 0.95]
    Mutation analysis of the tests (all chapters when none is given): grade
    plausible single-point bugs of each reference solution and list every bug
    the tests let through. Exit status 1 when a chapter kills fewer than
    --min-score of its mutants.

python -m autograde validate NOTEBOOK [--chapter CHAPTER]
    Run a student's notebook the way the grader does, against its chapter's
    visible tests, and print every failing test's message in full.

python -m autograde publish DIR [--course-id ID]
    Write the student-safe course tree into DIR: the release, course_lib, the
    grader's validate, the student README, Makefile and environment. Nothing of
    solutions/, the tests or the grading state.

python -m autograde export OUT_DIR [--to DIR]
    Write the grades of every chapter graded into OUT_DIR as plain CSV, Canvas's
    and Moodle's import CSV, and into nbgrader's gradebook (formgrader).
"""


def _parser():
    parser = argparse.ArgumentParser(prog="python -m autograde", description=USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course-root", type=Path, default=None,
                        help="course folder holding solutions/ and notebooks/ "
                             "(default: this repository)")
    parser.add_argument("--state", type=Path, default=None,
                        help="folder for grading state: gradebook, secret key "
                             "(default: autograde/state)")
    sub = parser.add_subparsers(dest="command", required=True)

    rel = sub.add_parser("release", help="regenerate the student release")
    rel.add_argument("chapters", nargs="*", metavar="CHAPTER")

    grd = sub.add_parser("grade", help="grade a folder of submissions")
    grd.add_argument("chapter", metavar="CHAPTER")
    grd.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR")
    grd.add_argument("--out", type=Path, required=True, metavar="OUT_DIR")
    grd.add_argument("--workers", type=int, default=1, help="students graded in parallel")
    grd.add_argument("--cell-timeout", type=float, default=None,
                     help="seconds per cell (default: c.Execute.timeout in nbgrader_config.py)")
    grd.add_argument("--total-timeout", type=float, default=None,
                     help="seconds per submission (default: c.CourseGrader.total_timeout)")
    grd.add_argument("--quiet", action="store_true", help="no progress bar")
    grd.add_argument("--shared-output", action="store_true",
                     help="let other users of this machine read OUT_DIR (default: only you)")
    grd.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="grade on the workers of this Dask scheduler (tcp://host:8786), "
                          "or on N local worker processes (local:N)")
    grd.add_argument("--allow-weak-sandbox", action="store_true",
                     help="let Dask workers whose sandbox gives resource limits only grade")

    lnt = sub.add_parser("lint", help="check the authoring contract")
    lnt.add_argument("chapters", nargs="*", metavar="CHAPTER")

    mut = sub.add_parser("mutate", help="mutation analysis of a chapter's tests")
    mut.add_argument("chapters", nargs="*", metavar="CHAPTER")
    mut.add_argument("--exercise", default=None, metavar="GRADE_ID",
                     help="only the mutants of this answer cell (one chapter only)")
    mut.add_argument("--workers", type=int, default=2, help="mutants graded in parallel")
    mut.add_argument("--json", type=Path, default=None, metavar="OUT",
                     help="also write the full report (every mutant) as JSON")
    mut.add_argument("--min-score", type=float, default=None,
                     help="lowest acceptable share of mutants killed (default 0.95)")
    mut.add_argument("--quiet", action="store_true", help="no progress bar")

    val = sub.add_parser("validate", help="check a notebook against its visible tests")
    val.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    val.add_argument("--chapter", default=None, help="the chapter (default: the file's name)")

    pub = sub.add_parser("publish", help="write the student-safe course tree")
    pub.add_argument("dir", type=Path, metavar="DIR")
    pub.add_argument("--course-id", default=None, help="nbgrader's course id, named in the README")

    exp = sub.add_parser("export", help="grades as CSV for a spreadsheet, Canvas and Moodle")
    exp.add_argument("out", type=Path, metavar="OUT_DIR", help="the folder `grade --out` wrote")
    exp.add_argument("--to", type=Path, default=None, metavar="DIR",
                     help="where the CSV files go (default: OUT_DIR/export)")
    exp.add_argument("--no-gradebook", action="store_true",
                     help="do not write the grades into nbgrader's gradebook")
    return parser


def main(argv=None):
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    from autograde.config import Course
    course = Course(**{k: v for k, v in (("root", args.course_root), ("state", args.state))
                       if v is not None})
    commands = {"release": _release, "grade": _grade, "lint": _lint, "validate": _validate,
                "mutate": _mutate, "publish": _publish, "export": _export}
    return commands[args.command](course, args)


def _release(course, args):
    from autograde.notebook_io import ChapterError
    from autograde.release import ReleaseError, release
    start = time.perf_counter()
    try:
        written = release(course, args.chapters)
    except (ChapterError, ReleaseError) as exc:
        print(f"release failed: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"released {path.relative_to(course.root) if path.is_relative_to(course.root) else path}")
    print(f"{len(written)} chapter(s) in {time.perf_counter() - start:.1f} s")
    return 0


def sandbox_warning():
    """A warning when this machine can only give the weak sandbox (limits, no isolation), else None."""
    from autograde.sandbox import capabilities
    caps = capabilities()
    if caps.get("mode") != "rlimits":
        return None
    return ("warning: this machine gives the grading sandbox resource limits only: student code runs "
            "as your user and can read your files and use the network. Grade untrusted submissions "
            "as root, where user namespaces are allowed, or inside a container (see the README).")


def _grade(course, args):
    from autograde.config import load_settings
    from autograde.grade import GradingError, grade
    from autograde.notebook_io import ChapterError
    settings = load_settings(cell_timeout=args.cell_timeout, total_timeout=args.total_timeout)
    warning = None if args.scheduler else sandbox_warning()  # workers check their own
    if warning:
        print(warning, file=sys.stderr)
    start = time.perf_counter()
    try:
        report = grade(args.chapter, args.submissions, args.out, course=course,
                       workers=max(1, args.workers), settings=settings, progress=not args.quiet,
                       scheduler=args.scheduler, allow_weak_sandbox=args.allow_weak_sandbox,
                       private=not args.shared_output)
    except (GradingError, ChapterError) as exc:
        print(f"grading failed: {exc}", file=sys.stderr)
        return 2
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"graded {len(report.graded)}, unchanged {len(report.skipped)}, "
          f"could not grade {len(report.failed)} in {time.perf_counter() - start:.1f} s; "
          f"grades in {args.out / 'grades.csv'}")
    for student, why in sorted(report.failed.items()):
        print(f"could not grade {student}: {why}", file=sys.stderr)
    return 1 if report.failed else 0


def _lint(course, args):
    from autograde.lint import lint
    known = course.chapters()
    unknown = [ch for ch in args.chapters if ch not in known]
    if unknown:
        print(f"unknown chapter(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    problems = lint(course, args.chapters)
    count = 0
    for chapter, items in problems.items():
        for item in items:
            print(f"{chapter}: {item}")
            count += 1
    print(f"{len(problems)} chapter(s) checked, {count} problem(s)")
    return 1 if count else 0


def _validate(course, args):
    from autograde.client import RunnerStartError
    from autograde.notebook_io import ChapterError
    from autograde.validate import report, validate
    if not args.notebook.is_file():
        print(f"no notebook at {args.notebook}", file=sys.stderr)
        return 2
    print(f"Validating {args.notebook} against the visible tests ...", flush=True)
    try:
        outcome = validate(args.notebook, course, args.chapter)
    except (ChapterError, RunnerStartError) as exc:
        print(f"validate failed: {exc}", file=sys.stderr)
        return 2
    print(report(outcome))
    return 0 if outcome.passed else 1


def _publish(course, args):
    from autograde.publish import PublishError, publish
    try:
        names = publish(args.dir, course, course_id=args.course_id)
    except PublishError as exc:
        print(f"publish failed: {exc}", file=sys.stderr)
        return 2
    print(f"published {len(names)} files into {args.dir}")
    return 0


def _export(course, args):
    from autograde.export import ExportError, export
    try:
        written = export(args.out, args.to, course=course, gradebook=not args.no_gradebook)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


def _mutate(course, args):
    from autograde.client import RunnerStartError
    from autograde.mutate import (DEFAULT_MIN_SCORE, MutationError, analyse, format_report,
                                  write_json)
    from autograde.notebook_io import ChapterError
    min_score = DEFAULT_MIN_SCORE if args.min_score is None else args.min_score
    if not 0.0 <= min_score <= 1.0:
        print(f"--min-score must lie between 0 and 1, got {min_score}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"--workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.exercise is not None and len(args.chapters) != 1:
        print("--exercise needs exactly one chapter", file=sys.stderr)
        return 2
    reports, failed = [], []
    for chapter in args.chapters or course.chapters():
        try:
            report = analyse(course, chapter, exercise=args.exercise, workers=args.workers,
                             progress=not args.quiet)
        except (MutationError, ChapterError, RunnerStartError) as exc:
            print(f"mutation analysis of {chapter} failed: {exc}", file=sys.stderr)
            failed.append(chapter)
            continue
        reports.append(report)
        print(format_report(report, min_score), end="\n\n", flush=True)
    if args.json is not None:
        write_json(args.json, reports, min_score, failed)
        print(f"full report in {args.json}")
    below = [r.chapter for r in reports if r.score is not None and r.score < min_score]
    if below:
        print(f"below the minimum score of {100 * min_score:.0f}%: {', '.join(below)}")
    if failed:
        print(f"could not analyse: {', '.join(failed)}", file=sys.stderr)
    return 2 if failed else 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())

