"""The web side of the job queue: sends tasks by name, so the web process imports no worker code."""

from typing import Protocol

from celery import Celery

from app.settings import Settings, get_settings

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"


def celery_config(settings: Settings) -> dict[str, object]:
    """Shared by the web app (which only sends) and the worker (which also receives)."""
    return {
        "broker_url": settings.broker_url,
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": CPU_QUEUE,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": broker_transport_options(settings.broker_url),
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
    }


def broker_transport_options(broker_url: str) -> dict[str, object]:
    if broker_url.startswith("redis"):
        # A late-acknowledged task is redelivered after this long unacknowledged: longer than
        # any training job, so a slow job is never run twice at once.
        return {"visibility_timeout": 24 * 3600}
    # kombu's SQLAlchemy transport passes its options straight to create_engine.
    return {}


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("cai")
    app.conf.update(celery_config(settings))
    return app


class JobQueue(Protocol):
    def send(self, task_name: str, job_id: int, queue: str) -> str: ...


class CeleryJobQueue:
    def __init__(self, celery: Celery) -> None:
        self._celery = celery

    def send(self, task_name: str, job_id: int, queue: str) -> str:
        result = self._celery.send_task(task_name, args=[job_id], queue=queue)
        return str(result.id)


_queue: JobQueue | None = None


def get_job_queue() -> JobQueue:
    global _queue
    if _queue is None:
        _queue = CeleryJobQueue(make_celery())
    return _queue
