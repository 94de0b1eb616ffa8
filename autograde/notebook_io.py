"""Reading notebooks: the chapter (source + release), a submission, and the notebook to run.

A submission is untrusted: it is read leniently (plain JSON, never executed or
validated by nbformat's schema), and only three things are taken from it:
the source of each answer cell (matched by ``grade_id``, else by cell id),
the code cells the student added, and where those sit. Everything else (test
cells, demo cells, metadata, tags, kernelspec) comes from the instructor's
source. :func:`rebuild` records what it had to repair.
"""

import ast
import hashlib
import json
import os
import re
import stat
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
SKIP_TAG = "grader-skip"

#: Larger submissions are refused before they are read (a notebook with plots is a few MB).
MAX_SUBMISSION_BYTES = 16 * 2**20
#: JSON objects and arrays (``{`` and ``[``) and quotes (``"``, two per string) a
#: submission may hold, counted before parsing: parsing costs memory per value,
#: not per byte (16 MiB of ``[],`` would take 360 MiB), and these keep the worst
#: case near 10 times the file's size. A notebook of 1000 cells holds a few 10,000.
MAX_JSON_CONTAINERS = 500_000
MAX_JSON_QUOTES = 2_000_000
#: Cells a submission may hold (a chapter has about a hundred).
MAX_CELLS = 1000


class ChapterError(Exception):
    """The chapter cannot be graded (unknown, or its release is out of date)."""


class SubmissionError(Exception):
    """The submission cannot be graded; the message is the student's status."""


@dataclass
class SourceCell:
    """One cell of the instructor's source, with its release counterpart."""

    index: int              # 1-based position in the notebook
    cell_type: str
    source: str             # instructor's source (solutions, hidden tests)
    release_source: str     # what the student received
    id: str | None
    nbgrader: dict
    release_nbgrader: dict
    tags: tuple
    release_tags: tuple = ()  # the release adds `raises-exception` to graded test cells

    @property
    def grade_id(self):
        """nbgrader's ``grade_id``, or None for a cell without one."""
        return self.nbgrader.get("grade_id")

    @property
    def role(self):
        """``answer``, ``test``, or the cell type for every other cell."""
        if self.cell_type == "code" and self.nbgrader.get("solution"):
            return "answer"
        if self.cell_type == "code" and self.nbgrader.get("grade"):
            return "test"
        return self.cell_type

    @property
    def locked(self):
        """True for cells a student may not change: test cells and read-only cells."""
        return bool(self.nbgrader.get("locked")) or self.role == "test"

    @property
    def points(self):
        """Points of a test cell (0 for other cells)."""
        return float(self.nbgrader.get("points", 0) or 0)

    @property
    def skip(self):
        """True when the source tags the cell ``grader-skip``."""
        return SKIP_TAG in self.tags

    @property
    def label(self):
        """How statuses name the cell: its grade_id, else its position."""
        return self.grade_id or f"cell {self.index}"


@dataclass
class Chapter:
    """The instructor's source notebook of a chapter, aligned with its release."""

    name: str
    cells: list
    source_sha256: str
    release_sha256: str

    def answers(self):
        """The answer cells, in order."""
        return [c for c in self.cells if c.role == "answer"]

    def tests(self):
        """The test cells, in order."""
        return [c for c in self.cells if c.role == "test"]

    @property
    def max_score(self):
        """The sum of the points of all test cells."""
        return sum(c.points for c in self.tests())

    def answer_names(self):
        """Top-level names (functions, classes, constants) the answer cells define."""
        names = []
        for cell in self.answers():
            for name in defined_names(cell.source):
                if name not in names:
                    names.append(name)
        return names

    def signatures(self):
        """``{function name: [argument names]}`` of the functions the answer cells define."""
        out = {}
        for cell in self.answers():
            try:
                tree = ast.parse(python_source(cell.source))
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = node.args
                    out[node.name] = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
        return out

    def tests_of(self, answer_grade_id):
        """The test cells of one exercise: those between its answer cell and the next one."""
        out, inside = [], False
        for cell in self.cells:
            if cell.role == "answer":
                inside = cell.grade_id == answer_grade_id
            elif cell.role == "test" and inside:
                out.append(cell)
        return out


@dataclass
class RunCell:
    """One cell of the notebook as graded."""

    index: int                 # 1-based position in the rebuilt notebook
    kind: str                  # answer, test, code, added, markdown, raw
    source: str                # what runs (answer: the student's; test: the full source)
    shown: str                 # what the feedback shows (release text or the student's)
    origin: SourceCell | None  # None for a cell the student added
    skip: bool = False

    @property
    def label(self):
        """How statuses name the cell, e.g. ``cell 4 (relu)``."""
        if self.origin is not None and self.origin.grade_id:
            return f"cell {self.index} ({self.origin.grade_id})"
        return f"cell {self.index}"


@dataclass
class Rebuilt:
    """The notebook to grade and what was repaired while building it."""

    cells: list
    notes: list = field(default_factory=list)


# ---------------------------------------------------------------------------


def cell_text(source):
    """A cell's source as one string (notebook JSON may store a list of lines)."""
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def sha256_file(path):
    """Hex SHA-256 of a file's bytes, or ``"missing"``."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing"


def defined_names(source):
    """Names bound at the top level of a cell: def, class, assignments (magics allowed)."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def python_source(source):
    """Cell source with IPython syntax (magics, ``!cmd``) turned into Python."""
    if "%" not in source and "!" not in source and "?" not in source:
        return source
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(source)


def split_hidden(source):
    """Split a test cell into ``[(hidden, code), ...]`` at the hidden-test markers."""
    parts, current, hidden = [], [], False
    for line in source.splitlines(keepends=True):
        marker = line.strip()
        if marker in (BEGIN_HIDDEN, END_HIDDEN):
            parts.append((hidden, "".join(current)))
            current, hidden = [], marker == BEGIN_HIDDEN
            continue
        current.append(line)
    parts.append((hidden, "".join(current)))
    return [(h, code) for h, code in parts if code.strip()]


# ---------------------------------------------------------------------------


def load_chapter(source_path, release_path, name):
    """Read the source and release notebooks of chapter ``name`` and align their cells."""
    source_path, release_path = Path(source_path), Path(release_path)
    if not source_path.is_file():
        raise ChapterError(f"unknown chapter {name!r}: {source_path} does not exist")
    if not release_path.is_file():
        raise ChapterError(f"chapter {name!r} has no release: run `python -m autograde "
                           f"release {name}`")
    source, release = read_json(source_path)["cells"], read_json(release_path)["cells"]
    release_by_id = {c.get("id"): c for c in release if c.get("id")}
    if len(release) != len(source):
        raise ChapterError(f"the release of {name!r} is out of date: run `python -m "
                           f"autograde release {name}`")
    cells = []
    for i, (src, rel) in enumerate(zip(source, release), start=1):
        rel = release_by_id.get(src.get("id"), rel)
        if rel["cell_type"] != src["cell_type"]:
            raise ChapterError(f"the release of {name!r} is out of date: run `python -m "
                               f"autograde release {name}`")
        cells.append(SourceCell(
            index=i, cell_type=src["cell_type"], source=cell_text(src["source"]),
            release_source=cell_text(rel["source"]), id=src.get("id"),
            nbgrader=dict(src.get("metadata", {}).get("nbgrader", {})),
            release_nbgrader=dict(rel.get("metadata", {}).get("nbgrader", {})),
            tags=tuple(src.get("metadata", {}).get("tags", ())),
            release_tags=tuple(rel.get("metadata", {}).get("tags", ()))))
    return Chapter(name=name, cells=cells, source_sha256=sha256_file(source_path),
                   release_sha256=sha256_file(release_path))


def read_json(path):
    """A notebook of the course (trusted) as plain JSON; nbformat is slow to import."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    if nb.get("nbformat") != 4:
        raise ChapterError(f"{path} is not an nbformat 4 notebook")
    return nb


@dataclass(frozen=True)
class SubmittedFile:
    """A submitted notebook file as read once: its bytes, or why it could not be read.

    ``sha256`` is the hash of exactly these bytes (or a text naming the
    problem), so the result, the hidden inputs and the working copy all
    describe the same content even if the file changes meanwhile.
    """

    name: str
    raw: bytes | None
    problem: str     # why it could not be read ("" when it was)
    sha256: str      # hex SHA-256 of ``raw``, or ``not read: <problem>``


def open_submission(path, folder=None):
    """Read the notebook at ``path`` once; never raises (see :class:`SubmittedFile`).

    Only a regular file that belongs to the submission is read: a symbolic
    link, a hard link (a file with other names, perhaps outside the
    submission), a FIFO, a device or a socket is refused without being
    opened, and so is a file over MAX_SUBMISSION_BYTES. When ``folder`` (the
    submissions folder) is given, ``path`` must lie below it, and no folder
    on the way (the student's, nbgrader's chapter folder) may be a symbolic
    link: a student's archive must not make the grader read the instructor's
    files or another student's.
    """
    path = Path(path)
    try:
        raw = _read_submission_bytes(path, folder)
    except SubmissionError as exc:
        return SubmittedFile(path.name, None, str(exc), f"not read: {exc}")
    return SubmittedFile(path.name, raw, "", hashlib.sha256(raw).hexdigest())


# nbgrader's submission time, as `nbgrader submit` writes it ("2026-12-04 10:15:02.123456 UTC").
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?( ?(UTC|Z|[+-]\d{2}:?\d{2}))?")


def submission_timestamp(path, folder=None):
    """The time nbgrader recorded for the submission whose notebook is at ``path``, or "".

    Only nbgrader's layout (``<student>/<chapter>/<chapter>.ipynb``) has one: the file
    ``timestamp.txt`` beside the notebook, read as the notebook is (no link followed). Anything
    that is not a plain timestamp counts as none.
    """
    path = Path(path)
    if path.parent.name != path.stem:
        return ""
    try:
        raw = _read_submission_bytes(path.parent / "timestamp.txt", folder)
    except SubmissionError:
        return ""
    text = raw[:64].decode("ascii", "replace").strip()
    return text if TIMESTAMP.fullmatch(text) else ""


def _read_submission_bytes(path, folder):
    """The bytes of the notebook at ``path``; SubmissionError says why they cannot be read.

    Every step is taken relative to an open folder and never follows a
    symbolic link, so what is checked is what is read.
    """
    if folder is None:
        start, steps = path.parent, []
    else:
        try:
            steps = list(path.relative_to(folder).parts[:-1])
        except ValueError:
            raise SubmissionError(f"refused: {path.name} lies outside the submissions "
                                  "folder") from None
        start = Path(folder)
        if any(step in (".", "..") for step in steps):
            raise SubmissionError(f"refused: {path.name} lies outside the submissions folder")
    try:
        dir_fd = os.open(start, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise SubmissionError(f"missing notebook {path.name}: {exc.strerror}") from None
    try:
        for step in steps:
            inner = _enter(dir_fd, step, path.name)
            os.close(dir_fd)
            dir_fd = inner
        return _read_regular_file(dir_fd, path.name)
    finally:
        os.close(dir_fd)


def _enter(dir_fd, name, notebook):
    """Open the folder ``name`` inside ``dir_fd``, refusing a symbolic link."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise SubmissionError(f"refused: the folder {name} is a symbolic link")
        if not stat.S_ISDIR(st.st_mode):
            raise SubmissionError(f"missing notebook {notebook}: {name} is not a folder")
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        raise SubmissionError(f"missing notebook {notebook}") from None
    except OSError as exc:
        raise SubmissionError(f"unreadable folder {name}: {exc.strerror}") from None
    return fd


def _read_regular_file(dir_fd, name):
    """The bytes of ``name`` in ``dir_fd``, checked by its metadata before it is opened."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        others = sorted(n for n in os.listdir(dir_fd) if n.endswith(".ipynb"))
        found = f" (found: {', '.join(others)})" if others else ""
        raise SubmissionError(f"missing notebook {name}{found}") from None
    except OSError as exc:
        raise SubmissionError(f"unreadable notebook {name}: {exc.strerror}") from None
    _check_regular(st, name)
    # O_PATH pins this very inode without opening its contents (no device is
    # touched, no FIFO unblocked); /proc/self/fd reopens that inode for reading.
    o_path = getattr(os, "O_PATH", 0)
    try:
        if o_path and os.path.isdir("/proc/self/fd"):
            pinned = os.open(name, o_path | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                _check_regular(os.fstat(pinned), name, same_as=st)
                fd = os.open(f"/proc/self/fd/{pinned}", os.O_RDONLY | os.O_CLOEXEC)
            finally:
                os.close(pinned)
        else:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        raise SubmissionError(f"unreadable notebook {name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        _check_regular(os.fstat(fd), name, same_as=st)
        raw = f.read(MAX_SUBMISSION_BYTES + 1)
    if len(raw) > MAX_SUBMISSION_BYTES:
        raise SubmissionError(f"notebook file larger than {MAX_SUBMISSION_BYTES // 2**20} MB")
    return raw


def _check_regular(st, name, same_as=None):
    """Refuse what is not a single-named regular file (or not the file first looked at)."""
    if stat.S_ISLNK(st.st_mode):
        raise SubmissionError(f"refused: {name} is a symbolic link, not a notebook file")
    if not stat.S_ISREG(st.st_mode):
        raise SubmissionError(f"refused: {name} is not a regular file")
    if st.st_nlink > 1:
        raise SubmissionError(f"refused: {name} is a hard link (the file has {st.st_nlink} "
                              "names, so it may lie outside the submission)")
    if st.st_size > MAX_SUBMISSION_BYTES:
        raise SubmissionError(f"notebook file larger than {MAX_SUBMISSION_BYTES // 2**20} MB")
    if same_as is not None and (st.st_dev, st.st_ino) != (same_as.st_dev, same_as.st_ino):
        raise SubmissionError(f"refused: {name} changed while it was read")


def read_submission(path):
    """The cells of the notebook file at ``path``; see :func:`parse_submission`."""
    submitted = open_submission(path)
    if submitted.raw is None:
        raise SubmissionError(submitted.problem)
    return parse_submission(submitted.raw)


class SubmittedCells(list):
    """The cells :func:`parse_submission` found, and the kernelspec name the notebook asks for."""

    kernelspec = None


def parse_submission(raw):
    """The cells of a submitted notebook's bytes as plain dicts, or raise SubmissionError.

    Each cell becomes ``{"cell_type", "source", "id", "nbgrader", "tags"}``
    with the source joined into one string; malformed cells are dropped. The
    result is a :class:`SubmittedCells`. Before parsing, the bytes are held
    to MAX_SUBMISSION_BYTES, MAX_JSON_CONTAINERS and MAX_JSON_QUOTES, after
    it the cells to MAX_CELLS, so that no file makes parsing costly.
    """
    if not raw.strip():
        raise SubmissionError("empty notebook file")
    if len(raw) > MAX_SUBMISSION_BYTES:
        raise SubmissionError(f"notebook file larger than {MAX_SUBMISSION_BYTES // 2**20} MB")
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_CONTAINERS \
            or raw.count(b'"') > MAX_JSON_QUOTES:
        raise SubmissionError("refused: the file holds far more JSON values than a notebook "
                              f"(over {MAX_JSON_CONTAINERS:,} objects and lists, or "
                              f"{MAX_JSON_QUOTES // 2:,} strings)")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SubmissionError("invalid notebook: the file is not valid JSON") from None
    if not isinstance(data, dict):
        raise SubmissionError("invalid notebook: the file is JSON but not a notebook")
    version = data.get("nbformat")
    if version != 4:
        raise SubmissionError(f"unsupported notebook format version {version!r} (expected 4)")
    if not isinstance(data.get("cells"), list):
        raise SubmissionError("invalid notebook: no list of cells")
    if len(data["cells"]) > MAX_CELLS:
        raise SubmissionError(f"refused: the notebook has {len(data['cells'])} cells "
                              f"(at most {MAX_CELLS})")
    cells = SubmittedCells()
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    kernelspec = metadata.get("kernelspec")
    if isinstance(kernelspec, dict) and isinstance(kernelspec.get("name"), str):
        cells.kernelspec = kernelspec["name"]
    for cell in data["cells"]:
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            continue
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbgrader = metadata.get("nbgrader") if isinstance(metadata.get("nbgrader"), dict) else {}
        tags = metadata.get("tags") if isinstance(metadata.get("tags"), list) else []
        cells.append({"cell_type": cell["cell_type"], "source": cell_text(cell.get("source")),
                      "id": cell.get("id") if isinstance(cell.get("id"), str) else None,
                      "nbgrader": nbgrader,
                      "tags": tuple(t for t in tags if isinstance(t, str))})
    return cells


def rebuild(chapter, cells):
    """The notebook to grade: the chapter's source with the student's answers in it.

    ``cells`` come from :func:`parse_submission`. Answer cells are found by
    ``grade_id``, else by cell id; a missing one becomes the release stub,
    and of several copies the first that holds more than the stub counts.
    Locked cells (tests, read-only cells) always come from the source; the
    notes say which ones the submission had changed, deleted or duplicated.
    Every other cell that is not an answer also runs as released, and the
    notes name the code cells whose edits were set aside that way.
    Code cells the student added run where they were, after the known cell
    that precedes them in the submission. Raises SubmissionError when no
    answer cell of this chapter is found (a notebook of another chapter).
    """
    answer_ids = {c.grade_id for c in chapter.answers()}
    if not any(c["nbgrader"].get("grade_id") in answer_ids for c in cells):
        raise SubmissionError(f"wrong chapter: no answer cell of {chapter.name} found")
    by_grade_id = {c.grade_id: c for c in chapter.cells if c.grade_id}
    by_id = {c.id: c for c in chapter.cells if c.id}
    by_text = {}
    for c in chapter.cells:
        if c.cell_type == "code":
            by_text.setdefault(c.release_source.strip(), c)

    answers, seen = {}, Counter()
    tampered, duplicated, edited = [], [], []
    added = defaultdict(list)  # index of the known cell before them -> sources
    anchor = 0
    for cell in cells:
        gid = cell["nbgrader"].get("grade_id")
        target = by_grade_id.get(gid) if isinstance(gid, str) else None
        target = target or by_id.get(cell["id"])
        if target is None and cell["cell_type"] == "code":
            target = by_text.get(cell["source"].strip())
        if target is None:
            if cell["cell_type"] == "code" and cell["source"].strip():
                added[anchor].append(cell["source"])
            continue
        anchor = target.index
        seen[target.index] += 1
        if target.role == "answer":
            if target.grade_id in answers:
                _add(duplicated, target.label)
                if _untouched(answers[target.grade_id], target) \
                        and not _untouched(cell["source"], target):
                    answers[target.grade_id] = cell["source"]
            else:
                answers[target.grade_id] = cell["source"]
        elif target.locked:
            if seen[target.index] > 1:
                _add(duplicated, target.label)
            elif not _unchanged(cell, target):
                _add(tampered, target.label)
        elif target.cell_type == "code" and cell["source"].rstrip() not in (
                target.release_source.rstrip(), target.source.rstrip()):
            _add(edited, target.label)
    deleted = [c.label for c in chapter.cells if c.locked and not seen[c.index]]
    missing = [c.grade_id for c in chapter.answers() if c.grade_id not in answers]

    notes = []
    for what, labels in (("tampered cells restored", tampered), ("deleted cells restored", deleted),
                         ("edited cells run as released", edited),
                         ("duplicated cells ignored", duplicated), ("answer cells missing", missing)):
        if labels:
            notes.append(f"{what}: {', '.join(labels)}")

    run_cells = []

    def append(kind, source, shown, origin, skip=False):
        run_cells.append(RunCell(len(run_cells) + 1, kind, source, shown, origin, skip))

    for source in added[0]:
        append("added", source, source, None)
    for cell in chapter.cells:
        if cell.role == "answer":
            text = answers.get(cell.grade_id, cell.release_source)
            append("answer", text, text, cell, cell.skip)
        elif cell.role == "test":
            append("test", cell.source, cell.release_source, cell, cell.skip)
        else:
            append(cell.cell_type, cell.source, cell.release_source, cell, cell.skip)
        for source in added[cell.index]:
            append("added", source, source, None)
    return Rebuilt(run_cells, notes)


def _untouched(source, target):
    """True when an answer cell holds the release stub, or nothing.

    Of an answer cell and its copies (JupyterLab copies keep the metadata),
    the first that is not untouched is graded, else the first.
    """
    return not source.strip() or source.strip() == target.release_source.strip()


def _unchanged(cell, target):
    """True when a submitted locked cell equals its release (or source) version."""
    if cell["cell_type"] != target.cell_type:
        return False
    text = cell["source"].rstrip()
    return ((text == target.release_source.rstrip() and cell["nbgrader"] == target.release_nbgrader)
            or (text == target.source.rstrip() and cell["nbgrader"] == target.nbgrader))


def _add(items, label):
    if label not in items:
        items.append(label)
