"""Checking one's own notebook: ``python -m autograde validate NOTEBOOK``.

The notebook is run exactly as the grader runs it (the same rebuild from
the release, the same sandboxed process, the same copies of arguments), with
the release's visible tests only and the seeds a student's own notebook uses.
So what validate says about a test cell is what grading says about its
visible part, and every failure is printed in full: the hint at the end of a
message is the part that matters.
"""

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from autograde.config import Course, load_settings
from autograde.notebook_io import ChapterError, load_chapter, open_submission
from autograde.results import format_points
from autograde.submission import grade_submission

WIDTH = 100


@dataclass
class Validation:
    """The outcome of validating one notebook."""

    chapter: str
    tests: list = field(default_factory=list)   # the result's test entries
    status: str = "ok"
    score: float = 0.0
    max_score: float = 0.0

    @property
    def passed(self):
        """True when every visible test passes."""
        return bool(self.tests) and all(t["passed"] for t in self.tests)


def chapter_of(notebook, course):
    """The chapter a notebook belongs to: its file name, when that is a released chapter."""
    name = Path(notebook).stem
    if course.release_notebook(name).is_file():
        return name
    known = sorted(p.parent.name for p in course.release_dir.glob("*/*.ipynb")
                   if p.stem == p.parent.name)
    raise ChapterError(f"{Path(notebook).name} is not a chapter's notebook (chapters: "
                       f"{', '.join(known) or 'none'}); keep its file name, or name the chapter "
                       "with --chapter")


def validate(notebook, course=None, chapter=None, settings=None):
    """Run ``notebook`` against its chapter's visible tests; return a Validation."""
    course = course or Course()
    chapter = chapter or chapter_of(notebook, course)
    release = course.release_notebook(chapter)
    chap = load_chapter(release, release, chapter)   # the release: no hidden test, no solution
    graded = grade_submission(chap, "you", open_submission(notebook), settings or load_settings(),
                              secret="")
    result = graded.result
    return Validation(chapter, result["tests"], result["status"], result["score"],
                      result["max_score"])


def report(validation):
    """The text validate prints: one line per test cell, each failure's message in full."""
    lines = []
    for test in validation.tests:
        mark = "PASS" if test["passed"] else "FAIL"
        points = f"{format_points(test['points'])}/{format_points(test['max_points'])}"
        lines.append(f"{mark}  {test['grade_id']}  ({points} points)")
        if not test["passed"] and test["message"]:
            for paragraph in str(test["message"]).splitlines():
                lines.extend(textwrap.wrap(paragraph, WIDTH, initial_indent="      ",
                                           subsequent_indent="      ") or [""])
    if validation.status != "ok":
        lines.append("")
        lines.extend(textwrap.wrap("Note: " + validation.status, WIDTH, subsequent_indent="      "))
    passed = sum(t["passed"] for t in validation.tests)
    lines.append("")
    lines.append(f"{passed} of {len(validation.tests)} test cells pass "
                 f"({format_points(validation.score)} of {format_points(validation.max_score)} "
                 "points in the visible tests).")
    if validation.passed:
        lines.append("All visible tests pass. Grading also runs hidden tests on new inputs.")
    return "\n".join(lines)
