"""Faults with real processes: Redis or PostgreSQL restarted mid-run, the broker down at
launch, a worker SIGKILLed mid-run. Each run completes by itself, every prompt stored once.

Each test starts its own Redis (and where it restarts one, its own PostgreSQL): the machine's
shared servers serve the other tests and are never restarted.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.live import LiveApp, live_app, wait_for_job
from tests.servers import (  # noqa: F401 (fixtures)
    PostgresServer,
    RedisServer,
    own_postgres_fixture,
    own_redis_fixture,
)

pytestmark = [pytest.mark.services, pytest.mark.worker]

PROMPTS = 24
CHUNK_SIZE = 2
# Short leases and a sweeper every second, so a dead worker's chunk is taken again within
# seconds; heartbeats every second (live_app) keep a live worker's lease however loaded.
RECOVERY = {
    "CHUNK_LEASE_SECONDS": "10",
    "SWEEP_SECONDS": "1",
    "JOB_LOST_AFTER_SECONDS": "20",
}


def scalar(app: LiveApp, sql: str, **params: object) -> int:
    """One number from the app's database, on a connection of its own (the database may just
    have restarted)."""
    deadline = time.monotonic() + 60
    while True:
        engine = create_engine(app.env["DATABASE_URL"])
        try:
            with engine.connect() as connection:
                return int(connection.execute(text(sql), params).scalar_one())
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
        finally:
            engine.dispose()


def launch_generation(app: LiveApp, client: httpx.Client, tiny_model: Path) -> int:
    """Registers the tiny model and launches a run of PROMPTS prompts in chunks of CHUNK_SIZE."""
    token = app.csrf(client)
    app.register_model(client, "tiny", tiny_model)
    launched = client.post(
        "/generate",
        data={
            "constitution_version_id": scalar(
                app, "SELECT id FROM constitution_version WHERE number = 1"
            ),
            "prompt_set_id": scalar(app, "SELECT id FROM prompt_set WHERE source = 'built-in'"),
            "model_id": scalar(app, "SELECT id FROM language_model WHERE name = 'tiny'"),
            "rounds": "1",
            "max_prompts": str(PROMPTS),
            "sample_size": "0",
            "seed": "3",
            "max_new_tokens": "16",
            "temperature": "1.0",
            "top_p": "1.0",
            "chunk_size": str(CHUNK_SIZE),
            "reviews_needed": "1",
            "stop": "",
            "csrf_token": token,
        },
        timeout=60,
    )
    assert launched.status_code == 303, launched.text
    return int(launched.headers["location"].rsplit("/", 1)[1])


def traces(app: LiveApp, job_id: int) -> int:
    return scalar(app, "SELECT count(*) FROM trace WHERE job_id = :j", j=job_id)


def wait_for_traces(app: LiveApp, job_id: int, at_least: int, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while traces(app, job_id) < at_least:
        assert time.monotonic() < deadline, f"fewer than {at_least} traces:\n{app.log_tail()}"
        time.sleep(0.2)


def worker_errors(app: LiveApp) -> str:
    """The workers' warnings, errors and failed tasks, from the start (the log tail has only
    the end, where a stalled run shows nothing)."""
    lines = [
        f"{log.name}: {line}"
        for log in sorted(app.logs.glob("worker*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if any(word in line for word in ("WARNING", "ERROR", "raised", "Error:"))
    ]
    return "\n".join(lines[:80])


def assert_completed_once(app: LiveApp, client: httpx.Client, job_id: int) -> None:
    try:
        done = wait_for_job(client, job_id, app, timeout=600, until=("succeeded",))
    except AssertionError as failed:
        raise AssertionError(
            f"{failed}\n--- worker warnings and errors\n{worker_errors(app)}"
        ) from None
    assert f"{PROMPTS} stored" in done, done + app.log_tail()
    assert traces(app, job_id) == PROMPTS, app.log_tail()
    distinct = "SELECT count(DISTINCT prompt_id) FROM trace WHERE job_id = :j"
    assert scalar(app, distinct, j=job_id) == PROMPTS
    undone = "SELECT count(*) FROM chunk WHERE job_id = :j AND status <> 'done'"
    assert scalar(app, undone, j=job_id) == 0, app.log_tail()
    assert scalar(app, "SELECT count(*) FROM chunk WHERE job_id = :j", j=job_id) == (
        PROMPTS // CHUNK_SIZE
    )


@pytest.fixture
def redis_app(tmp_path: Path, own_redis: RedisServer, postgres_url: str) -> Iterator[LiveApp]:
    with live_app(tmp_path, database_url=postgres_url, broker_url=own_redis.url, **RECOVERY) as app:
        yield app


def test_a_redis_restart_mid_run_and_the_run_completes(
    redis_app: LiveApp, own_redis: RedisServer, tiny_model: Path
) -> None:
    client = redis_app.signed_in_client()
    job_id = launch_generation(redis_app, client, tiny_model)
    wait_for_traces(redis_app, job_id, 4)
    # A planned restart: Redis writes its data and loads it again, the workers reconnect.
    own_redis.restart(down_seconds=3)
    assert traces(redis_app, job_id) < PROMPTS, "the run ended before the restart"
    assert_completed_once(redis_app, client, job_id)


def test_a_postgres_restart_mid_run_and_the_run_completes(
    tmp_path: Path, own_redis: RedisServer, own_postgres: PostgresServer, tiny_model: Path
) -> None:
    with live_app(
        tmp_path, database_url=own_postgres.url, broker_url=own_redis.url, **RECOVERY
    ) as app:
        client = app.signed_in_client()
        job_id = launch_generation(app, client, tiny_model)
        wait_for_traces(app, job_id, 4)
        # A fast shutdown cuts every connection the web app and the workers hold.
        own_postgres.restart(down_seconds=3)
        assert traces(app, job_id) < PROMPTS, "the run ended before the restart"
        assert_completed_once(app, client, job_id)


def test_the_broker_down_at_launch_and_the_run_starts_when_it_is_back(
    redis_app: LiveApp, own_redis: RedisServer, tiny_model: Path
) -> None:
    client = redis_app.signed_in_client()
    own_redis.stop(keep_data=False)
    started = time.monotonic()
    job_id = launch_generation(redis_app, client, tiny_model)
    assert time.monotonic() - started < 30, "the launch waited on the broker"
    page = client.get(f"/jobs/{job_id}").text
    assert 'data-status="queued"' in page and "waiting for the broker" in page, page
    time.sleep(3)  # the sweepers run while the broker is down; the job keeps waiting
    assert "waiting for the broker" in client.get(f"/jobs/{job_id}/status").text
    own_redis.start()
    assert_completed_once(redis_app, client, job_id)


def test_a_worker_killed_mid_run_with_another_running_and_the_run_completes(
    tmp_path: Path, own_redis: RedisServer, postgres_url: str, tiny_model: Path
) -> None:
    with live_app(
        tmp_path, database_url=postgres_url, broker_url=own_redis.url, workers=2, **RECOVERY
    ) as app:
        client = app.signed_in_client()
        job_id = launch_generation(app, client, tiny_model)
        wait_for_traces(app, job_id, 4)
        # Killed while it holds a chunk, so that chunk must be taken again by the other.
        # A chunk names its worker "host:pid"; with the solo pool the task runs in the
        # worker's own process.
        holding = (
            "SELECT count(*) FROM chunk WHERE job_id = :j AND status = 'running' AND worker LIKE :w"
        )
        pid = app.processes["worker"].pid
        deadline = time.monotonic() + 300
        while not scalar(app, holding, j=job_id, w=f"%:{pid}"):
            assert time.monotonic() < deadline, "worker 1 never held a chunk:\n" + app.log_tail()
            time.sleep(0.05)
        app.processes["worker"].kill()  # SIGKILL: no clean shutdown, no chance to say so
        app.processes["worker"].wait()
        assert traces(app, job_id) < PROMPTS, "the run ended before the kill"
        assert_completed_once(app, client, job_id)
        retried = "SELECT count(*) FROM chunk WHERE job_id = :j AND attempts > 1"
        assert scalar(app, retried, j=job_id) >= 1, app.log_tail()
