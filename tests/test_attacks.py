"""End-to-end attacks on the grader: each submission of one batch tries one attack.

The fixture chapter (tests/fixtures/attacks) has three exercises worth 1, 2
and 1 points. Every attacker starts from an honest part that earns exactly
1 point (relu solved, the rest left as the release stubs) and adds its
attack; it must end with at most that point and a status that says what
happened. Two honest students sit in the same batch, graded with two
workers; each must get exactly the result it gets when graded alone.

The whole batch is graded once (module fixture) and each test checks one
attacker's result.
"""

import ast
import copy
import html
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from autograde import sandbox
from autograde.config import Course, GradingSettings
from autograde.grade import grade

CAPS = sandbox.capabilities()

pytestmark = [
    pytest.mark.slow,  # one batch of 38 submissions, some waiting out timeouts
    # Without namespaces the attacks would run unsandboxed as the user running
    # the tests: kill(-1) ends their session, the fork bomb and the file flood
    # hit their machine.
    pytest.mark.skipif(CAPS["mode"] == "rlimits",
                       reason="namespaces unavailable, so the attacks would run unsandboxed "
                              f"as your user ({CAPS.get('reason_mount_namespace', '')})"),
]

FIXTURE = Path(__file__).parent / "fixtures" / "attacks"
CHAPTER = "attacks"

# Short limits keep the batch fast. A cell of the honest notebooks takes
# milliseconds (importing NumPy, 0.2 s, is the slowest), so 2.5 s leaves a
# wide margin on a loaded 2-core machine; the student's process needs about
# 250 MB of address space (IPython, NumPy).
SETTINGS = GradingSettings(cell_timeout=2.5, total_timeout=30.0, max_restarts=1,
                           memory_bytes=512 * 2**20, output_cap=4096)
HONEST_PART = 1.0  # relu's point

HIDDEN_MARKERS = ("hidden-marker-relu-5e21", "hidden-marker-softmax-8c4f",
                  "hidden-marker-scale-0b7d", "test_softmax-z", "* 1000.0")
ALICE_MARKER = "alice-private-marker-91ab"


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


RELEASE = load(FIXTURE / "notebooks" / CHAPTER / f"{CHAPTER}.ipynb")
SOURCE = load(FIXTURE / "solutions" / CHAPTER / f"{CHAPTER}.ipynb")


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _solution_of(grade_id):
    for cell in SOURCE["cells"]:
        if _grade_id(cell) == grade_id:
            text = "".join(cell["source"])
            return "\n".join(line for line in text.splitlines() if "### " not in line)
    raise KeyError(grade_id)


def notebook(solved=("relu",), replace=None):
    """The release with the answers in ``solved`` filled in; ``replace`` maps grade_id -> source."""
    nb = copy.deepcopy(RELEASE)
    for cell in nb["cells"]:
        gid = _grade_id(cell)
        if gid in solved:
            cell["source"] = _solution_of(gid)
        if replace and gid in replace:
            cell["source"] = replace[gid]
    return nb


def with_added_cell(nb, source, after="test_relu"):
    """Insert a code cell the student added after the cell ``after``."""
    nb = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(nb["cells"]) if _grade_id(c) == after)
    nb["cells"].insert(index + 1, {"cell_type": "code", "execution_count": None,
                                   "metadata": {}, "outputs": [], "source": source})
    return nb


def graded_cells_of(nb):
    return [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


# ---------------------------------------------------------------------------
# The attacks. Each returns the notebook file's bytes.


def edit_tests():
    nb = notebook()
    for cell in graded_cells_of(nb):
        cell["source"] = "pass"
    return nb


def empty_tests():
    nb = notebook()
    for cell in graded_cells_of(nb):
        cell["source"] = ""
    return nb


def delete_tests():
    nb = notebook()
    nb["cells"] = [c for c in nb["cells"] if c not in graded_cells_of(nb)]
    return nb


def retype_tests():
    nb = notebook()
    for cell, kind in zip(graded_cells_of(nb), ("markdown", "raw", "markdown")):
        cell["cell_type"] = kind
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
    return nb


def tamper_metadata():
    nb = notebook()
    tests = graded_cells_of(nb)
    for cell in tests:
        meta = cell["metadata"]["nbgrader"]
        meta["points"] = 100
        meta["locked"] = False
    tests[1]["metadata"]["nbgrader"]["grade_id"] = "test_relu"  # claim relu's id
    tests[2]["metadata"]["nbgrader"]["grade"] = False
    return nb


def duplicate_cells():
    nb = notebook()
    cells = []
    for cell in nb["cells"]:
        cells.append(cell)
        if _grade_id(cell) is not None:
            twin = copy.deepcopy(cell)
            twin.pop("id", None)
            if _grade_id(cell) == "softmax":
                twin["source"] = "def softmax(z):\n    return z\n"
            cells.append(twin)
    nb["cells"] = cells
    return nb


def skip_tags():
    nb = notebook()
    for cell in graded_cells_of(nb):
        cell["metadata"]["tags"] = ["skip-execution", "grader-skip", "raises-exception"]
    return nb


def change_kernelspec():
    nb = notebook()
    nb["metadata"]["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}
    nb["metadata"]["language_info"] = {"name": "bash"}
    return nb


WRONG_SOFTMAX = "def softmax(z):\n    return np.full(np.shape(z), 0.5)\n"
WRONG_SCALE = "def scale(x, a):\n    return x\n"


def _kernel_tamper(code):
    nb = notebook(replace={"softmax": WRONG_SOFTMAX, "scale": WRONG_SCALE})
    return with_added_cell(nb, code, after="relu")


def redefine_numpy():
    return _kernel_tamper(
        "import numpy, numpy.testing\n"
        "numpy.allclose = lambda *a, **k: True\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None\n"
        "numpy.max = lambda *a, **k: 0.0\n"
        "numpy.testing = type(numpy)('numpy.testing')\n")


def redefine_builtins():
    return _kernel_tamper(
        "import builtins\n"
        "builtins.abs = lambda x: 0\n"
        "builtins.isinstance = lambda *a: True\n"
        "builtins.AssertionError = type('AssertionError', (BaseException,), {})\n")


def redefine_checks():
    return _kernel_tamper(
        "import sys, types, course_lib.checks as checks\n"
        "for name in ('check_close', 'check_shape', 'check_scalar', 'check_true'):\n"
        "    setattr(checks, name, lambda *a, **k: None)\n"
        "fake = types.ModuleType('course_lib.checks')\n"
        "fake.__dict__.update(vars(checks))\n"
        "sys.modules['course_lib.checks'] = fake\n")


def predictable_inputs():
    # Make every generator return zeros, then answer correctly only for zeros.
    nb = notebook(replace={
        "softmax": "def softmax(z):\n    return np.full(np.shape(z), 1.0 / np.shape(z)[1])\n"})
    return with_added_cell(nb, after="relu", source=(
        "import numpy as np, course_lib.checks as checks\n"
        "class Zeros:\n"
        "    def normal(self, size=None, **k):\n"
        "        return np.zeros(size)\n"
        "checks.rng_for = lambda label: Zeros()\n"
        "np.random.default_rng = lambda *a, **k: Zeros()\n"))


def custom_exception_handler():
    return _kernel_tamper(
        "import sys\n"
        "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "sys.excepthook = lambda *a: None\n")


def fake_pass_output():
    frame = json.dumps({"ok": True, "stdout": "", "stderr": "", "error": None}).encode()
    return _kernel_tamper(
        "import os, struct\n"
        "print('test_softmax ... PASSED (2/2 points)')\n"
        "print('All tests passed. Score: 4/4')\n"
        f"frame = struct.pack('!IQ', {len(frame)}, 0) + {frame!r}\n"
        "for fd in range(1, 12):\n"
        "    try:\n"
        "        os.write(fd, frame * 3)\n"
        "    except OSError:\n"
        "        pass\n")


def patch_the_runner():
    # Student code shares its process with the runner: rewrite the runner's
    # replies into malformed ones.
    return _kernel_tamper(
        "import gc\n"
        "for obj in gc.get_objects():\n"
        "    R = type(obj)\n"
        "    if hasattr(R, 'op_get') and hasattr(R, 'serve'):\n"
        "        R.op_get = lambda self, h, v: ({'ok': True}, ['not', 'a', 'dict'])\n"
        "        R.op_exec = lambda self, h, v: ({'ok': 'yes', 'stdout': {'x': 1}, "
        "'stderr': None, 'error': [1, 2]}, None)\n"
        "        R.op_call = lambda self, h, v: ({'ok': False, 'error': "
        "{'type': 'SystemExit', 'message': 'x' * 10**6}}, None)\n")


def cheating_return_value():
    return notebook(replace={"softmax": (
        "class Anything:\n"
        "    def __eq__(self, other): return True\n"
        "    def __bool__(self): return True\n"
        "    def __array__(self, *a, **k): raise SystemExit\n"
        "    shape = (2, 2)\n"
        "def softmax(z):\n"
        "    return Anything()\n")})


def raise_base_exceptions():
    return notebook(replace={
        "softmax": "def softmax(z):\n    raise SystemExit(0)\n",
        "scale": "def scale(x, a):\n    raise KeyboardInterrupt\n"})


def exfiltrate_hidden_inputs():
    # relu is correct but keeps every input it gets; a later cell prints them.
    nb = notebook(replace={"relu": (
        "SEEN = []\n"
        "def relu(x):\n"
        "    SEEN.append(np.asarray(x, dtype=float).ravel().tolist())\n"
        "    return np.maximum(x, 0)\n")})
    return with_added_cell(nb, "print(SEEN)\n")


def leaked_inputs(feedback_html):
    """The lists printed by exfiltrate_hidden_inputs, read back from its feedback page."""
    text = html.unescape(feedback_html)
    start = text.index("[[-1.0, 0.0, 2.0]")
    return ast.literal_eval(text[start:text.index("]]", start) + 2])


def replay_leaked_inputs(seen):
    # No relu at all: the visible answer and the previous submission's hidden
    # answer, hard-coded. New bytes draw new hidden inputs, so it must fail.
    leaked_x = seen[1]
    return notebook(solved=(), replace={"relu": (
        f"LEAKED_X = np.array({leaked_x!r}).reshape(3, 5)\n"
        "def relu(x):\n"
        "    if np.shape(x) == (3,):\n"
        "        return np.array([0.0, 0.0, 2.0])\n"
        "    return np.where(LEAKED_X > 0, LEAKED_X, 0.0)\n")})


def _dos(code):
    return with_added_cell(notebook(), code)


def infinite_loop():
    return _dos("while True:\n    pass\n")


def loop_ignoring_sigint():
    return _dos("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "while True:\n    pass\n")


def memory_bomb():
    # Touching memory is slow on small virtual machines, so most of the bomb
    # is address space: the limit on it stops the loop at once.
    return _dos("hog = [np.ones(2**22)]\nwhile True:\n    hog.append(np.empty(2**27))\n")


def fork_bomb():
    return _dos("import os\nwhile True:\n    try:\n        os.fork()\n"
                "    except OSError:\n        pass\n")


def output_flood():
    return _dos("import os, sys\n"
                "for i in range(20000):\n    print('x' * 1000)\n"
                "sys.stderr.write('y' * 10**7)\n"
                "for i in range(2000):\n    os.write(1, b'z' * 65536)\n")


def exit_kernel():
    return _dos("import os\nos._exit(0)\n")


def kill_everything():
    return _dos("import os, signal\n"
                "for pid in (-1, os.getppid(), 1, os.getpid()):\n"
                "    try:\n"
                "        os.kill(pid, signal.SIGKILL)\n"
                "    except OSError:\n"
                "        pass\n")


def sleep_past_timeout():
    return _dos("import time\ntime.sleep(3600)\n")


def read_files(paths):
    code = ("import os\n"
            f"for p in {paths!r}:\n"
            "    try:\n"
            "        with open(p, 'rb') as f:\n"
            "            print('GOT' + '-FILE', p, f.read().hex()[:2000])\n"
            "    except OSError as exc:\n"
            "        print('failed', p, type(exc).__name__)\n"
            "for top in ('/', os.path.dirname(os.getcwd())):\n"
            "    print('listing', top, os.listdir(top))\n"
            "print(dict(os.environ))\n")
    return _dos(code)


def write_files(paths):
    code = ("import os\n"
            f"for p in {paths!r}:\n"
            "    try:\n"
            "        with open(p, 'w') as f:\n"
            "            f.write('PWNED')\n"
            "        print('WRO' + 'TE', p)\n"
            "    except OSError as exc:\n"
            "        print('failed', p, type(exc).__name__)\n")
    return _dos(code)


def network(port):
    return _dos("import socket\n"
                "for host in ('127.0.0.1', 'localhost', 'example.com', '8.8.8.8'):\n"
                "    try:\n"
                f"        socket.create_connection((host, {port}), timeout=1)\n"
                "        print('CONN' + 'ECTED', host)\n"
                "    except OSError as exc:\n"
                "        print('no network to', host, type(exc).__name__)\n")


# ---------------------------------------------------------------------------
# The batch


ATTACKS = {
    "edit_tests": edit_tests, "empty_tests": empty_tests, "delete_tests": delete_tests,
    "retype_tests": retype_tests, "tamper_metadata": tamper_metadata,
    "duplicate_cells": duplicate_cells, "skip_tags": skip_tags,
    "change_kernelspec": change_kernelspec, "redefine_numpy": redefine_numpy,
    "redefine_builtins": redefine_builtins, "redefine_checks": redefine_checks,
    "predictable_inputs": predictable_inputs, "custom_exception_handler": custom_exception_handler,
    "fake_pass_output": fake_pass_output, "patch_the_runner": patch_the_runner,
    "cheating_return_value": cheating_return_value,
    "exfiltrate_hidden_inputs": exfiltrate_hidden_inputs,
    "raise_base_exceptions": raise_base_exceptions, "infinite_loop": infinite_loop,
    "loop_ignoring_sigint": loop_ignoring_sigint, "memory_bomb": memory_bomb,
    "fork_bomb": fork_bomb, "output_flood": output_flood, "exit_kernel": exit_kernel,
    "kill_everything": kill_everything, "sleep_past_timeout": sleep_past_timeout,
}
BROKEN = {
    "invalid_json": b'{"cells": [ {"cell_type": "code", ',
    "empty_file": b"",
    "old_format": json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                              "cells": [], "worksheets": [{"cells": []}]}).encode(),
}


def _write(path, nb):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(nb if isinstance(nb, bytes) else json.dumps(nb).encode())


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """Where the course, its state, submissions and output live for the batch.

    Below /usr/local where this user may write there (root): a course
    installed in a system directory, which the sandbox shows, so the attacks
    that read and write files meet the masks over the instructor's folders.
    Elsewhere, pytest's temporary folder (below /tmp, which the sandbox replaces).
    """
    if not os.access("/usr/local", os.W_OK):
        yield tmp_path_factory.mktemp("attacks")
        return
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="autograde-test-attacks-", dir="/usr/local"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def batch(place):
    """Grade the honest students alone, then the whole batch; return what came out."""
    tmp = place
    course_root = tmp / "course"
    shutil.copytree(FIXTURE, course_root)  # attacks then aim at a copy, never the repository
    course = Course(root=course_root, state=tmp / "state")
    subs, solo_subs = tmp / "submissions", tmp / "solo"
    honest = {
        "alice": notebook(solved=("relu", "softmax", "scale"),
                          replace={"scale": _solution_of("scale") + f"\n# {ALICE_MARKER}\n"}),
        "bob": notebook(),
    }
    for name, nb in honest.items():
        _write(solo_subs / name / f"{CHAPTER}.ipynb", nb)
        _write(subs / name / f"{CHAPTER}.ipynb", nb)
    for name, make in ATTACKS.items():
        _write(subs / name / f"{CHAPTER}.ipynb", make())
    for name, raw in BROKEN.items():
        _write(subs / name / f"{CHAPTER}.ipynb", raw)
    _write(subs / "wrong_chapter" / f"{CHAPTER}.ipynb",
           load(course_root / "solutions" / "other" / "other.ipynb"))
    _write(subs / "missing_notebook" / "my_attempt.ipynb", notebook())

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    _write(subs / "network" / f"{CHAPTER}.ipynb", network(server.getsockname()[1]))
    out = tmp / "out"
    secrets_to_read = [str(course_root / "solutions" / CHAPTER / f"{CHAPTER}.ipynb"),
                       str(course.state / "secret"), str(subs / "alice" / f"{CHAPTER}.ipynb"),
                       str(out / "grades.csv"), str(out / "results" / CHAPTER / "alice.json"),
                       str(Path(sandbox.__file__).resolve().parent.parent / "pyproject.toml")]
    _write(subs / "read_files" / f"{CHAPTER}.ipynb", read_files(secrets_to_read))
    targets = [str(subs / "alice" / f"{CHAPTER}.ipynb"), str(out / "grades.csv"),
               str(out / "results" / CHAPTER / "alice.json"), str(out / "planted.txt"),
               str(course_root / "solutions" / CHAPTER / f"{CHAPTER}.ipynb"),
               str(course.state / "secret"), str(tmp / "planted.txt")]
    _write(subs / "write_files" / f"{CHAPTER}.ipynb", write_files(targets))
    before = {p: Path(p).read_bytes() for p in targets if Path(p).exists()}

    # A first submission prints the hidden inputs it received into its own
    # feedback; a second one tries to use them.
    leak_subs = tmp / "leak"
    leaker = leak_subs / "leaker" / f"{CHAPTER}.ipynb"
    _write(leaker, exfiltrate_hidden_inputs())
    grade(CHAPTER, leak_subs, tmp / "leak_out", course=course, workers=1, settings=SETTINGS,
          progress=False)
    seen = leaked_inputs((tmp / "leak_out" / "feedback" / "leaker" / f"{CHAPTER}.html")
                         .read_text(encoding="utf-8"))
    _write(subs / "replay_leaked_inputs" / f"{CHAPTER}.ipynb", replay_leaked_inputs(seen))
    # The same student then replaces the notebook with the replay, graded into the same folder.
    _write(leaker, replay_leaked_inputs(seen))
    resubmitted = grade(CHAPTER, leak_subs, tmp / "leak_out", course=course, workers=1,
                        settings=SETTINGS, progress=False)
    resubmitted_result = load(tmp / "leak_out" / "results" / CHAPTER / "leaker.json")

    solo = grade(CHAPTER, solo_subs, tmp / "solo_out", course=course, workers=1,
                 settings=SETTINGS, progress=False)
    report = grade(CHAPTER, subs, out, course=course, workers=2, settings=SETTINGS,
                   progress=False)
    try:
        server.accept()
        connected = True
    except BlockingIOError:
        connected = False
    finally:
        server.close()
    results = {p.stem: load(p) for p in (out / "results" / CHAPTER).glob("*.json")}
    solo_results = {p.stem: load(p)
                    for p in (tmp / "solo_out" / "results" / CHAPTER).glob("*.json")}
    return {"report": report, "results": results, "solo": solo_results, "out": out,
            "targets_before": before, "targets": targets, "connected": connected,
            "secret": (course.state / "secret").read_bytes(), "subs": subs,
            "resubmitted": (resubmitted, resubmitted_result)}


def result(batch, name):
    res = batch["results"].get(name)
    assert res is not None, f"{name} has no result: {batch['report'].failed.get(name)}"
    return res


def feedback_text(batch, name):
    return (batch["out"] / "feedback" / name / f"{CHAPTER}.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# The batch as a whole


def test_batch_grades_everyone_without_failures(batch):
    report = batch["report"]
    assert report.failed == {}
    expected = set(ATTACKS) | set(BROKEN) | {"alice", "bob", "wrong_chapter",
                                              "missing_notebook", "network", "read_files",
                                              "write_files", "replay_leaked_inputs"}
    assert set(batch["results"]) == expected
    assert len(report.rows) == len(expected)


def test_honest_students_get_their_solo_results(batch):
    assert batch["solo"]["alice"]["score"] == 4.0  # the full solution
    assert batch["solo"]["bob"]["score"] == HONEST_PART
    for name in ("alice", "bob"):
        solo, inside = batch["solo"][name], result(batch, name)
        assert inside["score"] == solo["score"] and inside["status"] == solo["status"] == "ok"
        assert [(t["grade_id"], t["passed"], t["message"]) for t in inside["tests"]] == \
            [(t["grade_id"], t["passed"], t["message"]) for t in solo["tests"]]


def test_feedback_never_reveals_hidden_tests_or_other_students(batch):
    for page in (batch["out"] / "feedback").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for marker in HIDDEN_MARKERS:
            assert marker not in text, (page, marker)
        if page.parent.name != "alice":
            assert ALICE_MARKER not in text, page
        assert batch["secret"].hex() not in text
    bob = feedback_text(batch, "bob")
    assert "hidden test failed" not in bob or "AssertionError" in bob


# ---------------------------------------------------------------------------
# One test per attack

TAMPER_STATUS = {
    "edit_tests": "tampered", "empty_tests": "tampered", "delete_tests": "deleted",
    "retype_tests": "tampered", "tamper_metadata": "restored", "duplicate_cells": "duplicated",
}


@pytest.mark.parametrize("name", sorted(TAMPER_STATUS))
def test_tampering_with_test_cells_is_undone(batch, name):
    res = result(batch, name)
    assert res["score"] <= HONEST_PART and res["max_score"] == 4.0
    assert TAMPER_STATUS[name] in res["status"], res["status"]
    assert [t["grade_id"] for t in res["tests"]] == ["test_relu", "test_softmax", "test_scale"]


@pytest.mark.parametrize("name", ["skip_tags", "change_kernelspec"])
def test_tags_and_kernelspec_of_a_submission_are_ignored(batch, name):
    res = result(batch, name)
    assert res["score"] == HONEST_PART and res["max_score"] == 4.0
    assert all(not t["passed"] for t in res["tests"][1:])


@pytest.mark.parametrize("name", ["redefine_numpy", "redefine_builtins", "redefine_checks",
                                  "predictable_inputs", "custom_exception_handler",
                                  "fake_pass_output", "patch_the_runner",
                                  "cheating_return_value",
                                  "raise_base_exceptions"])
def test_tampering_inside_the_kernel_changes_nothing(batch, name):
    res = result(batch, name)
    assert res["score"] <= HONEST_PART
    assert not any(t["passed"] for t in res["tests"][1:]), res["tests"]


def test_hidden_inputs_leaked_into_feedback_are_useless(batch):
    # Student code must receive hidden inputs to compute on them, and what it
    # prints reaches its own feedback; but the inputs depend on the grader's
    # secret and on the submission's bytes, so the next submission gets others.
    leaker = result(batch, "exfiltrate_hidden_inputs")
    assert leaker["score"] == HONEST_PART
    replay = result(batch, "replay_leaked_inputs")
    assert replay["score"] == 0.0
    assert replay["tests"][0]["message"].startswith("a hidden test failed")


def test_a_resubmission_is_graded_again_with_fresh_hidden_inputs(batch):
    # Same student, same file name, new bytes: not "unchanged", and the
    # hidden inputs the first version printed are not those of the second.
    report, res = batch["resubmitted"]
    assert (report.graded, report.skipped) == (["leaker"], [])
    assert res["score"] == 0.0, res["tests"]
    assert res["tests"][0]["message"].startswith("a hidden test failed")


DOS_STATUS = {
    "infinite_loop": "timeout", "loop_ignoring_sigint": "timeout", "sleep_past_timeout": "timeout",
    "fork_bomb": "timeout", "memory_bomb": "memory", "exit_kernel": "died",
    "kill_everything": "kernel died",
}


@pytest.mark.parametrize("name", sorted(DOS_STATUS))
def test_denial_of_service_costs_only_the_attacker(batch, name):
    res = result(batch, name)
    assert res["score"] <= HONEST_PART
    assert DOS_STATUS[name] in res["status"], res["status"]
    if name != "memory_bomb":   # a SIGKILL the student sends itself is not a memory limit
        assert "memory limit" not in res["status"], res["status"]


def test_output_flood_is_capped(batch):
    res = result(batch, "output_flood")
    assert res["score"] <= HONEST_PART
    assert len(feedback_text(batch, "output_flood")) < 200_000


def test_no_file_outside_the_submission_can_be_read(batch):
    res = result(batch, "read_files")
    assert res["score"] <= HONEST_PART
    page = feedback_text(batch, "read_files")
    assert "GOT-FILE" not in page  # printed as 'GOT' + '-FILE' on success
    assert "failed" in page  # the attack ran and was refused
    assert batch["secret"].hex()[:32] not in page
    assert "COURSE_GRADING_SECRET" not in page


def test_no_file_outside_the_submission_can_be_written(batch):
    res = result(batch, "write_files")
    assert res["score"] <= HONEST_PART
    assert "WROTE" not in feedback_text(batch, "write_files")
    for path in batch["targets"]:
        path = Path(path)
        assert not path.exists() or b"PWNED" not in path.read_bytes(), path
        if str(path) in batch["targets_before"] and path.name.endswith(".ipynb"):
            assert path.read_bytes() == batch["targets_before"][str(path)], path


@pytest.mark.skipif(not CAPS["net_namespace"],
                    reason="net_namespace unavailable: "
                           f"{CAPS.get('reason_net_namespace', 'not detected')}")
def test_no_network(batch):
    res = result(batch, "network")
    assert res["score"] <= HONEST_PART
    assert not batch["connected"]
    assert "CONNECTED" not in feedback_text(batch, "network")


BROKEN_STATUS = {"invalid_json": "not valid JSON", "empty_file": "empty",
                 "old_format": "format version", "wrong_chapter": "wrong chapter",
                 "missing_notebook": "missing notebook"}


@pytest.mark.parametrize("name", sorted(BROKEN_STATUS))
def test_broken_input_is_a_status_not_a_crash(batch, name):
    res = result(batch, name)
    assert res["score"] == 0 and res["max_score"] == 4.0
    assert BROKEN_STATUS[name] in res["status"], res["status"]


def test_no_sandbox_outlives_the_batch(batch):
    # The batch's sandboxes were made by this process and by worker processes
    # that have ended; each names its cgroups sb-<creator pid>-...: those are
    # empty, or gone. A living creator (another test process) may still use its own.
    setup = sandbox._cgroup_setup()
    for parent in (setup or {}).get("parents", {}).values():
        for name in os.listdir(parent):
            creator = _creator_pid(name)
            if creator is None or (creator != os.getpid() and _alive(creator)):
                continue
            try:
                with open(os.path.join(parent, name, "cgroup.procs")) as f:
                    assert not f.read(), f"processes of a finished sandbox remain in {name}"
            except FileNotFoundError:
                continue  # removed meanwhile


def _creator_pid(name):
    """The pid in a sandbox cgroup's name ``sb-<pid>-<random>``, else None."""
    parts = name.split("-")
    if len(parts) == 3 and parts[0] == "sb" and parts[1].isdigit():
        return int(parts[1])
    return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
