"""The web side of the job queue: sends tasks by name, so the web process imports no worker code.

The configuration both sides share (queues, the task table) is in app.celery_config.
"""

from typing import Protocol

from celery import Celery

from app.celery_config import make_celery


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
