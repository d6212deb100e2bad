"""The recipe as plain data and pure functions: shared by the web app (previews) and the worker.

Nothing here touches SQL, FastAPI, Celery or torch.
"""
