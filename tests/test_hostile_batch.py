"""A hostile class cannot exhaust or poison a batch: the grading command end to end.

* A batch of 20 honest students and one of each hostile submission (huge
  exception names and outputs from a rewritten runner, oversized notebooks,
  a crafted reply, script in a test message, forged folder names, links and
  special files, tags and a kernelspec) is graded by ``python -m autograde
  grade`` with 2 workers, inside a memory limit of 4 GiB for the whole
  command: every honest student gets the score of an honest-only run, every
  hostile one a status that names what happened, every feedback page stays
  under ``feedback.MAX_PAGE_BYTES``, and the grader's own processes (the
  command and its workers, sandboxes aside) stay under 2 GiB: printed.
* After ``kill -9`` of the grading command mid-batch, within 10 s none of
  its processes is left (workers, sandbox launchers, inits, student code);
  a rerun sweeps its scratch folders and resumes to the grades.csv of an
  uninterrupted run.
* A worker process that dies mid-student is replaced and the student graded
  in a fresh one; a student whose grading ends two workers gets a status row.

The course is the small fixture (tests/fixtures/course), so the whole module
takes about a minute.
"""

import copy
import csv
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograde import sandbox
from autograde.config import Course, GradingSettings
from autograde.feedback import MAX_PAGE_BYTES
from autograde.grade import grade

CAPS = sandbox.capabilities()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CAPS["mode"] == "rlimits",
                       reason="namespaces unavailable, so hostile code would run unsandboxed "
                              f"as your user ({CAPS.get('reason_mount_namespace', '')})"),
]

FIXTURE = Path(__file__).parent / "fixtures" / "course"
SOURCE = json.loads((FIXTURE / "solutions" / "toy" / "toy.ipynb").read_text())
RELEASE = json.loads((FIXTURE / "notebooks" / "toy" / "toy.ipynb").read_text())
COMMAND_MEMORY = 4 * 2**30
GRADER_PEAK_LIMIT = 2 * 2**30
CELL_TIMEOUT, TOTAL_TIMEOUT = 30, 120


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solved(*names, replace=None, added=()):
    """The release with the answers ``names`` solved; ``added`` code cells after relu's."""
    nb = copy.deepcopy(RELEASE)
    answers = {grade_id(c): c["source"] for c in SOURCE["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")}
    for cell in nb["cells"]:
        gid = grade_id(cell)
        if gid in names:
            cell["source"] = answers[gid]
        if replace and gid in replace:
            cell["source"] = replace[gid]
    at = next(i for i, c in enumerate(nb["cells"]) if grade_id(c) == "relu") + 1
    for source in reversed(added):
        nb["cells"].insert(at, {"cell_type": "code", "execution_count": None, "metadata": {},
                                "outputs": [], "source": source})
    return nb


def write(folder, student, content):
    path = os.path.join(os.fsencode(folder), os.fsencode(student), b"toy.ipynb")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


FIND_RUNNER = ("import gc\n"
               "RUNNER = next(o for o in gc.get_objects() "
               "if hasattr(type(o), 'op_exec') and hasattr(type(o), 'serve'))\n")
UNCAP = FIND_RUNNER + ("RUNNER.output_cap = 10**9\n"
                       "type(RUNNER).op_exec.__globals__['_type_name'] = "
                       "lambda exc: type(exc).__name__\n")
HONEST = {"solution": ("relu", "softmax", "running_mean"), "release": (),
          "relu_only": ("relu",), "softmax_only": ("softmax",),
          "mean_only": ("running_mean",)}
HONEST_MIX = ["solution"] * 8 + ["release"] * 3 + ["relu_only"] * 3 + ["softmax_only"] * 3 \
    + ["mean_only"] * 3


def honest_students(folder):
    names = {}
    for i, kind in enumerate(HONEST_MIX):
        name = f"honest{i:02d}_{kind}"
        write(folder, name, solved(*HONEST[kind]))
        names[name] = kind
    return names


def solo_students(folder):
    """One student of each honest kind, graded alone: {kind: student}."""
    for kind, answers in HONEST.items():
        write(folder, f"solo_{kind}", solved(*answers))
    return {kind: f"solo_{kind}" for kind in HONEST}


def hostile_students(folder):
    """Write one of each hostile submission; return {folder name: status it must show}."""
    expect = {}

    def add(name, content, status):
        write(folder, name, content)
        expect[name] = status

    add("long_type_name", solved("relu", added=[UNCAP], replace={
        "softmax": "def softmax(z):\n    raise type('E' * 1_000_000, (Exception,), {})('no')\n"}),
        "ok")
    add("huge_type_name", solved("relu", added=[
        UNCAP, "raise type('E' * 12_000_000, (Exception,), {})('no')\n"]), "broken reply")
    add("output_flood", solved("relu", added=[UNCAP] + ["print('x' * 3_000_000)\n"] * 4),
        "output truncated")
    add("output_40mib", solved("relu", added=[UNCAP, "print('x' * (40 * 2**20))\n"]),
        "broken reply")
    empty_cell = '{"cell_type":"code","source":"","metadata":{}},'
    big = b'{"nbformat": 4, "metadata": {}, "cells": [' + empty_cell.encode() * 2_000_000
    add("notebook_100mb", big[:-1] + b"]}", "notebook file larger than 16 MB")
    tiny = b'{"nbformat": 4, "metadata": {"x": [' + b"[]," * 5_000_000 + b'[]]}, "cells": []}'
    add("tiny_values", tiny, "far more JSON values than a notebook")
    nb = solved("relu")
    nb["cells"] += [{"cell_type": "code", "metadata": {}, "outputs": [], "source": "1"}] * 1500
    add("many_cells", nb, "cells (at most 1000)")
    script = ("def softmax(z):\n    raise ValueError(r'$\\href{javascript:alert(document.cookie)}"
              "{\\style{position:fixed;top:0;left:0;width:100%;height:100%}{click}}$ "
              "<script>alert(1)</script><img src=x onerror=alert(2)>')\n")
    add("script_in_message", solved("relu", replace={"softmax": script}, added=[
        "print('<script>alert(3)</script> $\\\\class{x}{y}$ \\\\(\\\\href{javascript:x}{y}\\\\)')"]),
        "ok")
    frame = ("import os, json, struct\n"
             "head = json.dumps({'ok': True, 'data': {'a': ['<f8', [0, 2**63]]}}).encode()\n"
             "FRAME = struct.pack('!IQ', len(head), 0) + head\n")
    add("crafted_shape", solved("relu", added=[FIND_RUNNER + frame], replace={
        "softmax": "def softmax(z):\n    os.write(RUNNER.fd_out, FRAME)\n    return z\n"}),
        "broken reply")
    nb = solved("relu")
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade"):
            cell["metadata"]["tags"] = ["grader-skip", "raises-exception"]
    add("skip_tags", nb, "tags of locked cells ignored")
    nb = solved("relu")
    nb["metadata"]["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}
    add("kernelspec", nb, "kernelspec restored ('bash' asked for, 'python3' used)")

    # Names that would forge rows or formulas in grades.csv, or break a file name.
    for i, name in enumerate(["eve\rmallory,toy,6,6,ok", "=HYPERLINK(\"http://x\",\"go\")",
                              "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "n" * 250,
                              "eve\u202egnp.exe", os.fsdecode(b"caf\xe9")]):
        write(folder, name, solved("relu", "softmax", "running_mean"))
        expect[name] = "refused: the folder name"

    # Intake: links and special files, none of which may be opened.
    instructor = folder.parent / "instructor"
    instructor.mkdir()
    (instructor / "solution.ipynb").write_text(json.dumps(SOURCE))
    (folder / "hard_link").mkdir()
    os.link(instructor / "solution.ipynb", folder / "hard_link" / "toy.ipynb")
    expect["hard_link"] = "is a hard link"
    (folder / "linked_folder").symlink_to(folder / "honest00_solution")
    expect["linked_folder"] = "refused: the folder linked_folder is a symbolic link"
    (folder / "fifo").mkdir()
    os.mkfifo(folder / "fifo" / "toy.ipynb")
    expect["fifo"] = "refused: toy.ipynb is not a regular file"
    if os.geteuid() == 0:
        (folder / "device").mkdir()
        os.mknod(folder / "device" / "toy.ipynb", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        expect["device"] = "refused: toy.ipynb is not a regular file"
    return expect


# ---------------------------------------------------------------------------
# Running the command in a memory limit, and watching its processes


def children(pid):
    """Pids whose parent is ``pid``."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(p))
            except (OSError, IndexError, ValueError):
                continue
    return out


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def peak_rss(pid):
    """VmHWM of ``pid`` in bytes (its resident high-water mark), or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def grader_processes(command):
    """The command and its own helpers (pool workers), sandboxes aside."""
    return [command] + [p for p in children(command) if b"--launch" not in _argv(p)]


def is_sandbox_process(pid):
    """A sandbox launcher or init (``sandbox.py --launch``), or the student's runner."""
    argv = _argv(pid)
    return b"--launch" in argv or b"autograde.runner" in argv


class MemoryCgroup:
    """A memory cgroup with a limit, below this process's own (cgroup v1 or v2, root only)."""

    def __init__(self, limit):
        dirs, version = sandbox._own_cgroup_dirs()
        self.path = None
        if os.geteuid() != 0 or version is None:
            return
        parent = dirs.get("memory") or dirs.get("v2")
        if parent is None:
            return
        path = os.path.join(parent, f"autograde-test-{os.getpid()}")
        try:
            os.mkdir(path)
            name = "memory.limit_in_bytes" if version == "v1" else "memory.max"
            with open(os.path.join(path, name), "w") as f:
                f.write(str(limit))
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
            return
        self.path, self.version = path, version

    def enter(self):
        """For Popen's preexec_fn: move the new process into the group."""
        if self.path:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write("0")

    def peak(self):
        name = "memory.max_usage_in_bytes" if self.version == "v1" else "memory.peak"
        try:
            with open(os.path.join(self.path, name)) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def oom_kills(self):
        return sandbox._oom_kills([self.path]) if self.path else 0

    def remove(self):
        if self.path:
            for sub in os.listdir(self.path):
                if sub.startswith("sb-"):
                    try:
                        os.rmdir(os.path.join(self.path, sub))
                    except OSError:
                        pass
            try:
                os.rmdir(self.path)
            except OSError:
                pass


def grading_command(course, subs, out, cell_timeout=CELL_TIMEOUT):
    return [sys.executable, "-m", "autograde", "--course-root", str(course.root), "--state",
            str(course.state), "grade", "toy", str(subs), "--out", str(out), "--workers", "2",
            "--cell-timeout", str(cell_timeout), "--total-timeout", str(TOTAL_TIMEOUT),
            "--quiet"]


def settings(cell_timeout=CELL_TIMEOUT):
    """What the command's --cell-timeout and --total-timeout give, for runs through the API."""
    from autograde.config import load_settings
    return load_settings(cell_timeout=cell_timeout, total_timeout=TOTAL_TIMEOUT)


def read_grades(path):
    return {r["student_id"]: r for r in csv.DictReader(Path(path).read_text().splitlines())}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return Course(FIXTURE, state=root / "state"), root


# ---------------------------------------------------------------------------
# The batch


@pytest.fixture(scope="module")
def batch(course):
    course, root = course
    solo_subs, subs = root / "solo", root / "subs"
    solo_of = solo_students(solo_subs)
    honest = honest_students(subs)
    expect = hostile_students(subs)
    # The answers of an honest kind pass or fail whatever the hidden inputs, so one
    # student of each kind, graded alone, gives the solo result of all of that kind.
    solo = grade("toy", solo_subs, root / "solo_out", course=course, workers=2,
                 settings=settings(), progress=False)
    assert solo.failed == {}

    cgroup = MemoryCgroup(COMMAND_MEMORY)
    peaks = {}
    proc = subprocess.Popen(grading_command(course, subs, root / "out"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=cgroup.enter)
    try:
        while proc.poll() is None:
            for pid in grader_processes(proc.pid):
                peaks[pid] = max(peaks.get(pid, 0), peak_rss(pid))
            time.sleep(0.05)
        out, err = proc.communicate()
        command_peak, oom_kills = (cgroup.peak(), cgroup.oom_kills()) if cgroup.path else \
            (None, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cgroup.remove()
    grader_peak = sum(peaks.values())
    limit = f"{COMMAND_MEMORY >> 30} GiB cgroup" if cgroup.path else "no limit (no cgroup here)"
    memory = (f"\ngrader peak memory: {grader_peak / 2**20:.0f} MiB over {len(peaks)} processes "
              "(the command and its workers, each at its own peak); whole command with "
              "sandboxes: " + (f"{command_peak / 2**20:.0f} MiB" if command_peak else
                               "not measured") + f"; memory limit: {limit}")
    return {"returncode": proc.returncode, "stdout": out.decode(), "stderr": err.decode(),
            "grades": read_grades(root / "out" / "grades.csv"),
            "solo_grades": read_grades(root / "solo_out" / "grades.csv"), "solo_of": solo_of,
            "solo_tests": {kind: _outcomes(root / "solo_out", student)
                           for kind, student in solo_of.items()},
            "honest": honest, "expect": expect, "out": root / "out",
            "grader_peak": grader_peak, "oom_kills": oom_kills, "cgroup": cgroup.path,
            "memory": memory}


def test_the_command_grades_everyone(batch):
    assert batch["returncode"] == 0, batch["stderr"][-3000:]
    assert "could not grade 0" in batch["stdout"]
    assert batch["oom_kills"] == 0 or batch["cgroup"] is None


def _outcomes(out, student):
    result = json.loads((out / "results" / "toy" / f"{student}.json").read_text())
    return [(t["grade_id"], t["passed"]) for t in result["tests"]]


def test_honest_students_get_their_solo_scores(batch):
    solo = {kind: batch["solo_grades"][student] for kind, student in batch["solo_of"].items()}
    assert (solo["solution"]["score"], solo["release"]["score"]) == ("6", "0")
    for name, kind in batch["honest"].items():
        got = batch["grades"][name]
        assert (got["score"], got["status"]) == (solo[kind]["score"], solo[kind]["status"]), name
        assert _outcomes(batch["out"], name) == batch["solo_tests"][kind], name


def test_every_hostile_student_has_a_row_that_says_what_happened(batch):
    rows = batch["grades"]
    refused = [r for r in rows.values() if r["status"].startswith("refused: the folder name")]
    assert len(refused) == sum(1 for s in batch["expect"].values()
                               if s == "refused: the folder name")
    for name, status in batch["expect"].items():
        if status == "refused: the folder name":
            continue
        assert name in rows, name
        assert status in rows[name]["status"], (name, rows[name]["status"])
        assert float(rows[name]["score"]) <= 1.0, (name, rows[name])  # relu's point at most


def test_grades_csv_has_one_plain_row_per_student_folder(batch):
    raw = (batch["out"] / "grades.csv").read_bytes()
    assert b"\r" not in raw and "\u202e" not in raw.decode()
    assert raw.count(b"\n") == 1 + len(batch["honest"]) + len(batch["expect"])
    for row in batch["grades"].values():
        assert not row["student_id"].startswith(("=", "+", "-", "@"))
        assert not row["status"].startswith(("=", "+", "-", "@"))


def test_feedback_pages_are_bounded_and_run_no_script(batch):
    pages = list((batch["out"] / "feedback").rglob("*.html"))
    assert len(pages) == len(batch["grades"])
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert len(text.encode()) <= MAX_PAGE_BYTES, (page, len(text))
        tags = Tags()
        tags.feed(text)
        assert not {"script", "iframe", "object", "embed", "img", "a", "form"} & tags.names, \
            (page, tags.names)
        assert not [a for a in tags.attributes if a.startswith("on")], page
        assert 'http-equiv="Content-Security-Policy"' in text and "default-src 'none'" in text
    flooded = (batch["out"] / "feedback" / "output_flood" / "toy.html").read_text()
    assert "[output truncated" in flooded
    scripted = (batch["out"] / "feedback" / "script_in_message" / "toy.html").read_text()
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in scripted  # shown, as text
    assert "\\href{javascript:alert(document.cookie)}" in scripted  # as TeX source, inert


class Tags(HTMLParser):
    """The element and attribute names of a page, as a browser's parser would find them."""

    def __init__(self):
        super().__init__()
        self.names, self.attributes = set(), set()

    def handle_starttag(self, tag, attrs):
        self.names.add(tag)
        self.attributes.update(name for name, _ in attrs)


def test_long_exception_names_are_cut_in_results(batch):
    result = json.loads((batch["out"] / "results" / "toy" / "long_type_name.json").read_text())
    assert all(len(t["message"]) < 2000 for t in result["tests"]), result["tests"]
    assert (batch["out"] / "results" / "toy" / "long_type_name.json").stat().st_size < 20_000


def test_the_grader_stays_under_its_memory_bound(batch, capsys):
    with capsys.disabled():  # shown when this file runs on its own (pytest -n 0)
        print(batch["memory"])
    assert 0 < batch["grader_peak"] < GRADER_PEAK_LIMIT, batch["memory"]


# ---------------------------------------------------------------------------
# kill -9 of the command


# Two cells that each sleep past the cell limit: a grader left to itself would go on
# for twice KILL_CELL_TIMEOUT after the kill, longer than the 10 s allowed.
KILL_CELL_TIMEOUT = 8
SLEEPER_MARK = "sleeper-3c9a"
SLEEPER = f"open('/proc/self/comm', 'w').write({SLEEPER_MARK!r})\nimport time\ntime.sleep(600)\n"


def test_kill_minus_9_leaves_no_process_and_a_rerun_resumes(course, tmp_path):
    course, _ = course
    subs = tmp_path / "subs"
    for i in range(6):
        write(subs, f"s{i}", solved("relu", "softmax", "running_mean"))
    write(subs, "asleep", solved("relu", added=[SLEEPER, SLEEPER]))  # graded first
    write(subs, "broken", b"{")
    reference = grade("toy", subs, tmp_path / "reference", course=course, workers=2,
                      settings=settings(KILL_CELL_TIMEOUT), progress=False)
    assert "timeout" in read_grades(tmp_path / "reference" / "grades.csv")["asleep"]["status"]
    assert reference.failed == {}
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    out = tmp_path / "out"
    proc = subprocess.Popen(grading_command(course, subs, out, KILL_CELL_TIMEOUT), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Mid-batch: some results written, and a sandbox running student code.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = list((out / "results" / "toy").glob("*.json")) if out.exists() else []
            tree = descendants(proc.pid)
            if done and any(_comm(p) == SLEEPER_MARK for p in tree):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the batch never reached the middle")
        tree = descendants(proc.pid)
        started = {pid: _start_time(pid) for pid in tree}
        assert any(is_sandbox_process(p) for p in tree)
        proc.kill()
        proc.wait()
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 10 and _alive(started):
            time.sleep(0.05)
        left = _alive(started)
        assert not left, f"left after 10 s: {[(p, _cmdline(p)) for p in left]}"
        # Nor any process started after the snapshot: the batch's carry its TMPDIR or work there.
        left = [p for p in _all_pids() if _of_batch(p, tmp)]
        assert not left, f"left after 10 s: {[(p, _cmdline(p)) for p in left]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [p.name for p in tmp.iterdir()], "the killed grader left no scratch folder to sweep"

    rerun = subprocess.run(grading_command(course, subs, out, KILL_CELL_TIMEOUT), env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "unchanged 0" not in rerun.stdout, rerun.stdout  # it resumed
    assert (out / "grades.csv").read_text() == (tmp_path / "reference" / "grades.csv").read_text()
    assert list(tmp.iterdir()) == [], "scratch folders accumulate"


def _all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _of_batch(pid, tmp):
    """True for a living process that runs in ``tmp`` or has it as its TMPDIR."""
    if _alive({pid: _start_time(pid)}) == []:
        return False
    try:
        if os.readlink(f"/proc/{pid}/cwd").startswith(str(tmp)):
            return True
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"TMPDIR={tmp}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def _start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def _alive(started):
    """The pids of ``started`` still running (same start time, not a zombie)."""
    left = []
    for pid, start in started.items():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == start and fields[0] != "Z":
            left.append(pid)
    return left


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


# ---------------------------------------------------------------------------
# A worker that dies


VICTIM_MARK = "victim-8d1e"
VICTIM = (f"open('/proc/self/comm', 'w').write({VICTIM_MARK!r})\n"
          "import time\ntime.sleep(3)\n")


class WorkerKiller(threading.Thread):
    """Kills, up to ``times`` times, the grader's worker whose sandbox runs the victim's code."""

    def __init__(self, times):
        super().__init__(daemon=True)
        self.times, self.killed, self.stop = times, [], threading.Event()

    def run(self):
        while not self.stop.is_set() and len(self.killed) < self.times:
            for pid in descendants(os.getpid()):
                if _comm(pid) == VICTIM_MARK:
                    worker = _worker_of(pid)
                    if worker is not None and worker not in self.killed:
                        os.kill(worker, signal.SIGKILL)
                        self.killed.append(worker)
            time.sleep(0.05)


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _worker_of(pid):
    """The ancestor of ``pid`` whose parent is this process: the worker."""
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return None
        if parent == os.getpid():
            return pid
        pid = parent
    return None


def _worker_batch(folder):
    for i in range(4):
        write(folder, f"s{i}", solved("relu", "softmax", "running_mean"))
    write(folder, "victim", solved("relu", "softmax", "running_mean", added=[VICTIM]))


@pytest.mark.parametrize("deaths", [1, 2])
def test_a_dead_worker_is_replaced_and_its_student_graded(course, tmp_path, deaths):
    course, _ = course
    _worker_batch(tmp_path / "subs")
    killer = WorkerKiller(deaths)
    killer.start()
    try:
        report = grade("toy", tmp_path / "subs", tmp_path / "out", course=course, workers=2,
                       settings=settings(), progress=False)
    finally:
        killer.stop.set()
        killer.join()
    assert len(killer.killed) == deaths
    rows = read_grades(tmp_path / "out" / "grades.csv")
    assert sorted(rows) == ["s0", "s1", "s2", "s3", "victim"]
    assert all(rows[f"s{i}"]["score"] == "6" and rows[f"s{i}"]["status"] == "ok"
               for i in range(4))
    if deaths == 1:  # graded again in a fresh worker
        assert report.failed == {}
        assert (rows["victim"]["score"], rows["victim"]["status"]) == ("6", "ok")
    else:            # given up, with a row that says why
        assert list(report.failed) == ["victim"]
        assert rows["victim"]["score"] == "0"
        assert "ended the grader's worker process 2 times (killed by signal 9)" in \
            rows["victim"]["status"]
        assert (tmp_path / "out" / "feedback" / "victim" / "toy.html").is_file()


def test_workers_that_cannot_start_are_a_grading_error_not_student_rows(course, tmp_path,
                                                                        monkeypatch):
    # A broken installation: worker processes fail while importing the grader. That is
    # the machine's fault, so no student may get a status row for it.
    from autograde.grade import GradingError
    course, _ = course
    fake = tmp_path / "fake"
    (fake / "autograde").mkdir(parents=True)
    (fake / "autograde" / "__init__.py").write_text("raise ImportError('a broken install')\n")
    monkeypatch.syspath_prepend(str(fake))  # what spawned workers import from
    for i in range(3):
        write(tmp_path / "subs", f"s{i}", solved("relu"))
    with pytest.raises(GradingError, match="worker processes cannot start"):
        grade("toy", tmp_path / "subs", tmp_path / "out", course=course, workers=2,
              settings=settings(), progress=False)
    assert not list((tmp_path / "out" / "results").rglob("*.json"))
