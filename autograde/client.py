"""The grader's end of the channel to one student's process (``runner.py``).

:class:`RunnerClient` starts the runner through ``autograde.sandbox.spawn``,
sends requests with a deadline, and turns every way the runner can fail
(no answer in time, exited, killed by a limit, garbled reply) into a
:class:`RunnerFailure`, after which the process is gone and a new one can be
started with :meth:`RunnerClient.start`.

The runner shares its process with the student's code, which can rewrite it,
so nothing it sends is trusted: every reply is read within
:data:`REPLY_BOUNDS`, and :func:`check_reply` keeps only the documented
fields, of the documented types, cut to their caps with a visible note.
"""

import os
import sys
import time

from autograde import protocol
from autograde.sandbox import Limits, default_env, exit_reason, kill, spawn

#: Seconds the runner may take to import IPython and say it is ready.
START_TIMEOUT = 60.0

#: Bounds of one reply from the student's process. The header holds a cell's
#: output (3 x the output cap, at most 12 bytes of JSON per character) and
#: plain values; the payload holds the arrays a student function returns.
REPLY_BOUNDS = protocol.Bounds(max_header_bytes=4 * 2**20, max_payload_bytes=64 * 2**20,
                               max_nodes=200_000)
#: Characters kept of an exception's type name and of its message.
TYPE_NAME_CAP = 100
MESSAGE_CAP = 2000
#: What a cut text ends with.
TRUNCATED = "\n[output truncated]\n"


class RunnerFailure(BaseException):
    """The student's process timed out, died or broke the protocol.

    A BaseException, so that ``except Exception`` in a test cell cannot
    swallow it. ``kind`` is one of ``timeout``, ``died``, ``memory``,
    ``cpu`` or ``protocol``.
    """

    def __init__(self, kind, detail=""):
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail

    def describe(self, where):
        """The status note, e.g. ``timeout in cell 12 (relu)``."""
        text = {"timeout": "timeout", "died": "kernel died", "memory": "memory limit",
                "cpu": "CPU time limit", "protocol": "broken reply"}[self.kind]
        return f"{text} in {where}" + (f": {self.detail}" if self.detail else "")


class RunnerStartError(Exception):
    """The runner could not be started: a problem of the grading machine, not the student."""


class RunnerClient:
    """One sandboxed runner process and the requests sent to it."""

    def __init__(self, workdir, limits=Limits(), output_cap=64 * 1024, extra_env=None,
                 hidden=()):
        self.workdir = workdir
        self.limits = limits
        self.output_cap = output_cap
        self.extra_env = dict(extra_env or {})
        self.hidden = tuple(hidden)   # host paths the sandbox masks (see sandbox.spawn)
        self.proc = None
        self.generation = 0  # increases with every start; handles of older ones are stale

    @property
    def alive(self):
        """True while a runner process is started and not known to have failed."""
        return self.proc is not None

    def start(self):
        """Start a fresh runner (killing any previous one) and wait until it is ready."""
        self.stop()
        env = {**default_env(self.workdir), "NBGRADER_EXECUTION": "autograde", **self.extra_env}
        argv = [sys.executable, "-I", "-m", "autograde.runner",
                "--output-cap", str(self.output_cap)]
        try:
            self.proc = spawn(argv, workdir=self.workdir, limits=self.limits, env=env,
                              hidden=self.hidden)
        except Exception as exc:
            raise RunnerStartError(f"could not start the student's process: {exc}") from exc
        os.set_blocking(self.proc.stdin.fileno(), False)
        self.generation += 1
        try:
            header, _ = self._receive(time.monotonic() + START_TIMEOUT)
        except RunnerFailure as failure:
            self.stop()
            raise RunnerStartError("the student's process did not start: "
                                   f"{failure.kind} {failure.detail}".strip()) from None
        if header.get("op") != "ready":
            self.stop()
            raise RunnerStartError("the student's process did not start: unexpected greeting")

    def stop(self):
        """Kill the runner and everything it started (never raises)."""
        if self.proc is not None:
            kill(self.proc)
            self.proc = None

    def request(self, header, value=None, deadline=None, on_other=None, on_handle=None):
        """Send one request and return ``(reply header, reply value)``.

        The reply header is the one :func:`check_reply` gives. Raises
        RunnerFailure (and stops the runner) when it does not answer by
        ``deadline`` (a ``time.monotonic()`` value), exits, or garbles.
        """
        if self.proc is None:
            raise RunnerFailure("died", "not running")
        deadline = deadline if deadline is not None else time.monotonic() + 3600
        try:
            protocol.send(self.proc.stdin.fileno(), header, value, on_other=on_other,
                          deadline=deadline)
        except protocol.PeerTimeout:
            self._fail("timeout")
        except protocol.PeerClosed:
            self._fail("died")
        return self._receive(deadline, on_handle)

    def _receive(self, deadline, on_handle=None):
        try:
            header, value = protocol.receive(self.proc.stdout.fileno(), on_handle=on_handle,
                                             deadline=deadline, bounds=REPLY_BOUNDS)
            return check_reply(header, self.output_cap), value
        except protocol.PeerTimeout:
            self._fail("timeout")
        except protocol.PeerClosed:
            self._fail("died")
        except protocol.ProtocolError as exc:
            self._fail("protocol", str(exc)[:200])
        except MemoryError:
            self._fail("protocol", "a reply too large to read")

    def _fail(self, kind, detail=""):
        """Stop the runner, find out why it ended, and raise RunnerFailure."""
        proc = self.proc
        if kind == "died" and proc is not None:
            try:
                code = proc.wait(timeout=5)
            except Exception:
                code = None
            # Ask the sandbox before stop(): it reads the cgroups that kill() removes. A SIGKILL
            # is a memory limit only when the OOM killer struck; the student may kill itself too.
            reason = exit_reason(proc) if code is not None else None
            if reason == "memory":
                kind, detail = "memory", "killed"
            elif reason == "cpu":
                kind = "cpu"
            elif code is not None:
                detail = f"exit code {code}" if code >= 0 else f"signal {-code}"
        self.stop()
        raise RunnerFailure(kind, detail)


def check_reply(header, output_cap):
    """The reply ``header`` reduced to its documented fields; ProtocolError if malformed.

    Fields: ``op`` and ``pid`` (the greeting), ``ok`` (a bool), ``stdout``
    and ``stderr`` (text, at most ``output_cap`` characters each), ``error``
    (None or ``{"type", "message", "traceback"}``: the type name at most
    TYPE_NAME_CAP characters, the message MESSAGE_CAP, the traceback
    ``output_cap``) and ``truncated`` (True when the runner or this function
    cut any output). Other fields are dropped.
    """
    reply = {}
    cut = header.get("truncated") is True
    if "op" in header:
        reply["op"] = _text(header["op"], "op", 40, note="...")[0]
    if "pid" in header:
        if type(header["pid"]) is not int:
            raise protocol.ProtocolError("malformed reply: pid is not a number")
        reply["pid"] = header["pid"]
    if "ok" in header:
        if type(header["ok"]) is not bool:
            raise protocol.ProtocolError("malformed reply: ok is not true or false")
        reply["ok"] = header["ok"]
    for name in ("stdout", "stderr"):
        if header.get(name) is not None:
            reply[name], was_cut = _text(header[name], name, output_cap)
            cut |= was_cut
    error = header.get("error")
    if error is not None:
        if type(error) is not dict:
            raise protocol.ProtocolError("malformed reply: error is not an object")
        checked = {}
        for name, cap in (("type", TYPE_NAME_CAP), ("message", MESSAGE_CAP),
                          ("traceback", output_cap)):
            if error.get(name) is not None:
                short = name != "traceback"
                checked[name], was_cut = _text(error[name], "error " + name, cap,
                                               note="..." if short else TRUNCATED,
                                               keep_end=not short)
                cut |= was_cut and not short
        # A type name is one line of printable text, whatever the class was called.
        checked["type"] = "".join(c if c.isprintable() else "?"
                                  for c in checked.get("type", "")) or "Exception"
        reply["error"] = checked
    elif "error" in header:
        reply["error"] = None
    reply["truncated"] = cut
    return reply


def _text(value, what, cap, note=TRUNCATED, keep_end=False):
    """``(value, was_cut)``: ``value`` cut to ``cap`` characters, ``note`` included.

    Raises ProtocolError when ``value`` is not a string.
    """
    if type(value) is not str:
        raise protocol.ProtocolError(f"malformed reply: {what} is not text")
    if len(value) <= cap:
        return value, False
    keep = max(cap - len(note), 0)
    # A traceback's last lines say what went wrong: keep those.
    return (note + value[len(value) - keep:] if keep_end else value[:keep] + note), True
