"""The labeller evaluation job: a model's accuracy on HHH multiple-choice questions, per setting."""

import math
import time
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import LanguageModel
from app.specs.labelling import LabellerEvalSpec
from app.timeutil import format_duration
from app.upload_store import remove_upload, upload_byte_limit
from worker.backends.loading import load_backend
from worker.evals.hhh import eval_settings, evaluate, first_questions, format_table, load_hhh
from worker.lifecycle import JobContext


def run_labeller_eval(engine: Engine, context: JobContext) -> None:
    params = context.parameters
    try:
        items = load_hhh(
            Path(params["path"]), name=params.get("filename"), max_bytes=upload_byte_limit()
        )
    finally:
        # Read whole and never again (the result keeps only the file's name), so the upload
        # goes now, whether or not it was good.
        remove_upload(params["path"])
    # The upload is read from the raw row above, so that it goes even if the rest of the row
    # does not validate; everything else comes from the spec.
    spec = LabellerEvalSpec.from_parameters(params)
    items = first_questions(items, spec)
    settings = eval_settings(spec)
    with Session(engine) as session:
        model = session.get(LanguageModel, spec.model_id)
        if model is None:
            raise LookupError(f"model {spec.model_id} does not exist")
    total = len(items) * len(settings)
    context.progress(0, total, f"loading {model.name}")
    backend = load_backend(model)
    results = []
    done, started = 0, time.monotonic()
    try:
        for setting in settings:

            def scored(count: int, name: str = setting.name) -> None:
                # Each batch of questions moves the job (and lets a cancel stop it there).
                nonlocal done
                done += count
                rate = done / max(1e-9, time.monotonic() - started)
                left = format_duration((total - done) / rate)
                context.progress(done, total, f"{name}: {done} of {total} · about {left} left")

            results.extend(evaluate(items, backend, [setting], progress=scored))
    finally:
        backend.close()
    context.result.update(
        model=model.name,
        file=spec.filename,
        questions=len(items),
        # NaN (no question scored) is not JSON: store it as null.
        results=[
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(r).items()}
            for r in results
        ],
        table=format_table(results),
    )
