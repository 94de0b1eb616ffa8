"""Checks a chapter's source notebook against the authoring contract (docs/authoring.md).

Each check returns a problem as ``"cell N (grade_id): what is wrong"``:

* every nbgrader cell has a ``grade_id``, and no two share one; cells have ids;
* answer cells (``solution: true``) are code cells with ``grade: false`` and
  at least one solution region, each inside a function body (checked by
  building the release stub and parsing it), and define a top-level name;
* test cells (``grade: true``) are locked code cells with ``points > 0``,
  plain Python in each visible and hidden part, not tagged ``grader-skip``;
* a test cell uses only names it binds itself (imports, assignments),
  builtins, and names defined by earlier answer cells: an AST (symtable)
  free-name check, because test cells run in a namespace of their own;
* ``### BEGIN``/``### END`` markers are balanced, not nested, and sit only in
  the cells they belong to (solutions in answer cells, hidden tests in test cells);
* in a hidden part, every statement that uses an answer's name comes after a
  ``# check: <property>`` line, which names the property when it fails.
"""

import ast
import builtins
import symtable

from autograde.notebook_io import (BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION,
                                   SKIP_TAG, cell_text, defined_names, python_source,
                                   read_json, split_hidden)

_BUILTINS = set(dir(builtins)) | {"__name__", "__file__", "__builtins__"}


def lint_notebook(path):
    """All problems of the source notebook at ``path``, as a list of strings."""
    try:
        nb = read_json(path)
    except Exception as exc:
        return [f"cannot read the notebook: {exc}"]
    problems = []
    seen_grade_ids, seen_ids = {}, set()
    answer_names = set()
    for index, cell in enumerate(nb["cells"], start=1):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        where = f"cell {index}" + (f" ({grade_id})" if grade_id else "")
        report = lambda message: problems.append(f"{where}: {message}")  # noqa: E731
        source = cell_text(cell.get("source"))

        cell_id = cell.get("id")
        if not cell_id:
            report("has no cell id (save the notebook with nbformat 4.5 or newer)")
        elif cell_id in seen_ids:
            report(f"repeats the cell id {cell_id!r}")
        seen_ids.add(cell_id)

        is_answer = bool(meta.get("solution"))
        is_test = bool(meta.get("grade")) and not is_answer
        if meta and (is_answer or is_test or meta.get("locked") or meta.get("task")):
            if not grade_id:
                report("is an nbgrader cell without a grade_id")
            elif grade_id in seen_grade_ids:
                report(f"repeats grade_id {grade_id!r} of cell {seen_grade_ids[grade_id]}")
            else:
                seen_grade_ids[grade_id] = index

        for message in _marker_problems(source, is_answer, is_test):
            report(message)
        if is_answer:
            for message in _answer_problems(cell, meta, source):
                report(message)
            answer_names.update(defined_names(source))
        if is_test:
            for message in _test_problems(cell, meta, source, answer_names):
                report(message)
    return problems


def _marker_problems(source, is_answer, is_test):
    """Balanced, un-nested markers, each kind only where it belongs."""
    problems = []
    pairs = ((BEGIN_SOLUTION, END_SOLUTION, is_answer, "answer"),
             (BEGIN_HIDDEN, END_HIDDEN, is_test, "test"))
    for begin, end, allowed, kind in pairs:
        depth = 0
        for line in source.splitlines():
            marker = line.strip()
            if marker not in (begin, end):
                continue
            if not allowed:
                problems.append(f"has {marker!r} but only {kind} cells may")
                break
            if marker == begin:
                if depth:
                    problems.append(f"opens {begin!r} twice without {end!r}")
                depth = 1
            else:
                if not depth:
                    problems.append(f"has {end!r} without {begin!r}")
                depth = 0
        if depth:
            problems.append(f"opens {begin!r} but never closes it")
    return problems


def _answer_problems(cell, meta, source):
    if cell["cell_type"] != "code":
        return ["is an answer cell but not a code cell"]
    problems = []
    if meta.get("grade"):
        problems.append("is an answer cell with grade: true (answer cells are not graded "
                        "themselves; put the tests in a test cell)")
    if BEGIN_SOLUTION not in source:
        problems.append(f"is an answer cell without a {BEGIN_SOLUTION!r} region")
        return problems
    try:
        ast.parse(python_source(source))
    except SyntaxError as exc:
        return problems + [f"does not parse: {exc.msg} (line {exc.lineno})"]
    stub, stub_lines = _stub(source)
    try:
        tree = ast.parse(python_source(stub))
    except SyntaxError as exc:
        return problems + [f"its release stub does not parse: {exc.msg} (line {exc.lineno})"]
    inside = _lines_inside_functions(tree)
    if any(line not in inside for line in stub_lines):
        problems.append("has a solution region outside a function body: the release stub "
                        "`raise NotImplementedError()` would break every later cell")
    if not defined_names(source):
        problems.append("defines no top-level name (function, class or constant) for tests to use")
    return problems


def _stub(source):
    """The release version of an answer cell and the line numbers of its stubs."""
    out, stub_lines, inside = [], [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            inside = True
            indent = line[:len(line) - len(line.lstrip())]
            out.append(indent + "raise NotImplementedError()")
            stub_lines.append(len(out))
        elif marker == END_SOLUTION:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out) + "\n", stub_lines


def _lines_inside_functions(tree):
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for stmt in node.body:
                lines.update(range(stmt.lineno, stmt.end_lineno + 1))
    return lines


def _test_problems(cell, meta, source, answer_names):
    if cell["cell_type"] != "code":
        return ["is a test cell but not a code cell"]
    problems = []
    points = meta.get("points")
    if not isinstance(points, (int, float)) or points <= 0:
        problems.append(f"is a test cell with points {points!r}: give it points > 0")
    if not meta.get("locked"):
        problems.append("is a test cell that is not locked (locked: true)")
    if SKIP_TAG in cell.get("metadata", {}).get("tags", ()):
        problems.append(f"is a test cell tagged {SKIP_TAG!r}: it would never score")
    for hidden, code in split_hidden(source):
        try:
            ast.parse(code)
        except SyntaxError as exc:
            part = "hidden" if hidden else "visible"
            problems.append(f"its {part} part is not plain Python: {exc.msg} (line {exc.lineno})"
                            "; test cells run outside IPython, so no magics")
            return problems
    for hidden, code in split_hidden(source):
        if hidden:
            problems.extend(_unnamed_checks(code, answer_names))
    free = sorted(free_names(source) - _BUILTINS - answer_names)
    if free:
        problems.append("uses names it neither imports nor gets from an earlier answer cell: "
                        + ", ".join(free))
    return problems


def _unnamed_checks(code, answer_names):
    """Statements of a hidden part that use an answer's name before any ``# check:`` line."""
    from autograde.judge import CHECK_LINE
    check_lines = [i for i, text in enumerate(code.splitlines(), start=1) if CHECK_LINE.match(text)]
    first = check_lines[0] if check_lines else None
    body = ast.parse(code).body
    # A helper's body runs where it is called, under that line's check; calling
    # a helper that uses a student function counts as using it.
    student = set(answer_names)
    defs = [s for s in body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    grown = True
    while grown:
        grown = False
        for d in defs:
            if d.name not in student and {n.id for n in ast.walk(d) if isinstance(n, ast.Name)} & student:
                student.add(d.name)
                grown = True
    for stmt in body:
        if stmt in defs:
            continue
        used = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)} & student
        if used and (first is None or stmt.lineno < first):
            return [f"its hidden part uses {', '.join(sorted(used))} (line {stmt.lineno} of the part) "
                    "before any `# check: <property>` line: name what each group of hidden checks "
                    "tests, so a failure tells the student which property failed"]
    return []


def free_names(code):
    """Global names ``code`` reads but never binds at its top level (imports included)."""
    top = symtable.symtable(code, "<test cell>", "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    used = {s.get_name() for s in top.get_symbols() if s.is_referenced()}

    def walk(table):
        for child in table.get_children():
            for s in child.get_symbols():
                if s.is_declared_global() and s.is_assigned():
                    bound.add(s.get_name())
                elif s.is_global() and s.is_referenced():
                    used.add(s.get_name())
            walk(child)

    walk(top)
    return used - bound


def lint(course, chapters=None):
    """``{chapter: [problems]}`` for ``chapters`` (all of the course when None)."""
    chapters = list(chapters or course.chapters())
    return {ch: lint_notebook(course.source_notebook(ch)) for ch in chapters}
