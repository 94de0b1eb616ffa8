"""The sandbox that runs students' code: each test runs a small attack through spawn().

Tests of a mechanism this machine lacks skip with the reason capabilities()
gives; as root with working unshare(2) every mechanism is active and tested.
"""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from autograde import sandbox

CAPS = sandbox.capabilities()
# Small limits keep every test to a few seconds; plain `python -S` needs
# about 30 MB of address space, so 256 MiB leaves room for the attacks' own
# allocations to be the thing that fails.
SMALL = sandbox.Limits(cpu_seconds=5, memory_bytes=256 * 2**20, processes=16,
                       file_bytes=4 * 2**20, open_files=64, tmp_bytes=8 * 2**20,
                       workdir_bytes=8 * 2**20)
PY = [sys.executable, "-S", "-c"]


def needs(*names):
    """Skip unless every named mechanism is active; the reason names the missing one."""
    missing = [n for n in names if not CAPS.get(n)]
    if not missing:
        return pytest.mark.skipif(False, reason="")
    why = "; ".join(f"{n} unavailable: {CAPS.get('reason_' + n, 'not detected')}"
                    for n in missing)
    return pytest.mark.skipif(True, reason=why)


# Wall-clock timeouts are generous: they only bound a failing test, and on a
# loaded machine the CPU-time limits take several times longer in wall time.
WALL = 60


def run(code, workdir, *, limits=SMALL, timeout=WALL, stdin=b"", env=None):
    """Run Python ``code`` in the sandbox; return (returncode, stdout)."""
    proc = sandbox.spawn(PY + [textwrap.dedent(code)], workdir=workdir, limits=limits,
                         env=env)
    try:
        out, _ = proc.communicate(stdin, timeout=timeout)
        return proc.returncode, out.decode(errors="replace")
    finally:
        sandbox.kill(proc)


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def _layout(base):
    """A grader's layout under ``base``: instructor files, two students, an output dir."""
    paths = {
        "solution": base / "solutions" / "ch" / "ch.ipynb",
        "hidden": base / "solutions" / "ch" / "hidden_tests.py",
        "other": base / "submissions" / "bob" / "ch.ipynb",
        "gradebook": base / "out" / "gradebook.json",
        "secret": base / "state" / "secret",
        "own": base / "submissions" / "alice" / "ch.ipynb",
    }
    for name, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"SECRET-{name}-4f1c")
    paths["workdir"] = paths["own"].parent
    # What a grader asks the sandbox to hide: the course, its state, output and submissions.
    paths["masked"] = [base / "solutions", base / "state", base / "out", base / "submissions"]
    return paths


@pytest.fixture
def course(tmp_path):
    """The layout in pytest's temporary folder (below /tmp, which the sandbox replaces)."""
    return _layout(tmp_path)


# A course installed in a system directory that the sandbox shows (a container
# image's /usr/src/app, a system-wide install): its folders must be masked.
SYSTEM_PLACES = ["/usr/local", "/usr/share"]


@pytest.fixture(params=["tmp"] + SYSTEM_PLACES)
def placed_course(request, tmp_path):
    """The layout below /tmp, then copied under each system directory of SYSTEM_PLACES."""
    if request.param == "tmp":
        yield _layout(tmp_path)
        return
    if not os.access(request.param, os.W_OK):
        pytest.skip(f"{request.param} is not writable here (the test needs root)")
    import tempfile
    base = tempfile.mkdtemp(prefix="autograde-test-course-", dir=request.param)
    os.chmod(base, 0o755)  # as an installed course is: the student's folder lies below it
    try:
        yield _layout(Path(base))
    finally:
        shutil.rmtree(base, ignore_errors=True)


PROBE_READ = """
import json, os, sys
result = {}
for p in sys.argv[1:]:
    try:
        if os.path.isdir(p):
            result[p] = "listed:" + ",".join(sorted(os.listdir(p)))
        else:
            with open(p) as f:
                result[p] = "read:" + f.read(200)
    except OSError as exc:
        result[p] = type(exc).__name__
print(json.dumps(result))
"""


def run_argv(argv, workdir, limits=SMALL, timeout=WALL, hidden=()):
    proc = sandbox.spawn(argv, workdir=workdir, limits=limits, hidden=hidden)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(errors="replace")
    finally:
        sandbox.kill(proc)


@needs("allowlist_root")
def test_reads_only_its_own_files(placed_course):
    course = placed_course
    repo = os.path.dirname(os.path.dirname(os.path.abspath(sandbox.__file__)))
    targets = [str(course[k]) for k in ("solution", "hidden", "other", "gradebook", "secret")]
    targets += [str(p) for p in course["masked"]]
    targets += [os.path.join(repo, n) for n in ("solutions", "tests", "notebooks",
                                                 "pyproject.toml", ".git")]
    targets += ["/etc/shadow", "/etc/passwd", "/root", "/home", "/var", "/sys", "/run"]
    rc, out = run_argv(PY + [PROBE_READ, str(course["own"])] + targets, course["workdir"],
                       hidden=course["masked"])
    assert rc == 0, out
    result = last_json(out)
    assert result[str(course["own"])] == "read:SECRET-own-4f1c"
    for target in targets:
        if target == "/etc/passwd":
            continue  # generated by the sandbox
        steps = _steps_towards_bound_paths(target)
        if steps and result[target].startswith("listed:"):
            # e.g. /root or /home holding the Python installation or the repository
            shown = set(result[target][len("listed:"):].split(","))
            assert shown <= steps, (target, shown - steps)
            continue
        if target in map(str, course["masked"]) and result[target].startswith("listed:"):
            # A masked folder may show as an empty one, or hold the way to its own student's work.
            shown = set(result[target][len("listed:"):].split(",")) - {""}
            assert shown <= {"alice"}, (target, shown)
            continue
        assert result[target] in ("FileNotFoundError", "PermissionError"), (target, result)
    assert "root:x:0" in result["/etc/passwd"] and "shadow" not in result["/etc/passwd"]
    for name in ("solution", "hidden", "other", "gradebook", "secret"):
        assert f"SECRET-{name}" not in out


def _steps_towards_bound_paths(directory):
    """Names a sandbox shows in host ``directory`` only because a bound path lies below it."""
    bound = sandbox._readable_paths() + sandbox._package_entries()
    prefix = directory.rstrip("/") + "/"
    return {path[len(prefix):].split("/")[0] for path in bound if path.startswith(prefix)}


@needs("allowlist_root")
def test_grading_state_of_the_package_is_hidden(course):
    state = os.path.join(os.path.dirname(os.path.abspath(sandbox.__file__)), "state")
    os.makedirs(state, exist_ok=True)
    marker = os.path.join(state, f"sandbox-test-{os.getpid()}")
    with open(marker, "w") as f:
        f.write("SECRET-state")
    try:
        pkg = os.path.dirname(state)
        rc, out = run_argv(PY + [PROBE_READ, pkg, marker], course["workdir"])
    finally:
        os.remove(marker)
    result = last_json(out)
    assert "sandbox.py" in result[pkg] and "state" not in result[pkg]
    assert result[marker] == "FileNotFoundError"


@needs("allowlist_root")
def test_writes_stay_inside(course, tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(sandbox.__file__)))
    outside = [str(course["solution"]), str(course["other"]), str(course["gradebook"]),
               str(tmp_path / "out" / "new.txt"), os.path.join(repo, "planted.py"),
               os.path.join(os.path.dirname(sandbox.__file__), "planted.py"),
               "/planted", "/usr/planted", os.path.join(sys.prefix, "planted")]
    code = """
    import json, os, sys
    result = {}
    for p in sys.argv[1:]:
        try:
            with open(p, "w") as f:
                f.write("PWNED")
            result[p] = "written"
        except OSError as exc:
            result[p] = type(exc).__name__
    print(json.dumps(result))
    """
    inside = [str(course["workdir"] / "scratch.txt"), "/tmp/scratch.txt"]
    before = {p: open(p, "rb").read() if os.path.exists(p) else None for p in outside}
    rc, out = run_argv(PY + [textwrap.dedent(code)] + inside + outside, course["workdir"])
    result = last_json(out)
    assert all(result[p] == "written" for p in inside), result
    for p in outside:
        # Only the private /tmp is writable besides the work directory; a path
        # below /tmp (a repository or pytest's folder there) may land in it.
        assert result[p] != "written" or p.startswith("/tmp/"), (p, result)
        assert (open(p, "rb").read() if os.path.exists(p) else None) == before[p], p
    # The work directory the payload saw was a private copy: the host's is untouched.
    assert sorted(os.listdir(course["workdir"])) == ["ch.ipynb"]
    assert not os.path.exists("/tmp/scratch.txt") or "PWNED" not in open("/tmp/scratch.txt").read()


@needs("net_namespace")
def test_no_network(course):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    code = f"""
    import json, socket
    result = {{}}
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2)
        result["tcp"] = "connected"
    except OSError as exc:
        result["tcp"] = type(exc).__name__
    try:
        socket.getaddrinfo("example.com", 80)
        result["dns"] = "resolved"
    except OSError as exc:
        result["dns"] = type(exc).__name__
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"x", ("8.8.8.8", 53))
        result["udp"] = "sent"
    except OSError as exc:
        result["udp"] = type(exc).__name__
    print(json.dumps(result))
    """
    try:
        rc, out = run(code, course["workdir"])
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()
    result = last_json(out)
    assert result == {"tcp": "OSError", "dns": "gaierror", "udp": "OSError"}, result


@needs("pid_namespace")
def test_sees_only_its_own_processes(course):
    code = """
    import json, os
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    try:
        open("/proc/1/environ").read()
        env = "read"
    except OSError as exc:
        env = type(exc).__name__
    print(json.dumps({"pids": pids, "me": os.getpid(), "init_environ": env}))
    """
    rc, out = run(code, course["workdir"])
    result = last_json(out)
    assert result["me"] == 2 and result["pids"] == [1, 2]
    # pid 1 is the sandbox's init: its environment is not the payload's to read.
    assert result["init_environ"] == "PermissionError"


def test_grading_secret_never_reaches_the_payload(course):
    env = dict(sandbox.default_env(), **{sandbox.SECRET_ENV: "s3cr3t"})
    rc, out = run("import os; print(sorted(os.environ))", course["workdir"], env=env)
    assert sandbox.SECRET_ENV not in out and "s3cr3t" not in out
    rc, out = run("import os; print(dict(os.environ))", course["workdir"])
    assert "s3cr3t" not in out and "/root" not in out


@needs("separate_uid")
def test_runs_as_a_separate_unprivileged_user(course):
    rc, out = run("import os; print(os.getuid(), os.getgid(), os.getgroups())", course["workdir"])
    uid, gid, groups = out.split(maxsplit=2)
    assert int(uid) >= sandbox.UID_BASE and int(gid) >= sandbox.UID_BASE
    assert groups.strip() == "[]"


@needs("nested_userns_blocked")
def test_no_capabilities_and_no_new_user_namespaces(course):
    code = """
    import ctypes, os
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    libc = ctypes.CDLL(None, use_errno=True)
    print(status["CapEff"].strip(), status["NoNewPrivs"].strip(),
          libc.unshare(0x10000000), ctypes.get_errno())
    """
    rc, out = run(code, course["workdir"])
    assert out.split() == ["0000000000000000", "1", "-1", "28"]  # ENOSPC: limit is 0


def test_memory_bomb_raises_memory_error(course):
    code = """
    try:
        hog = bytearray(2 * 2**30)
        print("allocated")
    except MemoryError:
        print("MemoryError")
    """
    rc, out = run(code, course["workdir"])
    assert rc == 0 and out.strip() == "MemoryError"


@needs("cgroup_memory")
def test_memory_of_the_whole_tree_is_bounded(course):
    # Each child stays under the address-space limit; together they exceed
    # the cgroup's limit, so the kernel's OOM killer stops some of them.
    code = """
    import os, time
    kids = []
    for i in range(6):
        pid = os.fork()
        if pid == 0:
            hog = b"x" * (150 * 2**20)
            time.sleep(1.5)
            os._exit(0)
        kids.append(pid)
    statuses = [os.waitpid(k, 0)[1] for k in kids]
    print(sum(os.WIFSIGNALED(s) and os.WTERMSIG(s) == 9 for s in statuses))
    """
    rc, out = run(code, course["workdir"])
    assert rc == 0, out
    assert int(out.strip()) >= 3  # at most 2 of 150 MB fit in 256 + 64 MB


@needs("cgroup_memory")
def test_exit_reason_tells_the_memory_limit_apart(course):
    # Files in the private /tmp count towards the memory cgroup but not
    # towards the address space: together with the heap they exceed it.
    limits = sandbox.Limits(memory_bytes=128 * 2**20, tmp_bytes=2**30, processes=16,
                            cpu_seconds=10)
    code = """
    for i in range(6):
        with open(f"/tmp/fill{i}", "wb") as f:
            f.write(b"x" * (20 * 2**20))
    hog = b"y" * (100 * 2**20)
    print("survived")
    """
    proc = sandbox.spawn(PY + [textwrap.dedent(code)], workdir=course["workdir"], limits=limits)
    try:
        out, _ = proc.communicate(timeout=WALL)
        assert proc.returncode == -signal.SIGKILL and out == b""
        assert sandbox.exit_reason(proc) == "memory"
    finally:
        sandbox.kill(proc)


def test_exit_reason_of_other_endings(course):
    cases = {"import os; os._exit(3)": "exit",
             "import os, signal; os.kill(os.getpid(), signal.SIGKILL)": "signal",
             "while True: pass": "cpu"}
    limits = sandbox.Limits(cpu_seconds=1, memory_bytes=256 * 2**20, processes=16)
    for code, reason in cases.items():
        proc = sandbox.spawn(PY + [code], workdir=course["workdir"], limits=limits)
        try:
            assert sandbox.exit_reason(proc) in (None, reason)
            proc.wait(timeout=WALL)
            assert sandbox.exit_reason(proc) == reason, code
        finally:
            sandbox.kill(proc)


@needs("pid_namespace")
def test_fork_bomb_is_bounded_and_cleaned_up(course):
    code = """
    import os, time
    n = 0
    error = None
    for i in range(10000):
        try:
            pid = os.fork()
        except OSError as exc:
            error = type(exc).__name__
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
    print(n, error, flush=True)
    time.sleep(60)
    """
    proc = sandbox.spawn(PY + [textwrap.dedent(code)], workdir=course["workdir"], limits=SMALL)
    try:
        line = proc.stdout.readline().decode()
    finally:
        sandbox.kill(proc)
    n, error = line.split()
    assert int(n) < SMALL.processes and error == "BlockingIOError"
    # Nothing of it outlives kill(), and the grader can still start processes.
    assert subprocess.run(["true"]).returncode == 0
    if CAPS.get("separate_uid"):
        assert _processes_of(proc) == []


def _processes_of(proc):
    """Host pids running under the sandbox's own uid (UID_BASE + launcher pid)."""
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}").st_uid == sandbox.UID_BASE + proc.pid:
                    found.append(p)
            except OSError:
                continue
    return found


def test_cpu_limit_kills_a_loop_that_ignores_sigint(course):
    limits = sandbox.Limits(cpu_seconds=1, memory_bytes=256 * 2**20, processes=16)
    code = """
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("spinning", flush=True)
    while True:
        pass
    """
    proc = sandbox.spawn(PY + [textwrap.dedent(code)], workdir=course["workdir"], limits=limits)
    try:
        assert proc.stdout.readline() == b"spinning\n"
        proc.send_signal(signal.SIGINT)  # ignored
        rc = proc.wait(timeout=WALL)
    finally:
        sandbox.kill(proc)
    assert rc == -signal.SIGXCPU


def test_cpu_limit_cannot_be_ignored(course):
    limits = sandbox.Limits(cpu_seconds=1, memory_bytes=256 * 2**20, processes=16)
    code = """
    import signal
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    while True:
        pass
    """
    rc, out = run(code, course["workdir"], limits=limits)
    # Killed by the hard limit one second later, and reported as what it is.
    expected = -signal.SIGXCPU if CAPS["mode"] != "rlimits" else -signal.SIGKILL
    assert rc == expected


def test_sigint_reaches_the_payload(course):
    code = """
    import time
    try:
        print("ready", flush=True)
        time.sleep(30)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
    proc = sandbox.spawn(PY + [textwrap.dedent(code)], workdir=course["workdir"], limits=SMALL)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=WALL)
    finally:
        sandbox.kill(proc)
    assert out == b"interrupted\n" and proc.returncode == 0


def test_output_flood_stops_at_kill(course):
    code = """
    import os
    chunk = b"x" * 65536
    while True:
        os.write(1, chunk)
    """
    proc = sandbox.spawn(PY + [textwrap.dedent(code)], workdir=course["workdir"], limits=SMALL)
    try:
        got = 0
        while got < 4 * 2**20:
            got += len(os.read(proc.stdout.fileno(), 1 << 20))
    finally:
        t0 = time.monotonic()
        sandbox.kill(proc)
    assert proc.poll() is not None and time.monotonic() - t0 < 10


@needs("allowlist_root")  # without the private work directory and /tmp it fills the host's disk
def test_file_flood_is_bounded(course):
    code = """
    import json, os
    result = {}
    for name, path in (("one_file", "big.bin"), ("tmp", "/tmp/big.bin")):
        try:
            with open(path, "wb") as f:
                for i in range(64):
                    f.write(b"x" * 2**20)
            result[name] = "written"
        except OSError as exc:
            result[name] = exc.strerror
    written = 0
    try:
        for i in range(1000):
            with open(f"part{i}.bin", "wb") as f:
                f.write(b"x" * 2**20)
            written += 1
    except OSError as exc:
        result["many_files"] = [written, exc.strerror]
    print(json.dumps(result))
    """
    rc, out = run(code, course["workdir"])
    result = last_json(out)
    assert result["one_file"] == "File too large"
    assert result["tmp"] in ("File too large", "No space left on device")
    n, why = result["many_files"]
    assert n <= SMALL.workdir_bytes // 2**20 and why == "No space left on device"
    assert sorted(os.listdir(course["workdir"])) == ["ch.ipynb"]


@needs("pid_namespace")  # without one, a grandchild in its own session escapes kill()
def test_kill_kills_grandchildren(course):
    # A grandchild detaches (new session, double fork) and keeps the stdout
    # pipe open; EOF on it proves every process holding it is dead.
    code = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                os.write(1, b"tick\\n")
                time.sleep(0.05)
        os._exit(0)
    print("started", flush=True)
    time.sleep(60)
    """
    proc = sandbox.spawn(PY + [textwrap.dedent(code)], workdir=course["workdir"], limits=SMALL)
    try:
        # Both processes write to one pipe, so their words may interleave: wait for both.
        seen, deadline = b"", time.monotonic() + 10
        while (b"started" not in seen or b"tick" not in seen) and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                seen += os.read(proc.stdout.fileno(), 65536)
        assert b"started" in seen and b"tick" in seen, seen
        fd = os.dup(proc.stdout.fileno())  # kill() closes the Popen's own copy
    finally:
        sandbox.kill(proc)
    deadline = time.monotonic() + 3
    eof = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready and os.read(fd, 65536) == b"":
            eof = True
            break
    os.close(fd)
    assert eof, "a grandchild still holds the pipe after kill()"
    if CAPS.get("separate_uid"):
        assert _processes_of(proc) == []


def test_setup_errors_raise(course, tmp_path):
    with pytest.raises(sandbox.SandboxError, match="cannot execute"):
        sandbox.spawn(["/no/such/program"], workdir=course["workdir"])
    with pytest.raises(ValueError, match="not a directory"):
        sandbox.spawn(["/bin/true"], workdir=tmp_path / "missing")


def test_kill_never_raises(course):
    proc = sandbox.spawn(["/bin/true"], workdir=course["workdir"])
    try:
        proc.wait(timeout=WALL)
    finally:
        sandbox.kill(proc)
    sandbox.kill(proc)
    sandbox.kill(object())


def test_exit_status_is_passed_on(course):
    assert run("import os; os._exit(7)", course["workdir"])[0] == 7
    assert run("import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
               course["workdir"])[0] == -signal.SIGKILL
    assert run("import ctypes; ctypes.string_at(0)", course["workdir"])[0] == -signal.SIGSEGV
    rc, out = run("import sys; print(sys.stdin.read().upper())", course["workdir"], stdin=b"abc")
    assert (rc, out) == (0, "ABC\n")


@needs("pid_namespace")
def test_parallel_sandboxes_do_not_see_each_other(tmp_path):
    work = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        work.append(tmp_path / name)
    code = """
    import os, sys, time
    open("/tmp/mark-" + sys.argv[1], "w").close()
    time.sleep(0.5)
    print(sorted(os.listdir("/tmp")), os.getuid())
    """
    procs = [sandbox.spawn(PY + [textwrap.dedent(code), n], workdir=w, limits=SMALL)
             for n, w in zip("ab", work)]
    try:
        outs = [p.communicate(timeout=WALL)[0].decode() for p in procs]
    finally:
        for p in procs:
            sandbox.kill(p)
    # Each sees its own mark in its private /tmp, never the other's.
    assert "mark-a" in outs[0] and "mark-b" not in outs[0]
    assert "mark-b" in outs[1] and "mark-a" not in outs[1]
    if CAPS.get("separate_uid"):
        assert outs[0].split()[-1] != outs[1].split()[-1]


def test_numpy_and_course_lib_work_inside(course):
    code = ("import numpy as np, course_lib, course_lib.checks as c; "
            "print(float(np.ones(3) @ np.ones(3)), c.rng_for('x').integers(10) >= 0)")
    rc, out = run_argv([sys.executable, "-c", code], course["workdir"],
                       limits=sandbox.Limits(cpu_seconds=20))
    assert rc == 0 and out.strip() == "3.0 True", out


def test_capabilities_are_reported_with_reasons():
    caps = sandbox.capabilities()
    for key in ("mount_namespace", "net_namespace", "pid_namespace", "ipc_namespace",
                "user_namespace", "separate_uid", "allowlist_root", "nested_userns_blocked",
                "rlimits", "cgroup_memory", "cgroup_pids", "cgroup_cpu"):
        assert isinstance(caps[key], bool)
        if not caps[key]:
            assert caps.get("reason_" + key), key
    assert caps["mode"] in ("root", "userns", "rlimits")


@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.geteuid() == 0),
                    reason="needs root on Linux (every mechanism is expected only there)")
def test_as_root_every_mechanism_is_active():
    caps = sandbox.capabilities()
    if caps["mode"] != "root":
        pytest.skip(f"unshare(2) refused even as root: {caps.get('reason_mount_namespace')}")
    for key in ("mount_namespace", "net_namespace", "pid_namespace", "ipc_namespace",
                "user_namespace", "separate_uid", "allowlist_root", "nested_userns_blocked"):
        assert caps[key], key
    if caps["cgroup"] == "none":
        pytest.skip("no writable cgroup hierarchy on this machine")
    for key in ("cgroup_memory", "cgroup_pids", "cgroup_cpu"):
        assert caps[key], caps.get("reason_" + key)


@needs("mount_namespace")
def test_user_namespace_mode_also_isolates(placed_course, monkeypatch):
    course = placed_course
    # The mode an unprivileged grader gets: check it here by forcing it.
    caps = dict(CAPS, mode="userns", cgroup="none")
    monkeypatch.setattr(sandbox, "_CAPS", caps)
    if not _userns_possible():
        pytest.skip("user namespaces are not permitted on this machine")
    targets = [str(course[k]) for k in ("solution", "other", "gradebook", "secret")]
    rc, out = run_argv(PY + [PROBE_READ, str(course["own"])] + targets, course["workdir"],
                       hidden=course["masked"])
    result = last_json(out)
    assert result[str(course["own"])] == "read:SECRET-own-4f1c"
    assert all(result[t] == "FileNotFoundError" for t in targets), result
    rc, out = run("import os; os.umount('/') if hasattr(os, 'umount') else None\n"
                  "import ctypes; libc = ctypes.CDLL(None, use_errno=True)\n"
                  "print(libc.umount2(b'/usr', 2), ctypes.get_errno())", course["workdir"])
    assert out.split()[0] == "-1"


def _userns_possible():
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            return int(f.read()) > 0
    except OSError:
        return False


# A uid no account uses, for running the launcher as an ordinary user.
UNPRIVILEGED = sandbox.UID_BASE - 1


def _as_user(uid, body):
    """Run ``body()`` in a forked child that has dropped to ``uid``; return its exit status.

    A fork, not a new interpreter: the Python installation need not be
    executable by ``uid`` (it often lives in root's home).
    """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pid = os.fork()
    if pid == 0:
        code = 120
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            # Dumpable again, as after the exec a real grader would have done.
            libc.prctl(sandbox.PR_SET_DUMPABLE, 1, 0, 0, 0)
            code = body()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _unprivileged_userns_allowed(uid):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return _as_user(uid, lambda: 0 if libc.unshare(sandbox.CLONE_NEWUSER) == 0 else 1) == 0


def _read_all(fd):
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.geteuid() == 0),
                    reason="needs root, to act as an ordinary user")
def test_user_namespace_mode_works_for_an_unprivileged_grader():
    # What capabilities() probes for a grader that is not root, run here as
    # an ordinary uid: the launcher must build the whole sandbox, and the
    # payload must find it holding (private writable work directory, no
    # network, own pid namespace, repository hidden).
    if not _userns_possible() or not _unprivileged_userns_allowed(UNPRIVILEGED):
        pytest.skip("this kernel does not let ordinary users create user namespaces")
    import tempfile
    base = tempfile.mkdtemp(prefix="autograde-userns-test-")  # /tmp/pytest-of-root is private
    try:
        os.chmod(base, 0o755)
        for name in ("stage", "work"):
            os.mkdir(os.path.join(base, name))
            os.chown(os.path.join(base, name), UNPRIVILEGED, UNPRIVILEGED)
        cfg = sandbox._config(["/bin/true"], os.path.join(base, "work"), SMALL,
                              sandbox.default_env(), mode="userns", cgroups=None)
        cfg.update(payload=False, stage=os.path.join(base, "stage"),
                   grader_uid=UNPRIVILEGED, grader_gid=UNPRIVILEGED)
        out_r, out_w = os.pipe()
        report_r, report_w = os.pipe()

        def launch():
            os.close(out_r)
            os.close(report_r)
            os.dup2(out_w, 1)
            cfg["report_fd"] = report_w
            try:
                sandbox._launch(cfg)
            except BaseException as exc:
                sandbox._report(cfg, f"sandbox: {exc}")
            return 121

        status = _as_user(UNPRIVILEGED, launch)
        os.close(out_w)
        os.close(report_w)
        out, report = _read_all(out_r), _read_all(report_r)
        assert (out.split()[:1], report) == (["ok"], ""), (status, out, report)
        assert os.listdir(os.path.join(base, "work")) == []  # the probe wrote in its private copy
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_rlimits_only_mode_still_bounds_resources(course, monkeypatch):
    monkeypatch.setattr(sandbox, "_CAPS", dict(CAPS, mode="rlimits", cgroup="none"))
    code = """
    import resource
    print(resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CPU)[0])
    try:
        bytearray(2 * 2**30)
    except MemoryError:
        print("MemoryError")
    """
    rc, out = run(code, course["workdir"])
    first, second = out.splitlines()
    assert first == f"{SMALL.memory_bytes} {SMALL.cpu_seconds}" and second == "MemoryError"


def test_startup_overhead_is_small(course):
    # Not a benchmark (see benchmarks/grading_throughput.py): a sanity bound
    # that catches an accidental slow path (e.g. copying a large tree).
    t0 = time.monotonic()
    for _ in range(3):
        assert run_argv(["/bin/true"], course["workdir"])[0] == 0
    assert (time.monotonic() - t0) / 3 < 1.0


def test_grading_warns_when_only_resource_limits_are_available(monkeypatch):
    from autograde.__main__ import sandbox_warning
    monkeypatch.setattr(sandbox, "_CAPS", dict(CAPS, mode="rlimits", cgroup="none"))
    warning = sandbox_warning()
    assert warning and "read your files" in warning and "container" in warning
    monkeypatch.setattr(sandbox, "_CAPS", dict(CAPS, mode="root"))
    assert sandbox_warning() is None


# ---------------------------------------------------------------------------
# Lifetime: no sandbox outlives its grader, no scratch folder outlives a killed one


@needs("pid_namespace")
def test_the_sandbox_keeps_its_own_wall_clock(course):
    # A payload that sleeps uses no CPU time: only a clock stops it when the grader does not.
    limits = sandbox.Limits(cpu_seconds=60, memory_bytes=256 * 2**20, processes=16,
                            wall_seconds=2)
    code = "import os, time\nif os.fork() == 0:\n    time.sleep(600)\ntime.sleep(600)\n"
    proc = sandbox.spawn(PY + [code], workdir=course["workdir"], limits=limits)
    t0 = time.monotonic()
    try:
        rc = proc.wait(timeout=WALL)
        took = time.monotonic() - t0
        assert rc == -signal.SIGALRM and sandbox.exit_reason(proc) == "wall"
    finally:
        sandbox.kill(proc)
    assert 1.5 < took < 10, took


# Starts a sandbox whose payload sleeps, prints what identifies it, then sleeps itself.
HOLDER = """
import json, os, sys, time
from autograde import sandbox
proc = sandbox.spawn([sys.executable, "-S", "-c", "import time; print('up', flush=True); "
                      "time.sleep(600)"], workdir=sys.argv[1],
                     limits=sandbox.Limits(cpu_seconds=600, memory_bytes=256 * 2**20))
assert proc.stdout.readline() == b"up\\n"
print(json.dumps({"launcher": proc.pid, "cgroups": proc.sandbox_cgroups,
                  "scratch": sandbox.scratch_dir()}), flush=True)
time.sleep(600)
"""


def _gone(pid):
    """True when ``pid`` no longer runs (absent, or a zombie waiting for its reaper)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _holder(workdir, env=None):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(workdir)],
                              stdout=subprocess.PIPE, env=env)
    line = holder.stdout.readline()
    assert line, "the holder did not start its sandbox"
    return holder, json.loads(line)


@needs("pid_namespace")
def test_a_sandbox_dies_with_the_process_that_started_it(course):
    holder, info = _holder(course["workdir"])
    try:
        assert not _gone(info["launcher"])
        holder.kill()  # SIGKILL: no cleanup of its own runs
        holder.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _gone(info["launcher"]):
            time.sleep(0.05)
        assert _gone(info["launcher"]), "the launcher outlived its grader"
        if CAPS.get("separate_uid"):
            owner = sandbox.UID_BASE + info["launcher"]
            while time.monotonic() < deadline and _uid_processes(owner):
                time.sleep(0.05)
            assert _uid_processes(owner) == [], "the payload outlived its grader"
        for d in info["cgroups"]:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    assert f.read().split() == [], d
            except FileNotFoundError:
                pass
    finally:
        holder.kill()
        holder.wait()


def _uid_processes(uid):
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}").st_uid == uid and not _gone(int(p)):
                    found.append(p)
            except OSError:
                continue
    return found


def test_a_killed_graders_scratch_folder_is_swept_and_a_living_ones_kept(course, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    holder, info = _holder(course["workdir"], env)
    alive, alive_info = _holder(course["workdir"], env)
    try:
        scratch = Path(info["scratch"])
        assert scratch.parent == tmp and scratch.is_dir()
        holder.kill()
        holder.wait()
        assert scratch.is_dir()  # a SIGKILL leaves it behind...
        unrelated = tmp / "autograde-1-unrelated"
        unrelated.mkdir()
        assert sandbox.sweep_scratch(str(tmp)) == 1  # ...and the next sweep removes it
        assert not scratch.exists()
        assert Path(alive_info["scratch"]).is_dir() and unrelated.is_dir()
    finally:
        for p in (holder, alive):
            p.kill()
            p.wait()


def test_a_process_removes_its_scratch_folder_when_it_exits(tmp_path):
    code = "from autograde import sandbox; print(sandbox.scratch_dir())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, TMPDIR=str(tmp_path)), check=True).stdout
    assert Path(out.strip()).parent == tmp_path and not Path(out.strip()).exists()
    assert os.listdir(tmp_path) == []


def test_a_sweep_in_another_grader_never_removes_a_scratch_folder_being_made(tmp_path, monkeypatch):
    # Two graders start at once: one sweeps while the other is between creating
    # its lock file and locking it. The folder being made must survive.
    import fcntl
    import tempfile
    real_flock = fcntl.flock
    swept = []

    def flock_after_a_sweep(fd, op):
        if not swept:
            swept.append(sandbox.sweep_scratch(str(tmp_path)))
        return real_flock(fd, op)

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(fcntl, "flock", flock_after_a_sweep)
    monkeypatch.setattr(sandbox, "_SCRATCH", None)
    try:
        path = sandbox.scratch_dir()
        assert swept == [0]
        assert os.path.isdir(os.path.join(path, "stage"))
        assert os.path.basename(path).startswith(sandbox.SCRATCH_PREFIX)
        monkeypatch.setattr(fcntl, "flock", real_flock)
        assert sandbox.sweep_scratch(str(tmp_path)) == 0   # locked: in use
    finally:
        sandbox.remove_scratch()
