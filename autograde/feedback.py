"""The feedback page a student gets: their notebook as graded, with each test's result.

Plain HTML built here, so that what it can contain is easy to check: the
release's markdown (rendered), the student's own code and its output, and
each test cell exactly as in the release (hidden tests removed), followed by
its points and the permitted message. Everything that is not the
instructor's markdown is escaped. Hidden test source, hidden inputs and
reference values never reach this module.

The page runs no script. The lecture's math is turned into MathML here
(latex2mathml), which browsers draw natively, offline; a formula it cannot
convert shows as its TeX source, ``$x^2$``. The page's
Content-Security-Policy (:data:`CSP`) forbids scripts, frames, forms and
every load from outside the page, so nothing a student's output holds can
act in the reader's browser. What the student controls is cut to fit
:data:`MAX_PAGE_BYTES` in all, with a visible note.
"""

import html
import re

from autograde.results import atomic_write_text, format_points

#: Largest feedback page. The instructor's text is small (a chapter's
#: markdown and test cells are some 100 kB); the student's code and output
#: take what is left and are cut where it runs out.
MAX_PAGE_BYTES = 5 * 2**20
#: Room kept for the instructor's text and the page's own markup.
_RESERVED_BYTES = 1 * 2**20
#: The page's Content-Security-Policy: inline styles and data: images only.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
       "form-action 'none'")

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



def _esc(text):
    return html.escape(_ANSI.sub("", str(text)), quote=True)


class _Budget:
    """Bytes of the page left for text the student controls."""

    def __init__(self, size):
        self.left = size

    def esc(self, text):
        """``text`` escaped, cut (with a note) to what is left of the budget."""
        raw = _ANSI.sub("", str(text))
        # Each character takes a byte at least: what is longer than the budget cannot fit.
        keep = min(len(raw), self.left)
        while keep > 0:
            size = len(_esc(raw[:keep]).encode())
            if size <= self.left:
                break
            keep = keep * self.left // size - 1  # cut the raw text: never inside an entity
        out = _esc(raw[:keep]) if keep > 0 else ""
        self.left -= len(out.encode())
        if keep == len(raw):
            return out
        self.left = 0
        return out + _esc("\n[cut: this feedback page reached its size limit]\n")


def _pre(text, css, budget):
    return f'<pre class="{css}">{budget.esc(text)}</pre>' if text else ""


_markdown_renderer = None


#: TeX commands that would put a link, a style or a name on the page.
_UNSAFE_TEX = re.compile(r"\\(href|url|style|class|cssId|html|data|unicode)\b")
_MATHML_ATTRS = re.compile(r'\s(href|style|class|id|xlink:href|on\w+)="[^"]*"')


def _mathml(tex, display):
    """MathML for the instructor's TeX ``tex``, or None when it cannot or may not be converted."""
    if _UNSAFE_TEX.search(tex):
        return None
    try:
        from latex2mathml.converter import convert
        # HTML needs no namespace; leaving it out keeps every address off the page.
        mathml = convert(tex, display=display).replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "")
        return _MATHML_ATTRS.sub("", mathml)
    except Exception:  # an unsupported command: the TeX source is shown instead
        return None


def _markdown(text):
    """Render the instructor's markdown; math becomes MathML (or stays TeX source)."""
    global _markdown_renderer
    if _markdown_renderer is None:
        import mistune

        class Renderer(mistune.HTMLRenderer):
            # The math plugin keeps * and _ inside $...$ from turning into markup.
            def inline_math(self, text):
                return _mathml(text, "inline") or f'<code class="math">${_esc(text)}$</code>'

            def block_math(self, text):
                return (_mathml(text, "block") or f'<pre class="math">$$\n{_esc(text)}\n$$</pre>') + "\n"

        _markdown_renderer = mistune.create_markdown(
            escape=False, renderer=Renderer(escape=False),
            plugins=["table", "strikethrough", "math"])
    return _markdown_renderer(text)


def render(result, records):
    """The feedback page for one student, as a string of HTML (at most MAX_PAGE_BYTES).

    ``result`` is the result record (``submission.grade_submission``);
    ``records`` the per-cell records (empty when the notebook could not be read).
    """
    budget = _Budget(MAX_PAGE_BYTES - _RESERVED_BYTES)
    title = f"Feedback on {result['assignment']}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
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
    tests = {t["cell"]: t for t in result["tests"]}
    for rec in records:
        parts.append(_cell(rec, tests, budget))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _cell(rec, tests, budget):
    cell = rec.cell
    # The instructor's cells are shown whole; the student's code and output share the budget.
    mine = cell.kind in ("answer", "added")
    if cell.kind == "markdown":
        return f'<div class="cell md">{_markdown(cell.shown)}</div>'
    if cell.kind == "raw":
        return f'<div class="cell">{_pre(cell.shown, "raw", _Budget(MAX_PAGE_BYTES))}</div>'
    what = {"answer": "your answer", "added": "a cell you added", "test": "test",
            "code": "code"}[cell.kind]
    grade_id = cell.origin.grade_id if cell.origin is not None else None
    label = f"[{cell.index}] {what}" + (f" ({grade_id})" if grade_id else "")
    out = [f'<div class="cell code"><div class="label">{_esc(label)}</div>',
           _pre(cell.shown, "src", budget if mine else _Budget(MAX_PAGE_BYTES))]
    if rec.note:
        out.append(f'<p class="note">{_esc(rec.note)}</p>')
    if cell.kind == "test":
        test = tests.get(cell.index)
        if test is not None:
            out.append(_result_line(test))
    else:
        out.append(_pre(rec.stdout, "out", budget))
        out.append(_pre(rec.stderr, "err", budget))
        if rec.error:
            error = rec.error
            text = error.get("traceback") or f"{error.get('type')}: {error.get('message')}"
            out.append(_pre(text, "err", budget))
    out.append("</div>")
    return "\n".join(p for p in out if p)


def _result_line(test):
    points = f"{format_points(test['points'])} / {format_points(test['max_points'])}"
    if test["passed"]:
        text, css = f"✓ {test['grade_id']}: {points} points, passed", "pass"
    else:
        text, css = f"✗ {test['grade_id']}: {points} points. {test['message']}", "fail"
    return f'<div class="result {css}">{_esc(text)}</div>'


def write(path, result, records, mode=0o600):
    """Write the feedback page to ``path`` atomically, with permissions ``mode``."""
    atomic_write_text(path, render(result, records), mode)
