"""The constitution A/B job: `cai compare-runs` as a job of its own, launched from the browser
(app/routes/constitution_ab.py); its result is the report worker.pipeline.constitution_ab
makes, with the runs' and the judge's names."""

import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.constitutions import to_document
from app.models import ConstitutionVersion, LanguageModel
from app.specs.constitution_ab import ConstitutionABSpec
from worker.backends.base import Backend
from worker.backends.loading import load_backend
from worker.constitution_ab_rows import load_ab_items
from worker.lifecycle import JobContext
from worker.pipeline.constitution_ab import compare_runs


def run_constitution_ab(
    engine: Engine,
    context: JobContext,
    *,
    open_backend: Callable[[LanguageModel], Backend] | None = None,
) -> None:
    spec = ConstitutionABSpec.from_parameters(context.parameters)
    with Session(engine) as session:
        # An ABRunsError (no shared prompt, not a generation run) fails the job with its words.
        items = load_ab_items(session, spec.run_a_id, spec.run_b_id, limit=spec.limit)
        judge = session.get(LanguageModel, spec.judge_model_id)
        if judge is None:
            raise LookupError(f"model {spec.judge_model_id} does not exist")
        version = session.get(ConstitutionVersion, spec.constitution_version_id)
        if version is None:
            raise LookupError(f"constitution version {spec.constitution_version_id} does not exist")
        constitution = to_document(session=session, version=version)
        session.expunge(judge)
    # Three comparisons per prompt (B over A, and each run's revision over its initial reply).
    total = 3 * len(items)
    context.progress(0, total, f"loading {judge.name}")
    backend = (open_backend or load_backend)(judge)
    started = time.monotonic()
    context.progress(0, total, f"judging {len(items)} prompts in common with {judge.name}")
    try:
        report = compare_runs(items, constitution, backend, seed=spec.seed)
    finally:
        backend.close()
    context.progress(total, total, f"{len(items)} prompts judged")
    context.result.update(
        judge=judge.name,
        version=version.label,
        seconds=round(time.monotonic() - started, 3),
        **report,
    )
