"""An import end to end through a real celery worker: SQLite + SQLite broker, PostgreSQL + Redis."""

import gzip
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.live import LiveApp, live_app, wait_for_job

pytestmark = [pytest.mark.worker]


def hh_rlhf_upload(real_file: Path | None) -> tuple[str, bytes, int]:
    """The real file where it is here; otherwise a small one in its format."""
    if real_file is not None:
        return real_file.name, real_file.read_bytes(), 1800
    lines = [
        json.dumps(
            {"chosen": f"\n\nHuman: question number {i}?\n\nAssistant: an answer", "rejected": "x"}
        )
        for i in range(40)
    ]
    return "small.jsonl.gz", gzip.compress("\n".join(lines).encode()), 40


@pytest.fixture(params=["sqlite", "postgres+redis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveApp]:
    if request.param == "sqlite":
        urls = {
            "database_url": f"sqlite:///{tmp_path / 'live.sqlite'}",
            "broker_url": f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
        }
    else:
        urls = {
            "database_url": request.getfixturevalue("postgres_url"),
            "broker_url": request.getfixturevalue("redis_url"),
        }
    # Every upload is left to the worker to check, so the worker's error path runs too.
    with live_app(tmp_path, **urls, CHECK_UPLOAD_IN_REQUEST_MB="0") as running:
        yield running


def test_an_import_runs_end_to_end_on_a_real_worker(
    app: LiveApp, shared_data_or_none: Callable[[str], Path | None]
) -> None:
    client = app.signed_in_client()
    # The first run loaded the built-in example set.
    assert "Example prompts (built-in)" in client.get("/prompt-sets").text

    filename, content, lines = hh_rlhf_upload(
        shared_data_or_none("hh-rlhf/harmless-base-test-dev.jsonl.gz")
    )
    response = client.post(
        "/prompt-sets/import",
        data={"name": "HH harmless", "format": "hh-rlhf", "csrf_token": app.csrf(client)},
        files={"file": (filename, content)},
    )
    assert response.status_code == 303, response.text
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    fragment = wait_for_job(client, job_id, app)
    assert 'data-status="succeeded"' in fragment, fragment + app.log_tail()
    set_id = int(re.search(r"/prompt-sets/(\d+)", fragment).group(1))  # type: ignore[union-attr]

    engine = create_engine(app.env["DATABASE_URL"])
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM prompt WHERE prompt_set_id = :id"), {"id": set_id}
        ).scalar_one()
        row = connection.execute(
            text("SELECT prompt_count, duplicates_dropped FROM prompt_set WHERE id = :id"),
            {"id": set_id},
        ).one()
        job = connection.execute(
            text("SELECT status, worker, started_at, finished_at FROM job WHERE id = :id"),
            {"id": job_id},
        ).one()
    engine.dispose()
    assert stored == row.prompt_count and stored + row.duplicates_dropped == lines
    assert job.status == "succeeded" and job.worker and job.started_at <= job.finished_at

    page = client.get(f"/prompt-sets/{set_id}", params={"q": "the"})
    assert re.search(r"(\d+) prompts? matching", page.text)


def test_a_bad_file_fails_its_job_naming_the_line_and_stores_nothing(
    app: LiveApp, tmp_path: Path
) -> None:
    client = app.signed_in_client()
    good = "\n".join(json.dumps({"prompt": f"prompt {i}"}) for i in range(70_000))
    content = (good + '\n{"prompt": 12}\n').encode()
    response = client.post(
        "/prompt-sets/import",
        data={
            "name": "broken",
            "format": "jsonl",
            "field": "prompt",
            "csrf_token": app.csrf(client),
        },
        files={"file": ("big.jsonl", content)},
    )
    assert response.status_code == 303, response.text
    fragment = wait_for_job(client, int(response.headers["location"].rsplit("/", 1)[1]), app)
    assert 'data-status="failed"' in fragment
    assert "line 70001" in fragment
    assert "broken" not in client.get("/prompt-sets").text
