"""JupyterHub for one class of the course: local Linux accounts, nbgrader's exchange, one course id.

Start it as root from the folder holding this file: `jupyterhub -f deploy/jupyterhub_config.py`.
docs/instructor.md walks through the server's setup. Values an instructor changes come from the
environment, so a test can run this same file on 127.0.0.1:

  COURSE_ID          nbgrader's course id (default nn101)
  COURSE_INSTRUCTOR  the instructor's Linux account (default instructor)
  COURSE_STUDENTS    the students' accounts, comma-separated (default: none; add them later)
  HUB_IP, HUB_PORT   where the hub listens (default 127.0.0.1:8000; put TLS in front of it)
  HUB_STATE          folder for the hub's database and cookie secret (default /srv/jupyterhub)
  NBGRADER_EXCHANGE  nbgrader's exchange folder (default /srv/nbgrader/exchange)
  COURSE_STUDENT_LAB the students' JupyterLab settings (default: jupyter/student_lab.py of the
                     course repository holding this file)

Every single-user server gets COURSE_ID and NBGRADER_EXCHANGE, which deploy/nbgrader_config.py
reads, so nbgrader's course id is the hub's. JUPYTER_CONFIG_PATH is passed on when it is set (a
folder holding nbgrader_config.py other than /etc/jupyter, as the test uses).
"""

import os

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

COURSE_ID = os.environ.get("COURSE_ID", "nn101")
INSTRUCTOR = os.environ.get("COURSE_INSTRUCTOR", "instructor")
STUDENTS = [s for s in os.environ.get("COURSE_STUDENTS", "").split(",") if s]
STATE = os.environ.get("HUB_STATE", "/srv/jupyterhub")

c.JupyterHub.ip = os.environ.get("HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("HUB_PORT", "8000"))
c.JupyterHub.db_url = "sqlite:///" + os.path.join(STATE, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(STATE, "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = os.path.join(STATE, "jupyterhub-proxy.pid")

# Log in with the server's own accounts (PAM); each user's server runs as that Linux user.
c.JupyterHub.authenticator_class = "jupyterhub.auth.PAMAuthenticator"
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Authenticator.allowed_users = {INSTRUCTOR, *STUDENTS}
c.Authenticator.admin_users = {INSTRUCTOR}
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
# Only these variables of the hub's environment reach the users' servers (never the proxy's token).
c.Spawner.environment = {
    "COURSE_ID": COURSE_ID,
    "NBGRADER_EXCHANGE": os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange"),
}
if os.environ.get("JUPYTER_CONFIG_PATH"):
    c.Spawner.environment["JUPYTER_CONFIG_PATH"] = os.environ["JUPYTER_CONFIG_PATH"]
# The course's environment (deploy/ lives in the course repository, installed under /opt/course).
c.Spawner.cmd = [os.environ.get("COURSE_SINGLEUSER", "/opt/course/.venv/bin/jupyterhub-singleuser")]

# Students' servers start with the settings of a student's `make lab` (jupyter/student_lab.py):
# nbgrader's Formgrader, Create Assignment and Course List hidden, front end and server alike (the
# Assignment List and Validate stay), notebooks not marked modified on opening, no news prompt. The
# instructor's server starts without them, with every tool.
STUDENT_LAB = os.environ.get("COURSE_STUDENT_LAB") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jupyter", "student_lab.py")


def student_settings(spawner):
    """Spawner.pre_spawn_hook: everyone but the instructor gets the students' settings."""
    flag = f"--config={STUDENT_LAB}"
    if spawner.user.name != INSTRUCTOR and flag not in spawner.args:
        spawner.args = [*spawner.args, flag]


c.Spawner.pre_spawn_hook = student_settings
