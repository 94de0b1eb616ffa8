"""Shared pytest hooks.

nbval: in a release notebook (``notebooks/<ch>/<ch>.ipynb``) the graded test
cells fail on the ``NotImplementedError`` stubs, so they are marked as strict
expected failures: each must fail, and no other cell may. Their release tag
``raises-exception`` (for JupyterLab's Run All) would have nbval excuse the
error, so nbval is told to report it here. ``test_notebooks.py``
loads this file into its nbval runs with ``-p tests.conftest``.
"""

from pathlib import Path

import pytest


def _is_release_notebook(path):
    path = Path(path)
    return path.parent.parent.name == "notebooks" and path.stem == path.parent.name


def pytest_collection_modifyitems(config, items):
    for item in items:
        cell = getattr(item, "cell", None)  # nbval's notebook cell items
        if cell is None or not _is_release_notebook(item.path):
            continue
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            item.options["check_exception"] = False
            item.add_marker(pytest.mark.xfail(
                strict=True, reason="a graded test cell must fail on the release stubs"))


def pytest_terminal_summary(terminalreporter):
    """Name the folder where tests/test_browser.py left its screenshots of the chapters."""
    shots = {value for reports in terminalreporter.stats.values() for report in reports
             for name, value in getattr(report, "user_properties", ()) if name == "screenshot"}
    for folder in sorted({str(Path(shot).parent) for shot in shots}):
        terminalreporter.write_line(f"JupyterLab screenshots of the chapters (and timings.txt): {folder}")
