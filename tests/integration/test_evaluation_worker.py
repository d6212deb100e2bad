"""An evaluation run through a real worker with the tiny model, launched from the form, its
worker SIGKILLed part-way: a new worker finishes it, with replies, judgements, refusal classes and
ratings, every prompt stored once."""

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.live import LiveApp, live_app, wait_for_job

pytestmark = [pytest.mark.worker]
PROMPTS = 8


def scalar(app: LiveApp, sql: str, **params: object) -> object:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar_one()
    finally:
        engine.dispose()


def count(app: LiveApp, sql: str, **params: object) -> int:
    return int(scalar(app, sql, **params))  # type: ignore[call-overload]


@pytest.fixture(params=["sqlite", "postgres+redis"])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return (
            f"sqlite:///{tmp_path / 'live.sqlite'}",
            f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
        )
    return request.getfixturevalue("postgres_url"), request.getfixturevalue("redis_url")


def test_an_evaluation_survives_a_killed_worker(
    tmp_path: Path, tiny_model: Path, services: tuple[str, str]
) -> None:
    database_url, broker_url = services
    with live_app(
        tmp_path,
        database_url=database_url,
        broker_url=broker_url,
        CHUNK_LEASE_SECONDS="5",
        SWEEP_SECONDS="1",
    ) as app:
        client = app.signed_in_client()
        token = app.csrf(client)
        for name in ("tiny-a", "tiny-b"):
            app.register_model(client, name, tiny_model)
        first = count(app, "SELECT id FROM language_model WHERE name = 'tiny-a'")
        second = count(app, "SELECT id FROM language_model WHERE name = 'tiny-b'")
        version_id = count(app, "SELECT id FROM constitution_version WHERE number = 1")
        # The built-in over-refusal suite that `cai init` loads.
        suite_id = count(app, "SELECT id FROM prompt_set WHERE source = 'built-in suite'")
        launched = client.post(
            "/evaluations/new",
            data={
                "model_ids": [str(first), str(second)],
                "suite_ids": [str(suite_id)],
                "judge_model_id": str(first),
                "constitution_version_id": str(version_id),
                "max_new_tokens": "12",
                "temperature": "1.0",
                "top_p": "1.0",
                "top_k": "0",
                "repetition_penalty": "1.0",
                "max_prompts": str(PROMPTS),
                "seed": "1",
                "bootstrap_samples": "100",
                "chunk_size": "2",
                "csrf_token": token,
            },
        )
        assert launched.status_code == 303, launched.text
        job_id = int(launched.headers["location"].rsplit("/", 1)[1])
        classed = "SELECT count(*) FROM eval_refusal WHERE job_id = :j"

        deadline = time.monotonic() + 300
        while count(app, classed, j=job_id) < 2:
            assert time.monotonic() < deadline, app.log_tail()
            time.sleep(0.2)
        app.processes["worker"].kill()
        app.processes["worker"].wait()
        assert count(app, classed, j=job_id) < 2 * PROMPTS

        app.restart_worker()
        wait_for_job(client, job_id, app, timeout=600, until=("succeeded",))

        assert count(app, classed, j=job_id) == 2 * PROMPTS
        judged = "SELECT count(*) FROM eval_judgement WHERE job_id = :j"
        assert count(app, judged, j=job_id) == PROMPTS
        assert count(app, "SELECT count(*) FROM eval_answer") == 2 * PROMPTS
        unclassed = "SELECT count(*) FROM eval_refusal WHERE job_id = :j AND refusal_class IS NULL"
        assert count(app, unclassed, j=job_id) == 0
        raw = scalar(app, "SELECT result FROM job WHERE id = :j", j=job_id)
        result = json.loads(raw) if isinstance(raw, str) else raw
        assert isinstance(result, dict)
        helpful = [g for g in result["ratings"] if g["axis"] == "helpful"]
        assert helpful and all("table" in g for g in helpful), helpful
        over = [r for r in result["rates"] if r["kind"] == "over-refusal" and r["suite_id"] is None]
        assert {r["trials"] for r in over} == {PROMPTS}
        page = client.get(f"/evaluations/{job_id}")
        assert page.status_code == 200 and "Helpfulness" in page.text
