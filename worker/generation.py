"""The generation job: loads its inputs by id, runs the engine chunk by chunk, stores each chunk.

Resumable: prompts that already have a trace for this job are skipped, and the database holds at
most one trace per job and prompt.
"""

import random
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.constitutions import to_document
from app.models import (
    ConstitutionVersion,
    LanguageModel,
    Principle,
    Prompt,
    Trace,
    TraceStep,
)
from app.prompt_sets import prompt_messages
from app.recipe.documents import ConstitutionDoc
from app.specs.generation import GenerationSpec, PromptSelection
from worker.backends.base import Backend
from worker.backends.loading import load_backend
from worker.lifecycle import JobContext
from worker.pipeline.critique_revision import (
    GenerationConfig,
    PromptInput,
    TraceResult,
    critique_and_revise,
)


@dataclass
class GenerationInputs:
    version_id: int
    model_id: int
    constitution: ConstitutionDoc
    principle_ids: dict[str, int]
    prompts: list[PromptInput]
    config: GenerationConfig
    chunk_size: int


def generation_config(spec: GenerationSpec) -> GenerationConfig:
    """The engine's config: the spec's fields by the same names."""
    return GenerationConfig(
        rounds=spec.rounds,
        seed=spec.seed,
        max_new_tokens=spec.max_new_tokens,
        critique_max_new_tokens=spec.critique_max_new_tokens,
        revision_max_new_tokens=spec.revision_max_new_tokens,
        temperature=spec.temperature,
        top_p=spec.top_p,
        stop=spec.stop,
    )


def select_prompts(session: Session, selection: PromptSelection) -> list[Prompt]:
    """A run's prompts: the set, or a seeded sample of it, cut to `max_prompts`."""
    rows = list(
        session.exec(
            select(Prompt)
            .where(Prompt.prompt_set_id == selection.prompt_set_id)
            .order_by(col(Prompt.position))
        )
    )
    if not rows:
        raise LookupError(f"prompt set {selection.prompt_set_id} has no prompts")
    if selection.sample_size and selection.sample_size < len(rows):
        chosen = set(random.Random(selection.seed).sample(range(len(rows)), selection.sample_size))
        rows = [row for index, row in enumerate(rows) if index in chosen]
    if selection.max_prompts:
        rows = rows[: selection.max_prompts]
    return rows


def load_inputs(session: Session, spec: GenerationSpec) -> GenerationInputs:
    version = session.get(ConstitutionVersion, spec.constitution_version_id)
    if version is None:
        raise LookupError(f"constitution version {spec.constitution_version_id} does not exist")
    rows = select_prompts(session, spec)
    principles = session.exec(select(Principle).where(Principle.version_id == version.id)).all()
    return GenerationInputs(
        version_id=version.id or 0,
        model_id=spec.model_id,
        constitution=to_document(session=session, version=version),
        principle_ids={p.key: p.id or 0 for p in principles},
        prompts=[
            PromptInput(
                prompt_id=row.id or 0,
                messages=prompt_messages(row.text, row.context),
            )
            for row in rows
        ],
        config=generation_config(spec),
        chunk_size=spec.chunk_size,
    )


def store_traces(
    session: Session, job_id: int, inputs: GenerationInputs, results: list[TraceResult]
) -> int:
    """Stores a chunk in one transaction; a prompt stored already (by an earlier try) is skipped."""
    stored = set(
        session.exec(
            select(Trace.prompt_id).where(
                Trace.job_id == job_id, col(Trace.prompt_id).in_([r.prompt_id for r in results])
            )
        )
    )
    count = 0
    for result in results:
        if result.prompt_id in stored:
            continue
        trace = Trace(
            job_id=job_id,
            prompt_id=result.prompt_id,
            constitution_version_id=inputs.version_id,
            model_id=inputs.model_id,
            initial_reply=result.initial.text,
            initial_tokens=result.initial.tokens,
            initial_seconds=result.initial.seconds,
            final_reply=result.final_reply,
            flags=result.flags,
        )
        session.add(trace)
        session.flush()
        for step in result.rounds:
            session.add(
                TraceStep(
                    trace_id=trace.id or 0,
                    round=step.round,
                    principle_id=inputs.principle_ids.get(step.principle.key),
                    principle_key=step.principle.key,
                    critique_request=step.principle.critique_request,
                    critique=step.critique.text,
                    revision_request=step.principle.revision_request,
                    revision=step.revision.text,
                    critique_tokens=step.critique.tokens,
                    revision_tokens=step.revision.tokens,
                    critique_seconds=step.critique.seconds,
                    revision_seconds=step.revision.seconds,
                    flags=sorted(set(step.critique.flags + step.revision.flags)),
                )
            )
        count += 1
    try:
        session.commit()
    except IntegrityError:
        # Another try of this job stored the same prompts meanwhile: theirs stand.
        session.rollback()
        return 0
    return count


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_generation(engine: Engine, context: JobContext, backend: Backend | None = None) -> None:
    with Session(engine) as session:
        inputs = load_inputs(session, GenerationSpec.from_parameters(context.parameters))
        done_ids = set(session.exec(select(Trace.prompt_id).where(Trace.job_id == context.job_id)))
        model = session.get(LanguageModel, inputs.model_id)
        if model is None:
            raise LookupError(f"model {inputs.model_id} does not exist")
    total = len(inputs.prompts)
    todo = [p for p in inputs.prompts if p.prompt_id not in done_ids]
    done = total - len(todo)
    context.progress(
        done,
        total,
        f"loading {model.name}" + (f"; resuming after {done} stored prompts" if done else ""),
    )
    own_backend = backend is None
    backend = backend or load_backend(model)
    started, processed = time.monotonic(), 0
    try:
        for start in range(0, len(todo), inputs.chunk_size):
            chunk = todo[start : start + inputs.chunk_size]
            results = critique_and_revise(chunk, inputs.constitution, backend, inputs.config)
            with Session(engine) as session:
                store_traces(session, context.job_id, inputs, results)
            processed += len(chunk)
            done += len(chunk)
            remaining = (time.monotonic() - started) / processed * (total - done)
            context.progress(
                done, total, f"{done} of {total} prompts; about {_duration(remaining)} left"
            )
    finally:
        if own_backend:
            backend.close()
    context.result["traces"] = done
