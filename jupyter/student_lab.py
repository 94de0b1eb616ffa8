"""JupyterLab as a student of the course sees it: `make lab` starts it with `--config=` this file.

What it changes, and why:

- nbgrader's instructor tools are hidden: Formgrader, Create Assignment (which lets anyone change a
  cell's type or points) and the Course List, front end and server alike. The Assignment List (and
  with it the Nbgrader menu) stays only where nbgrader's exchange folder exists; without one it can
  show nothing but errors. The Validate button stays. `make lab-instructor` starts JupyterLab without this file, with every tool.
- Notebooks are served with the kernelspec and `language_info` that the course's kernel reports when
  it starts, so opening a notebook does not mark it modified (JupyterLab copies both into the
  notebook when the kernel connects; the committed notebooks cannot carry the Python version of every
  student's machine).
- A widget lives in its kernel; a saved notebook keeps only a reference to it. Reopened with a kernel
  that does not hold that widget (a new one, or one restarted since), the reference shows "Error
  displaying widget: model not found". So such widget outputs are served as a line saying to run the
  cell again. (JupyterLab's other way out, saving widget state in the notebook, marks every notebook
  with widgets modified as soon as it opens.)
- Lab settings for students (`jupyter/lab-settings/overrides.json`): no news prompt and no update
  check; with no extension search either, nothing leaves the machine.
- `jupyter/custom/custom.css`: the Validate dialog wraps long lines instead of clipping them, keeps a
  failing test's source short and opens each error scrolled to its last lines, where the hint is.

On JupyterHub, deploy/jupyterhub_config.py starts every student's server with this file.

Files on disk change only when the student saves. User settings and workspaces stay where JupyterLab
keeps them (`~/.jupyter/lab`).
"""

import functools
import os
import queue
import sys
import time
from pathlib import Path

import nbformat
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

HERE = Path(__file__).resolve().parent

# Plugins of nbgrader's JupyterLab extension that students do not get, and its server extensions.
INSTRUCTOR_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list"]
ASSIGNMENT_LIST_PLUGIN = "@jupyter/nbgrader:assignment-list"
MENU_PLUGIN = "@jupyter/nbgrader:menu"  # the Nbgrader menu: Assignment List and instructor tools

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_TARGET = "jupyter.widget"  # the comm target of every ipywidgets model; comm id = model id
STALE_WIDGET = "(A widget was here. It lives in the kernel: run this cell again to use it.)"
KERNEL_REPLY_TIMEOUT = 3.0  # seconds; a busy kernel answers later, and its widgets are left as they are


def exchange_root():
    """nbgrader's exchange folder as nbgrader's extensions configure it, or None where there is none.

    Read as nbgrader's Validate and Assignment List handlers read it: ``nbgrader_config.py`` in the
    folder JupyterLab starts in, and in Jupyter's config path.
    """
    from nbgrader.apps import NbGrader
    from nbgrader.exchange.default.exchange import Exchange

    app = NbGrader()
    app.load_config_file()
    root = Exchange(config=app.config).root
    return root if os.path.isdir(root) else None


HIDDEN_PLUGINS = INSTRUCTOR_PLUGINS + ([] if exchange_root() else [ASSIGNMENT_LIST_PLUGIN, MENU_PLUGIN])


def hide_plugins(handler, page_config):
    """JupyterLab's page-config hook: add HIDDEN_PLUGINS to the disabled extensions."""
    disabled = list(page_config.get("disabledExtensions", []))
    page_config["disabledExtensions"] = disabled + [p for p in HIDDEN_PLUGINS if p not in disabled]
    return page_config


@functools.cache
def kernel_language_info():
    """The ``language_info`` that ipykernel running this very Python reports in its kernel_info reply."""
    from ipykernel.ipkernel import IPythonKernel
    return dict(IPythonKernel.language_info)


def replace_stale_widgets(notebook, live):
    """Replace each widget output whose model is neither in ``live`` nor saved in the notebook."""
    saved = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        for i, output in enumerate(cell.get("outputs", [])):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is not None and view.get("model_id") not in live and view.get("model_id") not in saved:
                cell.outputs[i] = nbformat.v4.new_output("display_data", data={"text/plain": STALE_WIDGET})


class StudentContentsManager(AsyncLargeFileManager):
    """Serves notebooks the way JupyterLab will show them, so that opening one changes nothing.

    The kernel metadata becomes what the course's kernel writes on connecting (only for a kernelspec
    that runs this server's own Python), and widget outputs whose widget the notebook's kernel does
    not hold become a short note.
    """

    async def get(self, path, content=True, type=None, format=None, **kwargs):  # noqa: A002
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if model["type"] == "notebook" and model.get("content"):
            notebook = model["content"]
            self._match_kernel(notebook.metadata)
            live = await self._live_widgets(path.strip("/"))
            if live is not None:
                replace_stale_widgets(notebook, live)
        return model

    def _match_kernel(self, metadata):
        name = metadata.get("kernelspec", {}).get("name")
        try:
            spec = self.parent.kernel_spec_manager.get_kernel_spec(name)
        except Exception:  # no such kernel: JupyterLab asks the student to pick one anyway
            return
        if not spec.argv or not os.path.exists(spec.argv[0]) \
                or not os.path.samefile(spec.argv[0], sys.executable):
            return
        metadata["kernelspec"] = {"name": name, "display_name": spec.display_name,
                                  "language": spec.language}
        metadata["language_info"] = kernel_language_info()

    async def _live_widgets(self, path):
        """Ids of the widget models alive in the kernel of the notebook at ``path``.

        An empty set when the notebook has no running kernel; None when its kernel did not answer
        in time (then nothing is replaced).
        """
        sessions = await self.parent.session_manager.list_sessions()
        kernel = next((s["kernel"] for s in sessions if s.get("path") == path and s.get("kernel")), None)
        if kernel is None:
            return set()
        client = self.parent.kernel_manager.get_kernel(kernel["id"]).client()
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        try:
            msg_id = client.comm_info(target_name=WIDGET_TARGET)
            deadline = time.monotonic() + KERNEL_REPLY_TIMEOUT
            while True:  # this client's channel carries only its own replies
                reply = await client.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
                if reply["parent_header"].get("msg_id") == msg_id:
                    return set(reply["content"].get("comms", {}))
        except queue.Empty:
            return None
        finally:
            client.stop_channels()


if os.environ.get("JUPYTERHUB_SERVICE_URL"):
    # Started by JupyterHub (jupyterhub-singleuser), whose identity provider's page-config hook
    # replaces the one above once the server is set up: chain ours after it.
    from jupyterhub.singleuser.extension import JupyterHubIdentityProvider

    _hub_hook = JupyterHubIdentityProvider.page_config_hook

    def _hub_then_hide(self, handler, page_config):
        return hide_plugins(handler, _hub_hook(self, handler, page_config))

    JupyterHubIdentityProvider.page_config_hook = _hub_then_hide


c.ServerApp.contents_manager_class = StudentContentsManager
c.ServerApp.jpserver_extensions.update({
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.course_list": False,
    "nbgrader.server_extensions.assignment_list": ASSIGNMENT_LIST_PLUGIN not in HIDDEN_PLUGINS,
    "nbgrader.server_extensions.validate_assignment": True,
})
c.ServerApp.tornado_settings = {
    "page_config_hook": hide_plugins,
    # JupyterLab's custom CSS is read from custom/custom.css here (by default: ~/.jupyter).
    "static_custom_path": [str(HERE / "custom")],
}
c.LabApp.custom_css = True
c.LabApp.app_settings_dir = str(HERE / "lab-settings")  # overrides.json: settings' defaults
c.LabApp.extension_manager = "readonly"  # no extension search on PyPI from a student's lab
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
