"""Grading on a Dask cluster gives exactly the grades of a local run.

A real ``dask scheduler`` and two ``dask worker`` commands run as separate
processes on 127.0.0.1, each in a process group of its own that the fixture
kills however the tests end. A batch of the toy chapter (honest students and
hostile submissions of the attack tests) graded through them by ``python -m
autograde grade --scheduler`` gives a grades.csv, result files and feedback
pages byte-identical to a local run; so does a second run during which one
worker is killed (SIGKILL to its whole group) while it grades a student.
A worker whose chapter differs from the grader's refuses, and the command
says why. Killing the scheduler mid-batch ends the command with a message
and a folder that a rerun completes. The module takes about two minutes on
two cores.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograde import sandbox
from autograde.config import Course

CAPS = sandbox.capabilities()
pytestmark = pytest.mark.slow

from test_hostile_batch import (FIND_RUNNER, FIXTURE, SOURCE, UNCAP,  # noqa: E402
                                _argv, descendants, grading_command,
                                solved, write)

HONEST = {"solution": ("relu", "softmax", "running_mean"), "release": (), "relu_only": ("relu",)}
START_TIMEOUT = 60


def students(folder):
    """Write the batch: three honest students, graded hostile ones, and intake refusals."""
    for kind, answers in HONEST.items():
        write(folder, f"honest_{kind}", solved(*answers))
    write(folder, "long_type_name", solved("relu", added=[UNCAP], replace={
        "softmax": "def softmax(z):\n    raise type('E' * 1_000_000, (Exception,), {})('no')\n"}))
    write(folder, "output_flood", solved("relu", added=[UNCAP] + ["print('x' * 3_000_000)\n"] * 2))
    frame = ("import os, json, struct\n"
             "head = json.dumps({'ok': True, 'data': {'a': ['<f8', [0, 2**63]]}}).encode()\n"
             "FRAME = struct.pack('!IQ', len(head), 0) + head\n")
    write(folder, "crafted_shape", solved("relu", added=[FIND_RUNNER + frame], replace={
        "softmax": "def softmax(z):\n    os.write(RUNNER.fd_out, FRAME)\n    return z\n"}))
    nb = solved("relu")
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade"):
            cell["metadata"]["tags"] = ["grader-skip", "raises-exception"]
    write(folder, "skip_tags", nb)
    write(folder, "=HYPERLINK(\"http://x\",\"go\")", solved("relu", "softmax", "running_mean"))
    instructor = folder.parent / "instructor"
    instructor.mkdir()
    (instructor / "solution.ipynb").write_text(json.dumps(SOURCE))
    (folder / "hard_link").mkdir()
    os.link(instructor / "solution.ipynb", folder / "hard_link" / "toy.ipynb")
    (folder / "fifo").mkdir()
    os.mkfifo(folder / "fifo" / "toy.ipynb")


def _stop(proc):
    """SIGKILL ``proc``'s whole process group (it leads one) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class DaskCluster:
    """A ``dask scheduler`` and ``dask worker`` commands on 127.0.0.1, each in its own session."""

    def __init__(self, root, workers, env=None):
        self.root, self.env = root, {**os.environ, **(env or {})}
        self.file = root / "scheduler.json"
        self.procs = []
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", "0",
                                     "--no-dashboard", "--scheduler-file", str(self.file))
        self.address = json.loads(self._wait(self.file.is_file, self.file.read_text))["address"]
        self.workers = [self._start("worker", "--scheduler-file", str(self.file), "--host",
                                    "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                                    "--name", f"w{i}") for i in range(workers)]
        from distributed import Client
        with Client(self.address, timeout=START_TIMEOUT) as client:
            client.wait_for_workers(workers, timeout=START_TIMEOUT)
            self.names = {info["name"]: addr for addr, info in
                          client.scheduler_info()["workers"].items()}

    def _start(self, *args):
        log = open(self.root / f"{args[0]}-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log,
                                stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def _wait(self, ready, value):
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            assert self.scheduler.poll() is None, "the dask scheduler ended at start"
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but give it a moment
        return value()

    def stop(self):
        for proc in reversed(self.procs):
            _stop(proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if CAPS["mode"] == "rlimits":
        pytest.skip("namespaces unavailable, so hostile code would run unsandboxed as your user "
                    f"({CAPS.get('reason_mount_namespace', '')})")
    pytest.importorskip("distributed", reason="Dask distributed is not installed "
                        "(pip install -e \".[cluster]\")")
    root = tmp_path_factory.mktemp("dask")
    # The workers find the course where the grader has it; this one is pinned so that
    # the refusal test can give the grader a different copy.
    dask = DaskCluster(root, 2, env={"AUTOGRADE_COURSE_ROOT": str(FIXTURE)})
    try:
        yield dask
    finally:
        dask.stop()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    course = Course(FIXTURE, state=root / "state")
    subs = root / "subs"
    students(subs)
    # The local run is the same command without --scheduler (two worker processes).
    local = subprocess.run(grading_command(course, subs, root / "local"), capture_output=True,
                           text=True, timeout=600)
    assert local.returncode == 0, local.stderr[-3000:]
    return course, subs, root


def command(course, subs, out, address):
    return grading_command(course, subs, out) + ["--scheduler", address]


def tree(out):
    """Every file below ``out``: relative path -> bytes."""
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_the_cluster_grades_exactly_as_a_local_run(cluster, batch):
    course, subs, root = batch
    done = subprocess.run(command(course, subs, root / "cluster", cluster.address),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "could not grade 0" in done.stdout
    local, remote = tree(root / "local"), tree(root / "cluster")
    assert (root / "cluster" / "grades.csv").read_bytes() == \
        (root / "local" / "grades.csv").read_bytes()
    assert sorted(remote) == sorted(local)
    assert [p for p in local if local[p] != remote[p]] == []
    grades = (root / "local" / "grades.csv").read_text()
    # What holds locally holds here: no unearned points, honest students unaffected.
    assert "honest_solution,toy,6,6,ok" in grades and "honest_release,toy,0,6,ok" in grades
    for hostile, status in [("crafted_shape", "broken reply"), ("hard_link", "hard link"),
                            ("fifo", "not a regular file"), ("skip_tags", "tags of locked"),
                            ("output_flood", "output truncated")]:
        row = next(r for r in grades.splitlines() if r.startswith(hostile + ","))
        assert status in row and row.split(",")[2] in ("0", "1"), row


def test_a_worker_killed_mid_student_loses_nothing(cluster, batch):
    course, subs, root = batch
    victim = cluster.workers[1]
    proc = subprocess.Popen(command(course, subs, root / "killed", cluster.address),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        # Kill it while it grades: a student's process runs below it (not the sandbox probe).
        while not any(b"autograde.runner" in _argv(p) for p in descendants(victim.pid)):
            assert proc.poll() is None, "the batch ended before the worker graded anyone"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        _stop(victim)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert (root / "killed" / "grades.csv").read_bytes() == \
        (root / "local" / "grades.csv").read_bytes()
    local, after = tree(root / "local"), tree(root / "killed")
    assert [p for p in local if local[p] != after.get(p)] == []


def test_a_worker_with_another_chapter_source_refuses(cluster, batch, tmp_path):
    course, subs, root = batch
    changed = tmp_path / "course"
    shutil.copytree(FIXTURE, changed)
    source = changed / "solutions" / "toy" / "toy.ipynb"
    nb = json.loads(source.read_text())
    nb["cells"][0]["source"] = "".join(nb["cells"][0]["source"]) + "\nA changed sentence."
    source.write_text(json.dumps(nb))
    other = Course(changed, state=root / "state")
    done = subprocess.run(command(other, subs, tmp_path / "out", cluster.address),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refuse to grade" in done.stderr and "source notebook of 'toy'" in done.stderr
    # Only the forged folder name's refusal, written before any task is sent.
    written = [p.name for p in (tmp_path / "out" / "results" / "toy").glob("*.json")]
    assert all(name.startswith("invalid-") for name in written), written


def test_the_grader_without_scheduler_never_imports_dask():
    code = ("import sys, autograde.__main__, autograde.grade\n"
            "assert not {'dask', 'distributed'} & set(sys.modules), 'dask imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_weak_sandbox_or_another_version_is_refused(monkeypatch):
    from autograde import cluster as dask_grading
    from autograde.grade import grader_version
    from autograde.notebook_io import load_chapter
    course = Course(FIXTURE)
    chap = load_chapter(course.source_notebook("toy"), course.release_notebook("toy"), "toy")
    expect = {"grader_version": grader_version(), "source_sha256": chap.source_sha256,
              "release_sha256": chap.release_sha256}
    assert dask_grading.worker_problem("toy", expect, str(FIXTURE), False) is None
    wrong = dict(expect, grader_version="0" * 16)
    assert "course version" in dask_grading.worker_problem("toy", wrong, str(FIXTURE), False)
    monkeypatch.setattr(sandbox, "capabilities", lambda: dict(CAPS, mode="rlimits"))
    assert "--allow-weak-sandbox" in dask_grading.worker_problem("toy", expect, str(FIXTURE),
                                                                 False)
    assert dask_grading.worker_problem("toy", expect, str(FIXTURE), True) is None


@pytest.mark.parametrize("address", ["local:0", "local:x", "local:1000", " "])
def test_a_malformed_scheduler_address_is_refused(address):
    from autograde import cluster as dask_grading
    with pytest.raises(ValueError, match="local:N|address"):
        dask_grading.parse_scheduler(address)


def test_losing_the_scheduler_ends_the_command_resumably(batch, tmp_path):
    pytest.importorskip("distributed", reason="Dask distributed is not installed")
    if CAPS["mode"] == "rlimits":
        pytest.skip("namespaces unavailable")
    course, subs, root = batch
    dask = DaskCluster(tmp_path, 1, env={"AUTOGRADE_COURSE_ROOT": str(FIXTURE)})
    out = tmp_path / "out"
    try:
        proc = subprocess.Popen(command(course, subs, out, dask.address),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 300
            while not [p for p in (out / "results" / "toy").glob("*.json")
                       if not p.name.startswith("invalid-")]:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            _stop(dask.scheduler)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        dask.stop()
    assert proc.returncode == 2, err[-3000:]
    assert "lost the Dask scheduler" in err and "run the same command again" in err
    # The folder resumes: a local rerun grades the rest and ends with the local grades.
    again = subprocess.run(grading_command(course, subs, out), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "unchanged 0" not in again.stdout
    assert (out / "grades.csv").read_bytes() == (root / "local" / "grades.csv").read_bytes()
