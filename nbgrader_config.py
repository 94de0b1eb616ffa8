"""nbgrader's settings for students: the Validate button and `nbgrader validate`.

Students need nothing configured here; this file exists so that nbgrader finds
a configuration and does not warn about a missing one. The instructor's
settings (release, grading, the gradebook) are in autograde/nbgrader_config.py.
For a validation that runs exactly as grading does and prints every message in
full, use `make validate NOTEBOOK=notebooks/<chapter>/<chapter>.ipynb`.
"""

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

# nbgrader's defaults are right for students: Validate runs the notebook and
# lists every test cell that fails.
