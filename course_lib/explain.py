"""Sentences for errors raised inside a student's function.

A NumPy message such as ``matmul: Input operand 1 has a mismatch in its core
dimension 0 ...`` is exact but hard to act on for a beginner. When one of the
student's functions raises while a test calls it, the test's failure instead
reads::

    dense_forward(x: array (4, 3), W: array (2, 3), b: array (2,)) raised ValueError:
    matmul: Input operand 1 has a mismatch ... The inner sizes of a matrix product
    do not agree: ...

The same sentence is built in two places: by the grader (``autograde.judge``),
which knows the call it sent, and in the student's own kernel by
:func:`explain_errors`, which reads the call's arguments off the traceback.
"""

import re
import textwrap

import numpy as np

#: Width of the lines of an error shown in a notebook. nbgrader's Validate
#: cuts longer lines (at 83 characters after its indent), hiding the hint
#: that ends most messages.
LINE_WIDTH = 80
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: (exception type or None for any, pattern in the message, usual cause).
_CAUSES = [
    (None, r"matmul: Input operand|not aligned|size \d+ is different from|core dimension",
     "The inner sizes of a matrix product do not agree: in A @ B the last axis of A must be as long "
     "as the first axis of B. Check the order of the operands and whether one needs a transpose (.T)."),
    (None, r"could not be broadcast|broadcast input array",
     "Two arrays whose shapes (in the message) do not line up were combined elementwise. Compare them "
     "axis by axis from the right: a sum, mean or max without keepdims=True drops an axis, a missing "
     "transpose swaps two, and a slice or padding of the wrong size changes one."),
    (None, r"(index|indices) .* out of bounds|out of bounds for axis",
     "An index is past the end of an axis: check which axis holds the samples and which the "
     "features or classes."),
    (None, r"cannot reshape array",
     "The number of entries does not fit the new shape: check the sizes you reshape to."),
    (None, r"axis \S+ is out of bounds",
     "The array has fewer axes than the axis asked for: check the array's shape (.ndim) and the axis."),
    ("NameError", r"",
     "The function uses a name that is not defined. Define or import it inside the answer cell "
     "itself: only answer cells are kept when your notebook is graded."),
    ("UnboundLocalError", r"",
     "A variable is read before it is assigned inside the function."),
    ("TypeError", r"NoneType",
     "A value is None: did a function you call forget its `return` statement?"),
    ("TypeError", r"missing \d+ required|takes \d+ positional|unexpected keyword",
     "The function's signature differs from the one in the exercise: keep its arguments as given."),
    ("ZeroDivisionError", r"",
     "A division by zero: check the denominator (a count of samples, a sum that can be 0)."),
    ("RecursionError", r"",
     "The function calls itself without end: did you name a helper like the function itself?"),
]


def usual_cause(type_name, message):
    """A sentence on what usually raises ``type_name: message`` in an exercise, or ''."""
    for wanted, pattern, cause in _CAUSES:
        if wanted is not None and wanted != type_name:
            continue
        if re.search(pattern, message):
            return cause
    return ""


def describe_value(value):
    """A short description of an argument: ``array (4, 3)``, ``3``, ``list of 2``."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and hasattr(value, "dtype"):
        return f"array {shape}" if np.ndim(value) else f"{value.dtype} scalar"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 12 else f"{type(value).__name__}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 20 else "str"
    if isinstance(value, (list, tuple, dict)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def describe_call(name, args=(), kwargs=None, arg_names=None):
    """``name(x: array (4, 3), lr: 0.1)``: the call with each argument's shape or value."""
    parts = []
    arg_names = list(arg_names or [])
    for i, value in enumerate(args):
        label = arg_names[i] + ": " if i < len(arg_names) else ""
        parts.append(label + describe_value(value))
    for key, value in (kwargs or {}).items():
        parts.append(f"{key}: {describe_value(value)}")
    return f"{name}({', '.join(parts)})"


def explain_call_error(call, type_name, message):
    """The sentence for an exception raised by a student function.

    ``call`` is :func:`describe_call`'s text, ``type_name`` and ``message``
    the exception's. NotImplementedError means the exercise is not solved.
    """
    if type_name == "NotImplementedError":
        return (f"{call.split('(')[0]} is not solved yet: replace `raise NotImplementedError()` "
                "in its answer cell with your solution, run that cell, then this test again.")
    cause = usual_cause(type_name, message)
    text = (f"{call} raised {type_name}: {message}" if message else f"{call} raised {type_name}").rstrip()
    if not text.endswith((".", "!", "?")):
        text += "."
    return f"{text} {cause}".rstrip()


def _is_cell_code(code):
    """True for code compiled from a notebook cell (IPython's names for such files)."""
    name = code.co_filename
    return "ipykernel_" in name or name.startswith(("<ipython-input", "<cell"))


def _student_frame(tb):
    """The frame of the function a notebook cell called, when that function is the student's.

    Skips IPython's own frames up to the cell's; the next entry is the
    function the cell called. It is the student's when it, too, was compiled
    from a notebook cell, not from an installed module.
    """
    while tb is not None and not _is_cell_code(tb.tb_frame.f_code):
        tb = tb.tb_next
    if tb is None or tb.tb_next is None:
        return None
    frame = tb.tb_next.tb_frame
    return frame if _is_cell_code(frame.f_code) and frame.f_code.co_name != "<module>" else None


def explanation_for(exc_type, exc, tb):
    """The sentence for an exception escaping a student function called from a cell, or None."""
    if issubclass(exc_type, (AssertionError, KeyboardInterrupt)):
        return None
    frame = _student_frame(tb)
    if frame is None:
        return None
    code = frame.f_code
    n_args = code.co_argcount + code.co_kwonlyargcount
    names = code.co_varnames[:n_args]
    values = [frame.f_locals.get(n) for n in names]
    call = describe_call(code.co_name, values, arg_names=names)
    return explain_call_error(call, exc_type.__name__, str(exc))


def wrap_lines(text, width=LINE_WIDTH, first_indent=0):
    """``text`` as lines of at most ``width`` characters; its own line breaks are kept.

    The first line is ``first_indent`` characters shorter (it follows a prefix).
    """
    out = []
    for i, line in enumerate(text.split("\n")):
        indent = " " * first_indent if i == 0 else ""
        parts = textwrap.wrap(line, width, initial_indent=indent, break_long_words=False,
                              break_on_hyphens=False) or [""]
        parts[0] = parts[0][len(indent):]
        out.extend(parts)
    return out


def wrap_error_line(entry, ename):
    """The last entry of a traceback, ``ename: message``, with the message's lines wrapped."""
    plain = _ANSI.sub("", entry)
    if not plain.startswith(ename + ": "):
        return entry
    message = plain[len(ename) + 2:]
    lines = wrap_lines(message, first_indent=len(ename) + 2)
    return f"\x1b[31m{ename}\x1b[39m: " + "\n".join(lines)


def explain_errors(shell=None):
    """Add the sentence of :func:`explanation_for` below tracebacks in this notebook.

    Call it once, in a notebook's setup cell. Tracebacks are shown as usual,
    with the message's lines wrapped at LINE_WIDTH so that no hint is cut;
    when the error came out of a function defined in the notebook, one more
    paragraph says which call failed, with its argument shapes, and the
    usual cause. Does nothing outside IPython.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
    if shell is None:
        return

    def handler(self, etype, value, tb, tb_offset=None):
        stb = list(self.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset))
        try:
            sentence = explanation_for(etype, value, tb)
            if stb:
                stb[-1] = wrap_error_line(stb[-1], etype.__name__)
        except Exception:  # an explanation must never hide the real error
            sentence = None
        if sentence:
            lines = wrap_lines("What this usually means: " + sentence)
            stb += ["", "\x1b[1;31m" + lines[0] + "\x1b[0m"] + lines[1:]
        self._showtraceback(etype, value, stb)
        return None

    shell.set_custom_exc((Exception,), handler)

