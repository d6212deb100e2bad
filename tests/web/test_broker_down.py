"""A launch while the broker is down: the job waits for the broker instead of failing."""

import socket
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from kombu.exceptions import OperationalError
from sqlmodel import Session

from app.models import Job, JobStatus, Role, User
from app.queue import get_job_queue, sending_celery
from app.settings import Settings
from tests.conftest import post
from tests.web.test_prompt_sets import jsonl


class DownQueue:
    """A broker that refuses every message, as kombu reports it."""

    def send(self, task_name: str, job_id: int, queue: str) -> str:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_launch_while_the_broker_is_down_leaves_the_job_waiting_for_it(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    client.app.dependency_overrides[get_job_queue] = DownQueue  # type: ignore[attr-defined]
    response = post(
        client,
        "/prompt-sets/import",
        data={"name": "Waiting", "format": "jsonl", "field": "prompt"},
        files={"file": ("mine.jsonl", jsonl("How do I bake bread?"))},
    )
    assert response.status_code == 303, response.text
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    job = session.get(Job, job_id)
    assert job is not None
    assert job.status == JobStatus.QUEUED and job.celery_task_id is None
    assert job.error is None and job.finished_at is None
    assert job.message.startswith("waiting for the broker: ")
    assert "Connection refused" in job.message
    page = client.get(f"/jobs/{job_id}")
    assert "waiting for the broker" in page.text and 'data-status="queued"' in page.text


def test_a_send_to_a_broker_that_never_answers_fails_within_seconds() -> None:
    # A port that accepts connections and never answers: kombu's defaults wait for ever.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = Settings(BROKER_URL=f"redis://127.0.0.1:{port}/0", _env_file=None)  # type: ignore[call-arg]
        celery = sending_celery(settings)
        started = time.monotonic()
        try:
            with pytest.raises(OperationalError):
                celery.send_task("worker.tasks.run_generation", args=[1], queue="gpu")
        finally:
            celery.close()
        assert time.monotonic() - started < 15
