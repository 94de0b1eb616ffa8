"""Where a course's files live, and the grader's settings.

A :class:`Course` is a root folder holding ``solutions/<chapter>/<chapter>.ipynb``
(the instructor's sources) and ``notebooks/<chapter>/<chapter>.ipynb`` (the
release); grading state (gradebook, secret key) lives in ``autograde/state``
under the repository, or wherever ``state`` points. The repository is the
default course; the tests use a small one under ``tests/fixtures/course``.

Settings come from ``autograde/nbgrader_config.py`` (nbgrader's config file),
so an instructor changes them in one place: ``c.Execute.timeout`` (per cell)
and the ``c.CourseGrader.*`` values.
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

REPO_ROOT = Path(__file__).resolve().parent.parent
NBGRADER_CONFIG = Path(__file__).resolve().with_name("nbgrader_config.py")


@dataclass(frozen=True)
class Course:
    """The folders of one course."""

    root: Path = REPO_ROOT
    state: Path = field(default=None)

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).resolve())
        state = self.state if self.state is not None else REPO_ROOT / "autograde" / "state"
        object.__setattr__(self, "state", Path(state).resolve())

    @property
    def source_dir(self):
        """``<root>/solutions``: the instructor's notebooks."""
        return self.root / "solutions"

    @property
    def release_dir(self):
        """``<root>/notebooks``: the student release."""
        return self.root / "notebooks"

    def source_notebook(self, chapter):
        """``solutions/<chapter>/<chapter>.ipynb``."""
        return self.source_dir / chapter / f"{chapter}.ipynb"

    def release_notebook(self, chapter):
        """``notebooks/<chapter>/<chapter>.ipynb``."""
        return self.release_dir / chapter / f"{chapter}.ipynb"

    def chapters(self):
        """Names of the chapters with a source notebook, in order."""
        if not self.source_dir.is_dir():
            return []
        return sorted(d.name for d in self.source_dir.iterdir()
                      if (d / f"{d.name}.ipynb").is_file())

    def nbgrader_config(self):
        """nbgrader's Config for this course: the config file, with this course's folders."""
        config = load_config_file()
        config.CourseDirectory.root = str(self.root)
        config.CourseDirectory.source_directory = "solutions"
        config.CourseDirectory.release_directory = "notebooks"
        config.CourseDirectory.db_url = "sqlite:///" + str(self.state / "gradebook.db")
        return config


@dataclass(frozen=True)
class GradingSettings:
    """Limits for grading one submission."""

    cell_timeout: float = 60.0       # seconds per cell (c.Execute.timeout)
    total_timeout: float = 900.0     # seconds per submission
    max_restarts: int = 3            # restarts of a crashed student process
    memory_bytes: int = 3 * 2**30    # address space of the student's process
    output_cap: int = 64 * 1024      # characters of stdout/stderr kept per cell

    def fingerprint(self):
        """A hash of every setting: a result graded under other settings is out of date."""
        import hashlib
        import json
        from dataclasses import asdict
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def limits(self):
        """The sandbox limits of one student's process."""
        from autograde.sandbox import Limits
        # CPU time and the sandbox's own wall clock are backstops behind the limits above.
        return Limits(cpu_seconds=int(self.total_timeout) + 60, memory_bytes=self.memory_bytes,
                      wall_seconds=int(self.total_timeout) + 120)


def load_config_file(path=NBGRADER_CONFIG):
    """Read nbgrader's config file into a traitlets Config (empty if it is missing)."""
    path = Path(path)
    if not path.is_file():
        return Config()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def load_settings(config=None, **overrides):
    """GradingSettings from the config file, then ``overrides`` that are not None."""
    config = config if config is not None else load_config_file()
    values = {}
    if "timeout" in config.get("Execute", {}):
        values["cell_timeout"] = float(config.Execute.timeout)
    for name in ("total_timeout", "max_restarts", "memory_bytes", "output_cap"):
        if name in config.get("CourseGrader", {}):
            values[name] = config.CourseGrader[name]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return GradingSettings(**values)


def venv_bin_on_path():
    """Put this interpreter's bin folder on PATH (nbgrader runs the `alembic` command)."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
