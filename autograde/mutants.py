"""Plausible single-point bugs of a reference solution, for mutation analysis.

:func:`cell_mutants` parses an answer cell and applies every operator below to
each expression and statement that lies wholly inside one of the cell's
``### BEGIN SOLUTION`` / ``### END SOLUTION`` regions. Each operator makes
one small change of the kind students make: a flipped sign, swapped operands,
a dropped transpose, the wrong axis, ``sum`` for ``mean``, ``>=`` for ``>``,
an off-by-one constant, a dropped term, a forgotten ``keepdims=True``, ...

The mutated tree is turned back into text with ``ast.unparse`` and spliced
into the cell in place of the changed expression (or statement), so the cell
keeps its comments and layout and the diff shows the one change. Every mutant
is checked to parse back to exactly the mutated tree, so it is valid Python.

A mutant's id is ``<function>:<operator>:<n>``: the function it changes (a
method as ``Class.method``; the cell's grade_id outside any function), the
operator's key, and which occurrence of that operator in that function it is,
counted in source order. Unlike a line number, it survives edits elsewhere in
the cell, so it can be listed in ``equivalent_mutants.txt``.
"""

import ast
import copy
import difflib
from dataclasses import dataclass

from autograde.notebook_io import BEGIN_SOLUTION, END_SOLUTION, python_source

#: Marks a statement to delete (replaces the statement's node).
_DELETE = object()
#: Moves a statement out of its loop, to just before the loop (done once, not every pass).
_HOIST = object()
#: Moves a statement into the loop just above it (done every pass, not once after).
_SINK = object()

_BINOP_NAMES = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div",
                ast.MatMult: "matmul", ast.FloorDiv: "floordiv", ast.Pow: "pow", ast.Mod: "mod"}
#: Operators students confuse: a sign, a product with a quotient, matmul with elementwise.
_BINOP_SWAPS = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div], ast.Div: [ast.Mult],
                ast.MatMult: [ast.Mult]}
#: Operators whose operands do not commute.
_NONCOMMUTATIVE = (ast.MatMult, ast.Sub, ast.Div)
_AUG_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
_CMP_NAMES = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq",
              ast.NotEq: "ne"}
#: A boundary included or excluded, and equality negated.
_CMP_SWAPS = {ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Eq: ast.NotEq,
              ast.NotEq: ast.Eq}
#: Functions and methods mistaken for one another (by their last name: np.sum, x.sum, ...).
_RENAMES = {"sum": ["mean"], "mean": ["sum"], "max": ["min"], "min": ["max"], "amax": ["amin"],
            "amin": ["amax"], "maximum": ["minimum"], "minimum": ["maximum"], "argmax": ["argmin"],
            "argmin": ["argmax"], "exp": ["log"], "log": ["exp"], "log1p": ["log"],
            "expm1": ["exp"], "zeros": ["ones"], "ones": ["zeros"], "zeros_like": ["ones_like"],
            "ones_like": ["zeros_like"]}
#: Calls that transform their first argument; a student may leave them out. (Not float() or
#: int(): NumPy's scalars already behave as Python's, so leaving those out changes nothing.)
_DROPPABLE_CALLS = {"abs", "sqrt", "square", "maximum", "minimum", "clip"}
#: Methods that transform their object (x.astype(float) -> x, x.copy() -> x).
_DROPPABLE_METHODS = {"astype", "copy"}
_AXIS_SWAPS = {0: [1], 1: [0], -1: [0]}


@dataclass(frozen=True)
class Mutant:
    """One single-point change of an answer cell's solution."""

    id: str          # "<function>:<operator>:<n>", stable under edits elsewhere in the cell
    exercise: str    # grade_id of the answer cell
    function: str    # the function changed (or the grade_id outside any function)
    operator: str    # the operator's key, e.g. "axis-1->0"
    line: int        # 1-based line of the change in the cell (for reading, not part of the id)
    source: str      # the whole mutated cell
    diff: str        # unified diff of the cell, original -> mutant


# ---------------------------------------------------------------------------
# Operators: each takes a node and its _Site and yields (key, replacement).


@dataclass
class _Site:
    """Where a node sits: its parent, the list it is in, and the names local to its function."""

    parent: ast.AST | None
    axis_value: bool            # the value of an ``axis=`` keyword
    field: str = ""             # the parent's field that holds the node
    index: int | None = None    # its position in that field's list
    local_names: frozenset = frozenset()


def _number(node):
    """The value of a numeric literal (``3``, ``-0.5``), else None; booleans are not numbers."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


def _literal(value):
    """An AST literal for a number (a negative one as unary minus, as the parser builds it)."""
    if value < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def _call_name(node):
    """``sum`` for ``np.sum(...)``, ``x.sum(...)`` or ``sum(...)``; None for other callees."""
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _is_numpy(node):
    return isinstance(node, ast.Name) and node.id in ("np", "numpy")


def _with_func_name(call, name):
    call = copy.copy(call)
    func = copy.copy(call.func)
    if isinstance(func, ast.Attribute):
        func.attr = name
    else:
        func.id = name
    call.func = func
    return call


def _op_binop(node, site):
    if not isinstance(node, ast.BinOp):
        return
    kind = type(node.op)
    name = _BINOP_NAMES.get(kind)
    if name is None:
        return
    if kind in _NONCOMMUTATIVE:
        yield f"swap-{name}", ast.BinOp(node.right, node.op, node.left)
    for other in _BINOP_SWAPS.get(kind, ()):
        yield f"{name}->{_BINOP_NAMES[other]}", ast.BinOp(node.left, other(), node.right)
    if kind in (ast.Add, ast.Sub):
        yield "drop-right-term", node.left
        negated = ast.UnaryOp(ast.USub(), node.right)
        yield "drop-left-term", node.right if kind is ast.Add else negated
    elif kind is ast.Mult:
        yield "drop-right-factor", node.left
        yield "drop-left-factor", node.right
    elif kind is ast.Div:
        yield "drop-divisor", node.left


def _op_unary(node, site):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not site.axis_value:
        yield "drop-minus", node.operand
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop-not", node.operand


def _op_constant(node, site):
    value = _number(node)
    if value is None or site.axis_value:
        return
    if isinstance(site.parent, ast.UnaryOp) and isinstance(site.parent.op, ast.USub):
        return  # the literal is -c: mutated as a whole at the minus sign
    if isinstance(value, int):
        candidates = [value - 1, value + 1]
    else:
        candidates = [2.0 * value] if value != 0 else []
        if value != 1.0:
            candidates.append(1.0)
    for new in candidates:
        yield f"const{value!r}->{new!r}", _literal(new)


def _op_compare(node, site):
    if not isinstance(node, ast.Compare):
        return
    for i, op in enumerate(node.ops):
        other = _CMP_SWAPS.get(type(op))
        if other is None:
            continue
        ops = list(node.ops)
        ops[i] = other()
        yield (f"{_CMP_NAMES[type(op)]}->{_CMP_NAMES[other]}",
               ast.Compare(node.left, ops, node.comparators))


def _op_boolop(node, site):
    if isinstance(node, ast.BoolOp):
        other, key = (ast.Or, "and->or") if isinstance(node.op, ast.And) else (ast.And, "or->and")
        yield key, ast.BoolOp(other(), node.values)


def _op_ifexp(node, site):
    if isinstance(node, ast.IfExp):
        yield "swap-branches", ast.IfExp(node.test, node.orelse, node.body)


def _op_transpose(node, site):
    if isinstance(node, ast.Attribute) and node.attr == "T" and isinstance(node.ctx, ast.Load):
        yield "drop-.T", node.value


def _op_call(node, site):
    if not isinstance(node, ast.Call):
        return
    name = _call_name(node)
    builtin = isinstance(node.func, ast.Name)
    for other in _RENAMES.get(name, ()) if not builtin or name in ("max", "min") else ():
        yield f"{name}->{other}", _with_func_name(node, other)
    for i, kw in enumerate(node.keywords):
        without = copy.copy(node)
        without.keywords = node.keywords[:i] + node.keywords[i + 1:]
        if kw.arg == "axis" and _number(kw.value) is not None:
            axis = _number(kw.value)
            for new in _AXIS_SWAPS.get(axis, ()):
                changed = copy.copy(node)
                changed.keywords = list(node.keywords)
                changed.keywords[i] = ast.keyword("axis", _literal(new))
                yield f"axis{axis}->{new}", changed
            yield "drop-axis", without
        elif kw.arg == "keepdims" and isinstance(kw.value, ast.Constant) and kw.value.value is True:
            yield "drop-keepdims", without
    starred = any(isinstance(a, ast.Starred) for a in node.args)
    plain = not node.keywords and not starred
    if name in _DROPPABLE_CALLS and node.args and not starred:
        yield f"drop-{name}", node.args[0]
    elif name in _DROPPABLE_METHODS and isinstance(node.func, ast.Attribute) \
            and not _is_numpy(node.func.value):
        yield f"drop-{name}", node.func.value
    elif name in ("max", "min") and builtin and plain and len(node.args) == 2:
        yield f"drop-{name}", node.args[0]   # max(h, 0.0) -> h: the ReLU left out
    if name == "where" and plain and len(node.args) == 3:
        cond, a, b = node.args
        yield "swap-where", ast.Call(node.func, [cond, b, a], [])
    if name in ("dot", "matmul") and plain and len(node.args) == 2:
        yield f"swap-{name}", ast.Call(node.func, node.args[::-1], [])
    if name == "permutation" and plain and len(node.args) == 1:
        # the same order every epoch: no shuffling
        arange = ast.Attribute(ast.Name("np", ast.Load()), "arange", ast.Load())
        yield "permutation->arange", ast.Call(arange, node.args, [])
    if name == "range" and isinstance(node.func, ast.Name) and plain and 1 <= len(node.args) <= 3:
        stop = 0 if len(node.args) == 1 else 1
        args = list(node.args)
        args[stop] = ast.BinOp(args[stop], ast.Sub(), ast.Constant(1))
        yield "range-stop-1", ast.Call(node.func, args, [])


def _op_subscript(node, site):
    if not isinstance(node, ast.Subscript) or not isinstance(node.slice, ast.Tuple):
        return
    items = node.slice.elts
    has_none = any(isinstance(e, ast.Constant) and e.value is None for e in items)
    if has_none and any(isinstance(e, ast.Slice) for e in items):
        # x[:, None] <-> x[None, :]: a row vector where a column belongs
        swapped = ast.Tuple(items[::-1], ast.Load())
        yield "swap-newaxis", ast.Subscript(node.value, swapped, node.ctx)
    for i, item in enumerate(items):
        if isinstance(item, ast.Call) and _call_name(item) == "arange":
            # p[np.arange(N), labels] -> p[:, labels]: every row's column, not one per row
            changed = ast.Tuple(items[:i] + [ast.Slice()] + items[i + 1:], ast.Load())
            yield "arange->colon", ast.Subscript(node.value, changed, node.ctx)


def _op_name(node, site):
    if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
            and node.id in site.local_names):
        return
    if isinstance(site.parent, ast.Call) and site.field == "func":
        return
    for other in sorted(site.local_names):
        if other != node.id and _confusable(node.id, other):
            yield f"name-{node.id}->{other}", ast.Name(other, ast.Load())


def _confusable(a, b):
    """Names a student mixes up: W1/W2, X/xb, x/x_i, h_in/h_out, a1/h1 (not D/dW1)."""
    def base(name):
        return name.replace("_", "").rstrip("0123456789")
    short, long_ = sorted((base(a), base(b)), key=len)
    if short.lower() == long_.lower():
        return True
    extra = long_[len(short):]
    if short and long_.lower().startswith(short.lower()) and len(extra) <= 2 and extra.islower():
        return True
    head_a, _, tail_a = a.partition("_")
    head_b, _, tail_b = b.partition("_")
    if tail_a and tail_b and head_a == head_b and max(len(tail_a), len(tail_b)) <= 5:
        return True
    digits_a, digits_b = a[len(a.rstrip("0123456789")):], b[len(b.rstrip("0123456789")):]
    return bool(digits_a) and digits_a == digits_b and len(base(a)) == len(base(b)) == 1


def _op_move(node, site):
    if not isinstance(node, (ast.Assign, ast.AugAssign, ast.Expr)) or site.index is None:
        return
    loop = site.parent
    if (isinstance(loop, (ast.For, ast.While)) and site.field == "body" and len(loop.body) > 1
            and isinstance(node, ast.Assign) and _independent(node, loop, site.index)):
        yield "hoist-out-of-loop", _HOIST    # e.g. a shuffle or a counter reset done only once
    body = getattr(site.parent, site.field, None)
    if site.index > 0 and isinstance(body[site.index - 1], (ast.For, ast.While)) \
            and not body[site.index - 1].orelse:
        yield "sink-into-loop", _SINK        # e.g. history.append(loss) once per batch


def _independent(statement, loop, index):
    """True when ``statement`` reads nothing the loop sets before it (its variable, lines above)."""
    changing = _stored_names(loop.target) if isinstance(loop, ast.For) else set()
    for earlier in loop.body[:index]:
        changing |= _stored_names(earlier)
    read = {n.id for n in ast.walk(statement.value) if isinstance(n, ast.Name)}
    return not read & changing


def _stored_names(node):
    return {n.id for n in ast.walk(node)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _op_statement(node, site):
    if isinstance(node, ast.AugAssign):
        other = _AUG_SWAPS.get(type(node.op))
        if other is not None:
            name, new = _BINOP_NAMES[type(node.op)], _BINOP_NAMES[other]
            yield f"{name}=->{new}=", ast.AugAssign(node.target, other(), node.value)
        yield "drop-update", _DELETE
    elif isinstance(node, ast.Assign) and all(isinstance(t, (ast.Subscript, ast.Attribute))
                                               for t in node.targets):
        yield "drop-update", _DELETE   # an in-place write: x[i] = old, self.n = 0
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield "drop-call-statement", _DELETE   # e.g. history.append(loss)


#: Every operator, applied to every node inside a solution region.
OPERATORS = (_op_binop, _op_unary, _op_constant, _op_compare, _op_boolop, _op_ifexp,
             _op_transpose, _op_call, _op_subscript, _op_name, _op_statement, _op_move)


# ---------------------------------------------------------------------------
# Generating the mutants of a cell


def solution_regions(source):
    """``[(first, last), ...]``: 1-based line ranges strictly inside each solution region."""
    regions, start = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            start = number
        elif marker == END_SOLUTION and start is not None:
            if number - 1 > start:
                regions.append((start + 1, number - 1))
            start = None
    return regions


def cell_mutants(source, exercise):
    """Every mutant of one answer cell's ``source``, in source order; [] if it does not parse.

    ``exercise`` (the cell's grade_id) names code that lies outside any function.
    Mutants whose text equals the original, or another mutant's, are left out.
    """
    text = python_source(source)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    regions = solution_regions(text)
    if not regions:
        return []
    lines = text.splitlines(keepends=True)
    seen = {_normal(tree)}
    counts = {}
    mutants = []
    for node, path, function, site in _nodes(tree, exercise):
        if not _inside(node, regions):
            continue
        for op in OPERATORS:
            for key, replacement in op(node, site):
                n = counts[function, key] = counts.get((function, key), 0) + 1
                mutated = _replaced(tree, path, replacement)
                try:
                    expected = _normal(mutated)
                except (SyntaxError, ValueError):
                    continue
                if expected in seen:
                    continue
                seen.add(expected)
                new_text = _splice(lines, tree, path, node, mutated, replacement, expected)
                mutants.append(Mutant(
                    id=f"{function}:{key}:{n}", exercise=exercise, function=function,
                    operator=key, line=node.lineno, source=new_text,
                    diff=unified_diff(text, new_text, exercise, f"{function}:{key}:{n}")))
    return mutants


def unified_diff(before, after, name, mutant_id, context=1):
    """A unified diff of a cell, ``before`` -> ``after``, labelled with the mutant's id."""
    a = (before if before.endswith("\n") else before + "\n").splitlines(keepends=True)
    b = (after if after.endswith("\n") else after + "\n").splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, f"{name} (solution)", mutant_id, n=context))


def _nodes(tree, exercise):
    """``(node, path, function, site)`` for every node, depth first in source order."""

    def walk(node, path, function, site, local_names):
        yield node, path, function, site
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            function = node.name if function == exercise else f"{function}.{node.name}"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local_names = frozenset(_stored_names(node) | {
                a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)})
        for field, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            for i, child in enumerate(children):
                if not isinstance(child, ast.AST):
                    continue
                axis = isinstance(node, ast.keyword) and node.arg == "axis"
                index = i if isinstance(value, list) else None
                yield from walk(child, path + ((field, index),), function,
                                _Site(node, axis, field, index, local_names), local_names)

    yield from walk(tree, (), exercise, _Site(None, False), frozenset())


def _inside(node, regions):
    start = getattr(node, "lineno", None)
    if start is None or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    return any(first <= start and node.end_lineno <= last for first, last in regions)


def _replaced(tree, path, replacement):
    """A copy of ``tree`` with the node at ``path`` replaced (or deleted, for _DELETE)."""
    tree = copy.deepcopy(tree)
    parent = tree
    for field, index in path[:-1]:
        parent = getattr(parent, field) if index is None else getattr(parent, field)[index]
    field, index = path[-1]
    if replacement in (_HOIST, _SINK):
        body = getattr(parent, field)
        statement = body.pop(index)
        if replacement is _SINK:
            body[index - 1].body.append(statement)
            return tree
        if not body:
            body.append(ast.Pass())
        outer = _at(tree, path[:-2])
        outer_field, loop_index = path[-2]
        getattr(outer, outer_field).insert(loop_index, statement)
        return tree
    if replacement is _DELETE:
        body = getattr(parent, field)
        del body[index]
        if not body and field != "orelse":
            body.append(ast.Pass())
    elif index is None:
        setattr(parent, field, copy.deepcopy(replacement))
    else:
        getattr(parent, field)[index] = copy.deepcopy(replacement)
    return tree


def _normal(tree):
    """A layout-free fingerprint of a tree: its dump after a round trip through source text."""
    return ast.dump(ast.parse(ast.unparse(ast.fix_missing_locations(tree))))


def _splice(lines, tree, path, node, mutated, replacement, expected):
    """The cell's text with only the mutated node rewritten (else the whole cell unparsed).

    Each candidate text is accepted only when it parses to exactly the mutated tree.
    """
    for candidate in _candidates(lines, tree, path, node, mutated, replacement):
        try:
            if _normal(ast.parse(candidate)) == expected:
                return candidate
        except SyntaxError:
            continue
    return ast.unparse(mutated) + "\n"


def _candidates(lines, tree, path, node, mutated, replacement):
    if replacement in (_HOIST, _SINK):
        if not _owns_lines(lines, node):
            return
        loop = _at(tree, path[:-1]) if replacement is _HOIST else _at(tree, path[:-1] + (
            (path[-1][0], path[-1][1] - 1),))
        anchor = loop.lineno if replacement is _HOIST else loop.body[0].lineno
        indent = _indent(lines[anchor - 1])
        moved = _reindented(lines[node.lineno - 1:node.end_lineno], indent)
        rest = lines[:node.lineno - 1] + lines[node.end_lineno:]
        at = loop.lineno - 1 if replacement is _HOIST else loop.end_lineno
        yield "".join(rest[:at] + moved + rest[at:])
        return
    if replacement is _DELETE:
        if _owns_lines(lines, node):
            indent = _indent(lines[node.lineno - 1])
            yield _join(lines, node.lineno, node.end_lineno, [])
            yield _join(lines, node.lineno, node.end_lineno, [indent + "pass\n"])
        return
    new = ast.unparse(ast.fix_missing_locations(copy.deepcopy(replacement)))
    yield _replace_span(lines, node, new)
    yield _replace_span(lines, node, f"({new})")
    statement_path = _enclosing_statement(tree, path)
    if statement_path is not None:
        statement = _at(tree, statement_path)
        if _owns_lines(lines, statement) and not hasattr(statement, "body"):
            indent = _indent(lines[statement.lineno - 1])
            rewritten = ast.unparse(_at(mutated, statement_path))
            yield _join(lines, statement.lineno, statement.end_lineno,
                        [indent + line + "\n" for line in rewritten.splitlines()])


def _at(tree, path):
    node = tree
    for field, index in path:
        node = getattr(node, field) if index is None else getattr(node, field)[index]
    return node


def _enclosing_statement(tree, path):
    """The path of the innermost statement that contains the node at ``path``."""
    for cut in range(len(path), 0, -1):
        if isinstance(_at(tree, path[:cut]), ast.stmt):
            return path[:cut]
    return None


def _char_col(line, byte_col):
    """ast column offsets count UTF-8 bytes; strings index characters."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _replace_span(lines, node, text):
    first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
    head = first[:_char_col(first, node.col_offset)]
    tail = last[_char_col(last, node.end_col_offset):]
    return "".join(lines[:node.lineno - 1]) + head + text + tail + "".join(lines[node.end_lineno:])


def _owns_lines(lines, node):
    """True when ``node`` alone fills its lines (a trailing comment aside)."""
    first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
    head = first[:_char_col(first, node.col_offset)]
    tail = last[_char_col(last, node.end_col_offset):].strip()
    return not head.strip() and (not tail or tail.startswith("#"))


def _reindented(lines, indent):
    """``lines`` shifted so that the first one starts at ``indent`` (continuations move along)."""
    old = _indent(lines[0])
    return [indent + line[len(old):] if line.startswith(old) else line for line in lines]


def _indent(line):
    return line[:len(line) - len(line.lstrip())]


def _join(lines, first, last, middle):
    return "".join(lines[:first - 1]) + "".join(middle) + "".join(lines[last:])
