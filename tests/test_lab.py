"""`make lab` must open JupyterLab on the course: start it headless and ask it for the chapters."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from local_web import free_port

ROOT = Path(__file__).resolve().parents[1]


def lab_arguments():
    """The arguments `make lab` passes to `jupyter lab`, as make itself expands them."""
    dry_run = subprocess.run(["make", "-s", "-n", "lab"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip().splitlines()
    command = dry_run[-1].split()
    assert command[0].endswith("bin/jupyter") and command[1] == "lab", dry_run
    return command[2:]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


@pytest.mark.slow
def test_jupyterlab_serves_the_course(tmp_path):
    port, token = free_port(), "course-test-token"
    argv = [sys.executable, "-m", "jupyterlab", *lab_arguments(), "--no-browser",
            f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
            f"--ServerApp.runtime_dir={tmp_path}"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = get(f"{base}/api/status?token={token}")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + proc.stderr.read().decode()[-2000:]
                                if proc.poll() is not None else "JupyterLab did not answer in 60 s")
                time.sleep(0.5)
        status, page = get(f"{base}/lab?token={token}")
        assert status == 200 and b"JupyterLab" in page
        status, body = get(f"{base}/api/contents?token={token}")
        listing = {item["name"] for item in json.loads(body)["content"]}
        chapters = {p.name for p in (ROOT / "notebooks").iterdir() if p.is_dir()}
        assert chapters and chapters <= listing, "JupyterLab does not open on the chapters' folder"
        status, body = get(f"{base}/api/kernelspecs?token={token}")
        assert "python3" in json.loads(body)["kernelspecs"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
