"""Run one untrusted submission in a sandbox: its own files, no network, bounded resources.

``spawn(argv, workdir=...)`` starts ``argv`` through a small launcher (this
file run as a script) that builds the sandbox and then executes ``argv``::

    grader ──Popen──> launcher (outside: waits, forwards SIGINT, passes on the status)
                        └─fork─> init: pid 1 of a new pid namespace, builds the root
                                   └─fork─> payload: unprivileged, rlimits, execve(argv)

On Linux it uses the strongest mechanisms the machine allows, decided once by
:func:`capabilities` (which also reports them):

* **namespaces** (``unshare(2)``): mount (an allow-list root, below), network
  (a fresh namespace with no interface up, so no connection anywhere,
  loopback included, and no DNS), pid (the payload sees only its own
  processes, and when pid 1 ends the kernel kills every process left), IPC
  and UTS. As root they are created directly; otherwise inside a user
  namespace, if the kernel allows unprivileged ones.
* **a separate unprivileged user**: as root the payload runs under a uid of
  its own (``UID_BASE`` + the launcher's pid), so ``RLIMIT_NPROC`` counts only
  its processes and it can signal or trace nothing else. Either way the
  payload then enters a user namespace of its own, which owns no mount or
  network namespace (so it cannot undo the mounts) and in which
  ``max_user_namespaces`` is 0 (so it cannot create user namespaces, a
  frequent way into kernel bugs).
* **an allow-list root**: a tmpfs becomes ``/`` (``pivot_root``), holding
  read-only binds of the system directories (``/usr``, ``/lib*``, ``/bin``),
  a few files of ``/etc``, the Python installation (``sys.prefix``,
  ``sys.base_prefix``), the ``course_lib`` package and the entries of the
  ``autograde`` package except ``autograde/state``; a private copy of the
  working directory on a size-limited tmpfs (the payload's writes never
  reach the host's disk), a private size-limited ``/tmp`` and ``/dev/shm``,
  ``/dev/{null,zero,full,random,urandom}`` and a ``/proc`` of its own pid
  namespace. Every path keeps its host name, so ``argv`` needs no rewriting.
  Nothing else of the host exists in the sandbox: not the repository (its
  ``solutions/``, ``tests/``, ``notebooks/``), not other submissions, not
  the grader's output or gradebook, wherever they are on disk. Where one of
  them lies below a directory the sandbox does show (a course installed
  under ``/usr`` or next to the Python installation), it is masked: an empty
  read-only folder (or an empty file) is mounted on it (``hidden``).
* **lifetime**: the launcher receives SIGKILL when the thread that started
  it ends (``PR_SET_PDEATHSIG``), init when the launcher ends, and every
  process of the pid namespace when init ends; init also kills the sandbox
  after ``Limits.wall_seconds``. So no sandbox outlives a grader that was
  killed, even by SIGKILL or the OOM killer.
* **resource limits** (``setrlimit`` in the payload): CPU seconds (SIGXCPU,
  then SIGKILL one second later), address space, processes, file size, open
  files, no core dumps.
* **cgroups** (v1 or v2, where writable): memory of the whole tree, number of
  tasks of the whole tree, at most ``Limits.cpus`` cores, so a fork bomb or a
  busy loop cannot starve the other submissions of a batch; the group also
  lets :func:`kill` find every process.

Where a mechanism is missing, the launcher goes without it, never silently:
:func:`capabilities` says what is active. Everywhere it runs in a new session
with the rlimits.

The payload's environment is :func:`default_env` unless ``env`` is given; the
grader's secret (``course_lib.checks.SECRET_ENV``) is removed in every case.
"""

import json
import os
import resource
import signal
import sys
from dataclasses import asdict, dataclass

#: Environment variable carrying the grader's secret; never passed to a sandbox
#: (the same name as ``course_lib.checks.SECRET_ENV``; not imported, so the
#: launcher starts without importing NumPy).
SECRET_ENV = "COURSE_GRADING_SECRET"

#: As root, the payload's uid is UID_BASE + the launcher's pid: unique among
#: the sandboxes alive at one time, and far from any uid a distribution uses.
UID_BASE = 2_000_000

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)

# Linux constants (include/uapi/linux/sched.h, mount.h, prctl.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME = 32, 1024, 2048
MS_BIND, MS_REC = 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

# Files of /etc worth showing: the dynamic loader's cache and the time zone.
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime", "nsswitch.conf")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed process tree.

    ``memory_bytes`` bounds each process's address space (RLIMIT_AS) and,
    where a memory cgroup is available, the resident memory of the whole
    tree. With one BLAS thread (see :func:`default_env`) the grader's runner
    with IPython, NumPy and Matplotlib loaded maps about 280 MB of address
    space, so keep at least 512 MiB. ``processes`` bounds RLIMIT_NPROC
    (counted per uid, so only effective under the separate uid or a user
    namespace) and, in a pids cgroup, the tasks (threads included) of the
    tree. ``cpus`` is the CPU bandwidth of the tree in cores (cgroup only).
    ``tmp_bytes`` is the size of the private ``/tmp`` and ``/dev/shm``,
    ``workdir_bytes`` that of the private copy of the working directory.
    ``wall_seconds`` is the sandbox's lifetime, kept by its own init: a
    backstop behind the grader's deadlines, for a grader that stopped asking.
    """

    cpu_seconds: int = 300
    wall_seconds: int = 3600
    memory_bytes: int = 3 * 2**30
    processes: int = 64
    file_bytes: int = 32 * 2**20
    open_files: int = 256
    cpus: float = 1.0
    tmp_bytes: int = 64 * 2**20
    workdir_bytes: int = 256 * 2**20


class SandboxError(OSError):
    """The sandbox could not be built, or ``argv`` could not be executed in it."""


def default_env(workdir=None):
    """The payload's default environment: nothing of the grader's.

    HOME and the IPython/Matplotlib configuration live in the private /tmp;
    BLAS and OpenMP use one thread (grading runs one sandbox per core).
    """
    env = {
        "PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "IPYTHONDIR": "/tmp/.ipython",
        "MPLCONFIGDIR": "/tmp/.matplotlib",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if workdir is not None:
        env["PWD"] = os.fspath(workdir)
    return env


# ----------------------------------------------------------------------------
# Detection


_CAPS = None


def capabilities():
    """Which isolation mechanisms are active here (probed once, then cached).

    Returns a dict with, for each mechanism, True/False, and for some a
    string: ``mode`` ('root', 'userns' or 'rlimits'), ``user`` (how the
    payload's identity is separated), ``filesystem`` ('allow-list root' or
    'shared'), ``cgroup`` ('v1', 'v2' or 'none'), and ``reason_<name>`` for
    each inactive mechanism.
    """
    global _CAPS
    if _CAPS is None:
        _CAPS = _probe()
    return dict(_CAPS)


def _probe():
    caps = {"platform": sys.platform, "rlimits": True, "session": True}
    names = ("mount_namespace", "net_namespace", "pid_namespace", "ipc_namespace",
             "uts_namespace", "user_namespace", "separate_uid", "allowlist_root",
             "nested_userns_blocked", "cgroup_memory", "cgroup_pids", "cgroup_cpu")
    for name in names:
        caps[name] = False
    caps["mode"] = "rlimits"
    caps["user"] = "same as the grader"
    caps["filesystem"] = "shared with the grader"
    caps["cgroup"] = "none"
    if not sys.platform.startswith("linux"):
        for name in names:
            caps["reason_" + name] = "not Linux"
        return caps
    mode, flags, why = _probe_namespaces()
    if mode is None:
        for name in names[:9]:
            caps["reason_" + name] = why
    else:
        caps["mode"] = mode
        for name in names[:6]:
            caps[name] = True
        caps["allowlist_root"] = True
        caps["filesystem"] = "allow-list root"
        caps["nested_userns_blocked"] = "userns_blocked" in flags
        if not caps["nested_userns_blocked"]:
            caps["reason_nested_userns_blocked"] = ("the kernel ignores max_user_namespaces "
                                                    "inside a user namespace")
        if mode == "root":
            caps["separate_uid"] = True
            caps["user"] = (f"separate uid ({UID_BASE} + launcher pid) in a user namespace "
                            "of its own")
        else:
            caps["user"] = "the grader's uid in a nested user namespace"
            caps["reason_separate_uid"] = "not root: the payload keeps the grader's uid"
    cg = _cgroup_setup()
    if cg is None:
        caps["cgroup"] = "none"
        for name in ("cgroup_memory", "cgroup_pids", "cgroup_cpu"):
            caps["reason_" + name] = "no writable cgroup hierarchy"
    else:
        caps["cgroup"] = cg["version"]
        for ctrl in ("memory", "pids", "cpu"):
            ok = ctrl in cg["controllers"]
            caps["cgroup_" + ctrl] = ok
            if not ok:
                caps["reason_cgroup_" + ctrl] = f"the {ctrl} controller is not writable"
    return caps


def _probe_namespaces():
    """Try the full launcher once; return (mode, flags from inside, reason if no mode)."""
    import subprocess
    import tempfile
    modes = ["root"] if os.geteuid() == 0 else []
    modes.append("userns")
    reasons = []
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="probe-", dir=scratch_dir()) as tmp:
            cfg = _config(["/bin/true"], tmp, Limits(cpu_seconds=5), default_env(tmp),
                          mode=mode, cgroups=None)
            cfg["payload"] = False
            try:
                out = _run_launcher(cfg, subprocess)
            except Exception as exc:  # pragma: no cover - unexpected OS failure
                reasons.append(f"{mode}: {exc}")
                continue
            words = out.decode(errors="replace").split()
            if words and words[0] == "ok":
                return mode, words[1:], None
            reasons.append(f"{mode}: {out.decode(errors='replace').strip()[-200:]}")
    if _which("bwrap"):
        reasons.append("bubblewrap is installed but not used")
    return None, [], "; ".join(reasons) or "unshare(2) is not permitted here"


def _which(name):
    """``shutil.which`` without importing shutil in the launcher."""
    for d in os.environ.get("PATH", "").split(":"):
        p = os.path.join(d, name)
        if d and os.access(p, os.X_OK):
            return p
    return None


# ----------------------------------------------------------------------------
# cgroups (set up by the grader, joined by the launcher)


def _own_cgroup_dirs():
    """{controller: directory of this process's own cgroup} for writable v1/v2."""
    dirs = {}
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return dirs, None
    v1 = {}
    v2 = None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ctrls == "":
            v2 = path
        for c in ctrls.split(","):
            v1[c] = path
    for ctrl, key in (("memory", "memory"), ("pids", "pids"), ("cpu", "cpu")):
        if key in v1:
            for base in (f"/sys/fs/cgroup/{ctrl}", f"/sys/fs/cgroup/{ctrl},cpuacct",
                         "/sys/fs/cgroup/cpu,cpuacct"):
                d = base + v1[key]
                if os.path.isdir(d) and os.access(d, os.W_OK):
                    dirs[ctrl] = d
                    break
    if dirs:
        return dirs, "v1"
    if v2 is not None:
        for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            d = base + v2
            if os.path.exists(os.path.join(base, "cgroup.subtree_control")) and \
                    os.access(d, os.W_OK):
                return {"v2": d}, "v2"
    return dirs, None


_CG = None


def _cgroup_setup():
    """Find where this process may create child cgroups; None when nowhere."""
    global _CG
    if _CG is not None:
        return _CG or None
    _CG = {}
    if os.geteuid() != 0:
        return None
    dirs, version = _own_cgroup_dirs()
    if version == "v1":
        # Each sandbox's group sits right in the grader's own group, not in a
        # common parent: the CPU scheduler then weighs every sandbox like one
        # process, instead of all sandboxes together like one.
        parents = {}
        for ctrl, d in dirs.items():
            try:
                probe = os.path.join(d, f"sb-probe-{os.getpid()}")
                os.mkdir(probe)
                os.rmdir(probe)
                parents[ctrl] = d
            except OSError:
                continue
        if parents:
            _CG = {"version": "v1", "controllers": sorted(parents), "parents": parents}
    elif version == "v2":
        base = dirs["v2"]
        parent = os.path.join(base, "autograde")
        try:
            with open(os.path.join(base, "cgroup.controllers")) as f:
                avail = set(f.read().split())
            os.makedirs(parent, exist_ok=True)
            wanted = [c for c in ("memory", "pids", "cpu") if c in avail]
            with open(os.path.join(base, "cgroup.subtree_control"), "w") as f:
                f.write(" ".join("+" + c for c in wanted))
            with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
                f.write(" ".join("+" + c for c in wanted))
            _CG = {"version": "v2", "controllers": wanted, "parents": {"v2": parent}}
        except OSError:
            pass
    return _CG or None


def _cgroup_create(limits):
    """Create this sandbox's cgroups with ``limits``; return their directories."""
    cg = _cgroup_setup()
    if cg is None:
        return []
    name = f"sb-{os.getpid()}-{os.urandom(4).hex()}"
    made = []
    extra_tasks = 2  # the launcher and init live in the group too
    extra_mem = 64 * 2**20
    period = 100_000
    quota = max(int(limits.cpus * period), 1000)

    def write(d, fname, value, needed=True):
        try:
            with open(os.path.join(d, fname), "w") as f:
                f.write(str(value))
        except OSError as exc:
            if needed:  # capabilities() promised this limit: never go without it
                _cgroup_remove(made)
                raise SandboxError(f"cannot set {fname} of {d}: {exc.strerror}") from None

    for key, parent in cg["parents"].items():
        _sweep(parent)
        d = os.path.join(parent, name)
        try:
            os.mkdir(d)
        except OSError:
            continue
        made.append(d)
        if not _CREATED:
            import atexit
            atexit.register(_remove_created)
        _CREATED.add(d)
        if cg["version"] == "v1":
            if key == "memory":
                write(d, "memory.limit_in_bytes", limits.memory_bytes + extra_mem)
                # Only where swap is accounted.
                write(d, "memory.memsw.limit_in_bytes", limits.memory_bytes + extra_mem,
                      needed=False)
            elif key == "pids":
                write(d, "pids.max", limits.processes + extra_tasks)
            elif key == "cpu":
                write(d, "cpu.cfs_period_us", period)
                write(d, "cpu.cfs_quota_us", quota)
        else:
            write(d, "memory.max", limits.memory_bytes + extra_mem)
            write(d, "memory.swap.max", 0, needed=False)
            write(d, "pids.max", limits.processes + extra_tasks)
            write(d, "cpu.max", f"{quota} {period}")
    return made


def _sweep(parent):
    """Remove empty groups left by launchers that were killed (rmdir fails on busy ones)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for n in names:
        if n.startswith("sb-") and not n.startswith("sb-probe-"):
            try:
                os.kill(int(n.split("-")[1]), 0)
                continue  # its creator is alive and may still use it
            except (ValueError, IndexError, ProcessLookupError):
                pass
            except PermissionError:
                continue
            try:
                os.rmdir(os.path.join(parent, n))
            except OSError:
                pass


_CREATED = set()


def _remove_created():
    _cgroup_remove(list(_CREATED))


def _oom_kills(dirs):
    """How many processes the memory cgroup among ``dirs`` killed."""
    for d in dirs:
        for fname in ("memory.oom_control", "memory.events"):
            try:
                with open(os.path.join(d, fname)) as f:
                    for line in f:
                        key, _, value = line.partition(" ")
                        if key == "oom_kill":
                            return int(value)
            except (OSError, ValueError):
                continue
    return 0


def _cgroup_pids(dirs):
    pids = set()
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids.update(int(x) for x in f.read().split())
        except (OSError, ValueError):
            pass
    return pids


def _cgroup_remove(dirs):
    for d in dirs:
        try:
            os.rmdir(d)
            _CREATED.discard(d)
        except OSError:
            pass


# ----------------------------------------------------------------------------
# The grader's side


def _readable_paths():
    """Host paths the payload may read: the Python installation and the two packages."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))]
    try:
        import importlib.util
        spec = importlib.util.find_spec("course_lib")
        if spec is not None and spec.submodule_search_locations:
            paths.extend(spec.submodule_search_locations)
    except (ImportError, ValueError):
        pass
    out = []
    for p in paths:
        p = os.path.abspath(p)
        if os.path.exists(p) and p not in out:
            out.append(p)
    return out


#: Name prefix of every process's scratch folder in the temporary directory.
SCRATCH_PREFIX = "autograde-"
_SCRATCH = None   # (pid, path, lock fd) of this process's scratch folder


def scratch_dir():
    """This process's private folder for temporary files: sandbox stage, work folders.

    ``<tmp>/autograde-<pid>-<random>`` (mode 0700), created on first use. The
    process holds an ``flock`` on its ``.lock`` file for as long as it lives:
    the kernel drops it however the process ends, so :func:`sweep_scratch`
    (run here first) can tell a folder left by a killed grader from one in
    use, and removes it. A forked child gets a folder of its own.
    """
    global _SCRATCH
    if _SCRATCH is not None and _SCRATCH[0] == os.getpid() and os.path.isdir(_SCRATCH[1]):
        return _SCRATCH[1]
    import atexit
    import fcntl
    import tempfile
    sweep_scratch()
    # Built under a name no sweep looks at, and renamed once locked: a sweep
    # running meanwhile in another grader must never find it unlocked.
    building = tempfile.mkdtemp(prefix=f".building-{SCRATCH_PREFIX}{os.getpid()}-")
    fd = os.open(os.path.join(building, ".lock"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.mkdir(os.path.join(building, "stage"))
    path = os.path.join(os.path.dirname(building),
                        os.path.basename(building)[len(".building-"):])
    os.rename(building, path)
    _SCRATCH = (os.getpid(), path, fd)
    atexit.register(remove_scratch)
    return path


def remove_scratch():
    """Remove this process's scratch folder (at exit; also from worker processes)."""
    global _SCRATCH
    if _SCRATCH is None or _SCRATCH[0] != os.getpid():
        return
    import shutil
    _, path, fd = _SCRATCH
    _SCRATCH = None
    shutil.rmtree(path, ignore_errors=True)
    os.close(fd)


def sweep_scratch(tmpdir=None):
    """Remove the scratch folders of processes that have ended; return how many.

    A folder counts as abandoned when its ``.lock`` can be locked: no living
    process holds it. Folders in use, and anything not made by
    :func:`scratch_dir`, are left alone.
    """
    import fcntl
    import shutil
    import tempfile
    tmpdir = tmpdir or tempfile.gettempdir()
    removed = 0
    try:
        names = os.listdir(tmpdir)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(SCRATCH_PREFIX) or name.count("-") < 2:
            continue
        folder = os.path.join(tmpdir, name)
        try:
            fd = os.open(os.path.join(folder, ".lock"),
                         os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its process is alive
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _stage_dir():
    """An empty directory, private to this grader, on which each sandbox mounts its root."""
    return os.path.join(scratch_dir(), "stage")


def _package_entries():
    """The entries of the ``autograde`` package shown to the payload: all but its state."""
    try:
        names = os.listdir(_HERE)
    except OSError:
        return []
    return sorted(os.path.join(_HERE, n) for n in names
                  if n not in ("state", "__pycache__") and not n.startswith("."))


def _always_hidden():
    """What every sandbox masks: the repository holding this package, and its state folder."""
    return [_REPO, os.path.join(_HERE, "state")]


def _import_dirs():
    """Where ``python -I`` imports from (stdlib, site-packages): they stay visible under a mask.

    sysconfig's paths, not ``sys.path``: the grader's own may hold its
    current directory or a test runner's folders.
    """
    import sysconfig
    paths = sysconfig.get_paths()
    dirs = [paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    return [os.path.abspath(p) for p in dirs if p and os.path.isdir(p)]


def _config(argv, workdir, limits, env, *, mode, cgroups, readable=(), hidden=()):
    workdir = os.path.abspath(os.fspath(workdir))
    readable = _readable_paths() + [os.path.abspath(p) for p in readable]
    return {
        "mode": mode,
        "stage": _stage_dir(),
        "argv": [os.fspath(a) for a in argv],
        "workdir": workdir,
        "env": env,
        "limits": asdict(limits),
        "readable": readable,
        "package_entries": _package_entries(),
        "hidden": _always_hidden() + [os.path.abspath(os.fspath(p)) for p in hidden],
        "needed": readable + _package_entries() + _import_dirs(),
        "cgroups": cgroups or [],
        "uid_base": UID_BASE,
        "payload": True,
        "grader_uid": os.getuid(),
        "grader_gid": os.getgid(),
    }


def _launcher_argv(config_fd, report_fd):
    # The launcher checks that its parent is still this process (see the end of this file).
    return [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__), "--launch",
            str(config_fd), str(report_fd), str(os.getpid())]


def _pipes():
    """(config read end, config write end, report read end, report write end).

    The launcher reads its configuration from the first pipe (written by
    :func:`_send_config` once it runs, so no size can block). The second
    carries setup errors back; it reaches EOF without a word once the payload
    has been executed (every copy of its write end is close-on-exec).
    """
    cr, cw = os.pipe()
    rr, rw = os.pipe()
    return cr, cw, rr, rw


def _send_config(cw, cfg):
    try:
        with os.fdopen(cw, "wb") as f:
            f.write(json.dumps(cfg).encode())
    except BrokenPipeError:
        pass  # the launcher died at once; its report says why


def _read_report(rr, timeout=60):
    import select
    import time
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            chunks.append(b"sandbox: setup did not finish in time")
            break
        ready, _, _ = select.select([rr], [], [], left)
        if ready:
            chunk = os.read(rr, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(rr)
    return b"".join(chunks).decode(errors="replace").strip()


def _run_launcher(cfg, subprocess):
    """Run the launcher in probe mode; return what it printed (and any setup error)."""
    cr, cw, rr, rw = _pipes()
    try:
        proc = subprocess.Popen(_launcher_argv(cr, rw), pass_fds=(cr, rw),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
                                start_new_session=True)
    except BaseException:
        for fd in (cw, rr):
            os.close(fd)
        raise
    finally:
        os.close(cr)
        os.close(rw)
    _send_config(cw, cfg)
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        kill(proc)
    return out + _read_report(rr, timeout=5).encode()


def spawn(argv, *, workdir, limits=Limits(), env=None, readable=(), hidden=()):
    """Start ``argv`` in the sandbox, in ``workdir``; return the Popen of its launcher.

    stdin and stdout are pipes to the payload, stderr goes to /dev/null. The
    payload runs in a new session (and pid namespace), without network, and
    sees only a private copy of ``workdir`` (writable; its changes are lost
    when the sandbox ends, the host's directory is never modified), the
    Python installation, the
    ``course_lib`` and ``autograde`` packages, ``readable`` (extra host paths,
    read-only), a private ``/tmp``, a few devices and its own ``/proc``.
    ``hidden`` names host paths (the course, its grading state, the output
    and submissions folders) that must not exist for it even where they lie
    below a directory it sees; the repository holding this package and its
    ``autograde/state`` are always hidden. A system directory, and a path the
    Python installation imports from, cannot be hidden and stays visible.

    The sandbox ends with the thread that called ``spawn`` (parent-death
    signal) and after ``limits.wall_seconds`` at the latest.

    Raises :class:`SandboxError` (an ``OSError``) when the sandbox cannot be
    built or ``argv[0]`` cannot be executed; ``spawn`` returns only once the
    payload is running (some 30 ms on a 2-core machine).

    The return code is the payload's: negative for a signal (``-SIGXCPU``
    when it ran out of CPU time, ``-SIGKILL`` for the memory cgroup's OOM
    killer or :func:`kill`; a payload that ignored SIGXCPU and met the hard
    CPU limit is reported as ``-SIGXCPU`` too). SIGINT sent to the launcher reaches the payload;
    SIGTERM/SIGHUP kill it. :func:`exit_reason` tells the causes apart.
    Always end it with :func:`kill`, which also removes its cgroups.
    """
    import subprocess
    workdir = os.path.abspath(os.fspath(workdir))
    if not os.path.isdir(workdir):
        raise ValueError(f"workdir {workdir!r} is not a directory")
    if os.path.realpath(workdir) == "/":
        raise ValueError("workdir must not be the root directory: it is copied into the sandbox")
    if env is None:
        env = default_env(workdir)
    env = {k: v for k, v in env.items() if k != SECRET_ENV}
    caps = capabilities()
    cgroups = _cgroup_create(limits) if caps["cgroup"] != "none" else []
    cfg = _config(argv, workdir, limits, env, mode=caps["mode"], cgroups=cgroups,
                  readable=readable, hidden=hidden)
    cr, cw, rr, rw = _pipes()
    try:
        proc = subprocess.Popen(_launcher_argv(cr, rw), pass_fds=(cr, rw), cwd=workdir,
                                env={"PATH": "/usr/bin:/bin"},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except BaseException:
        for fd in (cw, rr):
            os.close(fd)
        _cgroup_remove(cgroups)
        raise
    finally:
        os.close(cr)
        os.close(rw)
    proc.sandbox_cgroups = cgroups
    _send_config(cw, cfg)
    error = _read_report(rr)
    if error:
        kill(proc)
        raise SandboxError(error)
    return proc


def exit_reason(proc):
    """Why the payload ended: 'memory', 'cpu', 'wall', 'signal', 'exit' (None: running).

    'memory': it died of SIGKILL after the memory cgroup's OOM killer struck
    in the sandbox; 'cpu': RLIMIT_CPU; 'wall': ``Limits.wall_seconds``; 'signal':
    another signal (the payload's own ``os.kill``, a crash, :func:`kill`);
    'exit': it exited by itself (``os._exit`` included). Call it before
    :func:`kill`, which removes the cgroups it reads.
    """
    rc = proc.poll()
    if rc is None:
        return None
    if rc >= 0:
        return "exit"
    if rc == -signal.SIGXCPU:
        return "cpu"
    if rc == -signal.SIGALRM:
        return "wall"
    if rc == -signal.SIGKILL and _oom_kills(getattr(proc, "sandbox_cgroups", [])):
        return "memory"
    return "signal"


def kill(proc):
    """Kill the launcher, the payload and every process they started; never raises.

    The pid namespace dies with its pid 1 (which dies with the launcher);
    the process group and the cgroups catch anything else.
    """
    try:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            proc.kill()
        except OSError:
            pass
        cgroups = getattr(proc, "sandbox_cgroups", [])
        import time
        deadline = time.monotonic() + 5
        while cgroups and time.monotonic() < deadline:
            pids = _cgroup_pids(cgroups)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)
        try:
            proc.wait(timeout=5)
        except Exception:
            pass
        _cgroup_remove(cgroups)
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except Exception:
                pass
    except Exception:
        pass


# ----------------------------------------------------------------------------
# The launcher's side (this file run as a script): no imports beyond the
# standard library's smallest modules, so it starts in a few milliseconds.


class _Libc:
    """The system calls the launcher needs that Python 3.11's os module lacks, via ctypes."""

    def __init__(self):
        import ctypes
        self.ctypes = ctypes
        self.lib = ctypes.CDLL(None, use_errno=True)
        self.lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                   ctypes.c_ulong, ctypes.c_char_p]

    def _check(self, ret, what):
        if ret != 0:
            err = self.ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def unshare(self, flags):
        self._check(self.lib.unshare(flags), "unshare")

    def mount(self, src, target, fstype, flags, data=None):
        enc = (lambda s: s.encode() if s is not None else None)
        self._check(self.lib.mount(enc(src), enc(target), enc(fstype), flags, enc(data)),
                    f"mount {target}")

    def umount2(self, target, flags):
        self._check(self.lib.umount2(target.encode(), flags), f"umount {target}")

    def pivot_root(self, new, old):
        nr = _SYS_PIVOT_ROOT.get(os.uname().machine)
        if nr is None:
            raise OSError(38, "pivot_root: unknown architecture")
        self._check(self.lib.syscall(nr, new.encode(), old.encode()), "pivot_root")

    def prctl(self, option, arg):
        self._check(self.lib.prctl(option, self.ctypes.c_ulong(arg), 0, 0, 0), "prctl")

    def sethostname(self, name):
        self._check(self.lib.sethostname(name.encode(), len(name)), "sethostname")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _mirror(root, path):
    """Recreate under ``root`` the symlinks on the way to host ``path``; return its real path."""
    parts = [p for p in path.split("/") if p]
    cur = "/"
    for i, name in enumerate(parts):
        nxt = os.path.join(cur, name)
        if os.path.islink(nxt):
            dst = root + nxt
            if not os.path.lexists(dst):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.symlink(os.readlink(nxt), dst)
            rest = "/".join(parts[i + 1:])
            real = os.path.realpath(nxt)
            return _mirror(root, os.path.join(real, rest) if rest else real)
        cur = nxt
    return cur


def _locked_flags(path):
    """Mount flags of ``path`` that a bind remount must keep (a user namespace requires it)."""
    f = os.statvfs(path).f_flag
    out = 0
    for st, ms in ((8, MS_NOEXEC), (1024, MS_NOATIME), (2048, MS_NODIRATIME),
                   (4096, MS_RELATIME)):
        if f & st:
            out |= ms
    return out


def _bind(libc, root, host, *, writable=False):
    real = _mirror(root, host)
    if not os.path.exists(real):
        return
    dst = root + real
    if os.path.isdir(real):
        os.makedirs(dst, exist_ok=True)
    elif not os.path.exists(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    try:
        libc.mount(real, dst, None, MS_BIND)
    except OSError:
        # A mount with locked sub-mounts can only be bound recursively.
        libc.mount(real, dst, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | _locked_flags(real)
    if not writable:
        flags |= MS_RDONLY
    libc.mount(None, dst, None, flags)


def _build_root(libc, cfg, uid, gid, owner):
    """Mount the allow-list root at a fresh tmpfs and pivot into it.

    ``uid``/``gid`` are the payload's identity as it sees itself (for
    ``/etc/passwd``); ``owner`` is the (uid, gid) that owns its private work
    directory from this namespace's point of view.
    """
    lim = cfg["limits"]
    libc.mount(None, "/", None, MS_REC | MS_PRIVATE)
    # The stage is an empty directory no path of the allow-list lies under; in
    # this private mount namespace the tmpfs on top of it is invisible to others.
    root = cfg["stage"]
    libc.mount("sandbox", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
    # The private /tmp comes first: anything below /tmp on the host (the work
    # directory, often) is then bound on top of it.
    os.makedirs(root + "/tmp")
    libc.mount("tmp", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
               f"mode=1777,size={lim['tmp_bytes']}")
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        if os.path.lexists("/" + top):
            _bind(libc, root, "/" + top)
    os.makedirs(root + "/etc", exist_ok=True)
    for name in _ETC_FILES:
        if os.path.isfile("/etc/" + name):
            _bind(libc, root, "/etc/" + name)
    _write(root + "/etc/passwd", f"root:x:0:0::/:/bin/false\nstudent:x:{uid}:{gid}::/tmp:/bin/false\n")
    _write(root + "/etc/group", f"root:x:0:\nstudent:x:{gid}:\n")
    _write(root + "/etc/hostname", "sandbox\n")
    _write(root + "/etc/hosts", "")
    for path in cfg["readable"]:
        _bind(libc, root, path)
    # The grader's own package, entry by entry: its state folder (gradebook,
    # submissions), even one created later, is not among them.
    for path in cfg["package_entries"]:
        _bind(libc, root, path)
    masks = _mask(libc, root, cfg["hidden"], cfg["needed"])
    _private_workdir(libc, root, cfg["workdir"], lim["workdir_bytes"], *owner)
    for real in masks:  # read-only once the mount points inside them exist
        if os.path.isdir(root + real):
            libc.mount(None, root + real, None,
                       MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # Devices: bind the harmless character devices one by one.
    dev = root + "/dev"
    os.makedirs(dev, exist_ok=True)
    libc.mount("dev", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k")
    for name in ("null", "zero", "full", "random", "urandom"):
        if os.path.exists("/dev/" + name):
            open(dev + "/" + name, "a").close()
            libc.mount("/dev/" + name, dev + "/" + name, None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, dev + "/" + name)
    os.makedirs(dev + "/shm")
    libc.mount("shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV,
               f"mode=1777,size={lim['tmp_bytes']}")
    libc.mount(None, dev, None, MS_REMOUNT | MS_NOSUID | MS_NOEXEC | MS_RDONLY)
    os.makedirs(root + "/proc", exist_ok=True)
    try:
        libc.mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        if cfg["mode"] == "root":
            raise
        # Some containers mask parts of /proc, which forbids a new proc
        # mount inside a user namespace: go without /proc.
    os.chdir(root)
    libc.pivot_root(".", ".")
    libc.umount2(".", MNT_DETACH)
    os.chdir("/")
    libc.mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


# Directories a mask may not cover: the sandbox's own, and the system's.
_UNMASKABLE = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/tmp",
               "/dev", "/proc")


def _mask(libc, root, hidden, needed):
    """Cover each ``hidden`` host path that the new root shows with something empty.

    A folder gets an empty tmpfs (the caller makes it read-only), a file the
    host's ``/dev/null`` (read-only, so it reads as empty). The ``needed``
    paths that lie inside a mask (the Python installation, ``course_lib``,
    the ``autograde`` entries, when they live in a hidden course folder) are
    bound again on top. Returns the masked folders and files.
    """
    masks = []
    for path in hidden:
        real = os.path.realpath(path)
        if real == "/" or any(top == real or top.startswith(real + "/") for top in _UNMASKABLE):
            continue
        dst = root + real
        if not os.path.lexists(dst) or any(real == m or real.startswith(m + "/") for m in masks):
            continue  # not shown in the new root, or already under a mask
        if os.path.isdir(dst):
            libc.mount("hidden", dst, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       "mode=755,size=64k")
        else:
            libc.mount("/dev/null", dst, None, MS_BIND)
            libc.mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID
                       | MS_NODEV | MS_NOEXEC)
        masks.append(real)
    for path in needed if masks else ():
        real = os.path.realpath(path)
        if any(real == m or real.startswith(m + "/") for m in masks):
            _bind(libc, root, path)
    return masks


def _private_workdir(libc, root, workdir, size, uid, gid):
    """Mount a tmpfs at the work directory's path and copy the host's files into it.

    The payload's writes stay in memory (bounded by ``size`` and the memory
    cgroup) and vanish with the sandbox: the host directory never changes.
    """
    real = _mirror(root, workdir)
    dst = root + real
    os.makedirs(dst, exist_ok=True)
    libc.mount("work", dst, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=700,size={size}")
    os.chown(dst, uid, gid)
    for top, dirs, files in os.walk(real):
        rel = os.path.relpath(top, real)
        out_top = dst if rel == "." else os.path.join(dst, rel)
        for name in dirs:
            src = os.path.join(top, name)
            target = os.path.join(out_top, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), target)
            else:
                os.mkdir(target, 0o755)
            os.lchown(target, uid, gid)
        for name in files:
            src = os.path.join(top, name)
            target = os.path.join(out_top, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), target)
            elif os.path.isfile(src):
                with open(src, "rb") as fin, open(target, "wb") as fout:
                    while True:
                        chunk = fin.read(1 << 20)
                        if not chunk:
                            break
                        fout.write(chunk)
            else:
                continue  # sockets, fifos, devices stay behind
            os.lchown(target, uid, gid)


def _set_rlimits(lim):
    cpu = int(lim["cpu_seconds"])
    for what, soft, hard in ((resource.RLIMIT_CPU, cpu, cpu + 1),
                             (resource.RLIMIT_AS, lim["memory_bytes"], lim["memory_bytes"]),
                             (resource.RLIMIT_NPROC, lim["processes"], lim["processes"]),
                             (resource.RLIMIT_FSIZE, lim["file_bytes"], lim["file_bytes"]),
                             (resource.RLIMIT_NOFILE, lim["open_files"], lim["open_files"]),
                             (resource.RLIMIT_CORE, 0, 0)):
        resource.setrlimit(what, (soft, hard))


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class _Forwarder:
    """Pass SIGINT on to the child (other termination signals kill it).

    Installed before the fork, so that no signal sent once spawn() has
    returned can find the launcher or init without it; the child drops it.
    """

    def __init__(self):
        self.child = None
        for sig in _FORWARDED:
            signal.signal(sig, self)

    def __call__(self, signum, frame):
        if self.child:
            try:
                os.kill(self.child, signal.SIGINT if signum == signal.SIGINT else signal.SIGKILL)
            except OSError:
                pass

    @staticmethod
    def drop():
        for sig in _FORWARDED:
            signal.signal(sig, signal.SIG_DFL)


def _wait_forwarding(child):
    """Wait for ``child``; return its wait status."""
    while True:
        try:
            _, status = os.waitpid(child, 0)
            return status
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue


def _oom_score(value):
    try:
        _write("/proc/self/oom_score_adj", str(value))
    except OSError:
        pass  # not privileged enough: the default score stays


def _exit_like(status):
    """End this process the way ``status`` says the child ended."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _launch(cfg):
    """Body of the launcher: namespaces, cgroups, fork init, wait."""
    mode = cfg["mode"]
    for d in cfg["cgroups"]:
        _write(os.path.join(d, "cgroup.procs"), "0")
    # The out-of-memory killer (of the cgroup or the machine) should pick the
    # payload, never the launcher or init that report what happened.
    _oom_score(-1000)
    if mode == "rlimits":
        _payload(cfg, None, os.getuid(), os.getgid())
    libc = _Libc()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if mode == "userns":
        flags |= CLONE_NEWUSER
    libc.unshare(flags)
    if mode == "userns":
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {cfg['grader_uid']} 1")
        _write("/proc/self/gid_map", f"0 {cfg['grader_gid']} 1")
    cfg["launcher_pid"] = os.getpid()
    status_r, status_w = os.pipe()  # init reports the payload's wait status here
    forwarder = _Forwarder()
    init = os.fork()
    if init == 0:
        _Forwarder.drop()
        os.close(status_r)
        cfg["status_fd"] = status_w
        try:
            _init(cfg, libc)
        except BaseException as exc:
            _report(cfg, f"sandbox: {exc}")
            os._exit(121)
    forwarder.child = init
    os.close(cfg["report_fd"])
    # The launcher's copies of the payload's pipes would keep them open.
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(status_w)
    status = _wait_forwarding(init)
    reported = b""
    while True:
        chunk = os.read(status_r, 64)
        if not chunk:
            break
        reported += chunk
    if reported.strip().isdigit():
        status = int(reported)
    # The cgroups stay until kill() removes them, so that exit_reason() can
    # still read whether the OOM killer struck.
    _exit_like(status)


def _init(cfg, libc):
    """pid 1 of the sandbox: build the root, start the payload, reap, pass on its status."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if cfg["mode"] == "root":
        uid = gid = cfg["uid_base"] + cfg["launcher_pid"]
        owner = (uid, gid)
    else:
        # In the launcher's user namespace only 0 is mapped (to the grader):
        # files given to 0 here are the grader's, and the payload's own
        # namespace maps its uid back onto that 0.
        uid, gid = cfg["grader_uid"], cfg["grader_gid"]
        owner = (0, 0)
    libc.sethostname("sandbox")
    _build_root(libc, cfg, uid, gid, owner)
    libc.prctl(PR_SET_DUMPABLE, 0)
    if not cfg["payload"]:
        # Probe: check from inside that the sandbox holds, then report.
        pid = os.fork()
        if pid == 0:
            _payload(cfg, libc, uid, gid, probe=True)
        _, status = os.waitpid(pid, 0)
        os.write(cfg["status_fd"], str(status).encode())
        os._exit(0)
    forwarder = _Forwarder()
    payload = os.fork()
    if payload == 0:
        _Forwarder.drop()
        try:
            _payload(cfg, libc, uid, gid)
        except BaseException as exc:
            _report(cfg, f"sandbox: {exc}")
            os._exit(121)
    forwarder.child = payload
    os.close(cfg["report_fd"])
    # Reap orphans too; end with the payload (the kernel then kills the rest).
    os.close(0)
    os.close(1)
    cpu_limit = cfg["limits"]["cpu_seconds"]
    expired = []

    def wall_clock(signum, frame):
        # pid 1's kill(-1) reaches every other process of the namespace.
        expired.append(True)
        os.kill(-1, signal.SIGKILL)

    signal.signal(signal.SIGALRM, wall_clock)
    signal.alarm(max(int(cfg["limits"]["wall_seconds"]), 1))
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == payload:
            # The SIGKILL of the hard CPU limit (after an ignored SIGXCPU)
            # is reported as SIGXCPU, and that of the wall clock as SIGALRM:
            # the cause, not the mechanism.
            if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
                if expired:
                    status = signal.SIGALRM
                elif usage.ru_utime + usage.ru_stime >= cpu_limit:
                    status = signal.SIGXCPU
            # pid 1 cannot kill itself with a signal: hand the status over.
            os.write(cfg["status_fd"], str(status).encode())
            os._exit(0)


def _payload(cfg, libc, uid, gid, probe=False):
    """Drop privileges, apply the rlimits, exec the payload (never returns)."""
    try:
        os.setsid()
    except OSError:
        pass
    _oom_score(1000)
    if cfg["mode"] == "root":
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    if cfg["mode"] in ("root", "userns"):
        # init is not dumpable, and changing uid makes a process non-dumpable
        # too, which hands its /proc files (setgroups, uid_map) to root; it
        # becomes dumpable again at exec anyway.
        libc.prctl(PR_SET_DUMPABLE, 1)
        # A user namespace of its own, nested in the sandbox's: it owns no
        # mount or network namespace, so the payload cannot unmount or
        # reconfigure anything; and it may not create further user
        # namespaces, which keeps that part of the kernel out of reach.
        outer = uid if cfg["mode"] == "root" else 0
        libc.unshare(CLONE_NEWUSER)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {outer} 1")
        _write("/proc/self/gid_map", f"{gid} {outer} 1")
        try:
            _write("/proc/sys/user/max_user_namespaces", "0")
        except OSError:
            pass  # an older kernel: nested user namespaces stay possible
    if libc is not None:
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _set_rlimits(cfg["limits"])
    os.chdir(cfg["workdir"])
    if probe:
        _probe_inside(cfg)
    if libc is None:
        # No init of its own to keep the wall clock: an alarm survives execve.
        signal.alarm(max(int(cfg["limits"]["wall_seconds"]), 1))
    try:
        os.execvpe(cfg["argv"][0], cfg["argv"], cfg["env"])
    except OSError as exc:
        _report(cfg, f"sandbox: cannot execute {cfg['argv'][0]}: {exc}")
        os._exit(127)


def _report(cfg, message):
    try:
        os.write(cfg["report_fd"], message.encode())
    except (OSError, KeyError):
        pass


def _probe_inside(cfg):
    """Print 'ok' when the sandbox holds from the payload's point of view."""
    problems = []
    import socket
    try:
        s = socket.socket()
        s.settimeout(1)
        s.connect(("127.0.0.1", 9))
        problems.append("network reachable")
    except OSError:
        pass
    if os.path.exists(os.path.join(_REPO, "pyproject.toml")):
        problems.append("repository visible")
    if os.getpid() != 2:
        problems.append("not in a pid namespace")
    if cfg["mode"] == "root" and os.getuid() == 0:
        problems.append("still root")
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    flags = ["userns_blocked"] if libc.unshare(CLONE_NEWUSER) != 0 else []
    try:
        open(os.path.join(cfg["workdir"], ".probe"), "w").close()
    except OSError as exc:
        problems.append(f"workdir not writable: {exc}")
    os.write(1, (("; ".join(problems)) if problems else " ".join(["ok"] + flags)).encode()
             + b"\n")
    os._exit(0)


def die_with_parent(parent):
    """SIGKILL this process when the thread that started it ends; exit now if it already has.

    ``parent`` is the pid that started this process. Used by the launcher
    and by the grader's worker processes (Linux only; elsewhere a no-op).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it ended before the line above: nobody waits for us
        os._exit(121)


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--launch":
    die_with_parent(int(sys.argv[4]))
    with os.fdopen(int(sys.argv[2]), "rb") as f:
        _config_in = json.loads(f.read())
    _config_in["report_fd"] = int(sys.argv[3])
    os.set_inheritable(_config_in["report_fd"], False)
    try:
        _launch(_config_in)
    except BaseException as exc:  # report, never run unsandboxed
        _report(_config_in, f"sandbox: {exc}")
        os._exit(121)
