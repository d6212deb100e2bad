import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.chunks_view import CHUNKS_SHOWN
from app.job_records import mark_lost_jobs
from app.models import Chunk, ChunkStatus, Job, JobMetric, JobStatus, Role, User
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


def test_a_results_page_is_told_to_reload_once_its_job_has_ended(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.VIEWER)
    running = add_job(session, status=JobStatus.RUNNING, heartbeat_at=utcnow())
    waiting = client.get(f"/jobs/{running.id}/finished")
    assert waiting.status_code == 204 and "hx-refresh" not in waiting.headers
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        ended = client.get(f"/jobs/{add_job(session, status=status).id}/finished")
        assert ended.status_code == 200 and ended.headers["hx-refresh"] == "true"
    assert client.get("/jobs/999999/finished").status_code == 404


def test_a_job_whose_worker_died_is_shown_as_lost_once_the_sweeper_marked_it(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    stale = add_job(
        session, status=JobStatus.RUNNING, heartbeat_at=utcnow() - timedelta(minutes=10)
    )
    fresh = add_job(session, status=JobStatus.RUNNING, heartbeat_at=utcnow())
    client = make_client(Role.VIEWER)
    # Reading the list marks nothing: that is the workers' sweeper's job.
    client.get("/jobs")
    session.refresh(stale)
    assert stale.status == JobStatus.RUNNING
    assert mark_lost_jobs(session=session, lost_after_seconds=120) == 1
    page = client.get("/jobs")
    session.refresh(stale)
    session.refresh(fresh)
    assert stale.status == JobStatus.LOST and "stopped reporting" in (stale.error or "")
    assert fresh.status == JobStatus.RUNNING
    assert "status-lost" in page.text


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on `engine` inside the block."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.lstrip().split(None, 1)[0].upper() in WRITES]


WRITES = {"INSERT", "UPDATE", "DELETE", "REPLACE"}


def test_reading_a_job_writes_nothing_not_even_for_a_silent_worker(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    client = make_client(Role.VIEWER)
    silent = add_job(
        session, status=JobStatus.RUNNING, heartbeat_at=utcnow() - timedelta(minutes=10)
    )
    training = Job(kind="train", queue="gpu", status=JobStatus.RUNNING, heartbeat_at=utcnow())
    session.add(training)
    session.commit()
    session.add(JobMetric(job_id=training.id or 0, step=1, name="loss", value=1.0))
    session.commit()
    add_chunks(session, silent)
    with statements(engine) as seen:
        for url in (
            "/jobs",
            f"/jobs/{silent.id}",
            f"/jobs/{silent.id}/status",
            f"/jobs/{training.id}",
            f"/jobs/{training.id}/status?after_metric=0",
        ):
            assert client.get(url).status_code == 200, url
    assert seen and not writes(seen), writes(seen)
    session.refresh(silent)
    assert silent.status == JobStatus.RUNNING


def test_a_training_poll_reads_only_the_metrics_after_the_pages_last(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    job = Job(kind="train", queue="gpu", status=JobStatus.RUNNING, heartbeat_at=utcnow())
    session.add(job)
    session.commit()
    for step in range(1, 51):
        session.add(JobMetric(job_id=job.id or 0, step=step, name="loss", value=1 / step))
    session.commit()
    client = make_client(Role.VIEWER)
    page = client.get(f"/jobs/{job.id}").text
    assert 'data-metric="loss" data-points="50"' in page
    # The page tells static/curves.js which chart a metric not drawn yet goes on.
    chart_of = re.search(r"data-chart-of='([^']*)'", page)
    assert chart_of is not None and json.loads(chart_of.group(1))["eval_loss"] == "loss"
    # The page's poll names the last metric row it has.
    cursor = re.search(r'hx-get="/jobs/\d+/status\?after_metric=(\d+)"', page)
    assert cursor is not None
    after = int(cursor.group(1))
    assert after == max(m.id or 0 for m in session.exec(select(JobMetric)))

    # Nothing new: the fragment carries no curve points and keeps the page's curves.
    quiet = client.get(f"/jobs/{job.id}/status?after_metric={after}").text
    assert "data-new-points" not in quiet and "data-series" not in quiet
    assert 'id="job-curves" hx-preserve="true"' in quiet
    assert f"after_metric={after}" in quiet

    # An evaluation at a step the page already has a loss for, and a new step.
    session.add(JobMetric(job_id=job.id or 0, step=50, name="eval_loss", value=0.5))
    session.add(JobMetric(job_id=job.id or 0, step=51, name="loss", value=0.01))
    session.add(JobMetric(job_id=job.id or 0, step=51, name="epoch", value=1.0))
    session.commit()
    with statements(engine) as seen:
        fresh = client.get(f"/jobs/{job.id}/status?after_metric={after}").text
    points = re.search(r"data-new-points='([^']*)'", fresh)
    assert points is not None
    assert json.loads(points.group(1)) == {"eval_loss": [[50, 0.5]], "loss": [[51, 0.01]]}
    assert f"after_metric={after + 3}" in fresh
    # The metric read is bounded by the cursor (and a row limit), not the whole series.
    metric_reads = [s for s in seen if "job_metric" in s]
    assert metric_reads and all("job_metric.id >" in s for s in metric_reads), metric_reads
    assert all("LIMIT" in s.upper() for s in metric_reads)


def add_chunks(session: Session, job: Job) -> list[Chunk]:
    """A chunk in each state, as a run across workers leaves them."""
    now = utcnow()
    rows = [
        Chunk(
            job_id=job.id or 0,
            index=0,
            item_ids=[1, 2, 3, 4],
            status=ChunkStatus.DONE,
            attempts=1,
            worker="gpu@alpha",
            seconds=12.5,
            steps_done=8,
            steps_total=8,
        ),
        Chunk(
            job_id=job.id or 0,
            index=1,
            item_ids=[5, 6, 7, 8],
            status=ChunkStatus.DONE,
            attempts=2,
            worker="gpu@beta",
            seconds=9.0,
            steps_done=8,
            steps_total=8,
        ),
        Chunk(
            job_id=job.id or 0,
            index=2,
            item_ids=[9, 10, 11, 12],
            status=ChunkStatus.RUNNING,
            attempts=1,
            worker="gpu@gamma",
            started_at=now,
            message="round 1 critiques · 4 prompts",
            steps_done=2,
            steps_total=8,
            lease_expires_at=now + timedelta(seconds=60),
        ),
        Chunk(job_id=job.id or 0, index=3, item_ids=[13, 14, 15, 16], status=ChunkStatus.QUEUED),
        Chunk(
            job_id=job.id or 0,
            index=4,
            item_ids=[17, 18],
            status=ChunkStatus.FAILED,
            attempts=3,
            worker="gpu@delta",
            error="CUDA out of memory on prompt 17",
        ),
    ]
    session.add_all(rows)
    session.commit()
    return rows


def test_a_run_page_shows_its_chunks_and_their_summed_progress(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    job = Job(
        kind="generate", queue="gpu", status=JobStatus.RUNNING, heartbeat_at=utcnow(), parameters={}
    )
    session.add(job)
    session.commit()
    add_chunks(session, job)
    client = make_client(Role.VIEWER)
    for html in (client.get(f"/jobs/{job.id}").text, client.get(f"/jobs/{job.id}/status").text):
        rows = dict(re.findall(r'<tr data-chunk="(\d+)"(.*?)</tr>', html, re.S))
        assert set(rows) == {"0", "1", "2", "3", "4"}
        assert 'data-chunk-status="done"' in rows["0"] and "gpu@alpha" in rows["0"]
        assert "12.5" in rows["0"] and "retried" not in rows["0"]
        assert "data-retried" in rows["1"] and "retried" in rows["1"]
        running = rows["2"]
        assert 'data-chunk-status="running"' in running and "gpu@gamma" in running
        assert "round 1 critiques · 4 prompts" in running and "2 / 8" in running
        assert 'data-chunk-status="queued"' in rows["3"]
        assert 'data-chunk-status="failed"' in rows["4"]
        assert "CUDA out of memory on prompt 17" in rows["4"]
        assert "5 chunks: 2 done · 1 failed · 1 queued · 1 running · 2 retried" in html
        # Progress: 8 items of the done chunks, plus a quarter of the running one's 4.
        assert 'max="18" value="9"' in html and "9 / 18" in html


def test_a_run_with_many_chunks_lists_a_bounded_few_running_first(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    job = Job(kind="generate", queue="gpu", status=JobStatus.RUNNING, heartbeat_at=utcnow())
    session.add(job)
    session.commit()
    total = CHUNKS_SHOWN + 30
    session.add_all(
        Chunk(
            job_id=job.id or 0,
            index=i,
            item_ids=[i + 1],
            status=ChunkStatus.RUNNING if i == total - 1 else ChunkStatus.DONE,
            attempts=1,
        )
        for i in range(total)
    )
    session.commit()
    html = make_client(Role.VIEWER).get(f"/jobs/{job.id}/status").text
    listed = re.findall(r'<tr data-chunk="(\d+)"', html)
    assert len(listed) == CHUNKS_SHOWN and str(total - 1) in listed
    assert "30 more chunks" in html


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
