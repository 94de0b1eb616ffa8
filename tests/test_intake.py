"""What the grader takes in and writes out: submission files, student ids, grades.csv.

Intake: only a regular, single-named file inside the student's own folder is
read, and anything else is refused by its metadata, before it is opened (an
inotify watch on the file would see an open). Parsing: a notebook's size,
JSON values and cells are bounded before they can cost memory. Output:
grades.csv stays one row per student and holds no formula, the output folder
is private, and a result is up to date only under the same settings, key and
grader.
"""

import csv
import ctypes
import hashlib
import io
import json
import os
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from autograde import results
from autograde.config import Course, GradingSettings
from autograde.grade import STUDENT_ID, find_students, grade, student_key
from autograde.notebook_io import (MAX_CELLS, MAX_JSON_CONTAINERS, MAX_SUBMISSION_BYTES,
                                   SubmissionError, open_submission, parse_submission)

FIXTURE = Course(Path(__file__).parent / "fixtures" / "course")
RELEASE = FIXTURE.release_notebook("toy").read_bytes()
SOLUTION = FIXTURE.source_notebook("toy").read_bytes()


# ---------------------------------------------------------------------------
# Watching for opens (inotify, through ctypes: the standard library has none)

IN_OPEN, IN_NONBLOCK = 0x20, os.O_NONBLOCK


class OpenWatch:
    """Counts the opens of one path, as the kernel reports them."""

    def __init__(self, path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN) < 0:
            pytest.skip(f"inotify unavailable: {os.strerror(ctypes.get_errno())}")

    def opens(self):
        count = 0
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return 0
        offset = 0
        while offset < len(data):
            _, mask, _, length = struct.unpack_from("iIII", data, offset)
            count += bool(mask & IN_OPEN)
            offset += 16 + length
        return count

    def close(self):
        os.close(self.fd)


def test_the_watch_sees_an_open(tmp_path):
    # The oracle of the tests below: it must notice a plain open.
    path = tmp_path / "x"
    path.write_text("x")
    watch = OpenWatch(path)
    try:
        assert watch.opens() == 0
        path.read_text()
        assert watch.opens() == 1
    finally:
        watch.close()


def submissions(tmp_path, student="alice", content=RELEASE):
    folder = tmp_path / "subs"
    (folder / student).mkdir(parents=True)
    path = folder / student / "toy.ipynb"
    if content is not None:
        path.write_bytes(content)
    return folder, path


def test_a_regular_file_is_read_once(tmp_path):
    folder, path = submissions(tmp_path)
    watch = OpenWatch(path)
    try:
        submitted = open_submission(path, folder)
        assert submitted.raw == RELEASE and submitted.problem == ""
        assert submitted.sha256 == hashlib.sha256(RELEASE).hexdigest()
        assert watch.opens() == 1
    finally:
        watch.close()


def test_a_hard_link_to_a_file_elsewhere_is_refused_unopened(tmp_path):
    secret = tmp_path / "instructor" / "solution.ipynb"
    secret.parent.mkdir()
    secret.write_bytes(SOLUTION)
    folder, path = submissions(tmp_path, content=None)
    os.link(secret, path)
    watch = OpenWatch(secret)
    try:
        submitted = open_submission(path, folder)
        assert submitted.raw is None and "hard link" in submitted.problem, submitted
        assert watch.opens() == 0
    finally:
        watch.close()


def test_a_fifo_is_refused_without_unblocking_its_writer(tmp_path):
    folder, path = submissions(tmp_path, content=None)
    os.mkfifo(path)
    watch = OpenWatch(path)
    # A writer's open blocks until someone opens the FIFO for reading.
    writer = subprocess.Popen([sys.executable, "-c",
                               f"open({str(path)!r}, 'wb').write(b'x' * 10); print('opened')"],
                              stdout=subprocess.PIPE)
    try:
        submitted = open_submission(path, folder)
        time.sleep(0.3)
        assert writer.poll() is None, "the grader opened the FIFO"
        assert submitted.raw is None and submitted.problem == \
            "refused: toy.ipynb is not a regular file"
        assert watch.opens() == 0
    finally:
        writer.kill()
        writer.wait()
        watch.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_is_refused_unopened(tmp_path):
    folder, path = submissions(tmp_path, content=None)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # the same device as /dev/null
    watch = OpenWatch(path)
    try:
        submitted = open_submission(path, folder)
        assert submitted.problem == "refused: toy.ipynb is not a regular file"
        assert watch.opens() == 0
    finally:
        watch.close()


def test_a_student_folder_that_links_to_another_students_is_refused(tmp_path):
    folder, bobs = submissions(tmp_path, student="bob", content=SOLUTION)
    (folder / "mallory").symlink_to(folder / "bob")
    watch = OpenWatch(bobs)
    try:
        submitted = open_submission(folder / "mallory" / "toy.ipynb", folder)
        assert submitted.problem == "refused: the folder mallory is a symbolic link"
        assert watch.opens() == 0
    finally:
        watch.close()


def test_a_chapter_folder_that_is_a_link_is_refused(tmp_path):
    # nbgrader's layout <student>/<chapter>/<chapter>.ipynb, with the chapter folder a link.
    folder, _ = submissions(tmp_path, content=None)
    (folder / "alice" / "toy").symlink_to(FIXTURE.source_notebook("toy").parent)
    submitted = open_submission(folder / "alice" / "toy" / "toy.ipynb", folder)
    assert submitted.problem == "refused: the folder toy is a symbolic link"


def test_a_symbolic_link_to_a_notebook_is_refused(tmp_path):
    folder, path = submissions(tmp_path, content=None)
    path.symlink_to(FIXTURE.source_notebook("toy"))
    submitted = open_submission(path, folder)
    assert submitted.problem == "refused: toy.ipynb is a symbolic link, not a notebook file"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    folder, path = submissions(tmp_path, content=None)
    with open(path, "wb") as f:
        f.truncate(MAX_SUBMISSION_BYTES + 1)  # sparse: nothing to read anyway
    watch = OpenWatch(path)
    try:
        submitted = open_submission(path, folder)
        assert submitted.problem == "notebook file larger than 16 MB"
        assert watch.opens() == 0
    finally:
        watch.close()


def test_a_path_outside_the_submissions_folder_is_refused(tmp_path):
    folder, _ = submissions(tmp_path)
    outside = FIXTURE.source_notebook("toy")
    assert open_submission(outside, folder).problem.startswith("refused: toy.ipynb lies outside")


# ---------------------------------------------------------------------------
# Parsing within bounds


def notebook_bytes(cells, extra=""):
    return ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {' + extra + '}, "cells": ['
            + ",".join(cells) + "]}").encode()


def test_too_many_cells_are_refused():
    cell = '{"cell_type": "code", "source": "1", "metadata": {}}'
    parse_submission(notebook_bytes([cell] * MAX_CELLS))
    with pytest.raises(SubmissionError, match=f"has {MAX_CELLS + 1} cells"):
        parse_submission(notebook_bytes([cell] * (MAX_CELLS + 1)))


@pytest.mark.parametrize("filler", ["[]", "{}", '"ab"'])
def test_a_file_of_tiny_json_values_is_refused_before_parsing(filler):
    # 16 MiB of "[]," would take some 360 MiB to parse; the count of brackets
    # and quotes refuses it first, in a few milliseconds and no extra memory.
    n = (MAX_SUBMISSION_BYTES - 200) // (len(filler) + 1)
    raw = notebook_bytes([], extra='"x": [' + ",".join([filler] * n) + "]")
    assert len(raw) <= MAX_SUBMISSION_BYTES
    tracemalloc.start()
    try:
        with pytest.raises(SubmissionError, match="far more JSON values than a notebook"):
            parse_submission(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak


# Parses the file named on the command line; prints how much its resident peak grew.
PARSE_PEAK = """
import resource, sys
from autograde.notebook_io import parse_submission
raw = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cells = parse_submission(raw)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024, len(cells))
"""


def test_parsing_the_largest_accepted_file_stays_near_ten_times_its_size(tmp_path):
    # Just under the container bound, the rest of 16 MiB as floats: the
    # costliest JSON per byte that passes the counts (24-byte floats per 4 bytes).
    n_lists = MAX_JSON_CONTAINERS - 100
    floats = (MAX_SUBMISSION_BYTES - 3 * n_lists - 400) // 4
    raw = notebook_bytes(['{"cell_type": "code", "source": "", "metadata": {"x": ['
                          + ",".join(["[]"] * n_lists) + "], \"y\": ["
                          + ",".join(["1.5"] * floats) + "]}}"])
    assert len(raw) <= MAX_SUBMISSION_BYTES
    (tmp_path / "nb.ipynb").write_bytes(raw)
    # In a fresh process, measured by the kernel (tracemalloc would slow parsing ten-fold).
    out = subprocess.run([sys.executable, "-c", PARSE_PEAK, str(tmp_path / "nb.ipynb")],
                         capture_output=True, text=True, check=True).stdout.split()
    peak, cells = int(out[0]), int(out[1])
    assert cells == 1
    print(f"parse peak for a {len(raw) / 2**20:.1f} MiB file: {peak / 2**20:.0f} MiB")
    assert peak < 12 * MAX_SUBMISSION_BYTES, peak  # about 10 times, measured


def test_tags_and_kernelspec_are_kept_for_the_status():
    nb = json.loads(RELEASE)
    nb["metadata"]["kernelspec"]["name"] = "bash"
    nb["cells"][4]["metadata"]["tags"] = ["raises-exception", 7]
    cells = parse_submission(json.dumps(nb).encode())
    assert cells.kernelspec == "bash"
    assert cells[4]["tags"] == ("raises-exception",)


# ---------------------------------------------------------------------------
# Student ids


HOSTILE_NAMES = {
    "carriage_return": "eve\rmallory,toy,6,6,ok",
    "formula": "=HYPERLINK(\"http://x\",\"click\")",
    "plus": "+cmd",
    "minus": "-2+3",
    "at": "@SUM(A1)",
    "too_long": "a" * 250,
    "right_to_left": "eve\u202egnp.exe",
    "space": "two words",
    "not_utf8": os.fsdecode(b"caf\xe9"),
}


@pytest.mark.parametrize("name", ["alice", "bob.smith", "s123456", "jo_ann-2", "x@uni.edu",
                                  "a+b", "A" * 64])
def test_valid_student_ids_are_kept(name):
    assert STUDENT_ID.match(name) and student_key(name) == name


@pytest.mark.parametrize("key", sorted(HOSTILE_NAMES))
def test_other_folder_names_get_a_safe_stand_in(key):
    name = HOSTILE_NAMES[key]
    stand_in = student_key(name)
    assert stand_in != name and STUDENT_ID.match(stand_in)
    assert student_key(name) == stand_in  # the same folder keeps its stand-in


def test_hostile_folder_names_become_status_rows_in_a_safe_csv(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    made = []
    for key, name in HOSTILE_NAMES.items():
        folder = os.path.join(os.fsencode(subs), os.fsencode(name))
        try:
            os.mkdir(folder)
        except OSError:  # e.g. a file system that refuses non-UTF-8 names
            continue
        with open(os.path.join(folder, b"toy.ipynb"), "wb") as f:
            f.write(SOLUTION)
        made.append(key)
    (subs / "alice").mkdir()
    (subs / "alice" / "toy.ipynb").write_bytes(RELEASE)
    assert len(find_students(subs)) == len(made) + 1
    out = tmp_path / "out"
    report = grade("toy", subs, out, course=Course(FIXTURE.root, state=tmp_path / "state"),
                   settings=GradingSettings(cell_timeout=30), progress=False)
    assert report.failed == {}
    raw = (out / "grades.csv").read_bytes()
    assert b"\r" not in raw and "\u202e" not in raw.decode("utf-8")
    lines = raw.decode("utf-8").split("\n")[:-1]
    assert len(lines) == 1 + len(made) + 1  # header, one row per folder
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    assert all(len(row) == len(results.CSV_COLUMNS) for row in rows)
    for row in rows[1:]:
        assert not row[0].startswith(("=", "+", "-", "@")), row
        if row[0] != "alice":
            assert row[2] == "0" and row[4].startswith("refused: the folder name "), row
            assert STUDENT_ID.match(row[0])
            assert (out / "feedback" / row[0] / "toy.html").is_file()
    assert "alice" in [row[0] for row in rows]
    # A second run skips them all: their refusals are up to date.
    again = grade("toy", subs, out, course=Course(FIXTURE.root, state=tmp_path / "state"),
                  settings=GradingSettings(cell_timeout=30), progress=False)
    assert again.graded == [] and (out / "grades.csv").read_bytes() == raw


@pytest.mark.parametrize("status", ["=1+2", "+1", "-1", "@A1", "\tx", "a\rb,c", "a\nb",
                                    "x\u202ey", "\u2028", "ok"])
def test_csv_fields_are_never_formulas_or_line_breaks(tmp_path, status):
    result = {"student_id": "alice", "assignment": "toy", "score": 1.0, "max_score": 6.0,
              "status": status, "tests": []}
    results.prepare(tmp_path)
    results.save_result(tmp_path, result)
    results.write_grades_csv(tmp_path)
    raw = (tmp_path / "grades.csv").read_text(encoding="utf-8")
    assert raw.count("\n") == 2 and "\r" not in raw
    assert not any(c in raw for c in "\t\u202e\u2028")
    row = next(csv.reader(io.StringIO(raw.splitlines()[1])))
    assert row[:4] == ["alice", "toy", "1", "6"]
    assert not row[4].startswith(("=", "+", "-", "@", "\t"))
    if status == "ok":
        assert row[4] == "ok"


# ---------------------------------------------------------------------------
# The output folder


def test_output_is_private_by_default(tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "toy.ipynb").write_bytes(b"not json")
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        grade("toy", subs, out, course=Course(FIXTURE.root, state=tmp_path / "state"),
              progress=False)
    finally:
        os.umask(old)
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777
             for p in [out, *out.rglob("*")]}
    assert modes["."] == 0o700 and modes["grades.csv"] == 0o600
    assert modes["feedback/alice/toy.html"] == 0o600 and modes["results/toy/alice.json"] == 0o600
    assert all(m in (0o700, 0o600) for m in modes.values()), modes
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_output_can_be_shared_on_request(tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "toy.ipynb").write_bytes(b"not json")
    out = tmp_path / "out"
    grade("toy", subs, out, course=Course(FIXTURE.root, state=tmp_path / "state"),
          progress=False, private=False)
    assert out.stat().st_mode & 0o777 == 0o755
    assert (out / "grades.csv").stat().st_mode & 0o777 == 0o644
    assert (out / "feedback" / "alice").stat().st_mode & 0o777 == 0o755


# ---------------------------------------------------------------------------
# Up to date means: same submission, chapter, settings, key and grader


def _graded_once(tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "toy.ipynb").write_bytes(b'{"nbformat": 4, "cells": []}')
    course = Course(FIXTURE.root, state=tmp_path / "state")
    settings = GradingSettings(cell_timeout=30)

    def run(**changes):
        return grade("toy", subs, tmp_path / "out", course=course,
                     settings=changes.get("settings", settings), progress=False)

    assert run().graded == ["alice"]
    assert run().skipped == ["alice"]
    return run, course


def test_other_settings_make_a_result_stale(tmp_path):
    run, _ = _graded_once(tmp_path)
    assert run(settings=GradingSettings(cell_timeout=31)).graded == ["alice"]


def test_another_secret_key_makes_a_result_stale(tmp_path):
    run, course = _graded_once(tmp_path)
    key_file = course.state / "secret"
    key_file.unlink()
    assert run().graded == ["alice"]
    result = json.loads((tmp_path / "out" / "results" / "toy" / "alice.json").read_text())
    key = key_file.read_bytes()
    # The result names the key by a keyed hash: neither the key nor its plain hash.
    assert key.hex() not in json.dumps(result)
    assert hashlib.sha256(key).hexdigest()[:16] != result["key_id"]


def test_another_grader_version_makes_a_result_stale(tmp_path, monkeypatch):
    from autograde import grade as grade_module
    run, _ = _graded_once(tmp_path)
    monkeypatch.setattr(grade_module, "_VERSION", "another-version")
    assert run().graded == ["alice"]


def test_the_grader_version_follows_the_sources(tmp_path, monkeypatch):
    from autograde import grade as grade_module
    first = grade_module.grader_version()
    monkeypatch.setattr(grade_module, "_VERSION", None)
    assert grade_module.grader_version() == first
    # A copy of the package with one changed byte has another version.
    import shutil
    copy = tmp_path / "pkg" / "autograde"
    shutil.copytree(Path(grade_module.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("state", "__pycache__"))
    (copy / "judge.py").write_text((copy / "judge.py").read_text() + "\n# changed\n")
    monkeypatch.setattr(grade_module, "__file__", str(copy / "grade.py"))
    monkeypatch.setattr(grade_module, "_VERSION", None)
    assert grade_module.grader_version() != first


def test_a_result_written_by_an_older_grader_is_stale(tmp_path):
    run, _ = _graded_once(tmp_path)
    path = tmp_path / "out" / "results" / "toy" / "alice.json"
    result = json.loads(path.read_text())
    for key in ("settings_sha256", "key_id", "grader_version"):
        result.pop(key)
    path.write_text(json.dumps(result))
    assert run().graded == ["alice"]
