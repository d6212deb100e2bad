"""`cai serve` (what `make run` runs): first start, web and worker up, and Ctrl-C stops both."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import REPO_ROOT
from tests.live import free_port

pytestmark = [pytest.mark.worker]


def test_serve_starts_web_and_worker_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "var"),
        "ENVIRONMENT": "development",
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("DATABASE_URL", "BROKER_URL", "ADMIN_PASSWORD"):
        env.pop(key, None)
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-model-preparation"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal gives it
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        children = psutil.Process(process.pid).children(recursive=True)
        commands = [" ".join(child.cmdline()) for child in children]
        assert any("uvicorn" in c for c in commands) and any("celery" in c for c in commands), (
            commands
        )
        log.seek(0)
        output = log.read()
        # No ADMIN_PASSWORD: a one-time password is printed, once.
        assert output.count("one-time password") == 1
        assert (tmp_path / "var" / "cai.sqlite").exists()

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        assert process.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    # A second start creates no second admin and prints no password.
    second = subprocess.run(
        [sys.executable, "-m", "app.cli", "init"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert second.returncode == 0 and "one-time password" not in second.stdout
