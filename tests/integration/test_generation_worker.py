"""A whole generation run through real workers, its worker SIGKILLed part-way: a new worker
(started as a supervisor would) finishes it by itself, and every prompt is stored once."""

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.live import LiveApp, live_app, wait_for_job

pytestmark = [pytest.mark.worker]
PROMPTS = 24
ROUNDS = 2


def count(app: LiveApp, sql: str, **params: object) -> int:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres+redis"])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """The one-machine default (SQLite database and broker: kombu's SQLAlchemy transport never
    redelivers a fetched message, so recovery is the sweeper's re-send) and the served setup."""
    if request.param == "sqlite":
        return (
            f"sqlite:///{tmp_path / 'live.sqlite'}",
            f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
        )
    return request.getfixturevalue("postgres_url"), request.getfixturevalue("redis_url")


def test_a_killed_run_finishes_by_itself_and_stores_every_prompt_once(
    tmp_path: Path, tiny_model: Path, services: tuple[str, str]
) -> None:
    database_url, broker_url = services
    with live_app(
        tmp_path,
        database_url=database_url,
        broker_url=broker_url,
        # A dead worker's chunk is re-queued 5 s after its last lease renewal (every second).
        CHUNK_LEASE_SECONDS="5",
        SWEEP_SECONDS="1",
    ) as app:
        client = app.signed_in_client()
        token = app.csrf(client)
        app.register_model(client, "tiny", tiny_model)
        # `cai init` published the default constitution and loaded the example prompts.
        model_id = count(app, "SELECT id FROM language_model WHERE name = 'tiny'")
        version_id = count(app, "SELECT id FROM constitution_version WHERE number = 1")
        set_id = count(app, "SELECT id FROM prompt_set WHERE source = 'built-in'")
        launched = client.post(
            "/generate",
            data={
                "constitution_version_id": version_id,
                "prompt_set_id": set_id,
                "model_id": model_id,
                "rounds": str(ROUNDS),
                "max_prompts": str(PROMPTS),
                "sample_size": "0",
                "seed": "3",
                "max_new_tokens": "24",
                "temperature": "1.0",
                "top_p": "1.0",
                "chunk_size": "2",
                "reviews_needed": "1",
                "stop": "",
                "csrf_token": token,
            },
        )
        assert launched.status_code == 303, launched.text
        job_id = int(launched.headers["location"].rsplit("/", 1)[1])
        trace_count = "SELECT count(*) FROM trace WHERE job_id = :j"

        deadline = time.monotonic() + 300
        while count(app, trace_count, j=job_id) < 4:
            assert time.monotonic() < deadline, app.log_tail()
            time.sleep(0.2)
        # While chunks run, the job says how far they got.
        # (a running chunk's step, "chunk 3 of 6 · ...", or the count a finished chunk writes,
        # "2 of 6 chunks done · ...": whichever was written last).
        status = client.get(f"/jobs/{job_id}/status").text
        assert re.search(r"chunk \d+ of \d+ ·|\d+ of \d+ chunks done", status), status
        app.processes["worker"].kill()  # SIGKILL: no clean shutdown, no chance to mark anything
        app.processes["worker"].wait()
        assert count(app, trace_count, j=job_id) < PROMPTS

        app.restart_worker()  # as a supervisor would; nobody presses Resume
        done = wait_for_job(client, job_id, app, timeout=600, until=("succeeded",))
        assert f"{PROMPTS} stored" in done, done + app.log_tail()

        assert count(app, trace_count, j=job_id) == PROMPTS
        distinct = "SELECT count(DISTINCT prompt_id) FROM trace WHERE job_id = :j"
        assert count(app, distinct, j=job_id) == PROMPTS
        steps = count(
            app,
            "SELECT count(*) FROM trace_step s JOIN trace t ON t.id = s.trace_id"
            " WHERE t.job_id = :j",
            j=job_id,
        )
        assert steps == PROMPTS * ROUNDS
        undone = "SELECT count(*) FROM chunk WHERE job_id = :j AND status <> 'done'"
        assert count(app, undone, j=job_id) == 0
        # The chunk the killed worker held was claimed again by the new one.
        retried = "SELECT count(*) FROM chunk WHERE job_id = :j AND attempts > 1"
        assert count(app, retried, j=job_id) >= 1, app.log_tail()
        assert "chunk" in (app.logs / "worker-restarted.log").read_text()
