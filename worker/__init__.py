"""The Celery worker: thin tasks over the pipeline stages."""
