"""Every notebook runs top to bottom: nbval re-executes each source and release notebook.

Each notebook runs in its own pytest subprocess with ``--nbval-lax
--nbval-current-env``; ``tests/conftest.py`` is loaded into it so that, in a
release notebook, the graded test cells are strict expected failures (they
must fail on the stubs) and every other cell must pass. Each notebook must
finish in under a minute.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograde.config import Course

FIXTURE = Course(Path(__file__).parent / "fixtures" / "course")
REPO = Course()
TIME_LIMIT = 60.0  # seconds per notebook on a 2-core machine

NOTEBOOKS = [pytest.param(path, id=f"{label}{path.parent.parent.name}-{path.stem}")
             for course, label in ((FIXTURE, "fixture-"), (REPO, ""))
             for chapter in course.chapters()
             for path in (course.source_notebook(chapter), course.release_notebook(chapter))]

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs(notebook):
    assert notebook.is_file(), f"{notebook} is missing: run `python -m autograde release`"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "--noconftest",
         "-p", "tests.conftest", "-p", "no:cacheprovider", "-q",
         "-o", "addopts=", "--rootdir", str(REPO.root), str(notebook)],
        cwd=REPO.root, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert elapsed < TIME_LIMIT, f"{notebook.name} took {elapsed:.0f} s (limit {TIME_LIMIT:.0f} s)"
