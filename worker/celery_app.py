"""The worker's Celery app: `celery -A worker.celery_app worker -Q gpu,cpu`."""

from app.celery_config import make_celery

celery_app = make_celery()
celery_app.conf.include = ["worker.tasks"]
app = celery_app
