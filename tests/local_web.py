"""What the tests that start web servers and browse them share.

A free port on 127.0.0.1 for a server, and Debian's Chromium (`/usr/bin/chromium`, from the
`chromium` package) driven by Playwright; Playwright never downloads a browser here.
"""

import socket
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_missing():
    """Why the browser tests cannot run here (what to install), or None when they can."""
    if not CHROMIUM.exists():
        return (f"Chromium is not installed ({CHROMIUM} is missing): install Debian's package, "
                "`apt-get install chromium` (as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is missing: `.venv/bin/pip install -e '.[test]'`"
    return None


def launch_chromium(playwright):
    """Headless Chromium, started by a running Playwright (``sync_playwright().start()``)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS,
                                      headless=True)
