"""A whole generation run through a real worker, killed part-way (SIGKILL) and resumed."""

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.live import LiveApp, live_app, wait_for_job

pytestmark = [pytest.mark.worker]
PROMPTS = 24


def count(app: LiveApp, sql: str, **params: object) -> int:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


def test_a_killed_run_resumes_and_stores_every_prompt_once(
    tmp_path: Path, tiny_model: Path
) -> None:
    with live_app(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'live.sqlite'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
        # Beats every second; 10 s without one is a dead worker even on a loaded machine
        # (3 s once marked a slow but live worker lost).
        JOB_LOST_AFTER_SECONDS="10",
    ) as app:
        client = app.signed_in_client()
        token = app.csrf(client)
        registered = client.post(
            "/models",
            data={
                "name": "tiny",
                "backend": "transformers",
                "path": str(tiny_model),
                "csrf_token": token,
            },
        )
        assert registered.status_code == 303, registered.text
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
                "rounds": "2",
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

        deadline = time.monotonic() + 300
        while count(app, "SELECT count(*) FROM trace WHERE job_id = :j", j=job_id) < 4:
            assert time.monotonic() < deadline, app.log_tail()
            time.sleep(0.2)
        app.processes["worker"].kill()  # SIGKILL: no clean shutdown, no chance to mark the job
        app.processes["worker"].wait()
        stored_before = count(app, "SELECT count(*) FROM trace WHERE job_id = :j", j=job_id)
        assert stored_before < PROMPTS

        lost = wait_for_job(client, job_id, app, timeout=120, until=("lost",))
        assert 'data-status="lost"' in lost

        app.restart_worker()
        resumed = client.post(f"/jobs/{job_id}/resume", data={"csrf_token": token})
        assert resumed.status_code == 303, resumed.text
        done = wait_for_job(client, job_id, app, timeout=600, until=("succeeded",))
        assert 'data-status="succeeded"' in done, done + app.log_tail()
        assert f"{PROMPTS} stored" in done

        assert count(app, "SELECT count(*) FROM trace WHERE job_id = :j", j=job_id) == PROMPTS
        assert (
            count(app, "SELECT count(DISTINCT prompt_id) FROM trace WHERE job_id = :j", j=job_id)
            == PROMPTS
        )
        steps = count(
            app,
            "SELECT count(*) FROM trace_step s JOIN trace t ON t.id = s.trace_id"
            " WHERE t.job_id = :j",
            j=job_id,
        )
        assert steps == PROMPTS * 2
        log = (app.logs / "worker-restarted.log").read_text()
        assert "succeeded" in log or "Task worker.tasks.run_generation" in log
