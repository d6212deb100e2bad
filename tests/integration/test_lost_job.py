"""A job whose worker dies is shown as lost after the timeout, never as running for ever."""

import time
from pathlib import Path

import pytest

from tests.live import live_app, wait_for_job

pytestmark = [pytest.mark.worker]


def test_a_killed_worker_leaves_its_job_lost(tmp_path: Path) -> None:
    with live_app(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'live.sqlite'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
        CHECK_UPLOAD_IN_REQUEST_MB="0",
        JOB_LOST_AFTER_SECONDS="3",
    ) as app:
        client = app.signed_in_client()
        # Big enough that the worker is still reading it when it is killed.
        content = "".join(f"prompt number {i} about something\n" for i in range(1_500_000)).encode()
        response = client.post(
            "/prompt-sets/import",
            data={"name": "doomed", "format": "text", "csrf_token": app.csrf(client)},
            files={"file": ("big.txt", content)},
        )
        job_id = int(response.headers["location"].rsplit("/", 1)[1])
        deadline = time.monotonic() + 120
        while 'data-status="running"' not in client.get(f"/jobs/{job_id}/status").text:
            assert time.monotonic() < deadline, app.log_tail()
            time.sleep(0.1)
        app.processes["worker"].kill()
        app.processes["worker"].wait()

        fragment = wait_for_job(client, job_id, app, timeout=120, until=("lost",))
        assert 'data-status="lost"' in fragment, fragment
        assert "stopped reporting" in fragment
        assert "hx-trigger" not in fragment  # the page stops polling
        assert "doomed" not in client.get("/prompt-sets").text
