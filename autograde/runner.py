"""The student's process: runs a submission's cells and answers the grader's calls.

Started by the grader through ``autograde.sandbox.spawn`` as
``python -I -m autograde.runner``, one process per submission, in a temporary
folder that holds only the student's notebook. It never sees a test cell.

At start-up it moves the channel to the grader (its stdin and stdout pipes) to
two new file descriptors and points fds 0, 1 and 2 at ``/dev/null``, so
nothing the student's code prints or reads can corrupt the channel. Then it
answers requests (see ``autograde.protocol``), one at a time:

``exec``     run one cell's source with IPython (magics work); reply with
             ``ok``, the captured stdout/stderr (capped), the error and
             whether output was cut (``truncated``)
``get``      the values of global names: plain data as data, anything else as
             a handle (an id for an object that stays here)
``call``     call a handle with arguments; reply with the result
``getattr``/``setattr``/``getitem``/``setitem``/``len``   on a handle
``bye``      exit

A failing request is answered with ``ok: false`` and the exception's type
name and message; the process keeps serving.
"""

import argparse
import importlib
import io
import os
import sys

from autograde import protocol

MAX_HANDLES = 100_000
MESSAGE_CAP = 2000
TYPE_NAME_CAP = 100


class CappedText(io.TextIOBase):
    """A text stream that keeps the first ``cap`` characters written to it."""

    def __init__(self, cap):
        self.cap = cap
        self.parts = []
        self.size = 0
        self.truncated = False

    def writable(self):
        """Always True: this stream only takes writes."""
        return True

    def write(self, text):
        """Keep ``text`` while there is room; return its length as a stream does."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.cap - self.size
        if len(text) > room:
            self.truncated = True
            text = text[:max(room, 0)]
        self.parts.append(text)
        self.size += len(text)
        return len(text)

    def getvalue(self):
        """Everything kept, with a note when output was cut."""
        text = "".join(self.parts)
        return text + "\n[output truncated]\n" if self.truncated else text


class Runner:
    """The request loop and the table of handles."""

    def __init__(self, fd_in, fd_out, output_cap):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.output_cap = output_cap
        self.handles = {}
        self.shell = _make_shell()

    # -- handles and references ------------------------------------------

    def store(self, obj):
        """Keep ``obj`` here and send its handle instead."""
        if len(self.handles) >= MAX_HANDLES:
            raise protocol.ProtocolError("too many objects handed to the grader")
        ident = len(self.handles) + 1
        self.handles[ident] = obj
        return {"h": ident}

    def lookup(self, ident):
        """The object behind a handle the grader sent back."""
        try:
            return self.handles[ident]
        except KeyError:
            raise protocol.ProtocolError(f"unknown handle {ident}") from None

    @staticmethod
    def resolve_ref(name):
        """Import ``module:qualname`` from numpy or course_lib."""
        module, _, qualname = name.partition(":")
        if module.split(".")[0] not in protocol.REF_MODULES or not qualname or "<" in qualname:
            raise protocol.ProtocolError(f"cannot import {name!r} here")
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj

    # -- requests ---------------------------------------------------------

    def serve(self):
        """Answer requests until ``bye`` or until the grader closes the channel."""
        protocol.send(self.fd_out, {"op": "ready", "pid": os.getpid()})
        while True:
            try:
                header, value = protocol.receive(self.fd_in, self.lookup, self.resolve_ref)
            except protocol.PeerClosed:
                return
            except Exception as exc:  # a malformed request: say so, keep serving
                self.reply_error(exc)
                continue
            op = header.get("op")
            if op == "bye":
                return
            handler = getattr(self, "op_" + str(op), None)
            if handler is None:
                self.reply_error(ValueError(f"unknown request {op!r}"))
                continue
            try:
                reply, result = handler(header, value)
            except Exception as exc:
                self.reply_error(exc)
                continue
            try:
                protocol.send(self.fd_out, reply, result, on_other=self.store)
            except protocol.PeerClosed:
                return
            except Exception as exc:  # e.g. a result larger than the limit
                self.reply_error(exc)

    def reply_error(self, exc):
        """Answer a request with the exception's type name and message."""
        error = {"type": _type_name(exc), "message": _safe_str(exc)[:MESSAGE_CAP]}
        protocol.send(self.fd_out, {"ok": False, "error": error})

    def op_exec(self, header, _):
        """Run one cell with IPython; capture its output and error."""
        source = header.get("source")
        if not isinstance(source, str):
            raise ValueError("exec needs the cell's source")
        out, err = CappedText(self.output_cap), CappedText(self.output_cap)
        self.shell.last_traceback_text = ""
        with _redirected(out, err):
            result = self.shell.run_cell(source, store_history=False)
        error = result.error_before_exec or result.error_in_exec
        reply = {"ok": error is None, "stdout": out.getvalue(), "stderr": err.getvalue(),
                 "error": None, "truncated": out.truncated or err.truncated}
        if error is not None:
            traceback = self.shell.last_traceback_text
            reply["error"] = {"type": _type_name(error),
                              "message": _safe_str(error)[:MESSAGE_CAP],
                              "traceback": traceback[-self.output_cap:]}
            reply["truncated"] |= len(traceback) > self.output_cap
        return reply, None

    def op_get(self, _, names):
        """The values of the requested global names that exist."""
        ns = self.shell.user_ns
        return {"ok": True}, {n: ns[n] for n in names if isinstance(n, str) and n in ns}

    def op_call(self, header, args):
        """Call a handle with ``[args, kwargs]``; its printed output is dropped.

        The arguments are this process's own copies: what the call changes in
        them stays here (see docs/authoring.md).
        """
        target = self.lookup(header.get("target"))
        positional, keywords = args
        with _redirected(CappedText(0), CappedText(0)):
            return {"ok": True}, target(*positional, **keywords)

    def op_getattr(self, header, _):
        """An attribute of a handle."""
        return {"ok": True}, getattr(self.lookup(header.get("target")), str(header.get("name")))

    def op_setattr(self, header, value):
        """Set an attribute of a handle."""
        setattr(self.lookup(header.get("target")), str(header.get("name")), value)
        return {"ok": True}, None

    def op_getitem(self, header, key):
        """An item of a handle."""
        return {"ok": True}, self.lookup(header.get("target"))[key]

    def op_setitem(self, header, pair):
        """Set an item of a handle from ``[key, value]``."""
        key, value = pair
        self.lookup(header.get("target"))[key] = value
        return {"ok": True}, None

    def op_len(self, header, _):
        """The length of a handle."""
        return {"ok": True}, len(self.lookup(header.get("target")))


class _redirected:
    """Point sys.stdout and sys.stderr at two streams for the duration of a block."""

    def __init__(self, out, err):
        self.out, self.err = out, err

    def __enter__(self):
        self.saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self.out, self.err

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self.saved


def _type_name(exc):
    """The exception's class name, cut to TYPE_NAME_CAP characters (the grader cuts it too)."""
    name = type(exc).__name__
    return name if len(name) <= TYPE_NAME_CAP else name[:TYPE_NAME_CAP - 3] + "..."


def _safe_str(exc):
    try:
        return str(exc)
    except Exception:
        return "(the exception's message could not be shown)"


def _make_shell():
    """An IPython shell without history, colours or a terminal."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class GradingShell(InteractiveShell):
        """IPython's shell, keeping tracebacks for the reply and running no GUI loop."""

        last_traceback_text = ""

        def _showtraceback(self, etype, evalue, stb):
            # Keep the traceback for the reply instead of printing it.
            self.last_traceback_text = self.InteractiveTB.stb2text(stb)

        def enable_gui(self, gui=None):
            # No event loop here: `%matplotlib inline` only needs the backend.
            pass

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.xmode = "Context"
    return GradingShell.instance(config=config)


def _take_channel():
    """Move the pipes to the grader off fds 0/1 and point 0, 1, 2 at /dev/null."""
    fd_in, fd_out = os.dup(0), os.dup(1)  # dup'ed fds are not inherited by children
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    sys.stdin = open(os.devnull)
    sys.stdout = CappedText(0)
    sys.stderr = CappedText(0)
    return fd_in, fd_out


def main(argv=None):
    """Entry point of the student's process."""
    parser = argparse.ArgumentParser(prog="python -m autograde.runner")
    parser.add_argument("--output-cap", type=int, default=64 * 1024,
                        help="characters of stdout/stderr kept per cell")
    args = parser.parse_args(argv)
    fd_in, fd_out = _take_channel()
    sys.argv = ["notebook"]
    Runner(fd_in, fd_out, args.output_cap).serve()
    os._exit(0)  # skip interpreter shutdown: student threads or atexit hooks may hang


if __name__ == "__main__":
    main()
