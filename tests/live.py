"""A running app for integration and browser tests: `cai init`, uvicorn and a real celery worker."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.auth import expected_csrf_token
from app.cli import web_command, worker_command
from tests.conftest import REPO_ROOT

ADMIN_PASSWORD = "live admin password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveApp:
    base_url: str
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]]

    def signed_in_client(
        self, username: str = "admin", password: str = ADMIN_PASSWORD
    ) -> httpx.Client:
        client = httpx.Client(base_url=self.base_url, timeout=30)
        client.get("/login")
        response = client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": self.csrf(client)},
        )
        assert response.status_code == 303, response.text
        return client

    def csrf(self, client: httpx.Client) -> str:
        token = expected_csrf_token(client.cookies, self.env["SECRET_KEY"])
        assert token is not None, "no session or pre-session cookie: get /login first"
        return token

    def register_model(self, client: httpx.Client, name: str, path: Path) -> None:
        """A transformers model registered through the models form, as a person does it."""
        registered = client.post(
            "/models",
            data={
                "name": name,
                "backend": "transformers",
                "path": str(path),
                "csrf_token": self.csrf(client),
            },
        )
        assert registered.status_code == 303, registered.text

    def restart_worker(self) -> None:
        old = self.processes["worker"]
        if old.poll() is None:
            old.kill()
            old.wait()
        port = self.base_url.rsplit(":", 1)[1]
        self.processes["worker"] = subprocess.Popen(
            worker_command("gpu,cpu", 1, "solo", f"test-{port}-again@%h"),
            env=self.env,
            cwd=REPO_ROOT,
            stdout=(self.logs / "worker-restarted.log").open("w"),
            stderr=subprocess.STDOUT,
        )

    def log_tail(self) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)


@contextmanager
def live_app(
    tmp_path: Path, *, database_url: str, broker_url: str, workers: int = 1, **settings: str
) -> Iterator[LiveApp]:
    """The web app and `workers` celery workers ("worker", "worker-2", ...), each a process
    of its own consuming both queues."""
    data_dir = tmp_path / "live-var"
    logs = tmp_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "BROKER_URL": broker_url,
        "SECRET_KEY": "live-" + uuid.uuid4().hex,
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "JOB_HEARTBEAT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    subprocess.run([sys.executable, "-m", "app.cli", "init"], env=env, cwd=REPO_ROOT, check=True)
    port = free_port()
    processes = {
        name: subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=(logs / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for name, command in (
            ("web", web_command("127.0.0.1", port)),
            ("worker", worker_command("gpu,cpu", 1, "solo", f"test-{port}@%h")),
            *(
                (f"worker-{n}", worker_command("gpu,cpu", 1, "solo", f"test-{port}-{n}@%h"))
                for n in range(2, workers + 1)
            ),
        )
    }
    app = LiveApp(base_url=f"http://127.0.0.1:{port}", env=env, logs=logs, processes=processes)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{app.base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes.values()):
                raise RuntimeError("the live app did not start:\n" + app.log_tail())
            time.sleep(0.2)
        yield app
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


ENDED = ("succeeded", "failed", "cancelled", "lost")


def wait_for_job(
    client: httpx.Client,
    job_id: int,
    app: LiveApp,
    timeout: float = 300,
    *,
    until: tuple[str, ...] = ENDED,
) -> str:
    """Polls the job's status fragment, as the browser does, until the job reaches one of the
    statuses in `until` (by default: until it ends), and returns the fragment.

    The deadline is generous, because a loaded machine is slow, not wrong; a job that ends in
    a status the test did not wait for fails at once, with the worker's log.
    """
    deadline = time.monotonic() + timeout
    fragment = ""
    while time.monotonic() < deadline:
        fragment = client.get(f"/jobs/{job_id}/status").text
        for status in ENDED + tuple(s for s in until if s not in ENDED):
            if f'data-status="{status}"' in fragment:
                if status in until:
                    return fragment
                raise AssertionError(
                    f"job {job_id} is {status}, not {' or '.join(until)}:\n"
                    f"{fragment}\n{app.log_tail()}"
                )
        time.sleep(0.3)
    raise AssertionError(
        f"job {job_id} did not reach {' or '.join(until)} in {timeout} s:\n"
        f"{fragment}\n{app.log_tail()}"
    )
