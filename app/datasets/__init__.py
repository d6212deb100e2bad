"""Datasets from reviewed critique/revision traces: plain records in, rows and files out.

`records` holds the input dataclasses, `helpful_files` reads helpful rows to mix in, `rows`
filters traces and builds the SFT and preference rows, `export` writes JSON lines, Parquet and
`save_to_disk` folders, and `card` renders the dataset card. Nothing here touches SQL, FastAPI
or Celery, so the worker, the CLI and the tests call the same functions.
"""
