"""A job (not chunked) whose worker dies is sent again by a sweeper and finishes, nobody pressing
anything: the sweeper marks it lost once its heartbeat is JOB_LOST_AFTER_SECONDS old and sends
its task again (up to CHUNK_MAX_ATTEMPTS times), and the next worker takes the lost job."""

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.live import LiveApp, live_app, wait_for_job

pytestmark = [pytest.mark.worker]


def scalar(app: LiveApp, sql: str) -> int:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_a_killed_workers_job_is_sent_again_and_finishes(tmp_path: Path) -> None:
    with live_app(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'live.sqlite'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
        CHECK_UPLOAD_IN_REQUEST_MB="0",
        # Beats every second; 10 s without one is a dead worker even on a loaded machine.
        JOB_LOST_AFTER_SECONDS="10",
        SWEEP_SECONDS="1",
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
        app.processes["worker"].kill()  # SIGKILL: the job row still says running
        app.processes["worker"].wait()
        assert "doomed" not in client.get("/prompt-sets").text

        app.restart_worker()  # as a supervisor would; nobody presses Resume
        fragment = wait_for_job(client, job_id, app, timeout=600, until=("succeeded",))
        assert "hx-trigger" not in fragment  # the page stops polling
        # Sent again once by the sweeper; the import stored its set once, whole.
        assert scalar(app, f"SELECT attempts FROM job WHERE id = {job_id}") >= 1
        assert scalar(app, "SELECT count(*) FROM prompt_set WHERE name = 'doomed'") == 1
        assert (
            scalar(
                app,
                "SELECT count(*) FROM prompt p JOIN prompt_set s ON s.id = p.prompt_set_id"
                " WHERE s.name = 'doomed'",
            )
            == 1_500_000
        )
        assert "doomed" in client.get("/prompt-sets").text
