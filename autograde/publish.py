"""The student-safe course tree: ``python -m autograde publish DIR``.

What a student gets, and nothing else:

* ``notebooks/``       the release (nbgrader's output: no solution, no hidden test)
* ``course_lib/``      the library the chapters use
* ``autograde/``       the part of the grader that ``validate`` needs, with a command line that
                       offers ``validate`` only (:data:`STUDENT_MODULES`)
* ``jupyter/``         the student's JupyterLab settings, where the course has them
* ``nbgrader_config.py``, ``README.md``, ``Makefile``, ``pyproject.toml``, ``environment.yml``
* ``.course-files``    the list of every file above, so that publishing again into the same folder
                       (a git clone of the students' repository, say) replaces exactly these files

Never copied: ``solutions/`` (sources and lists of equivalent mutants), ``tests/``, ``benchmarks/``,
``docs/``, ``autograde/state/`` (gradebook, secret key), the grader's instructor modules and the
instructor's nbgrader settings. Files are copied by an allow-list, so a file added to the
repository later is not published until it is named here.

Publishing twice gives byte-identical files: folders are walked in sorted order and the generated
text holds no date, user or absolute path. Files are written 0644, folders 0755.
"""

import fnmatch
import json
import os
import shutil
import tomllib
from pathlib import Path

from autograde.config import Course, load_settings

#: Modules of ``autograde`` that ``validate`` imports, directly or in the student's process.
#: ``__init__``, ``__main__`` and ``nbgrader_config`` are written for students instead.
STUDENT_MODULES = ("client.py", "config.py", "judge.py", "notebook_io.py", "protocol.py",
                   "results.py", "runner.py", "sandbox.py", "submission.py", "validate.py")
#: Names never copied from a published folder.
IGNORED = ("__pycache__", "*.pyc", ".ipynb_checkpoints", ".DS_Store", "*.egg-info")
#: The manifest of a published tree.
MANIFEST = ".course-files"


class PublishError(Exception):
    """The tree cannot be published (the message says why)."""


def publish(out_dir, course=None, course_id=None):
    """Write the student tree for ``course`` into ``out_dir``; return the sorted relative paths.

    ``out_dir`` must be missing, empty, or a tree published before (its :data:`MANIFEST` names
    every file in it; ``.git`` is left alone). ``course_id``, when given, is nbgrader's course id
    that the student README names for fetching and submitting.
    """
    course = course or Course()
    out = Path(out_dir).resolve()
    if out == course.root or course.root.is_relative_to(out) or out.is_relative_to(course.source_dir):
        raise PublishError(f"{out} is the course or holds it: publish into a folder of its own")
    if course_id is not None and not _is_plain_id(course_id):
        raise PublishError(f"course id {course_id!r}: use letters, digits, '-' and '_' only")
    files = _collect(course, course_id)
    _clear_previous(out)
    for rel, content in files.items():
        target = out / rel
        for parent in reversed(target.relative_to(out).parents[:-1]):
            (out / parent).mkdir(mode=0o755, exist_ok=True)
            os.chmod(out / parent, 0o755)
        target.write_bytes(content)
        os.chmod(target, 0o644)
    names = sorted(files) + [MANIFEST]
    (out / MANIFEST).write_text("".join(f"{n}\n" for n in sorted(names)), encoding="utf-8")
    os.chmod(out / MANIFEST, 0o644)
    os.chmod(out, 0o755)
    return sorted(names)


def _is_plain_id(text):
    return bool(text) and len(text) <= 64 and all(ch.isascii() and (ch.isalnum() or ch in "-_")
                                                  for ch in text)


def _ignored(name):
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED)


def _tree(folder, prefix):
    """``{relative path: bytes}`` of every regular file below ``folder``, sorted; no links."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if _ignored(name):
                continue
            if path.is_symlink() or not path.is_file():
                raise PublishError(f"{path} is not a regular file: publish copies plain files only")
            found[(prefix / path.relative_to(folder)).as_posix()] = path.read_bytes()
    return found


def _collect(course, course_id):
    """Every published file as ``{relative path: bytes}``, in sorted order."""
    root = course.root
    chapters = [ch for ch in course.chapters() if course.release_notebook(ch).is_file()]
    if not chapters:
        raise PublishError(f"no released chapter in {course.release_dir}: run "
                           "`python -m autograde release` first")
    files = {}
    for chapter in chapters:
        files.update(_tree(course.release_dir / chapter, Path("notebooks") / chapter))
    for rel, content in files.items():
        text = content.decode("utf-8", errors="replace")
        if "### BEGIN SOLUTION" in text or "### BEGIN HIDDEN TESTS" in text:
            raise PublishError(f"{rel} holds a solution or hidden test: the release is broken; run "
                               "`python -m autograde release` again")
    files.update(_tree(root / "course_lib", Path("course_lib")))
    grader = Path(__file__).resolve().parent
    for name in STUDENT_MODULES:
        files[f"autograde/{name}"] = (grader / name).read_bytes()
    files["autograde/__init__.py"] = STUDENT_INIT.encode()
    files["autograde/__main__.py"] = STUDENT_MAIN.encode()
    files["autograde/nbgrader_config.py"] = _student_grader_settings().encode()
    has_lab = (root / "jupyter" / "student_lab.py").is_file()
    if has_lab:
        files.update(_tree(root / "jupyter", Path("jupyter")))
    if (root / "nbgrader_config.py").is_file():
        files["nbgrader_config.py"] = (root / "nbgrader_config.py").read_bytes()
    project = _project(root)
    files["pyproject.toml"] = _pyproject(project).encode()
    files["environment.yml"] = _environment(project).encode()
    files["Makefile"] = _makefile(has_lab).encode()
    files["README.md"] = _readme(chapters, course_id, has_lab).encode()
    return dict(sorted(files.items()))


def _clear_previous(out):
    """Remove the files of an earlier publish from ``out``; refuse a folder that holds others."""
    if not out.exists():
        out.mkdir(parents=True, mode=0o755)
        return
    if not out.is_dir():
        raise PublishError(f"{out} exists and is not a folder")
    entries = {p.name for p in out.iterdir()} - {".git"}
    if not entries:
        return
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise PublishError(f"{out} is not empty and was not written by publish (no {MANIFEST}): "
                           "name an empty or new folder")
    listed = set(manifest.read_text(encoding="utf-8").split())
    present = {p.relative_to(out).as_posix() for p in out.rglob("*")
               if not p.is_dir() and ".git" not in p.relative_to(out).parts}
    foreign = sorted(present - listed)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise PublishError(f"{out} holds files that publish did not write ({shown}): move them "
                           "away or publish into a new folder")
    for rel in sorted(listed):
        path = out / rel
        if ".." in Path(rel).parts:
            raise PublishError(f"{manifest} names {rel!r}, outside the folder")
        if path.is_file() or path.is_symlink():
            path.unlink()
    for folder in sorted((p for p in out.rglob("*") if p.is_dir() and ".git" not in
                          p.relative_to(out).parts), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _project(root):
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _toml_list(items):
    return "[\n" + "".join(f"    {json.dumps(item)},\n" for item in items) + "]"


def _pyproject(project):
    extras = project.get("optional-dependencies", {})
    return f"""\
# The course as students install it (`make lab` runs `pip install -e ".[course]"`).
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = {json.dumps(project["name"])}
version = {json.dumps(project["version"])}
description = "Neural networks from the inside: the course notebooks and their library."
readme = "README.md"
requires-python = {json.dumps(project["requires-python"])}
dependencies = {_toml_list(project["dependencies"])}

[project.optional-dependencies]
course = {_toml_list(extras.get("course", []))}
gpu = {_toml_list(extras.get("gpu", []))}

[tool.setuptools.packages.find]
include = ["course_lib*", "autograde*"]

[tool.setuptools.package-data]
course_lib = ["resources/*"]
"""


def _environment(project):
    deps = project["dependencies"] + project.get("optional-dependencies", {}).get("course", [])
    lines = "".join(f"  - {d.replace(' ', '')}\n" for d in deps)
    python = project["requires-python"].replace(" ", "")
    return f"""\
# A conda environment for the course (instead of `make lab`, which needs only pip):
#   conda env create -f environment.yml && conda activate neural-networks-course && jupyter lab notebooks/
name: neural-networks-course
channels:
  - conda-forge
dependencies:
  - python{python}
  - pip
{lines}  - pip:
      - -e .
"""


def _student_grader_settings():
    s = load_settings()
    return f'''\
"""The limits `python -m autograde validate` runs a notebook under: the same as grading's."""

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

c.Execute.timeout = {s.cell_timeout!r}                   # seconds per cell
c.CourseGrader.total_timeout = {s.total_timeout!r}       # seconds for the whole notebook
c.CourseGrader.max_restarts = {s.max_restarts!r}          # restarts after a crash
c.CourseGrader.memory_bytes = {s.memory_bytes!r}   # address space of the notebook's process
c.CourseGrader.output_cap = {s.output_cap!r}          # characters of output kept per cell
'''


def _makefile(has_lab):
    config = "--config=$(CURDIR)/jupyter/student_lab.py " if has_lab else ""
    return f"""\
# Two commands for a fresh machine (Python 3.11+ and pip):
#   make lab                                   install what is missing, then open the course
#   make validate NOTEBOOK=notebooks/01_neurons/01_neurons.ipynb
#                                              check a notebook as the grader will (visible tests)
# Everything is installed into .venv inside this folder.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOK ?=

.PHONY: lab install validate clean

$(STAMP): pyproject.toml
\t@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version.split()[0]'
\t$(PYTHON) -m venv $(VENV)
\t$(PY) -m pip install --quiet --upgrade pip "setuptools>=70.1"
\t$(PY) -m pip install --quiet -e ".[course]"
\t$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
\t@touch $(STAMP)

install: $(STAMP)

# JupyterLab refuses to start as root (containers) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
\t$(VENV)/bin/jupyter lab {config}--notebook-dir=notebooks $(ROOT_FLAG)

validate: $(STAMP)
\t@test -n "$(NOTEBOOK)" || {{ echo "usage: make validate NOTEBOOK=notebooks/01_neurons/01_neurons.ipynb"; exit 2; }}
\t$(PY) -m autograde validate $(NOTEBOOK)

clean:
\trm -rf $(VENV)
"""


def _readme(chapters, course_id, has_lab):
    course = f"`{course_id}`" if course_id else "the course id your instructor gives you"
    table = "".join(f"- `notebooks/{ch}/{ch}.ipynb`\n" for ch in chapters)
    validate_button = ("the **Validate** button in the notebook's toolbar, or " if has_lab else "")
    return f"""\
# Neural networks from the inside

A Jupyter notebook course in which you build neural networks yourself, from a single neuron up. Each
exercise is graded automatically: visible tests in the notebook tell you right away what is wrong;
hidden tests on fresh random inputs grade your work.

## Start

On a machine with Python 3.11 or newer, `pip` and `make`:

```
make lab                                                       # install, then open the course
make validate NOTEBOOK=notebooks/01_neurons/01_neurons.ipynb   # check a notebook as the grader will
```

The first run installs everything into `.venv` in this folder (about a minute). On Debian and Ubuntu,
Python's `venv` module comes separately: `sudo apt install python3-venv`. With conda instead:
`conda env create -f environment.yml`, `conda activate neural-networks-course`, `jupyter lab notebooks/`.

## Working on a chapter

Start with `notebooks/00_tools/00_tools.ipynb`. In each chapter, fill in every function marked
`raise NotImplementedError()` and run the test cell below it. To check a whole notebook, use
{validate_button}`make validate NOTEBOOK=...` from a terminal in this folder: it runs your notebook exactly
as the grader does, with the visible tests, and prints each failing test's message in full, hint
included. Keep each notebook's file name: the grader knows a chapter by it.

The chapters:

{table}
## Submitting

On the course's JupyterHub: open **Nbgrader > Assignment List**, fetch a chapter, work on it there,
then press **Submit** next to it (you may submit again; the last submission before the deadline is
graded). Your feedback appears in the same list once the instructor releases it. From a terminal on
the hub the same steps are `nbgrader fetch_assignment CHAPTER --course ID` and
`nbgrader submit CHAPTER --course ID`, with {course}.

Without a hub, hand in the notebook file itself (`notebooks/<chapter>/<chapter>.ipynb`) the way your
instructor asks.
"""


STUDENT_INIT = '''\
"""The course's grader as students get it: ``python -m autograde validate NOTEBOOK``.

The notebook runs exactly as grading runs it (rebuilt from the release, in a sandboxed process),
against the visible tests only.
"""
'''

STUDENT_MAIN = '''\
"""Command line for students: ``python -m autograde validate NOTEBOOK``."""

import argparse
import sys
from pathlib import Path

USAGE = """\\
python -m autograde validate NOTEBOOK [--chapter CHAPTER]
    Run your notebook the way the grader does, against its chapter's visible
    tests, and print every failing test's message in full.
"""


def main(argv=None):
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m autograde", description=USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    val = sub.add_parser("validate", help="check a notebook against its visible tests")
    val.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    val.add_argument("--chapter", default=None, help="the chapter (default: the file's name)")
    args = parser.parse_args(argv)

    from autograde.client import RunnerStartError
    from autograde.config import Course
    from autograde.notebook_io import ChapterError
    from autograde.validate import report, validate
    if not args.notebook.is_file():
        print(f"no notebook at {args.notebook}", file=sys.stderr)
        return 2
    print(f"Validating {args.notebook} against the visible tests ...", flush=True)
    try:
        outcome = validate(args.notebook, Course(), args.chapter)
    except (ChapterError, RunnerStartError) as exc:
        print(f"validate failed: {exc}", file=sys.stderr)
        return 2
    print(report(outcome))
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
'''
