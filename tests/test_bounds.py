"""The grader's side of the channel bounds what a student's process sends.

The runner shares its process with the student's code, which can rewrite it:
each test here runs student code that patches the live runner (found through
``gc``) or writes to its channel directly, and checks what reaches the grader
through a real RunnerClient and sandbox: text cut to its cap with a note,
too large or malformed replies turned into a RunnerFailure of kind
``protocol``, never an exception of another kind or unbounded memory.
"""

import json
import struct
import time

import pytest

from autograde import protocol
from autograde.client import (MESSAGE_CAP, REPLY_BOUNDS, TYPE_NAME_CAP, RunnerClient,
                              RunnerFailure, check_reply)
from autograde.config import GradingSettings
from autograde.judge import Judge

OUTPUT_CAP = 4096
FIND_RUNNER = ("import gc\n"
               "RUNNER = next(o for o in gc.get_objects() "
               "if hasattr(type(o), 'op_exec') and hasattr(type(o), 'serve'))\n")
# The runner's own cap of type names, removed (its module is found through
# its functions: ``python -m`` runs it as __main__, which IPython replaces).
UNCAPPED_TYPE_NAMES = (FIND_RUNNER + "type(RUNNER).op_exec.__globals__['_type_name'] = "
                       "lambda exc: type(exc).__name__\n")


@pytest.fixture
def client(tmp_path):
    client = RunnerClient(tmp_path, GradingSettings(memory_bytes=1024 * 2**20).limits(),
                          OUTPUT_CAP)
    client.start()
    yield client
    client.stop()


def run(client, source):
    return client.request({"op": "exec", "source": source}, None, time.monotonic() + 60)


# ---------------------------------------------------------------------------
# check_reply on its own


def test_check_reply_keeps_documented_fields_and_cuts_text():
    reply = check_reply({"ok": False, "stdout": "x" * 10_000, "stderr": "short", "junk": [1] * 9,
                         "error": {"type": "T" * 500, "message": "m" * 5000,
                                   "traceback": "line\n" * 5000 + "LAST LINE", "extra": 1}},
                        OUTPUT_CAP)
    assert set(reply) == {"ok", "stdout", "stderr", "error", "truncated"}
    assert len(reply["stdout"]) == OUTPUT_CAP and reply["stdout"].endswith("[output truncated]\n")
    assert reply["stderr"] == "short" and reply["truncated"] is True
    error = reply["error"]
    assert set(error) == {"type", "message", "traceback"}
    assert len(error["type"]) == TYPE_NAME_CAP and error["type"].endswith("...")
    assert len(error["message"]) == MESSAGE_CAP
    assert len(error["traceback"]) == OUTPUT_CAP and error["traceback"].endswith("LAST LINE")


@pytest.mark.parametrize("header", [
    {"ok": "yes"}, {"ok": True, "stdout": {"x": 1}}, {"ok": False, "error": [1, 2]},
    {"ok": False, "error": {"type": 7}}, {"op": "ready", "pid": "1"}, {"ok": 1},
])
def test_check_reply_refuses_malformed_fields(header):
    with pytest.raises(protocol.ProtocolError, match="malformed reply"):
        check_reply(header, OUTPUT_CAP)


def test_type_names_become_one_printable_line():
    reply = check_reply({"ok": False, "error": {"type": "Bad\nName\x1b[31m"}}, OUTPUT_CAP)
    assert reply["error"]["type"] == "Bad?Name?[31m"


# ---------------------------------------------------------------------------
# Against a live runner that the student's code rewrites


def test_a_cells_output_is_cut_by_the_grader_even_if_the_runner_is_patched(client):
    run(client, FIND_RUNNER + "RUNNER.output_cap = 10**9\n")
    reply, _ = run(client, "print('x' * 1_000_000)")
    assert reply["ok"] and reply["truncated"]
    assert len(reply["stdout"]) == OUTPUT_CAP and reply["stdout"].endswith("[output truncated]\n")


def test_a_reply_over_the_header_bound_is_a_broken_reply(client):
    # Tens of MiB of output in one reply: refused by its announced size, never read.
    run(client, FIND_RUNNER + "RUNNER.output_cap = 10**9\n")
    with pytest.raises(RunnerFailure) as failure:
        run(client, "print('x' * (40 * 2**20))")
    assert failure.value.kind == "protocol"
    assert "larger than the limit" in failure.value.detail
    assert not client.alive


def test_a_long_exception_type_name_is_cut(client):
    run(client, UNCAPPED_TYPE_NAMES)
    reply, _ = run(client, "raise type('E' * 1_000_000, (Exception,), {})('boom')")
    assert not reply["ok"]
    assert len(reply["error"]["type"]) == TYPE_NAME_CAP


def test_a_type_name_of_tens_of_millions_of_characters_is_a_broken_reply(client):
    run(client, UNCAPPED_TYPE_NAMES)
    with pytest.raises(RunnerFailure) as failure:
        run(client, "raise type('E' * 20_000_000, (Exception,), {})('boom')")
    assert failure.value.kind == "protocol"


def test_a_student_function_with_a_long_exception_type_name_fails_a_hidden_test_briefly(client):
    run(client, UNCAPPED_TYPE_NAMES + "def f(x):\n    raise type('E' * 1_000_000, (Exception,), {})('boom')\n")
    judge = Judge(client, ["f"])
    verdict = judge.run_test("### BEGIN HIDDEN TESTS\nf(1)\n### END HIDDEN TESTS",
                             time.monotonic() + 60)
    assert not verdict.passed and verdict.failure is None
    assert len(verdict.message) < 400, len(verdict.message)


@pytest.mark.parametrize("data", [{"a": ["<f8", [0, 2**63]]}, {"a": ["<f8", [2**40, 2**40]]},
                                  {"t": [1], "d": []}])
def test_a_crafted_frame_is_a_broken_reply(client, data):
    # The student's function writes a frame of its own on the channel, ahead
    # of the runner's reply.
    head = json.dumps({"ok": True, "data": data}).encode()
    frame = struct.pack("!IQ", len(head), 0) + head
    run(client, FIND_RUNNER + "import os\n"
                f"def f():\n    os.write(RUNNER.fd_out, {frame!r})\n    return 1\n")
    judge = Judge(client, ["f"])
    verdict = judge.run_test("f()", time.monotonic() + 60)
    assert not verdict.passed and verdict.failure is not None
    assert verdict.failure.kind == "protocol"
    assert "broken reply" in verdict.message


def test_reply_bounds_leave_room_for_a_cells_output():
    # A cell's reply holds stdout, stderr and a traceback of up to the output
    # cap each; JSON may spend 12 bytes on one character (a surrogate pair).
    cap = GradingSettings().output_cap
    assert 3 * cap * 12 + 2 * MESSAGE_CAP * 12 < REPLY_BOUNDS.max_header_bytes


# ---------------------------------------------------------------------------
# The feedback page


def _records(text):
    """Records of the fixture chapter's release, every code cell with ``text`` as output."""
    from pathlib import Path

    from autograde.judge import Verdict
    from autograde.notebook_io import load_chapter, parse_submission, rebuild
    from autograde.submission import CellRecord
    course = Path(__file__).parent / "fixtures" / "course"
    chapter = load_chapter(course / "solutions" / "toy" / "toy.ipynb",
                           course / "notebooks" / "toy" / "toy.ipynb", "toy")
    rebuilt = rebuild(chapter, parse_submission(
        (course / "notebooks" / "toy" / "toy.ipynb").read_bytes()))
    records = []
    for cell in rebuilt.cells:
        rec = CellRecord(cell)
        if cell.kind == "test":
            rec.verdict = Verdict(False, "x")
        elif cell.kind not in ("markdown", "raw"):
            rec.stdout, rec.stderr = text, text
            rec.error = {"type": "E", "message": "m", "traceback": text}
        records.append(rec)
    result = {"student_id": "alice", "assignment": "toy", "score": 0, "max_score": 6,
              "status": "ok", "tests": [{"grade_id": c.origin.grade_id, "cell": c.index,
                                         "points": 0, "max_points": 1, "passed": False,
                                         "message": text[:600]}
                                        for c in rebuilt.cells if c.kind == "test"]}
    return result, records


@pytest.mark.parametrize("text", ["<&>\"'" * 400_000, "\U0001f600" * 1_000_000,
                                  "plain " * 400_000])
def test_a_feedback_page_stays_under_its_bound(text):
    from autograde.feedback import MAX_PAGE_BYTES, render
    page = render(*_records(text))
    assert len(page.encode()) <= MAX_PAGE_BYTES
    assert "[cut: this feedback page reached its size limit]" in page
    if "<" in text:
        assert text[:20] not in page  # escaped


def test_a_feedback_page_forbids_scripts_and_draws_math_as_mathml():
    from autograde.feedback import render
    page = render(*_records("<script>alert(1)</script>"))
    head = page[:page.index("</head>")]
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in head
    assert head.index("Content-Security-Policy") < head.index("<title>")
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # The lecture's math as MathML, drawn by the browser: no script, nothing loaded from elsewhere.
    relu = "".join(f'<mi mathvariant="normal">{c}</mi>' for c in "relu")
    assert '<math display="inline">' in page and relu in page
    assert "\\mathrm{relu}" not in page


@pytest.mark.parametrize("tex", [r"\href{javascript:alert(1)}{x}", r"\style{color:red}{x}",
                                 r"\class{evil}{x}", r"\cssId{top}{x}"])
def test_math_that_would_link_or_style_stays_tex_source(tex):
    from autograde.feedback import _markdown
    page = _markdown(f"before ${tex}$ after")
    assert "<math" not in page and "href=" not in page and "style=" not in page
    assert "<code class=\"math\">" in page
    assert "http://" not in page and "https://" not in page
