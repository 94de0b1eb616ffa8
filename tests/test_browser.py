"""The course as a student sees it: every chapter in JupyterLab, in a real browser.

One JupyterLab server for the module, started as `make lab` starts it (the same installation and
the student settings of `jupyter/`), on 127.0.0.1 with a random token, over a temporary copy of the
course; one headless Chromium (Debian's `chromium` package driven by Playwright; no browser is ever
downloaded) with one page, on which each notebook (release and source of every chapter, discovered
from `solutions/`) is visited in turn, as a student would:

1. open it: it is not marked modified;
2. Run All and wait until the kernel is idle; for the source, a screenshot of the whole notebook
   (kept, with each visit's timings, in a folder the run prints);
3. move every slider and dropdown of its widgets, timing the redraw of what each one drives;
4. Validate (which saves): every graded test named, with its hint in view, on the release;
   "Success!" on the first chapter's source (see VALIDATED); the other sources are saved;
5. close it (without a "save your work?" question) and reopen it while its kernel runs; with
   widgets, once more after its kernel stopped.

A visit records what it saw; each test below checks one property of it, so a failure names what broke.
The page's console must stay free of errors and no request may leave the machine (MathJax included).

Everything started here is stopped by fixture finalizers, also when a test fails: the page and the
browser, the server's process group and every kernel it started. Should this process be killed
before they run, the server gets SIGTERM from the kernel (parent-death signal) and its kernels follow.
"""

import io
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from autograde.config import Course
from local_web import chromium_missing, free_port, launch_chromium

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOT_VIEWPORT = {"width": 1280, "height": 3200}  # fewer screens to stitch
SCREENSHOT_MAX_HEIGHT = 60000

REPO = Course()
NOTEBOOKS = [pytest.param((kind, chapter), id=f"{chapter}-{kind}")
             for chapter in REPO.chapters() for kind in ("release", "source")]

# Validate runs in every release (the dialog lists each failing test with its hint) but in one
# source only: that a solved notebook passes its tests is what nbval checks for every source
# (tests/test_notebooks.py); here it costs a second run of the whole chapter.
VALIDATED = [(kind, chapter) for kind, chapter in (n.values[0] for n in NOTEBOOKS)
             if kind == "release" or chapter == REPO.chapters()[0]]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STALE_WIDGET_NOTE = "run this cell again to use it"  # jupyter/student_lab.py's note for a stopped widget
SLOW_REDRAW = 0.5  # seconds: a slider that redraws slower than this must not update while dragged

# Seconds; generous for two busy cores, far below what would hide a hang.
START_TIMEOUT = 90
RUN_ALL_TIMEOUT = 300
VALIDATE_TIMEOUT = 300
WIDGET_TIMEOUT = 30

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# --- the server --------------------------------------------------------------------------------

def make_command(target):
    """The last command `make TARGET` runs, as make itself expands it (a dry run)."""
    dry_run = subprocess.run(["make", "-s", "-n", target], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()
    return dry_run[-1]


@dataclass
class Server:
    """A JupyterLab server started by a test, and how to reach it."""

    proc: subprocess.Popen
    url: str
    token: str
    runtime_dir: Path
    log: Path
    root: Path = None

    def api(self, path, method="GET"):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def page_config(self):
        """JupyterLab's page config, as the /lab page hands it to the browser."""
        request = urllib.request.Request(f"{self.url}/lab",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            page = response.read().decode()
        found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                          page, re.S)
        return json.loads(found.group(1))


def _die_with_parent():
    """In the child, before exec: receive SIGTERM when the test process dies, however it dies."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_server(command, cwd, tmp):
    """Start `command` (make's `[cd DIR && ]jupyter lab ...`) on a free port; wait until it answers."""
    token, port = secrets.token_hex(16), free_port()
    runtime_dir, log = tmp / "runtime", tmp / "server.log"
    runtime_dir.mkdir()
    config_dir = tmp / "jupyter-config"  # an empty user config: the machine's ~/.jupyter stays out
    config_dir.mkdir()
    change_dir = re.match(r"cd (\S+) && (.*)", command)
    if change_dir:
        cwd, command = Path(cwd) / change_dir.group(1), change_dir.group(2)
    argv = shlex.split(command) + [
        "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
        f"--LabApp.user_settings_dir={tmp / 'user-settings'}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}"]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime_dir), JUPYTER_CONFIG_DIR=str(config_dir),
               IPYTHONDIR=str(tmp / "ipython"), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    # Its own process group, stopped as a whole; it also stops (and stops its kernels, which exit
    # when their parent does) if this process is killed before the finalizers run.
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)
    server = Server(proc, f"http://127.0.0.1:{port}", token, runtime_dir, log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            server.api("/api/status")
            return server
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_server(server)
                pytest.fail(f"JupyterLab did not start ({command}):\n{log.read_text()[-3000:]}")
            time.sleep(0.3)


def stop_server(server):
    """Stop the server, its process group and every kernel it started, whatever state they are in."""
    try:
        for kernel in server.api("/api/kernels"):
            server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
    except OSError:
        pass
    group = server.proc.pid
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(server.proc):
            time.sleep(0.2)
        if not _group_alive(server.proc):
            break
    server.proc.wait()
    # Kernels run in sessions of their own; each one's command line names its connection file,
    # which lies in this server's runtime folder.
    for pid in _pids_mentioning(str(server.runtime_dir)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _group_alive(proc):
    proc.poll()  # reap the server once it exits
    try:
        os.killpg(proc.pid, 0)
        return True
    except ProcessLookupError:
        return False


def _pids_mentioning(text):
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def student_lab_command():
    """`make lab`'s command, with the notebook folder left for the test to choose."""
    words = shlex.split(make_command("lab"))
    assert words[0].endswith("bin/jupyter") and words[1] == "lab", words
    words[0] = str((ROOT / words[0]).resolve())
    return shlex.join(w for w in words if not w.startswith("--notebook-dir"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A student's JupyterLab over a temporary copy of the course (notebooks, solutions, settings)."""
    tmp = tmp_path_factory.mktemp("lab")
    course = tmp / "course"
    for folder in ("notebooks", "solutions"):
        shutil.copytree(ROOT / folder, course / folder,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    server = start_server(f"{student_lab_command()} --ServerApp.root_dir={shlex.quote(str(course))}",
                          cwd=course, tmp=tmp)
    server.root = course
    yield server
    stop_server(server)


# --- the browser -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    playwright = sync_playwright().start()
    try:
        chromium = launch_chromium(playwright)
    except Exception:
        playwright.stop()
        raise
    yield chromium
    try:
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    """The folder of the screenshots: $BROWSER_SCREENSHOTS, else a temporary one; printed at the end."""
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# The kernel is idle, its status known, and no cell is queued or running ("[*]").
IDLE = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const status = [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.textContent);
  return indicator && indicator.dataset.status === 'idle' && status.some(t => t.endsWith('| Idle'))
    && ![...panel.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'));
}"""

# Per cell of the open notebook: execution prompt, outputs (mime type, text), images, math.
CELLS = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')]
  .map(cell => ({
    code: cell.classList.contains('jp-CodeCell'),
    prompt: cell.querySelector('.jp-InputPrompt')?.textContent.trim() ?? '',
    outputs: [...cell.querySelectorAll('.jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output')]
      .map(o => {
        // A widget's output carries no mime type: it holds the widget, or says why it does not.
        const widget = !o.dataset.mimeType;
        return {mime: widget ? 'application/vnd.jupyter.widget-view+json' : o.dataset.mimeType,
                text: o.textContent.slice(0, 3000), rendered: !!o.querySelector('.jupyter-widgets')};
      }),
    images: [...cell.querySelectorAll('.jp-OutputArea-output img')]
      .map(i => ({loaded: i.complete && i.naturalWidth > 0})),
    math: cell.querySelectorAll('mjx-container').length,
    mathErrors: [...cell.querySelectorAll('mjx-merror')].map(e => e.textContent),
  }))"""

# Every widget output has either rendered or given up ("Loading widget..." is gone).
WIDGETS_SETTLED = """() => [...document.querySelectorAll(
  '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output:not([data-mime-type])')]
  .every(o => !o.textContent.startsWith('Loading widget'))"""

# Watch what a control drives (the output of its `interact`, else its cell's outputs, not the
# control itself with its readout) and count the changes made to it from now on, in window.__redraws.
WATCH = """control => {
  const interact = control.closest('.widget-interact');
  const targets = interact ? [...interact.querySelectorAll(':scope > .widget-output')]
                           : [control.closest('.jp-Cell-outputArea')];
  window.__watch?.disconnect();
  window.__redraws = 0;
  window.__watch = new MutationObserver(records => {
    window.__redraws += records.filter(r => !control.contains(r.target)).length;
  });
  for (const target of targets)  // new content, or a new picture in an Image widget
    window.__watch.observe(target, {childList: true, subtree: true, characterData: true,
                                    attributeFilter: ['src']});
}"""

DIRTY = "() => document.querySelectorAll('.lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty').length > 0"


@dataclass
class Visit:
    """What a student's visit of one notebook showed (filled step by step; `error` if a step broke)."""

    kind: str
    chapter: str
    path: str
    cells_json: list
    seconds: dict = field(default_factory=dict)
    dirty_on_open: bool = None
    cells: list = None
    screenshot: Path = None
    widgets: list = field(default_factory=list)   # one dict per control moved
    labels: list = field(default_factory=list)    # (text, fits)
    validation: dict = None
    closing_asked_to_save: bool = None
    reopened: dict = field(default_factory=dict)  # "live kernel" / "new kernel" -> observations
    console: list = field(default_factory=list)
    requests_out: list = field(default_factory=list)
    failed_requests: list = field(default_factory=list)
    toasts: list = field(default_factory=list)
    error: str = None

    def needs(self, attribute):
        """The observation, or a failure saying which step of the visit broke before it was made."""
        value = getattr(self, attribute)
        if value is None or (attribute == "reopened" and not value):
            pytest.fail(f"the visit of {self.path} stopped before this check:\n{self.error}")
        return value


def graded(cell):
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


class Student:
    """One page of JupyterLab, walked through one notebook after another (`visit` is the current one)."""

    def __init__(self, browser, lab):
        self.browser, self.lab, self.visit = browser, lab, None
        self.context = self.page = None
        self.start()

    def start(self):
        """A fresh page on a fresh workspace (so no tab of an earlier visit reopens)."""
        if self.context:
            self.context.close()
        self.context = self.browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WIDGET_TIMEOUT * 1000)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self._note("console", f"page error: {exc}"))
        self.page.on("request", self._request)
        self.page.on("requestfailed", lambda r: self._note("failed_requests", f"{r.url}: {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self._note(
            "failed_requests", f"{r.url}: HTTP {r.status}"))
        self.page.goto(f"{self.lab.url}/lab/workspaces/{secrets.token_hex(6)}?token={self.lab.token}")
        self.page.locator(".jp-LauncherCard").first.wait_for(timeout=START_TIMEOUT * 1000)

    def _note(self, kind, text):
        if self.visit is not None:
            getattr(self.visit, kind).append(text[:2000])

    def _console(self, message):
        if message.type in ("error", "assert"):
            self._note("console", message.text)

    def _request(self, request):
        if not request.url.startswith((self.lab.url, "data:", "blob:")):
            self._note("requests_out", request.url)

    def close(self):
        self.context.close()

    # -- steps --

    def open(self):
        """Open the visit's notebook (File > Open from Path); True if it is marked modified."""
        self.menu("File", "Open from Path…")
        dialog = self.page.locator(".jp-Dialog")
        dialog.locator("input").fill(self.visit.path)
        dialog.locator("button", has_text="Open").click()
        dialog.wait_for(state="detached")
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").wait_for()
        self.page.wait_for_function(  # JupyterLab attaches a long notebook's cells a chunk at a time
            "n => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')"
            ".length === n", arg=len(self.visit.cells_json), timeout=START_TIMEOUT * 1000)
        self.wait_idle(START_TIMEOUT)
        self.page.wait_for_timeout(500)  # JupyterLab writes the kernel's metadata as it connects
        self._toasts()
        return self.page.evaluate(DIRTY)

    def wait_idle(self, timeout):
        self.page.wait_for_function(IDLE, timeout=timeout * 1000, polling=200)

    def menu(self, menu, item):
        self.page.locator(".lm-MenuBar-itemLabel", has_text=menu).click()
        self.page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True).click()

    def run_all(self):
        self.menu("Run", "Run All Cells")
        first_prompt = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell "
                                         ".jp-InputPrompt").first
        self.page.wait_for_function("e => e.textContent.trim() !== '[ ]:'",
                                    arg=first_prompt.element_handle(), timeout=START_TIMEOUT * 1000)
        self.wait_idle(RUN_ALL_TIMEOUT)
        self.page.wait_for_function("() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
                                    ".every(i => i.complete)", timeout=WIDGET_TIMEOUT * 1000)
        return self.page.evaluate(CELLS)

    def screenshot(self, folder):
        """The whole notebook after Run All as one tall picture, stitched from screens of it."""
        from PIL import Image
        notebook = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer")
        self.page.set_viewport_size(SCREENSHOT_VIEWPORT)
        try:
            box = notebook.bounding_box()
            height = min(notebook.evaluate("e => e.scrollHeight"), SCREENSHOT_MAX_HEIGHT)
            picture = Image.new("RGB", (int(box["width"]), int(height)), "white")
            for top in range(0, int(height), int(box["height"])):
                # the last screen stops short where the notebook ends
                shown = notebook.evaluate("(e, y) => { e.scrollTop = y; return e.scrollTop; }", top)
                self.page.wait_for_timeout(60)  # let the screen paint
                screen = self.page.screenshot(type="jpeg", quality=80, clip=box)
                picture.paste(Image.open(io.BytesIO(screen)), (0, int(shown)))
            notebook.evaluate("e => { e.scrollTop = 0; }")
        finally:
            self.page.set_viewport_size(VIEWPORT)
        path = folder / f"{self.visit.chapter}.jpg"
        picture.save(path, quality=70)
        return path

    def move_widgets(self):
        """Move each slider and dropdown in the notebook's outputs; time the redraw of what it drives."""
        outputs = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell-outputArea")
        self.visit.labels = outputs.locator(".widget-label").evaluate_all(
            "els => els.filter(e => e.textContent.trim())"
            "          .map(e => [e.textContent, e.scrollWidth <= e.clientWidth])")  # else: an ellipsis
        controls = outputs.locator(".widget-hslider, .widget-dropdown")
        for c in range(controls.count()):
            control = controls.nth(c)
            control.scroll_into_view_if_needed()
            self.visit.widgets.append(self._move(control))

    def _move(self, control):
        name = (control.locator(".widget-label").text_content() or "").strip() or "(no label)"
        slider = "widget-hslider" in control.get_attribute("class")
        seen = {"control": name, "slider": slider, "changed": False, "seconds": None,
                "updates_while_dragged": None}
        control.evaluate(WATCH)
        start = time.monotonic()
        if slider:  # click the track at 70%: the handle jumps there
            track = control.locator(".noUi-target").bounding_box()
            self.page.mouse.click(track["x"] + 0.7 * track["width"], track["y"] + track["height"] / 2)
        else:
            select = control.locator("select")
            count = select.locator("option").count()
            current = select.evaluate("e => e.selectedIndex")
            select.select_option(index=(current + 1) % count)
        seen["changed"] = self._redrawn(WIDGET_TIMEOUT)
        self.wait_idle(WIDGET_TIMEOUT)
        seen["seconds"] = time.monotonic() - start
        if slider and seen["changed"] and seen["seconds"] > SLOW_REDRAW:
            seen["updates_while_dragged"] = self._drag(control, seen["seconds"])
        return seen

    def _redrawn(self, seconds):
        """Whether what the watched control drives changes within ``seconds``."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        try:
            self.page.wait_for_function("() => window.__redraws > 0", timeout=seconds * 1000, polling=50)
            return True
        except PlaywrightTimeout:
            return False

    def _drag(self, control, seconds):
        """Hold the handle, moved partway, as long as a redraw takes: does the output change before
        the handle is released?"""
        handle = control.locator(".noUi-handle").bounding_box()
        x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        control.evaluate(WATCH)
        self.page.mouse.move(x - 40, y, steps=4)
        redrawn = self._redrawn(max(3 * SLOW_REDRAW, seconds))
        self.page.mouse.up()
        self._redrawn(max(3 * SLOW_REDRAW, 2 * seconds))  # the release sends the value: its redraw
        self.wait_idle(WIDGET_TIMEOUT)
        return redrawn

    def validate(self):
        toolbar = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar")
        toolbar.get_by_text("Validate", exact=True).click()
        dialog = self.page.locator(".jp-Dialog")
        dialog.wait_for(timeout=VALIDATE_TIMEOUT * 1000)
        self.page.wait_for_timeout(300)  # let the boxes take their size
        seen = dialog.evaluate("""d => {
          const body = d.querySelector('.jp-Dialog-body');
          const errors = [...body.querySelectorAll('.validation-failed > .jp-RenderedText + .jp-RenderedText')];
          return {
            text: body.innerText,
            failed: (body.innerText.match(/The following cell failed:/g) || []).length,
            wide: [body, ...body.querySelectorAll('pre')].filter(e => e.scrollWidth > e.clientWidth + 1)
                    .map(e => e.innerText.slice(0, 80)),
            endHidden: errors.filter(box => box.querySelector('pre').getBoundingClientRect().bottom
                                            > box.getBoundingClientRect().bottom + 1)
                             .map(box => box.innerText.slice(-200)),
            // From "The following cell failed:" to the end of its error: more than one screen of the
            // dialog, and the hint is a scroll away from the test it belongs to.
            tooTall: errors.filter(box => box.getBoundingClientRect().bottom
                       - box.previousElementSibling.previousElementSibling.getBoundingClientRect().top
                       > body.clientHeight)
                     .map(box => box.innerText.slice(-200)),
          };
        }""")
        dialog.locator("button", has_text="Ok").click()
        dialog.wait_for(state="detached")
        seen["dirty_after"] = self.page.evaluate(DIRTY)
        return seen

    def save(self):
        self.menu("File", "Save Notebook")
        self.page.wait_for_function(f"() => !({DIRTY})()", timeout=WIDGET_TIMEOUT * 1000)

    def close_tab(self):
        """Close the notebook's tab; True if JupyterLab asked whether to save (then: discard)."""
        self.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current "
                          ".lm-TabBar-tabCloseIcon").click()
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        try:
            self.page.locator(".jp-Dialog").wait_for(timeout=400)
        except PlaywrightTimeout:
            return False
        self.page.locator(".jp-Dialog button", has_text="Discard").click()
        return True

    def reopen(self):
        """Open the notebook again; what its outputs and tab show once its widgets had time to load."""
        self.open()
        self.page.wait_for_function(WIDGETS_SETTLED, timeout=WIDGET_TIMEOUT * 1000, polling=100)
        self.page.wait_for_timeout(300)
        outputs = self.page.evaluate(CELLS)
        self._toasts()
        texts = [o["text"] for cell in outputs for o in cell["outputs"]]
        return {"dirty": self.page.evaluate(DIRTY),
                "widget_errors": [t for t in texts if "Error displaying widget" in t],
                "widgets": sum(o["rendered"] for cell in outputs for o in cell["outputs"]),
                "stale_notes": sum(STALE_WIDGET_NOTE in t for t in texts)}

    def stop_kernel(self):
        for session in self.lab.api("/api/sessions"):
            if session["path"] == self.visit.path:
                self.lab.api(f"/api/kernels/{session['kernel']['id']}", method="DELETE")

    def _toasts(self):
        for toast in self.page.locator(".Toastify__toast").all():
            text = toast.inner_text()
            if text not in self.visit.toasts:
                self.visit.toasts.append(text)


def has_widget_outputs(cells):
    return any(o["mime"] == WIDGET_VIEW for cell in cells for o in cell["outputs"])


def visit_notebook(student, kind, chapter, screenshots):
    """Walk through one notebook as a student; return what was seen (see the module docstring)."""
    notebook = REPO.source_notebook(chapter) if kind == "source" else REPO.release_notebook(chapter)
    path = notebook.relative_to(REPO.root).as_posix()
    cells = json.loads((student.lab.root / path).read_text())["cells"]  # the copy the lab serves
    visit = student.visit = Visit(kind, chapter, path, cells)
    clock = time.monotonic()

    def lap(step):
        nonlocal clock
        visit.seconds[step] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    try:
        visit.dirty_on_open = student.open()
        lap("open")
        visit.cells = student.run_all()
        lap("run all")
        if kind == "source":  # the chapter as it looks solved: every figure and widget
            visit.screenshot = student.screenshot(screenshots)
            lap("screenshot")
        student.move_widgets()
        lap("widgets")
        if (kind, chapter) in VALIDATED:
            visit.validation = student.validate()  # which saves the notebook first
            lap("validate")
        else:
            student.save()
        visit.closing_asked_to_save = student.close_tab()
        visit.reopened["live kernel"] = student.reopen()
        if has_widget_outputs(visit.cells):  # only widgets care whether the kernel is the same
            student.close_tab()
            student.stop_kernel()
            visit.reopened["new kernel"] = student.reopen()
        student.close_tab()
        lap("reopen")
    except Exception as exc:  # the tests that need the missing observations say where it stopped
        visit.error = f"{type(exc).__name__}: {exc}"[:3000]
        student.start()  # the next visit starts on a fresh page
    finally:
        student.stop_kernel()
        student.visit = None
    visit.seconds["total"] = round(sum(visit.seconds.values()), 1)
    return visit


@pytest.fixture(scope="module")
def student(browser, lab):
    page = Student(browser, lab)
    yield page
    page.close()


@pytest.fixture(scope="module")
def visits(student, screenshots):
    """Visits, made on first use and kept for the module: {(kind, chapter): Visit}."""
    done = {}

    def get(key):
        if key not in done:
            kind, chapter = key
            notebook = REPO.source_notebook(chapter) if kind == "source" else REPO.release_notebook(chapter)
            if not notebook.is_file():
                pytest.fail(f"{notebook} is missing: run `python -m autograde release {chapter}`")
            done[key] = visit_notebook(student, kind, chapter, screenshots)
            with open(screenshots / "timings.txt", "a") as log:
                log.write(f"{done[key].path}: {done[key].seconds}\n")
        return done[key]

    return get


# Checks that fail until a change to the chapters lands, by (test, kind, chapter or None for every
# chapter). Each reason says what to change; an entry whose check passes shows as XPASS: remove it.
PENDING = {}


@pytest.fixture
def visit(visits, request, record_property):
    kind, chapter = request.node.callspec.params["notebook"]
    name = request.node.originalname
    reason = PENDING.get((name, kind, chapter)) or PENDING.get((name, kind, None))
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=False))
    seen = visits((kind, chapter))
    if seen.screenshot:
        record_property("screenshot", str(seen.screenshot))
    return seen


# --- the checks, one property each ---------------------------------------------------------------

@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_opening_does_not_modify(visit, notebook):
    assert visit.needs("dirty_on_open") is False, (
        f"{visit.path} is marked modified as soon as it opens (its kernelspec or language_info "
        "differs from what the kernel writes; jupyter/student_lab.py serves the kernel's)")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_run_all_runs_every_cell(visit, notebook):
    cells = visit.needs("cells")
    assert len(cells) == len(visit.cells_json), "the page shows a different number of cells"
    not_run = [i for i, cell in enumerate(cells) if cell["code"] and not re.match(r"\[\d+\]", cell["prompt"])]
    assert not not_run, (
        f"Run All stopped: code cells {not_run} of {visit.path} never ran. A cell that raises stops "
        "JupyterLab's Run All unless it carries the tag `raises-exception` (the release's graded test "
        "cells fail on the stubs by design)")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_only_unsolved_exercises_raise(visit, notebook):
    """No error or stderr anywhere, except NotImplementedError in the release's graded test cells."""
    problems = []
    for i, (cell, cell_json) in enumerate(zip(visit.needs("cells"), visit.cells_json)):
        for output in cell["outputs"]:
            if output["mime"] != "application/vnd.jupyter.stderr":
                continue
            expected = visit.kind == "release" and graded(cell_json) and "NotImplementedError" in output["text"]
            if not expected:
                problems.append(f"cell {i}: {output['text'][-1500:]}")
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_figures_are_images(visit, notebook):
    cells = visit.needs("cells")
    images = [image for cell in cells for image in cell["images"]]
    unloaded = [image for image in images if not image["loaded"]]
    as_text = [o["text"][:100] for cell in cells for o in cell["outputs"]
               if re.search(r"<Figure size \d+x\d+ with \d+ Axes>", o["text"])]
    assert not unloaded, f"images that did not load: {unloaded}"
    assert not as_text, f"figures printed as text instead of drawn: {as_text}"
    if visit.kind == "source":
        assert images, f"{visit.path} shows no figure at all after Run All"


def has_math(markdown):
    text = re.sub(r"```.*?```|`[^`]*`", "", markdown, flags=re.S)
    return bool(re.search(r"\$\$.+?\$\$|\$[^$\s][^$]*?\$", text, re.S))


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_math_renders_offline(visit, notebook):
    cells = visit.needs("cells")
    unrendered = [i for i, (cell, cell_json) in enumerate(zip(cells, visit.cells_json))
                  if cell_json["cell_type"] == "markdown" and has_math("".join(cell_json["source"]))
                  and not cell["math"]]
    errors = [(i, cell["mathErrors"]) for i, cell in enumerate(cells) if cell["mathErrors"]]
    assert not unrendered, f"markdown cells {unrendered} hold math that MathJax did not render"
    assert not errors, f"TeX errors: {errors}"
    assert not visit.requests_out, f"requests that left the machine: {visit.requests_out}"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_widgets_are_live_controls(visit, notebook):
    cells = visit.needs("cells")
    for i, cell in enumerate(cells):
        for output in cell["outputs"]:
            assert not re.match(r"(interactive|HBox|VBox|\w+Slider|Dropdown|FloatProgress)\(",
                                output["text"]), f"cell {i} shows a widget as text: {output['text'][:200]}"
            # A widget that its code closed (a finished tqdm bar with leave=False) leaves an empty output.
            if output["mime"] == WIDGET_VIEW and not output["rendered"]:
                assert not output["text"].strip(), f"cell {i}: a widget that did not render: {output['text'][:200]}"
    uses_interact = any("interact(" in "".join(cell["source"]) for cell in visit.cells_json
                        if cell["cell_type"] == "code")
    if visit.kind == "source" and uses_interact:
        assert visit.widgets, f"{visit.path} calls interact, yet shows no slider or dropdown to move"
    dead = [w["control"] for w in visit.widgets if not w["changed"]]
    assert not dead, f"moving these controls changed nothing in their output: {dead}"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_widget_labels_fit(visit, notebook):
    visit.needs("cells")
    cut = [text for text, fits in visit.labels if not fits]
    assert not cut, (f"widget labels cut short ({cut}): give the widget "
                     "style={'description_width': 'initial'} or a shorter description")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_slow_sliders_wait_for_release(visit, notebook):
    visit.needs("cells")
    slow = [f"{w['control']} ({w['seconds']:.1f} s per redraw)" for w in visit.widgets
            if w["updates_while_dragged"]]
    assert not slow, (f"sliders that redraw slower than {SLOW_REDRAW} s recompute on every step of a "
                      f"drag: {slow}; give them continuous_update=False")


@pytest.mark.parametrize("notebook", VALIDATED, ids=lambda n: f"{n[1]}-{n[0]}")
def test_validate_gives_the_verdict(visit, notebook):
    seen = visit.needs("validation")
    if visit.kind == "source":
        assert "Success! Your notebook passes all the tests." in seen["text"], seen["text"][:3000]
    else:
        tests = sum(graded(cell) for cell in visit.cells_json)
        assert seen["failed"] == tests, (
            f"Validate names {seen['failed']} failing tests, the release has {tests} (all unsolved)")
        assert "is not solved yet" in seen["text"]
    assert not seen["dirty_after"], "Validate saved the notebook, yet it is still marked modified"


@pytest.mark.parametrize("notebook", VALIDATED, ids=lambda n: f"{n[1]}-{n[0]}")
def test_validate_hints_readable(visit, notebook):
    seen = visit.needs("validation")
    assert not seen["wide"], f"lines in the Validate dialog need sideways scrolling: {seen['wide']}"
    assert not seen["endHidden"], f"errors whose last lines (the hint) start out of view: {seen['endHidden']}"
    assert not seen["tooTall"], (f"failing tests whose hint is more than a screen of the dialog below "
                                 f"their heading: {seen['tooTall']}")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_reopen_after_save(visit, notebook):
    reopened = visit.needs("reopened")
    assert visit.closing_asked_to_save is False, "closing the saved notebook asked to save it"
    for how, seen in reopened.items():
        assert not seen["dirty"], f"reopened with a {how}, the notebook is marked modified"
        assert not seen["widget_errors"], f"reopened with a {how}: {seen['widget_errors']}"
    if has_widget_outputs(visit.cells):
        shown = sum(o["rendered"] for cell in visit.cells for o in cell["outputs"])
        outputs = sum(o["mime"] == WIDGET_VIEW for cell in visit.cells for o in cell["outputs"])
        assert reopened["live kernel"]["widgets"] == shown, (
            f"reopened with its kernel running, {reopened['live kernel']['widgets']} of the {shown} "
            "widgets show")
        assert reopened["new kernel"]["stale_notes"] == outputs, (
            f"reopened with a new kernel, {reopened['new kernel']['stale_notes']} of the {outputs} widget "
            "outputs say to run their cell again")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_console_and_network_clean(visit, notebook):
    visit.needs("reopened")
    assert not visit.console, "errors in the browser console:\n" + "\n".join(visit.console)
    assert not visit.failed_requests, "failed requests:\n" + "\n".join(visit.failed_requests)
    assert not [t for t in visit.toasts if "news" in t.lower()], f"the news prompt showed: {visit.toasts}"


# --- the lab itself ------------------------------------------------------------------------------

def test_student_lab_hides_instructor_tools(lab):
    config = lab.page_config()
    for plugin in ("formgrader", "create-assignment", "course-list", "assignment-list", "menu"):
        assert f"@jupyter/nbgrader:{plugin}" in config["disabledExtensions"], plugin
    assert "@jupyter/nbgrader:validate-assignment" not in config["disabledExtensions"]
    assert config["news"] == {"disabled": True}
    log = lab.log.read_text()
    assert "nbgrader.server_extensions.validate_assignment | extension was successfully loaded" in log
    for extension in ("formgrader", "assignment_list", "course_list"):
        assert f"nbgrader.server_extensions.{extension} | extension was successfully" not in log


def test_student_lab_offers_the_assignment_list_with_an_exchange(tmp_path):
    """Where nbgrader's exchange folder exists, students get the Assignment List (and its menu)."""
    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)
    (tmp_path / "exchange").mkdir()
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.Exchange.root = {str(tmp_path / 'exchange')!r}\n")
    server = start_server(f"{student_lab_command()} --ServerApp.root_dir={shlex.quote(str(course))}",
                          cwd=course, tmp=tmp_path)
    try:
        disabled = server.page_config()["disabledExtensions"]
        assert "@jupyter/nbgrader:assignment-list" not in disabled
        assert "@jupyter/nbgrader:menu" not in disabled
        assert "@jupyter/nbgrader:formgrader" in disabled
        log = server.log.read_text()
        assert "nbgrader.server_extensions.assignment_list | extension was successfully loaded" in log
    finally:
        stop_server(server)


def test_student_lab_shows_no_instructor_menu(browser, lab):
    page = browser.new_page(viewport=VIEWPORT)
    try:
        errors = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.goto(f"{lab.url}/lab/workspaces/{secrets.token_hex(6)}?token={lab.token}")
        page.locator(".jp-LauncherCard").first.wait_for(timeout=START_TIMEOUT * 1000)
        page.wait_for_timeout(1000)
        menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
        assert "File" in menus and "Nbgrader" not in menus, menus
        assert not page.get_by_text("Create Assignment").count()
        assert not errors, errors
    finally:
        page.close()


def kernel_language_info():
    """What the course's kernel (the one `make lab` offers) says about its language when asked."""
    from jupyter_client.manager import start_new_kernel
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        return client.kernel_info(reply=True, timeout=30)["content"]["language_info"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_student_lab_serves_the_kernels_metadata(lab):
    """JupyterLab writes the kernel's language_info into a notebook it opens; served so, nothing changes."""
    path = REPO.release_notebook(REPO.chapters()[0]).relative_to(REPO.root).as_posix()
    served = lab.api(f"/api/contents/{path}")["content"]["metadata"]
    assert served["language_info"] == kernel_language_info()
    assert served["kernelspec"]["name"] == "python3"
    spec = lab.api("/api/kernelspecs")["kernelspecs"]["python3"]["spec"]
    assert served["kernelspec"]["display_name"] == spec["display_name"]


def test_student_lab_replaces_widgets_no_kernel_holds(lab):
    """A widget output kept in a saved notebook, opened with no kernel holding it: a note, not an error."""
    view = {"model_id": "0" * 32, "version_major": 2, "version_minor": 0}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{
        "cell_type": "code", "id": "w", "metadata": {}, "execution_count": 1, "source": "interact(f)",
        "outputs": [{"output_type": "display_data", "metadata": {},
                     "data": {WIDGET_VIEW: view, "text/plain": "interactive(children=(...))"}},
                    {"output_type": "stream", "name": "stdout", "text": "kept\n"}]}]}
    (lab.root / "stale.ipynb").write_text(json.dumps(notebook))
    outputs = lab.api("/api/contents/stale.ipynb")["content"]["cells"][0]["outputs"]
    assert [o.get("data") or o.get("text") for o in outputs] == [
        {"text/plain": "(A widget was here. It lives in the kernel: run this cell again to use it.)"},
        "kept\n"]
    assert WIDGET_VIEW in json.loads((lab.root / "stale.ipynb").read_text())["cells"][0]["outputs"][0]["data"]


def test_instructor_lab_has_the_tools(tmp_path):
    """`make lab-instructor`: JupyterLab with all of nbgrader's tools, on the course's nbgrader config."""
    server = start_server(make_command("lab-instructor"), cwd=ROOT, tmp=tmp_path)
    try:
        disabled = server.page_config()["disabledExtensions"]
        assert not [p for p in disabled if p.startswith("@jupyter/nbgrader")], disabled
        log = server.log.read_text()
        assert "nbgrader.server_extensions.formgrader | extension was successfully loaded" in log, log[-3000:]
    finally:
        stop_server(server)


def write_feedback_page(chapter, path):
    """The feedback page the grader writes for an untouched release of ``chapter`` (every test failed)."""
    from autograde.feedback import write
    from autograde.judge import Verdict
    from autograde.notebook_io import load_chapter, parse_submission, rebuild
    from autograde.submission import CellRecord

    release = REPO.release_notebook(chapter)
    rebuilt = rebuild(load_chapter(REPO.source_notebook(chapter), release, chapter),
                      parse_submission(release.read_bytes()))
    records, tests = [], []
    for cell in rebuilt.cells:
        record = CellRecord(cell, ran=True)
        if cell.kind == "test":
            record.verdict = Verdict(False, "not solved yet")
            tests.append({"grade_id": cell.origin.grade_id, "cell": cell.index, "points": 0,
                          "max_points": 1, "passed": False, "message": "not solved yet"})
        records.append(record)
    result = {"student_id": "student", "assignment": chapter, "score": 0, "max_score": len(tests),
              "status": "ok", "tests": tests}
    write(path, result, records)


def test_feedback_pages_draw_math_offline(browser, tmp_path):
    """Every chapter's feedback page: its math drawn as MathML, no script, nothing loaded from elsewhere."""
    problems = []
    for chapter in REPO.chapters():
        path = tmp_path / f"{chapter}.html"
        write_feedback_page(chapter, path)
        errors, outside = [], []
        page = browser.new_page(viewport=VIEWPORT)
        try:
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("request", lambda r: not r.url.startswith(("file:", "data:")) and outside.append(r.url))
            page.goto(path.as_uri())
            seen = page.evaluate("""() => ({
              math: document.querySelectorAll('math').length,
              drawn: [...document.querySelectorAll('math')]
                       .filter(m => m.getBoundingClientRect().width > 0).length,
              asSource: [...document.querySelectorAll('.math')].map(e => e.textContent.slice(0, 80)),
            })""")
        finally:
            page.close()
        if not seen["math"] or seen["drawn"] < seen["math"]:
            problems.append(f"{chapter}: {seen['drawn']} of {seen['math']} formulas drawn")
        if seen["asSource"]:
            problems.append(f"{chapter}: formulas left as TeX source: {seen['asSource']}")
        if errors or outside:
            problems.append(f"{chapter}: console errors {errors}, requests out {outside}")
    assert not problems, "\n".join(problems)
