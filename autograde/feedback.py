"""The feedback page a student gets: their notebook as graded, with each test's result.

Plain HTML built here, so that what it can contain is easy to check: the
release's markdown (rendered), the student's own code and its output, and
each test cell exactly as in the release (hidden tests removed), followed by
its points and the permitted message. Everything that is not the
instructor's markdown is escaped. Hidden test source, hidden inputs and
reference values never reach this module.
"""

import html
import re

from autograde.results import atomic_write_text, format_points

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 960px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
pre { background: #f6f8fa; padding: .6em .8em; overflow-x: auto; border-radius: 4px;
      white-space: pre-wrap; }
.cell { margin: 1.2em 0; }
.label { font-size: .8em; color: #666; }
.out { background: #fff; border-left: 3px solid #ddd; }
.err { background: #fff5f5; border-left: 3px solid #e0a0a0; }
.result { padding: .4em .8em; border-radius: 4px; font-weight: 600; }
.pass { background: #e6f4ea; color: #1e6b32; }
.fail { background: #fdecea; color: #8a1c1c; }
.note { color: #666; font-style: italic; }
.summary td { padding: .1em 1em .1em 0; }
"""

_MATHJAX = ('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js" '
            'async></script>')


def _esc(text):
    return html.escape(_ANSI.sub("", str(text)), quote=True)


def _pre(text, css):
    return f'<pre class="{css}">{_esc(text)}</pre>' if text else ""


_markdown_renderer = None


def _markdown(text):
    """Render the instructor's markdown; math is left for MathJax."""
    global _markdown_renderer
    if _markdown_renderer is None:
        import mistune
        _markdown_renderer = mistune.create_markdown(
            escape=False, plugins=["table", "strikethrough", "math"])
    return _markdown_renderer(text)


def render(result, records):
    """The feedback page for one student, as a string of HTML.

    ``result`` is the result record (``submission.grade_submission``);
    ``records`` the per-cell records (empty when the notebook could not be read).
    """
    title = f"Feedback on {result['assignment']}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style>{_MATHJAX}</head><body>",
        f"<h1>{_esc(title)}</h1>",
        '<table class="summary">',
        f"<tr><td>Student</td><td>{_esc(result['student_id'])}</td></tr>",
        f"<tr><td>Score</td><td>{format_points(result['score'])} / "
        f"{format_points(result['max_score'])}</td></tr>",
        f"<tr><td>Status</td><td>{_esc(result['status'])}</td></tr>",
        "</table>",
    ]
    if not records:
        parts.append("<h2>Tests</h2>")
        for test in result["tests"]:
            parts.append(_result_line(test))
    for rec in records:
        parts.append(_cell(rec, result))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _cell(rec, result):
    cell = rec.cell
    if cell.kind == "markdown":
        return f'<div class="cell md">{_markdown(cell.shown)}</div>'
    if cell.kind == "raw":
        return f'<div class="cell">{_pre(cell.shown, "raw")}</div>'
    what = {"answer": "your answer", "added": "a cell you added", "test": "test",
            "code": "code"}[cell.kind]
    grade_id = cell.origin.grade_id if cell.origin is not None else None
    label = f"[{cell.index}] {what}" + (f" ({grade_id})" if grade_id else "")
    out = [f'<div class="cell code"><div class="label">{_esc(label)}</div>',
           _pre(cell.shown, "src")]
    if rec.note:
        out.append(f'<p class="note">{_esc(rec.note)}</p>')
    if cell.kind == "test":
        test = next((t for t in result["tests"] if t["cell"] == cell.index), None)
        if test is not None:
            out.append(_result_line(test))
    else:
        out.append(_pre(rec.stdout, "out"))
        out.append(_pre(rec.stderr, "err"))
        if rec.error:
            error = rec.error
            text = error.get("traceback") or f"{error.get('type')}: {error.get('message')}"
            out.append(_pre(text, "err"))
    out.append("</div>")
    return "\n".join(p for p in out if p)


def _result_line(test):
    points = f"{format_points(test['points'])} / {format_points(test['max_points'])}"
    if test["passed"]:
        text, css = f"✓ {test['grade_id']}: {points} points, passed", "pass"
    else:
        text, css = f"✗ {test['grade_id']}: {points} points. {test['message']}", "fail"
    return f'<div class="result {css}">{_esc(text)}</div>'


def write(path, result, records):
    """Write the feedback page to ``path`` atomically."""
    atomic_write_text(path, render(result, records))
