"""Runs a test cell in the grader's own process, against the student's process.

A test cell's source runs here, in a fresh namespace, with the grader's
NumPy and ``course_lib.checks``. Each top-level name an answer cell defines
is bound to what the student's process holds under that name: plain data is
copied over, anything else (a function, a class, an object) becomes a
:class:`Remote` whose calls, attributes and items are requests to the
student's process. Only plain data crosses (see ``autograde.protocol``), so
nothing the student wrote ever runs here and the verdict (did the cell raise?)
is decided by trusted code.

The cell is split at its hidden-test markers and the parts run one after the
other in one namespace, so the feedback can tell a visible failure (its
message) from a hidden one. A hidden failure is reported by the name of the
check it happened in: the nearest ``# check: <property>`` comment above the
failing line of the hidden part ("hidden check failed: inputs near ±1000
(AssertionError)"), never by its message, inputs or expected values.

An exception raised inside a student function comes back with a sentence
naming the call, its argument shapes and the usual cause
(``course_lib.explain``), as it does in the student's own notebook.
"""

import builtins
import contextlib
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np

from course_lib.explain import describe_call, explain_call_error

from autograde.client import RunnerFailure
from autograde.notebook_io import split_hidden
from autograde.protocol import REF_MODULES

#: Longest visible failure message shown to a student.
MESSAGE_CAP = 1500
#: Longest exception type name shown (the student's code chooses it).
TYPE_NAME_CAP = 80
#: A hidden part's check names: ``# check: <what the following lines test>``.
CHECK_LINE = re.compile(r"^#\s*check:\s*(.+?)\s*$")
TEST_FILENAME = "<test cell>"


class StudentError(Exception):
    """An exception raised by student code whose type is not a builtin one."""


@dataclass
class Verdict:
    """The outcome of one test cell."""

    passed: bool
    message: str = ""
    failure: RunnerFailure | None = None  # set when the student's process failed


class Remote:
    """An object that lives in the student's process.

    Calling it, reading or setting an attribute or an item sends a request;
    the result comes back as plain data or as another Remote. It has no
    truth value and cannot be iterated, so a test cannot be fooled by an
    object that pretends to be true or equal to everything.
    """

    __slots__ = ("_judge", "_id", "_generation", "_label")

    def __init__(self, judge, ident, generation, label="a student function"):
        object.__setattr__(self, "_judge", judge)
        object.__setattr__(self, "_id", ident)
        object.__setattr__(self, "_generation", generation)
        object.__setattr__(self, "_label", label)

    def _ask(self, op, value=None, **fields):
        return self._judge.ask({"op": op, "target": self._id, **fields}, value, self)

    def __call__(self, *args, **kwargs):
        try:
            return self._ask("call", [list(args), kwargs])
        except StudentError as exc:
            raise _explained(exc, self._label, args, kwargs, self._judge) from None
        except AssertionError:
            raise
        except Exception as exc:
            if getattr(exc, "from_student", False):
                raise _explained(exc, self._label, args, kwargs, self._judge) from None
            raise

    def __getattr__(self, name):
        if name.startswith("__"):  # NumPy and Python probe dunders: never ask the student
            raise AttributeError(name)
        value = self._ask("getattr", name=name)
        if isinstance(value, Remote):
            object.__setattr__(value, "_label", f"{self._label}.{name}")
        return value

    def __setattr__(self, name, value):
        self._ask("setattr", value, name=name)

    def __getitem__(self, key):
        return self._ask("getitem", key)

    def __setitem__(self, key, value):
        self._ask("setitem", [key, value])

    def __bool__(self):
        raise TypeError("an object returned by student code has no truth value here")

    def __iter__(self):
        raise TypeError("an object returned by student code cannot be iterated here")

    def __repr__(self):
        return f"<student object #{self._id}>"


class Judge:
    """Runs test cells for one submission against one :class:`RunnerClient`."""

    def __init__(self, client, answer_names, signatures=None):
        self.client = client
        self.answer_names = list(answer_names)
        self.signatures = dict(signatures or {})  # name -> argument names, from the source
        self.deadline = None

    # -- talking to the student's process -------------------------------------

    def ask(self, header, value=None, remote=None):
        """Send a request; return its decoded result or raise what the student raised."""
        if remote is not None and remote._generation != self.client.generation:
            raise RuntimeError("this student object belonged to a process that has ended")
        reply, result = self.client.request(header, value, self.deadline,
                                            on_other=self._encode_other,
                                            on_handle=self._make_remote)
        if not reply.get("ok"):
            raise _student_exception(reply.get("error") or {})
        return result

    def _make_remote(self, ident):
        return Remote(self, ident, self.client.generation)

    def _encode_other(self, obj):
        """Encode a Remote by its id and a numpy/course_lib function by its name."""
        if isinstance(obj, Remote):
            if obj._generation != self.client.generation:
                raise RuntimeError("this student object belonged to a process that has ended")
            return {"h": obj._id}
        name = _importable_name(obj)
        if name is not None:
            return {"r": name}
        raise TypeError(f"cannot pass {type(obj).__name__} {obj!r:.60} to student code: only "
                        "numbers, strings, None, NumPy arrays, lists, tuples and dicts of those, "
                        "or module-level functions of numpy and course_lib")

    # -- running a test cell ---------------------------------------------------

    def run_test(self, source, deadline):
        """Run one test cell's ``source`` (visible and hidden parts); return a Verdict."""
        self.deadline = deadline
        try:
            namespace = {"__name__": "__main__", "__builtins__": builtins}
            # The student's process can forge or break this reply: accept only
            # a dict, and only the names asked for.
            try:
                values = self.ask({"op": "get"}, self.answer_names)
            except Exception as exc:
                return Verdict(False, "the notebook's answers could not be read ("
                               f"{_type_name(exc)})")
            if not isinstance(values, dict):
                raise RunnerFailure("protocol", "unexpected reply to get")
            namespace.update({n: values[n] for n in self.answer_names if n in values})
            for name in self.answer_names:
                if isinstance(namespace.get(name), Remote):
                    object.__setattr__(namespace[name], "_label", name)
            for hidden, code in split_hidden(source):
                try:
                    _run_part(code, namespace)
                except RunnerFailure:
                    raise
                except Exception as exc:
                    if hidden:
                        return Verdict(False, _hidden_message(exc, check_name(code, exc)))
                    return Verdict(False, _visible_message(exc))
        except RunnerFailure as failure:
            return Verdict(False, "the notebook's process failed: " + failure.describe("this test"),
                           failure)
        return Verdict(True)


def _run_part(code, namespace):
    """Execute trusted test code; its printed output and warnings are dropped."""
    compiled = compile(code, TEST_FILENAME, "exec")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            exec(compiled, namespace)


def _type_name(exc):
    name = str(getattr(exc, "type_name", type(exc).__name__))
    return name if len(name) <= TYPE_NAME_CAP else name[:TYPE_NAME_CAP - 3] + "..."


def _visible_message(exc):
    text = f"{_type_name(exc)}: {exc}" if str(exc) else _type_name(exc)
    return text if len(text) <= MESSAGE_CAP else text[:MESSAGE_CAP - 3] + "..."


def check_name(code, exc):
    """The ``# check:`` name in force at the line of ``code`` where ``exc`` was raised, or None.

    The line is the deepest one of the test code's own top-level frame, so
    a failure inside a loop or a helper the hidden part defines counts
    where that loop or call sits.
    """
    tb, line = exc.__traceback__, None
    while tb is not None:
        code_obj = tb.tb_frame.f_code
        if code_obj.co_filename == TEST_FILENAME and code_obj.co_name == "<module>":
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None:
        return None
    name = None
    for text in code.splitlines()[:line]:
        match = CHECK_LINE.match(text)
        if match:
            name = match.group(1)
    return name


def _hidden_message(exc, name=None):
    if name:
        return f"hidden check failed: {name} ({_type_name(exc)})"
    return f"a hidden test failed ({_type_name(exc)})"


def _explained(exc, label, args, kwargs, judge):
    """The exception ``exc`` raised by a student function, its message made a sentence."""
    call = describe_call(label, args, kwargs, judge.signatures.get(label))
    error = _student_exception({"type": _type_name(exc),
                                "message": explain_call_error(call, _type_name(exc), str(exc))})
    return error


def _student_exception(error):
    """Rebuild what the student's code raised: a builtin exception type where there is one."""
    name = str(error.get("type", "Exception"))[:TYPE_NAME_CAP]
    message = str(error.get("message", ""))
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        try:
            exc = cls(message)
            exc.from_student = True
            return exc
        except Exception:
            pass
    error = StudentError(message)
    error.type_name = name
    return error


def _importable_name(obj):
    """``module:qualname`` when ``obj`` is a module-level function of numpy or course_lib."""
    if isinstance(obj, np.ufunc):
        return f"numpy:{obj.__name__}" if getattr(np, obj.__name__, None) is obj else None
    if not callable(obj):
        return None
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not module or module.split(".")[0] not in REF_MODULES or "<" in qualname:
        return None
    import importlib
    try:
        target = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qualname}" if target is obj else None
