"""The labeller evaluation job: a model's accuracy on HHH multiple-choice questions, per setting."""

import math
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import LanguageModel
from app.specs.labelling import LabellerEvalSpec
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
    context.progress(0, len(settings), f"loading {model.name}")
    backend = load_backend(model)
    results = []
    try:
        for done, setting in enumerate(settings, start=1):
            results.extend(evaluate(items, backend, [setting]))
            context.progress(done, len(settings), f"{setting.name}: {len(items)} questions")
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
