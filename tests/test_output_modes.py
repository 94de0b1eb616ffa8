"""Who may read the grading output: only the instructor, unless the command line says otherwise."""

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "course"

pytestmark = pytest.mark.slow


def _grade(tmp_path, *flags):
    subs = tmp_path / "subs" / "ann"
    subs.mkdir(parents=True)
    shutil.copy(FIXTURE / "notebooks" / "toy" / "toy.ipynb", subs / "toy.ipynb")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "autograde", "--course-root", str(FIXTURE),
                           "--state", str(tmp_path / "state"), "grade", "toy", str(tmp_path / "subs"),
                           "--out", str(out), "--quiet", *flags],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((out / "results" / "toy" / "ann.json").read_text())["score"] == 0
    return out


def _modes(out):
    return {p.relative_to(out).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in [out, *out.rglob("*")]}


def test_output_is_private_by_default(tmp_path):
    modes = _modes(_grade(tmp_path))
    assert modes["."] == 0o700 and modes["grades.csv"] == 0o600
    assert all(m & 0o077 == 0 for m in modes.values()), modes


def test_shared_output_can_be_read_by_others(tmp_path):
    modes = _modes(_grade(tmp_path, "--shared-output"))
    assert modes["."] == 0o755 and modes["grades.csv"] == 0o644
    assert modes["feedback/ann/toy.html"] == 0o644
