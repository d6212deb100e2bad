from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.job_records import mark_lost_jobs
from app.models import Job, JobStatus, Role, User
from app.timeutil import utcnow
from tests.conftest import post


def add_job(session: Session, **fields: object) -> Job:
    job = Job(kind="import_prompts", queue="cpu", **fields)
    session.add(job)
    session.commit()
    session.refresh(job)
    return job


def test_the_status_fragment_polls_only_while_the_job_runs(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.VIEWER)
    running = add_job(
        session, status=JobStatus.RUNNING, heartbeat_at=utcnow(), progress_done=3, progress_total=10
    )
    fragment = client.get(f"/jobs/{running.id}/status").text
    assert 'hx-trigger="load delay:1s"' in fragment and 'value="3"' in fragment
    assert "<html" not in fragment
    done = add_job(session, status=JobStatus.SUCCEEDED, progress_done=10, progress_total=10)
    assert "hx-trigger" not in client.get(f"/jobs/{done.id}/status").text


def test_a_job_whose_worker_died_is_shown_as_lost(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    stale = add_job(
        session, status=JobStatus.RUNNING, heartbeat_at=utcnow() - timedelta(minutes=10)
    )
    fresh = add_job(session, status=JobStatus.RUNNING, heartbeat_at=utcnow())
    page = make_client(Role.VIEWER).get("/jobs")
    session.refresh(stale)
    session.refresh(fresh)
    assert stale.status == JobStatus.LOST and "stopped reporting" in (stale.error or "")
    assert fresh.status == JobStatus.RUNNING
    assert "status-lost" in page.text
    assert mark_lost_jobs(session=session, lost_after_seconds=120) == 0


def test_cancel_a_queued_job_at_once_and_a_running_one_at_its_next_step(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    queued = add_job(session)
    assert post(client, f"/jobs/{queued.id}/cancel").status_code == 303
    session.refresh(queued)
    assert queued.status == JobStatus.CANCELLED

    running = add_job(session, status=JobStatus.RUNNING, heartbeat_at=utcnow())
    fragment = post(client, f"/jobs/{running.id}/cancel", headers={"HX-Request": "true"})
    assert "Cancelling" in fragment.text
    session.refresh(running)
    assert running.cancel_requested and running.status == JobStatus.RUNNING


def test_job_list_shows_who_launched_what(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    add_job(
        session,
        created_by_id=users[Role.AUTHOR].id,
        status=JobStatus.FAILED,
        error="line 4: not JSON",
    )
    page = make_client(Role.VIEWER).get("/jobs").text
    assert "line 4: not JSON" in page and ">author<" in page
