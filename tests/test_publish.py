"""The student-safe course tree (``python -m autograde publish DIR``).

Students must never receive a solution or a hidden test: every line of every solution region and
hidden test of every chapter in ``solutions/`` is looked for in every published file. Lines that
the course gives students on purpose are allowed: a line that also stands in the repository's own
release notebooks or ``course_lib`` (a later chapter hands out an earlier chapter's answer, and the
library holds layers the chapters build). The scanner is shown to catch a planted solution.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from autograde.config import Course
from autograde.notebook_io import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION, cell_text
from autograde.publish import MANIFEST, STUDENT_MODULES, PublishError, publish

REPO = Course()
MAKE = shutil.which("make")


def _lines(path):
    """Stripped lines of a file; for a notebook, of its cells' sources and text outputs."""
    raw = Path(path).read_bytes().decode("utf-8", errors="replace")
    if path.suffix == ".ipynb":
        cells = json.loads(raw)["cells"]
        texts = [cell_text(c.get("source", "")) for c in cells]
        texts += [cell_text(o.get("text", "")) for c in cells for o in c.get("outputs", [])]
        raw = "\n".join(texts) + "\n" + raw   # the JSON itself too: escaped text counts as well
    return {line.strip() for line in raw.splitlines() if line.strip()}


def secret_lines(course):
    """Stripped lines inside a solution region or a hidden test, of every chapter."""
    secret = set()
    for chapter in course.chapters():
        for cell in json.loads(course.source_notebook(chapter).read_text(encoding="utf-8"))["cells"]:
            inside = False
            for line in cell_text(cell["source"]).splitlines():
                marker = line.strip()
                if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN, END_SOLUTION, END_HIDDEN):
                    inside = marker in (BEGIN_SOLUTION, BEGIN_HIDDEN)
                elif inside and marker:
                    secret.add(marker)
    return secret


def given_lines(course):
    """Lines the course hands students on purpose: its release notebooks, course_lib, and the
    grader modules students get for validate (a generic line such as ``while True:`` may stand
    in a solution and in the grader's own code alike)."""
    from autograde.publish import STUDENT_MODULES
    given = set()
    for path in (sorted(course.release_dir.glob("*/*.ipynb"))
                 + sorted((course.root / "course_lib").rglob("*.py"))
                 + [course.root / "autograde" / name for name in STUDENT_MODULES]):
        given |= _lines(path)
    return given


def leaks(tree, secret):
    """``{relative path: [secret lines]}`` for every file of ``tree`` holding one."""
    found = {}
    for path in sorted(p for p in Path(tree).rglob("*") if p.is_file()):
        hits = sorted(secret & _lines(path))
        if hits:
            found[path.relative_to(tree).as_posix()] = hits
    return found


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    out = tmp_path_factory.mktemp("published") / "course"
    publish(out, REPO)
    return out


@pytest.fixture(scope="module")
def secret():
    lines = secret_lines(REPO) - given_lines(REPO)
    assert len(lines) > 500, "the chapters' solutions and hidden tests were not found"
    return lines


def test_no_line_of_a_solution_or_hidden_test_is_published(published, secret):
    assert leaks(published, secret) == {}
    for path in published.rglob("*"):
        if path.is_file():   # no region marker as a line of its own (the grader names them in strings)
            assert not {BEGIN_SOLUTION, BEGIN_HIDDEN} & _lines(path), path


def test_the_scanner_finds_a_planted_solution(published, secret, tmp_path):
    """The check above can fail: a solution notebook copied into the tree is caught, line by line."""
    copy = tmp_path / "copy"
    shutil.copytree(published, copy)
    chapter = REPO.chapters()[1]
    shutil.copy(REPO.source_notebook(chapter), copy / "notebooks" / chapter / f"{chapter}.ipynb")
    found = leaks(copy, secret)
    assert list(found) == [f"notebooks/{chapter}/{chapter}.ipynb"]
    assert len(found[f"notebooks/{chapter}/{chapter}.ipynb"]) >= 10


def test_exactly_the_student_files(published):
    files = sorted(p.relative_to(published).as_posix() for p in published.rglob("*") if p.is_file())
    assert files == sorted((published / MANIFEST).read_text(encoding="utf-8").split())
    tops = {f.split("/")[0] for f in files}
    expected = {"notebooks", "course_lib", "autograde", "README.md", "Makefile", "pyproject.toml",
                "environment.yml", "nbgrader_config.py", MANIFEST}
    if (REPO.root / "jupyter" / "student_lab.py").is_file():
        expected.add("jupyter")
    assert tops == expected
    assert {f.split("/")[1] for f in files if f.startswith("autograde/")} == \
        set(STUDENT_MODULES) | {"__init__.py", "__main__.py", "nbgrader_config.py"}
    for name in files:
        assert not any(part in ("solutions", "tests", "state", "benchmarks", "docs", "__pycache__")
                       for part in name.split("/")), name
        assert not name.endswith((".db", ".key", "equivalent_mutants.txt", ".pyc")), name
    released = sorted(p.relative_to(REPO.root).as_posix() for p in REPO.release_dir.glob("*/*.ipynb"))
    assert [f for f in files if f.startswith("notebooks/")] == released
    for name in released:
        assert (published / name).read_bytes() == (REPO.root / name).read_bytes()


def test_no_instructor_file_rides_along(published):
    """Nothing published has the bytes of a solution, a test, the state or an instructor module."""
    instructor = [p for folder in ("solutions", "tests", "autograde/state") if (REPO.root / folder).is_dir()
                  for p in (REPO.root / folder).rglob("*") if p.is_file() and p.stat().st_size > 0]
    instructor += [REPO.root / "autograde" / n for n in ("__main__.py", "nbgrader_config.py", "grade.py",
                                                         "release.py", "lint.py", "mutate.py",
                                                         "mutants.py", "publish.py", "export.py")]
    digests = {p.read_bytes() for p in instructor if p.is_file()}
    for path in published.rglob("*"):
        if path.is_file():
            assert path.read_bytes() not in digests, path


def test_the_student_command_line_offers_validate_only(published):
    run = subprocess.run([sys.executable, "-m", "autograde", "--help"], cwd=published,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "{validate}" in run.stdout
    for command in ("release", "grade", "mutate", "lint", "publish", "export"):
        bad = subprocess.run([sys.executable, "-m", "autograde", command, "x"], cwd=published,
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "invalid choice" in bad.stderr, command


def test_students_lab_hides_the_instructor_tools(published):
    makefile = (published / "Makefile").read_text(encoding="utf-8")
    assert "lab-instructor" not in makefile and "formgrader" not in makefile.lower()
    if (published / "jupyter" / "student_lab.py").is_file():
        assert "--config=$(CURDIR)/jupyter/student_lab.py" in makefile
        lab = (published / "jupyter" / "student_lab.py").read_text(encoding="utf-8")
        assert '"nbgrader.server_extensions.formgrader": False' in lab
    readme = (published / "README.md").read_text(encoding="utf-8")
    assert "make lab" in readme and "make validate NOTEBOOK=" in readme and "Submit" in readme


def test_publishing_twice_gives_the_same_bytes(published, tmp_path):
    again = tmp_path / "again"
    publish(again, REPO)
    assert _snapshot(again) == _snapshot(published)
    # Publishing over a published tree (a clone of the students' repository) keeps .git.
    (again / ".git").mkdir()
    (again / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (again / "course_lib" / "stale.py").unlink(missing_ok=True)
    publish(again, REPO)
    snapshot = _snapshot(again)
    assert snapshot.pop(".git/HEAD") == b"ref: refs/heads/main\n"
    assert snapshot == _snapshot(published)


def _snapshot(tree):
    return {p.relative_to(tree).as_posix(): p.read_bytes()
            for p in sorted(Path(tree).rglob("*")) if p.is_file()}


def test_refuses_a_foreign_folder_and_the_course_itself(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(PublishError, match="not written by publish"):
        publish(foreign, REPO)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(PublishError, match="holds it"):
        publish(REPO.root, REPO)
    with pytest.raises(PublishError, match="course id"):
        publish(tmp_path / "x", REPO, course_id="a b")
    # A file added to a published tree is not silently deleted by the next publish.
    out = tmp_path / "out"
    publish(out, REPO)
    (out / "notebooks" / "mine.txt").write_text("mine")
    with pytest.raises(PublishError, match="mine.txt"):
        publish(out, REPO)


@pytest.mark.slow
@pytest.mark.skipif(MAKE is None, reason="needs make")
def test_a_clean_copy_installs_and_validates_with_its_own_commands(published, tmp_path):
    """The published tree's own pyproject.toml installs it and its own `make validate` runs.

    Offline, the dependencies cannot be downloaded: the new virtual environment gets hard links
    to the packages of the one running the tests (never the editable install of this repository),
    then the published tree is installed into it with its own pyproject.toml (``pip install -e``
    with no index), and the stamp ``make`` checks is touched so that ``make validate`` does not go
    online. The validator then runs in its sandbox from the copy.
    """
    clean = tmp_path / "clean"
    shutil.copytree(published, clean)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    source = Path(sysconfig.get_paths()["purelib"])
    target = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                  "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip())
    try:
        os.link(source / "distutils-precedence.pth", tmp_path / "link-probe")
    except OSError as exc:
        pytest.skip(f"cannot hard-link the installed packages into {tmp_path} ({exc})")
    for entry in sorted(source.iterdir()):
        if entry.name.startswith(("__editable__", "course_lib", "course-lib")) or entry.suffix == ".pth" \
                and entry.name != "distutils-precedence.pth":
            continue
        dest = target / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, dest, symlinks=True, copy_function=os.link)
        else:
            shutil.copy2(entry, dest, follow_symlinks=False) if entry.is_symlink() else os.link(entry, dest)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                              "--no-index", "--no-deps", "--no-build-isolation", "-e", str(clean)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    (venv / ".installed").touch()
    where = subprocess.run([str(venv / "bin" / "python"), "-I", "-c",
                            "import autograde, course_lib; print(autograde.__file__, course_lib.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.split() == [str(clean / "autograde" / "__init__.py"),
                                    str(clean / "course_lib" / "__init__.py")]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    chapter = "00_tools"
    blank = subprocess.run([MAKE, "validate", f"VENV={venv}", f"NOTEBOOK=notebooks/{chapter}/{chapter}.ipynb"],
                           cwd=clean, capture_output=True, text=True, timeout=600, env=env)
    assert blank.returncode != 0 and "FAIL" in blank.stdout and "test cells pass" in blank.stdout, \
        blank.stdout + blank.stderr
    solved = tmp_path / "mine" / f"{chapter}.ipynb"
    solved.parent.mkdir()
    shutil.copy(REPO.source_notebook(chapter), solved)
    ok = subprocess.run([MAKE, "validate", f"VENV={venv}", f"NOTEBOOK={solved}"],
                        cwd=clean, capture_output=True, text=True, timeout=600, env=env)
    assert ok.returncode == 0 and "All visible tests pass" in ok.stdout, ok.stdout + ok.stderr


def test_the_hub_configuration_loads():
    """deploy/jupyterhub_config.py, which docs/instructor.md starts the hub with, is valid traitlets."""
    from traitlets.config.loader import PyFileConfigLoader
    hub = PyFileConfigLoader("jupyterhub_config.py", path=str(REPO.root / "deploy")).load_config()
    assert hub.JupyterHub.ip == "127.0.0.1"
    assert hub.Authenticator.admin_users == {"instructor"}
    nbg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO.root / "deploy")).load_config()
    assert nbg.Exchange.root == "/srv/nbgrader/exchange" and nbg.CourseDirectory.course_id
