"""The web side of the job queue: sends tasks by name, so the web process imports no worker code.

The configuration both sides share (queues, the task table) is in app.celery_config.
"""

from typing import Protocol

from celery import Celery

from app.celery_config import make_celery
from app.settings import Settings

# The web request waits while it sends: a broker that is down, or that accepts the connection
# and never answers, must make the send fail within seconds (the job then waits for the
# broker and a worker's sweeper sends it again), not hang the request for minutes.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
SEND_TIMEOUT_SECONDS = 3


class JobQueue(Protocol):
    def send(self, task_name: str, job_id: int, queue: str) -> str: ...


class CeleryJobQueue:
    def __init__(self, celery: Celery) -> None:
        self._celery = celery

    def send(self, task_name: str, job_id: int, queue: str) -> str:
        result = self._celery.send_task(task_name, args=[job_id], queue=queue)
        return str(result.id)


_queue: JobQueue | None = None


def sending_celery(settings: Settings | None = None) -> Celery:
    """The shared configuration, with the short timeouts and retries of a sender only: the
    worker keeps its own (a consumer waits for the broker as long as it takes)."""
    celery = make_celery(settings)
    options = dict(celery.conf.broker_transport_options or {})
    # kombu retries opening the channel for ever unless told otherwise (the SQLAlchemy
    # transport drops this option before it passes the rest to create_engine).
    options["max_retries"] = PUBLISH_RETRY_POLICY["max_retries"]
    if celery.conf.broker_url.startswith("redis"):
        options.update(
            PUBLISH_RETRY_POLICY,
            socket_timeout=SEND_TIMEOUT_SECONDS,
            socket_connect_timeout=SEND_TIMEOUT_SECONDS,
        )
    celery.conf.update(
        broker_connection_timeout=SEND_TIMEOUT_SECONDS,
        broker_transport_options=options,
        task_publish_retry_policy=PUBLISH_RETRY_POLICY,
    )
    return celery


def get_job_queue() -> JobQueue:
    global _queue
    if _queue is None:
        _queue = CeleryJobQueue(sending_celery())
    return _queue
