"""A class on JupyterHub, end to end, on this machine: docs/instructor.md as the people would live it.

Real local Linux accounts (one instructor, two students) are created for the module; nbgrader's
exchange lies in a temporary folder with the permissions nbgrader documents (root-owned, 0777 and
the sticky bit); the hub runs `deploy/jupyterhub_config.py` itself, with configurable-http-proxy, on
127.0.0.1, logging people in with their Linux password (PAM) and starting each one's server as that
user from the project's .venv; nbgrader reads `deploy/nbgrader_config.py` (copied unchanged into the
folder named by JUPYTER_CONFIG_PATH, where a server would use /etc/jupyter). Then, one chapter:

1. the instructor releases it (`nbgrader release_assignment`, as the instructor);
2. student 1 logs in through the hub in Chromium and, in the Assignment List, fetches it, opens the
   notebook, edits an answer, saves and submits;
3. student 2, in a terminal as that user, fetches, submits, solves the exercise and submits again;
4. the instructor collects; a roster student who never submitted gets an empty folder;
5. `python -m autograde grade` grades nbgrader's submitted/ layout, as root, and again as the
   instructor, without root, in their own clone;
6. the feedback is released; each student fetches it and gets only their own.

The tests after the walk check one property each. Everything started here (hub, proxy, the users'
servers and kernels, the browser) is stopped, and the accounts and folders removed, by fixture
finalizers, also when a test fails. Needs root (useradd), JupyterHub (`pip install -e '.[hub]'`)
and configurable-http-proxy (`npm install --prefix .venv/hub-node configurable-http-proxy`); the
browser part also needs Debian's Chromium.
"""

import contextlib
import csv
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from local_web import chromium_missing, free_port, launch_chromium

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.prefix) / "bin"
PROXY_CANDIDATES = [ROOT / ".venv" / "hub-node" / "node_modules" / ".bin" / "configurable-http-proxy"]

CHAPTER = "00_tools"        # the cheapest chapter to grade (one exercise, 4 points)
ANSWER = "pairwise_sq_dists"
COURSE_ID = "nn101"
STUB = "raise NotImplementedError()"
# What student 1 types in the browser: runs, but is wrong, so it cannot score full points.
BROWSER_ANSWER = "def pairwise_sq_dists(A, B):\n    return np.zeros((len(A), len(B)))\n"

# Seconds; generous for two busy cores, far below what would hide a hang.
HUB_START = 60
SPAWN = 120
UI = 60
COMMAND = 180

pytestmark = [pytest.mark.hub, pytest.mark.slow]


def proxy_command():
    for candidate in PROXY_CANDIDATES:
        if candidate.is_file():
            return candidate
    found = shutil.which("configurable-http-proxy")
    return Path(found) if found else None


def _skip_reason():
    if sys.platform != "linux":
        return "the hub test creates Linux accounts"
    if os.geteuid() != 0:
        return "the hub test creates Linux accounts (useradd) and must run as root, as CI does"
    for tool in ("useradd", "userdel", "chpasswd", "runuser"):
        if not shutil.which(tool):
            return f"{tool} is missing (Debian's passwd and util-linux packages)"
    try:
        import jupyterhub  # noqa: F401
        import pamela  # noqa: F401
    except ImportError:
        return "JupyterHub is not installed: `.venv/bin/pip install -e '.[hub]'`"
    if not (VENV_BIN / "jupyterhub-singleuser").is_file():
        return f"{VENV_BIN / 'jupyterhub-singleuser'} is missing: `.venv/bin/pip install -e '.[hub]'`"
    if proxy_command() is None:
        return ("configurable-http-proxy is missing: with npm, "
                "`npm install --prefix .venv/hub-node configurable-http-proxy`")
    return None


if _skip_reason():
    pytest.skip(_skip_reason(), allow_module_level=True)


# --- accounts, the exchange, running things as a person ----------------------------------------

class Person:
    """A local Linux account created for the test."""

    def __init__(self, name, role, course):
        self.name, self.role, self.course = name, role, course
        self.password = secrets.token_urlsafe(12)
        self.home = Path("/home") / name

    @property
    def uid(self):
        return pwd.getpwnam(self.name).pw_uid

    def env(self):
        """The environment of a login of this person, with nbgrader's settings as the hub gives them."""
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "SHELL": "/bin/bash",
                "PATH": f"{self.course.bin}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **self.course.env}

    def run(self, *command, check=True, timeout=COMMAND):
        """Run ``command`` as this person (runuser), in their home; the CompletedProcess."""
        env = [f"{k}={v}" for k, v in self.env().items()]
        done = subprocess.run(["runuser", "-u", self.name, "--", "env", "-i", *env, *command],
                              cwd=self.home, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            pytest.fail(f"{self.role} {self.name}: {' '.join(map(str, command))} failed "
                        f"({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def nbgrader(self, *args, check=True):
        return self.run(str(self.course.bin / "nbgrader"), *args, check=check)

    def python(self, *args, **kwargs):
        return self.run(str(self.course.bin / "python"), *args, **kwargs)

    def can_read(self, path):
        """Whether this person can list (a folder) or read (a file) ``path``."""
        probe = ["ls", "-A", str(path)] if Path(path).is_dir() else ["head", "-c", "1", str(path)]
        return self.run(*probe, check=False).returncode == 0


def kill_processes_of(uid):
    """SIGKILL every process running as ``uid`` (the accounts are the test's own)."""
    for _ in range(3):
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        pids.append(int(entry.name))
                except OSError:
                    continue
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


class Course:
    """The exchange, nbgrader's settings folder and the environment that points nbgrader at them."""

    def __init__(self, base):
        self.base = base
        self.exchange = base / "exchange"
        self.config_dir = base / "jupyter"      # stands in for /etc/jupyter
        self.hub_state = base / "hub"
        self.bin = VENV_BIN  # where the accounts' python, nbgrader and jupyterhub-singleuser are
        self.student_lab = ROOT / "jupyter" / "student_lab.py"  # what students' servers load
        self.env = {"COURSE_ID": COURSE_ID, "NBGRADER_EXCHANGE": str(self.exchange),
                    "JUPYTER_CONFIG_PATH": str(self.config_dir)}


@pytest.fixture(scope="module")
def course():
    # Below /tmp, not pytest's 0700 temporary folder: every account must reach the exchange.
    base = Path(tempfile.mkdtemp(prefix="nn-hub-", dir="/tmp"))
    try:
        base.chmod(0o755)
        c = Course(base)
        # docs/instructor.md, step 3.
        c.exchange.mkdir()
        c.exchange.chmod(0o777 | 0o1000)
        c.config_dir.mkdir(mode=0o755)
        shutil.copy2(ROOT / "deploy" / "nbgrader_config.py", c.config_dir / "nbgrader_config.py")
        (c.config_dir / "nbgrader_config.py").chmod(0o644)
        c.hub_state.mkdir(mode=0o700)
        yield c
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def people(course):
    """{"instructor", "student1", "student2"}: fresh accounts, removed with their homes afterwards."""
    tag = secrets.token_hex(3)
    made = {}
    try:
        for role, prefix in (("instructor", "nni"), ("student1", "nna"), ("student2", "nnb")):
            person = Person(f"{prefix}{tag}", role, course)
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--user-group",
                            person.name], check=True, capture_output=True)
            made[role] = person
            subprocess.run(["chpasswd"], input=f"{person.name}:{person.password}\n", text=True,
                           check=True, capture_output=True)
            person.home.chmod(0o700)  # docs/instructor.md, step 2
        if _venv_unusable(made["student1"]):
            readable_venv(course)
            reason = _venv_unusable(made["student1"])
            if reason:
                pytest.skip(reason)
        yield made
    finally:
        for person in made.values():
            try:
                kill_processes_of(person.uid)
            except KeyError:
                pass
            removed = subprocess.run(["userdel", "--remove", "--force", person.name],
                                     capture_output=True, text=True)
            if removed.returncode not in (0, 12):  # 12: the mail spool could not be removed
                print(f"userdel {person.name}: {removed.stderr}", file=sys.stderr)
            shutil.rmtree(person.home, ignore_errors=True)


def _venv_unusable(person):
    """Why ``person`` cannot run the course's environment and settings (None when they can)."""
    probe = f"import nbgrader, jupyterhub, course_lib; open({str(person.course.student_lab)!r}).close()"
    done = person.python("-c", probe, check=False)
    if done.returncode == 0:
        return None
    return (f"a new account cannot run {person.course.bin / 'python'} with the course's settings: "
            f"{done.stderr.strip()[-500:]}")


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:  # another file system: a copy
        shutil.copy2(src, dst)


def readable_venv(course):
    """A copy of the project's .venv and student settings that every account can run; sets course.bin.

    What docs/instructor.md asks of /opt/course, for a checkout where other accounts cannot go: its
    interpreter may live under /root (pyenv), or the checkout in a private folder (a fresh clone in
    a 0700 temporary folder). The copy (hard links where the file system allows) runs the system's
    Python of the same version (same ABI); its scripts and kernelspecs point at it, and the course's
    packages (installed editable, so found in the checkout) and `jupyter/` are copied beside it.
    Files of the copy are never written in place: a hard link shares its file with the .venv.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = Path("/usr/bin") / version
    if not system.is_file():
        pytest.skip(f"other accounts cannot run {sys.executable} and there is no {system} to stand in")
    venv, shim, code = Path(sys.prefix), course.base / "venv", course.base / "course"
    shutil.copytree(venv, shim, symlinks=True, copy_function=_link_or_copy,
                    ignore=shutil.ignore_patterns("hub-node", "__pycache__"))
    (shim / "pyvenv.cfg").unlink()
    (shim / "pyvenv.cfg").write_text(f"home = {system.parent}\ninclude-system-site-packages = false\n")
    for name in ("python", "python3", version):
        (shim / "bin" / name).unlink(missing_ok=True)
        (shim / "bin" / name).symlink_to(system)
    for script in (shim / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            head, _, rest = script.read_bytes().partition(b"\n")
            if head.startswith(b"#!") and head[2:].startswith(bytes(VENV_BIN)):
                script.unlink()
                script.write_bytes(b"#!" + bytes(shim / "bin" / "python") + b"\n" + rest)
                script.chmod(0o755)
    for spec in (shim / "share" / "jupyter" / "kernels").glob("*/kernel.json"):
        kernel = json.loads(spec.read_text())
        kernel["argv"][0] = str(shim / "bin" / "python")
        spec.unlink()
        spec.write_text(json.dumps(kernel, indent=1))
    # The course's packages: found on sys.path before the editable install's finder, which points
    # into the checkout.
    for package in ("course_lib", "autograde", "jupyter"):  # autograde: the instructor grades too
        shutil.copytree(ROOT / package, code / package,
                        ignore=shutil.ignore_patterns("__pycache__", "state"))
    site = shim / "lib" / version / "site-packages"
    (site / "course_code.pth").write_text(f"{code}\n")
    for folder in [shim, *shim.rglob("*"), code, *code.rglob("*")]:
        if folder.is_dir() and not folder.is_symlink():  # files keep their mode: pip's are 0644
            folder.chmod(0o755)
    course.bin = shim / "bin"
    course.student_lab = code / "jupyter" / "student_lab.py"


# --- the hub -----------------------------------------------------------------------------------

class Hub:
    def __init__(self, proc, url, log, state):
        self.proc, self.url, self.log, self.state = proc, url, log, state

    def get(self, path):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
            return response.status, response.read()


def _group_alive(pid):
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_process_group(proc, grace=15):
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            if not _group_alive(proc.pid):
                break
            time.sleep(0.2)
    proc.wait()


@pytest.fixture(scope="module")
def hub(course, people):
    """`jupyterhub -f deploy/jupyterhub_config.py` as docs/instructor.md step 4, on free ports."""
    port = free_port()
    log = course.base / "hub.log"
    env = dict(os.environ, **course.env,
               COURSE_INSTRUCTOR=people["instructor"].name,
               COURSE_STUDENTS=f"{people['student1'].name},{people['student2'].name}",
               HUB_IP="127.0.0.1", HUB_PORT=str(port), HUB_STATE=str(course.hub_state),
               COURSE_SINGLEUSER=str(course.bin / "jupyterhub-singleuser"),
               COURSE_STUDENT_LAB=str(course.student_lab),
               PATH=f"{proxy_command().parent}:{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    # The hub's own API and the proxy's API default to fixed ports; others may run here at once.
    command = [str(VENV_BIN / "jupyterhub"), "-f", str(ROOT / "deploy" / "jupyterhub_config.py"),
               f"--JupyterHub.hub_port={free_port()}",
               f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=course.hub_state, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Hub(proc, f"http://127.0.0.1:{port}", log, course.hub_state)
    try:
        deadline = time.monotonic() + HUB_START
        while True:
            try:
                if server.get("/hub/api")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the hub did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield server
    finally:
        # The hub stops the users' servers and its proxy when it gets SIGTERM; what it leaves behind
        # the accounts' finalizer kills (user processes) and this one (the proxy, by its pid file).
        stop_process_group(proc, grace=20)
        pid_file = course.hub_state / "jupyterhub-proxy.pid"
        if pid_file.is_file():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass


# --- the walk ----------------------------------------------------------------------------------

def solution_of(answer):
    """The reference solution of the answer cell ``answer``, from the chapter's source notebook."""
    nb = json.loads((ROOT / "solutions" / CHAPTER / f"{CHAPTER}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == answer:
            lines = "".join(cell["source"]).splitlines(keepends=True)
            return "".join(l for l in lines if "### BEGIN SOLUTION" not in l and "### END SOLUTION" not in l)
    raise LookupError(answer)


EDIT = """\
import json, sys
path, answer, code = sys.argv[1:]
nb = json.load(open(path))
cells = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == answer]
assert len(cells) == 1 and "NotImplementedError" in "".join(cells[0]["source"])
cells[0]["source"] = code
json.dump(nb, open(path, "w"), indent=1)
"""


def answer_source(notebook_text):
    """The source of the answer cell ANSWER in a notebook's JSON text."""
    for cell in json.loads(notebook_text)["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == ANSWER:
            return "".join(cell["source"])
    raise LookupError(ANSWER)


def cache_submissions(person):
    """Timestamps of the person's submissions, from nbgrader's cache in their home (oldest first)."""
    cache = person.home / ".local/share/jupyter/nbgrader_cache" / COURSE_ID
    stamps = [p.name.split("+")[2] for p in cache.glob(f"*+{CHAPTER}+*")]
    return sorted(stamps)


class Walk:
    """What each step of the cycle did; the tests below check it."""

    def __init__(self):
        self.steps = []
        self.error = None
        self.student1_by = None
        self.browser_skip = None
        self.login_refused = None
        self.submissions = {}
        self.collected = {}
        self.grades = {}
        self.feedback = {}
        self.grade_output = ""
        self.instructor_grade_output = ""
        self.instructor_grades = None
        self.fetch_log = {}
        self.labs = {}  # what each role's JupyterLab offers of nbgrader's tools (seen in the browser)

    def needs(self, step):
        if step not in self.steps:
            pytest.fail(f"the walk stopped before '{step}':\n{self.error}")


@pytest.fixture(scope="module")
def walk(course, people, hub):
    w = Walk()
    try:
        _walk(w, course, people, hub)
    except BaseException as exc:  # the tests that need the later steps say where it stopped
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        w.error = f"{type(exc).__name__}: {exc}"[:6000]
    return w


def _walk(w, course, people, hub):
    instructor, s1, s2 = people["instructor"], people["student1"], people["student2"]
    work = instructor.home / "course"

    # 1. The instructor's course folder (their own copy of the release) and the release.
    # (Copied by root: the checkout may lie where the instructor's account cannot go.)
    instructor.run("mkdir", "-p", str(work / "notebooks"))
    shutil.copytree(ROOT / "notebooks" / CHAPTER, work / "notebooks" / CHAPTER)
    subprocess.run(["chown", "-R", f"{instructor.name}:", str(work / "notebooks" / CHAPTER)], check=True)
    instructor.nbgrader("release_assignment", CHAPTER, "--course", COURSE_ID,
                        f"--CourseDirectory.root={work}", "--CourseDirectory.release_directory=notebooks")
    w.steps.append("release")

    # 2. Student 1, in the browser through the hub (or, without Chromium, in a terminal).
    w.login_refused = _login_refused(hub, s1)
    w.browser_skip = chromium_missing()
    if w.browser_skip is None:
        w.labs["student"] = _browser_student(hub, s1)
        w.student1_by = "browser"
        w.labs["instructor"] = _browser_lab(hub, instructor)
    else:
        s1.nbgrader("fetch_assignment", CHAPTER, "--course", COURSE_ID)
        s1.python("-c", EDIT, f"{CHAPTER}/{CHAPTER}.ipynb", ANSWER, BROWSER_ANSWER)
        s1.nbgrader("submit", CHAPTER, "--course", COURSE_ID)
        w.student1_by = "command line"
    w.submissions[s1.name] = cache_submissions(s1)
    w.steps.append("student1")

    # 3. Student 2 in a terminal: submits the untouched release, then a solved one.
    s2.nbgrader("fetch_assignment", CHAPTER, "--course", COURSE_ID)
    s2.nbgrader("submit", CHAPTER, "--course", COURSE_ID)
    time.sleep(1.1)  # nbgrader's timestamps are to the microsecond; a clear gap reads better in logs
    s2.python("-c", EDIT, f"{CHAPTER}/{CHAPTER}.ipynb", ANSWER, solution_of(ANSWER))
    s2.nbgrader("submit", CHAPTER, "--course", COURSE_ID)
    w.submissions[s2.name] = cache_submissions(s2)
    w.steps.append("student2")

    # 4. Collect (docs/instructor.md, step 6.3); a roster student who never submitted has a folder.
    submitted = work / "autograde" / "state" / "submitted"
    instructor.nbgrader("collect", CHAPTER, "--course", COURSE_ID, f"--CourseDirectory.root={work}",
                        "--CourseDirectory.submitted_directory=autograde/state/submitted")
    w.absent = f"nnc{instructor.name[3:]}"
    instructor.run("mkdir", "-p", str(submitted / w.absent))
    for person in (s1, s2):
        folder = submitted / person.name / CHAPTER
        w.collected[person.name] = {
            "timestamp": (folder / "timestamp.txt").read_text().strip(),
            "answer": answer_source((folder / f"{CHAPTER}.ipynb").read_text())}
    w.steps.append("collect")

    # 5. Grade nbgrader's submitted/ layout, as root: the grader's strong sandbox (namespaces, a
    #    user of its own) needs root; the output is then the instructor's.
    out = work / "grading-output"
    done = subprocess.run([str(VENV_BIN / "python"), "-m", "autograde", "--state",
                           str(course.base / "grader-state"), "grade", CHAPTER, str(submitted),
                           "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    w.grade_output = done.stdout + done.stderr
    assert done.returncode == 0, w.grade_output
    subprocess.run(["chown", "-R", f"{instructor.name}:", str(out)], check=True)
    for row in csv.DictReader((out / "grades.csv").read_text().splitlines()):
        w.grades[row["student_id"]] = row
    w.steps.append("grade")

    # 5b. The instructor grades the same folder without root, in their own clone of the course (its
    #     solutions beside the release): the sandbox then uses user namespaces where the kernel
    #     allows them, else resource limits only.
    shutil.copytree(ROOT / "solutions" / CHAPTER, work / "solutions" / CHAPTER)
    subprocess.run(["chown", "-R", f"{instructor.name}:", str(work / "solutions")], check=True)
    mine = work / "grading-output-mine"
    done = instructor.python("-m", "autograde", "--course-root", str(work), "--state",
                             str(work / "grader-state"), "grade", CHAPTER, str(submitted),
                             "--out", str(mine), "--quiet", check=False, timeout=300)
    w.instructor_grade_output = done.stdout + done.stderr
    if done.returncode == 0:
        w.instructor_grades = {row["student_id"]: row for row in
                               csv.DictReader((mine / "grades.csv").read_text().splitlines())}
    w.steps.append("grade without root")

    # 6. Feedback (docs/instructor.md, step 6.5): the page with nbgrader's timestamp and secret.
    for person in (s1, s2):
        src = submitted / person.name / CHAPTER
        dest = work / "autograde" / "state" / "feedback" / person.name / CHAPTER
        # The grader's pages are private (0600); nbgrader's release keeps the mode, so the student
        # could not read their page: install it readable.
        instructor.run("install", "-D", "-m", "0644", str(out / "feedback" / person.name / f"{CHAPTER}.html"),
                       str(dest / f"{CHAPTER}.html"))
        instructor.run("cp", str(src / "timestamp.txt"), str(src / "submission_secret.txt"), str(dest))
    released = instructor.nbgrader("release_feedback", CHAPTER, "--course", COURSE_ID,
                                   f"--CourseDirectory.root={work}",
                                   "--CourseDirectory.feedback_directory=autograde/state/feedback")
    w.fetch_log["release"] = released.stdout + released.stderr + "\n".join(
        f"{oct(p.stat().st_mode)} {p.name}" for p in (course.exchange / COURSE_ID / "feedback").iterdir())
    for person in (s1, s2):
        fetched = person.nbgrader("fetch_feedback", CHAPTER, "--course", COURSE_ID)
        w.fetch_log[person.name] = fetched.stdout + fetched.stderr
        folder = person.home / CHAPTER / "feedback"
        w.feedback[person.name] = {p.parent.name: p.read_text()
                                   for p in folder.glob(f"*/{CHAPTER}.html")} if folder.is_dir() else {}
    w.steps.append("feedback")


def _login_refused(hub, person):
    """Whether the hub's login form refuses a wrong password (checked with PAM, as for real)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{hub.url}/hub/login", timeout=10) as page:
        html = page.read().decode()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', html)
    data = urllib.parse.urlencode({"username": person.name, "password": "not-" + person.password,
                                   **({"_xsrf": xsrf.group(1)} if xsrf else {})}).encode()
    try:
        with opener.open(f"{hub.url}/hub/login", data=data, timeout=30) as page:
            on_login = page.url.rstrip("/").endswith("/hub/login")
            return on_login and "Invalid username or password" in page.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code == 403


@contextlib.contextmanager
def _logged_in(hub, person):
    """A Chromium page on which ``person`` has logged in through the hub and sees their JupyterLab."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(UI * 1000)
            page.goto(f"{hub.url}/hub/login")
            page.fill("#username_input", person.name)
            page.fill("#password_input", person.password)
            page.click("#login_submit")
            page.wait_for_url(re.compile(rf"/user/{person.name}/lab"), timeout=SPAWN * 1000)
            page.locator(".jp-LauncherCard").first.wait_for(timeout=SPAWN * 1000)
            yield page
        finally:
            browser.close()


def _browser_student(hub, person):
    """Log in through the hub; in the Assignment List fetch, open, edit, save and submit.

    Returns what the student's JupyterLab offers of nbgrader's tools (see _tools_seen).
    """
    with _logged_in(hub, person) as page:
        lab = _tools_seen(page, hub, person)

        page.locator('#jp-menu-panel div.lm-MenuBar-itemLabel:text("Nbgrader")').click()
        page.locator('#jp-mainmenu-nbgrader li[data-command="nbgrader:open-assignment-list"]').click()
        released = page.locator("#released_assignments_list > .list_item")
        released.filter(has_text=CHAPTER).locator(".item_status button").click()
        fetched = page.locator("#fetched_assignments_list > .list_item")
        fetched.filter(has_text=CHAPTER).first.wait_for()
        page.locator(f'#fetched_assignments_list a:text("{CHAPTER}")').first.click()
        item = f"#nbgrader-{COURSE_ID}-{CHAPTER.replace('.', '')}"
        page.locator(f"{item}.collapse.in").wait_for()
        page.locator(f"{item} .list_item a", has_text=CHAPTER).first.click()

        # The answer cell: select its text and replace it, then save.
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        cell = panel.locator(".jp-CodeCell", has_text=STUB).first
        cell.wait_for(timeout=SPAWN * 1000)
        cell.locator(".cm-content").click()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(BROWSER_ANSWER)
        page.keyboard.press("Escape")
        page.keyboard.press("ControlOrMeta+s")
        page.wait_for_function("() => !document.querySelector("
                               "'.lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current.jp-mod-dirty')")

        page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Assignments").click()
        fetched.filter(has_text=CHAPTER).locator('.item_status button:text("Submit")').click()
        page.locator("#submitted_assignments_list > .list_item").filter(has_text=CHAPTER).first.wait_for()
        return lab


def _browser_lab(hub, person):
    """Log in through the hub in Chromium and see which of nbgrader's tools the JupyterLab offers."""
    with _logged_in(hub, person) as page:
        return _tools_seen(page, hub, person)


def _tools_seen(page, hub, person):
    """What of nbgrader's tools the person's JupyterLab (open in ``page``) offers, front end and server."""
    config = json.loads(page.locator("#jupyter-config-data").text_content())
    page.locator('#jp-menu-panel div.lm-MenuBar-itemLabel:text("Nbgrader")').click()
    menu = page.locator("#jp-mainmenu-nbgrader .lm-Menu-itemLabel").all_inner_texts()
    page.keyboard.press("Escape")
    formgrader = page.request.get(f"{hub.url}/user/{person.name}/formgrader")
    return {"disabled": config.get("disabledExtensions", []), "menu": menu,
            "formgrader_status": formgrader.status}


# --- the checks, one property each -------------------------------------------------------------

def test_release_reaches_the_exchange_with_nbgrader_permissions(walk, course):
    walk.needs("release")
    course_dir = course.exchange / COURSE_ID
    assert (course_dir / "outbound" / CHAPTER / f"{CHAPTER}.ipynb").is_file()
    mode = (course_dir / "inbound").stat().st_mode & 0o7777
    # nbgrader's inbound (0733): students may put a submission into it, but not list it.
    assert mode & 0o777 == 0o733, oct(mode)
    assert (course.exchange.stat().st_mode & 0o7777) == 0o1777


def test_wrong_password_is_refused(walk):
    walk.needs("student1")
    assert walk.login_refused


def test_student1_used_the_assignment_list_in_the_browser(walk):
    walk.needs("student1")
    if walk.browser_skip:
        pytest.skip(f"student 1 used the command line instead: {walk.browser_skip}")
    assert walk.student1_by == "browser"


INSTRUCTOR_TOOLS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                    "@jupyter/nbgrader:course-list"]


def test_students_lab_offers_no_instructor_tools(walk):
    walk.needs("student1")
    if walk.browser_skip:
        pytest.skip(f"seen in the browser only: {walk.browser_skip}")
    lab = walk.labs["student"]
    assert set(INSTRUCTOR_TOOLS) <= set(lab["disabled"]), lab
    assert "@jupyter/nbgrader:assignment-list" not in lab["disabled"], lab
    assert "Assignment List" in lab["menu"], lab
    assert not [m for m in lab["menu"] if m.startswith(("Formgrader", "Create assignment", "Course List"))], lab
    assert lab["formgrader_status"] == 404, lab  # the server extension is off too


def test_instructors_lab_has_the_tools(walk):
    walk.needs("student1")
    if walk.browser_skip:
        pytest.skip(f"seen in the browser only: {walk.browser_skip}")
    lab = walk.labs["instructor"]
    assert not set(INSTRUCTOR_TOOLS) & set(lab["disabled"]), lab
    assert "Formgrader" in lab["menu"], lab
    assert lab["formgrader_status"] == 200, lab


def test_the_edit_reaches_the_instructor(walk, people):
    walk.needs("collect")
    assert walk.collected[people["student1"].name]["answer"].strip() == BROWSER_ANSWER.strip()


def test_latest_submission_is_collected_with_its_timestamp(walk, people):
    walk.needs("collect")
    name = people["student2"].name
    stamps = walk.submissions[name]
    assert len(stamps) == 2, stamps
    assert walk.collected[name]["timestamp"] == stamps[-1]
    assert walk.collected[name]["answer"].strip() == solution_of(ANSWER).strip()


def test_grades_of_the_collected_submissions(walk, people):
    walk.needs("grade")
    s1, s2 = people["student1"].name, people["student2"].name
    assert walk.grades[s2]["status"] == "ok" and walk.grades[s2]["score"] == walk.grades[s2]["max_score"]
    assert walk.grades[s1]["status"] == "ok"
    assert float(walk.grades[s1]["score"]) < float(walk.grades[s1]["max_score"]), walk.grades[s1]
    for name in (s1, s2):  # nbgrader's submission time travels with the grade
        assert walk.grades[name]["timestamp"] == walk.collected[name]["timestamp"], walk.grades[name]


def test_the_instructor_grades_without_root_alike(walk):
    walk.needs("grade without root")
    assert walk.instructor_grades is not None, walk.instructor_grade_output[-3000:]
    keep = ("score", "max_score", "status", "timestamp")
    assert {s: [r[k] for k in keep] for s, r in walk.instructor_grades.items()} == \
        {s: [r[k] for k in keep] for s, r in walk.grades.items()}


def test_a_student_without_submission_is_a_status(walk):
    walk.needs("grade")
    row = walk.grades[walk.absent]
    assert row["status"].startswith("missing notebook") and float(row["score"]) == 0, row


def test_each_student_gets_only_their_own_feedback(walk, people):
    walk.needs("feedback")
    s1, s2 = people["student1"].name, people["student2"].name
    # One page each, filed under the timestamp of the collected submission.
    for name in (s1, s2):
        assert list(walk.feedback[name]) == [walk.collected[name]["timestamp"]], (
            f"{name} submitted at {walk.submissions[name]}; fetch_feedback said:\n{walk.fetch_log[name]}"
            f"\nrelease_feedback said:\n{walk.fetch_log['release']}")
    page1 = walk.feedback[s1][walk.collected[s1]["timestamp"]]
    page2 = walk.feedback[s2][walk.collected[s2]["timestamp"]]
    assert page1 != page2
    assert s1 in page1 and s2 not in page1
    assert s2 in page2 and s1 not in page2


def test_students_cannot_read_each_other_or_the_instructor(walk, people, course):
    walk.needs("feedback")
    instructor, s1, s2 = people["instructor"], people["student1"], people["student2"]
    course_dir = course.exchange / COURSE_ID
    # Sanity: the probe can read what is theirs and what is released.
    assert s2.can_read(s2.home / CHAPTER / f"{CHAPTER}.ipynb")
    assert s2.can_read(course_dir / "outbound" / CHAPTER / f"{CHAPTER}.ipynb")
    forbidden = [
        course_dir / "inbound",                                       # everyone's submissions
        course_dir / "feedback",                                      # everyone's feedback pages
        s1.home / CHAPTER / f"{CHAPTER}.ipynb",                       # student 1's work
        s1.home / CHAPTER / "feedback",
        instructor.home / "course" / "autograde" / "state" / "submitted" / s1.name / CHAPTER,
        instructor.home / "course" / "grading-output" / "grades.csv",
        instructor.home / "course",
    ]
    readable = [str(p) for p in forbidden if s2.can_read(p)]
    assert not readable, f"student 2 can read: {readable}"
    inbound = sorted(os.listdir(course_dir / "inbound"))
    for person in (s1, s2):  # the probe above looked at a folder that holds both submissions
        assert any(n.startswith(f"{person.name}+") for n in inbound), inbound
