"""The judge-check job: the refusal judge on a people-labelled completions file (XSTest's
format), its per-row classes and its agreement with the people (worker.judge_check)."""

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import LanguageModel
from app.prompt_files.xstest import load_labelled_completions
from app.specs.judge_check import JudgeCheckSpec
from app.timeutil import format_duration
from app.upload_store import remove_upload, upload_byte_limit
from worker.backends.base import Backend
from worker.backends.loading import load_backend
from worker.judge_check import judge_rows, summarise
from worker.lifecycle import JobContext


def run_judge_check(
    engine: Engine,
    context: JobContext,
    *,
    open_backend: Callable[[LanguageModel], Backend] | None = None,
) -> None:
    params = context.parameters
    try:
        rows = load_labelled_completions(
            Path(params["path"]), name=params.get("filename"), max_bytes=upload_byte_limit()
        )
    finally:
        # Read whole and never again (the result keeps only the file's name): the upload goes
        # now, whether or not it was good. A file named on the command line is not touched.
        remove_upload(params["path"])
    spec = JudgeCheckSpec.from_parameters(params)
    if spec.limit:
        rows = rows[: spec.limit]
    with Session(engine) as session:
        model = session.get(LanguageModel, spec.model_id)
        if model is None:
            raise LookupError(f"model {spec.model_id} does not exist")
    total = len(rows)
    context.progress(0, total, f"loading {model.name}")
    backend = (open_backend or load_backend)(model)
    done, started = 0, time.monotonic()

    def judged(count: int) -> None:
        # Each batch moves the job (and lets a cancel stop it there).
        nonlocal done
        done += count
        rate = done / max(1e-9, time.monotonic() - started)
        left = format_duration((total - done) / rate)
        context.progress(done, total, f"{done} of {total} replies classed · about {left} left")

    try:
        results = judge_rows(rows, backend, batch_size=spec.batch_size, progress=judged)
    finally:
        backend.close()
    context.result.update(
        model=model.name,
        file=spec.filename,
        seconds=round(time.monotonic() - started, 3),
        **summarise(results),
        rows=results,
    )
