"""nbgrader's configuration for this course, and the grader's settings.

``python -m autograde`` reads this file (see ``autograde/config.py``); nbgrader's
own command line reads it with ``--JupyterApp.config_file=autograde/nbgrader_config.py``.
The course root is the repository: chapters' sources are in ``solutions/``,
the student release in ``notebooks/``, and all grading state (gradebook,
secret key) in the ignored folder ``autograde/state/``.
"""

import os

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_state = os.path.join(_root, "autograde", "state")

c.CourseDirectory.root = _root
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "autograde/state/submitted"
c.CourseDirectory.autograded_directory = "autograde/state/autograded"
c.CourseDirectory.feedback_directory = "autograde/state/feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_state, "gradebook.db")
# nbgrader copies every other file of solutions/<ch>/ into the release: not the list of
# equivalent mutants (python -m autograde mutate), which describes the solution.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "equivalent_mutants.txt"]

# The stub that replaces each solution region in the release.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Time limit of one cell in seconds: nbgrader's setting, used by our grader too.
c.Execute.timeout = 60

# The grader's own settings (python -m autograde grade).
c.CourseGrader.total_timeout = 900          # seconds for one whole submission
c.CourseGrader.max_restarts = 3             # restarts of a student's process after a crash
c.CourseGrader.memory_bytes = 3 * 2**30     # address space of a student's process
c.CourseGrader.output_cap = 64 * 1024       # characters of output kept per cell
