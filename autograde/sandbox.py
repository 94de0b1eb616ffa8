"""Run one untrusted submission in a process with bounded resources.

First version: resource limits (setrlimit) and a new session only; the
filesystem and network isolation follow.
"""

import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed process tree."""

    cpu_seconds: int = 300
    memory_bytes: int = 3 * 2**30
    processes: int = 64
    file_bytes: int = 32 * 2**20
    open_files: int = 256


def _set_rlimits(limits):
    for what, value in ((resource.RLIMIT_CPU, limits.cpu_seconds),
                        (resource.RLIMIT_AS, limits.memory_bytes),
                        (resource.RLIMIT_NPROC, limits.processes),
                        (resource.RLIMIT_FSIZE, limits.file_bytes),
                        (resource.RLIMIT_NOFILE, limits.open_files),
                        (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(what, (value, value))


def spawn(argv, *, workdir, limits=Limits(), env=None):
    """Start ``argv`` in ``workdir`` under ``limits``; stdin and stdout are pipes."""
    def preexec():
        _set_rlimits(limits)
    return subprocess.Popen(list(argv), cwd=os.fspath(workdir), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=preexec)


def kill(proc):
    """Kill ``proc`` and its whole process group; never raises."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass
    try:
        proc.kill()
    except Exception:
        pass
    try:
        proc.wait(timeout=5)
    except Exception:
        pass


def capabilities():
    """Which isolation mechanisms are active on this machine."""
    return {"rlimits": True, "session": True, "platform": sys.platform}
