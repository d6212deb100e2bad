"""The worker's Celery app: `celery -A worker.celery_app worker -Q gpu,cpu`."""

from kombu import Queue

from app.queue import CPU_QUEUE, GPU_QUEUE, make_celery

celery_app = make_celery()
celery_app.conf.task_queues = (Queue(GPU_QUEUE), Queue(CPU_QUEUE))
celery_app.conf.include = ["worker.tasks"]
app = celery_app
