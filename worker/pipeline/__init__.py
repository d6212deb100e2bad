"""The recipe's stages as plain functions over plain data: no Celery, FastAPI or SQL."""
