"""Generate the student release of chapters with nbgrader's generate_assignment.

``solutions/<ch>/<ch>.ipynb`` becomes ``notebooks/<ch>/<ch>.ipynb``: solution
regions replaced by a stub that raises NotImplementedError, hidden tests
removed, outputs cleared, test cells locked. The output depends only on the
source, so a test can regenerate it into a temporary folder and compare it
with the committed release (the drift check).

Each graded test cell of the release also gets the cell tag
``raises-exception``: on the stubs every such cell fails by design, and
JupyterLab's Run All stops at the first cell that raises unless it carries the
tag. (nbgrader's Validate and the grader judge the cells' outputs, not tags.)
"""

import json
import logging
import tempfile
from pathlib import Path

from autograde.config import Course, venv_bin_on_path
from autograde.notebook_io import ChapterError


class ReleaseError(Exception):
    """nbgrader could not generate a release (its log says why)."""


def release(course=None, chapters=None, out_dir=None):
    """Regenerate the release of ``chapters`` (all when None); return the notebooks written.

    ``out_dir`` replaces the course's ``notebooks/`` folder (the drift check
    writes to a temporary one); then a temporary gradebook is used too, so
    nothing of the course's grading state changes.
    """
    course = course or Course()
    known = course.chapters()
    chapters = list(chapters or known)
    unknown = [ch for ch in chapters if ch not in known]
    if unknown:
        raise ChapterError(f"unknown chapter(s): {', '.join(unknown)} "
                           f"(known: {', '.join(known) or 'none'})")
    from nbgrader.converters import GenerateAssignment  # slow to import: only when needed
    from nbgrader.coursedir import CourseDirectory
    venv_bin_on_path()
    log = logging.getLogger("autograde.release")
    log.setLevel(logging.ERROR)  # nbgrader warns about every folder --force replaces
    written = []
    with tempfile.TemporaryDirectory(prefix="autograde-db-") as tmp_db:
        for chapter in chapters:
            config = course.nbgrader_config()
            if out_dir is not None:
                config.CourseDirectory.release_directory = str(Path(out_dir).resolve())
                config.CourseDirectory.db_url = f"sqlite:///{tmp_db}/gradebook.db"
            else:
                course.state.mkdir(parents=True, exist_ok=True)  # nbgrader needs the db folder
            config.CourseDirectory.assignment_id = chapter
            config.GenerateAssignment.force = True
            coursedir = CourseDirectory(config=config, log=log)
            converter = GenerateAssignment(coursedir=coursedir, config=config, log=log)
            try:
                converter.start()
            except Exception as exc:
                raise ReleaseError(f"nbgrader could not release {chapter}: {exc}") from exc
            release_root = Path(out_dir) if out_dir is not None else course.release_dir
            notebook = release_root / chapter / f"{chapter}.ipynb"
            tag_graded_tests(notebook)
            written.append(notebook)
    return written


RAISES_TAG = "raises-exception"


def tag_graded_tests(path):
    """Add the tag ``raises-exception`` to every graded test cell of the notebook at ``path``."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        grading = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "code" and grading.get("grade") and not grading.get("solution"):
            tags = cell["metadata"].setdefault("tags", [])
            if RAISES_TAG not in tags:
                tags.append(RAISES_TAG)
    # nbformat's own layout, so that the file differs from nbgrader's only by the tags
    Path(path).write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                          encoding="utf-8")
