"""Every notebook runs top to bottom: nbval re-executes each source and release notebook.

One pytest subprocess runs nbval (``--nbval-lax --nbval-current-env``) on all
notebooks, one kernel per notebook, and reports to a JUnit XML file; each
notebook then gets its own test here. ``tests/conftest.py`` is loaded into
that run so that, in a release notebook, the graded test cells are strict
expected failures (each must fail on the stubs) and every other cell must
pass. Each notebook must finish in under a minute. A notebook whose kernel
died before it ran a cell is run once more; any other failure stands.
"""

import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from autograde.config import Course

FIXTURE = Course(Path(__file__).parent / "fixtures" / "course")
REPO = Course()
TIME_LIMIT = 60.0  # seconds per notebook on a 2-core machine

PATHS = [path for course in (FIXTURE, REPO) for chapter in course.chapters()
         for path in (course.source_notebook(chapter), course.release_notebook(chapter))]
NOTEBOOKS = [pytest.param(path, id=("fixture-" if path.is_relative_to(FIXTURE.root) else "")
                          + f"{path.parent.parent.name}-{path.stem}") for path in PATHS]

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


# What jupyter_client says when a kernel exits before it answers (a port taken between its choice
# and the kernel's bind, for one): the notebook never ran, so nbval is run on it once more.
KERNEL_DID_NOT_START = "Kernel died before replying to kernel_info"


def run_nbval(paths, report):
    """nbval on ``paths`` (one kernel per notebook); return {notebook: [seconds, failures]}."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
         "--nbval-cell-timeout=300", "--noconftest", "-p", "tests.conftest",
         "-p", "no:cacheprovider", "-o", "addopts=", "-o", "junit_family=xunit1", "-q", "-rfE",
         f"--junitxml={report}", "--rootdir", str(REPO.root), *map(str, paths)],
        cwd=REPO.root, capture_output=True, text=True, timeout=1800)
    if not report.is_file():
        pytest.fail(f"nbval did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    results = {p.resolve(): [0.0, []] for p in paths}
    cells = dict.fromkeys(results, 0)
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        path = (REPO.root / case.get("file", "")).resolve()
        if path not in results:
            continue
        cells[path] += 1
        results[path][0] += float(case.get("time", 0))
        for problem in list(case.findall("failure")) + list(case.findall("error")):
            results[path][1].append(f"{case.get('name')}: {problem.get('message', '')}\n"
                                    f"{(problem.text or '')[-1500:]}")
    for path, count in cells.items():
        if not count:  # e.g. the notebook could not be collected
            results[path][1].append(f"nbval ran no cell of it:\n{proc.stdout[-3000:]}")
    return results


def kernel_did_not_start(failures):
    """True when every failure of a notebook is its kernel dying before it ran anything."""
    return bool(failures) and all(KERNEL_DID_NOT_START in failure for failure in failures)


@pytest.fixture(scope="module")
def nbval_run(tmp_path_factory):
    """Run nbval once on every notebook that exists; return {notebook: (seconds, failures)}."""
    folder = tmp_path_factory.mktemp("nbval")
    results = run_nbval([p for p in PATHS if p.is_file()], folder / "junit.xml")
    again = [path for path, (_, failures) in results.items() if kernel_did_not_start(failures)]
    if again:
        results.update(run_nbval(again, folder / "junit-again.xml"))
    return results


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs(nbval_run, notebook):
    assert notebook.is_file(), f"{notebook} is missing: run `python -m autograde release`"
    seconds, failures = nbval_run[notebook.resolve()]
    assert not failures, "\n\n".join(failures)
    assert seconds < TIME_LIMIT, f"{notebook.name} took {seconds:.0f} s (limit {TIME_LIMIT:.0f} s)"
