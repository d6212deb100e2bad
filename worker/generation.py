"""The generation stage's parts for the chunk runner: a chunk's inputs, its config, storing.

Resumable: prompts that already have a trace for this job are skipped, and the database holds at
most one trace per job and prompt.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.models import (
    LanguageModel,
    Prompt,
    Trace,
    TraceStep,
)
from app.prompt_sets import prompt_messages
from app.recipe.documents import ConstitutionDoc
from app.specs.generation import GenerationSpec
from worker.constitution_cache import version_document
from worker.pipeline.critique_revision import (
    GenerationConfig,
    PromptInput,
    TraceResult,
)


@dataclass
class GenerationInputs:
    version_id: int
    model_id: int
    constitution: ConstitutionDoc
    principle_ids: dict[str, int]
    prompts: list[PromptInput]
    config: GenerationConfig


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
        top_k=spec.top_k,
        repetition_penalty=spec.repetition_penalty,
        stop=spec.stop,
    )


def load_inputs(
    session: Session, spec: GenerationSpec, prompt_ids: Sequence[int]
) -> GenerationInputs:
    """What one chunk needs: the constitution, and its prompts in the chunk's order."""
    version = version_document(session, spec.constitution_version_id)
    if session.get(LanguageModel, spec.model_id) is None:
        raise LookupError(f"model {spec.model_id} does not exist")
    by_id = {
        row.id: row for row in session.exec(select(Prompt).where(col(Prompt.id).in_(prompt_ids)))
    }
    rows = [by_id[prompt_id] for prompt_id in prompt_ids if prompt_id in by_id]
    return GenerationInputs(
        version_id=version.version_id,
        model_id=spec.model_id,
        constitution=version.document,
        principle_ids=version.principle_ids,
        prompts=[
            PromptInput(
                prompt_id=row.id or 0,
                messages=prompt_messages(row.text, row.context),
            )
            for row in rows
        ],
        config=generation_config(spec),
    )


def store_traces(
    session: Session, job_id: int, inputs: GenerationInputs, results: list[TraceResult]
) -> int:
    """Adds a chunk's traces to the session (the caller commits, with the chunk marked done); a
    prompt stored already (by an earlier try) is skipped."""
    stored = set(
        session.exec(
            select(Trace.prompt_id).where(
                Trace.job_id == job_id, col(Trace.prompt_id).in_([r.prompt_id for r in results])
            )
        )
    )
    fresh = [result for result in results if result.prompt_id not in stored]
    traces = [
        Trace(
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
        for result in fresh
    ]
    session.add_all(traces)
    session.flush()  # one batched INSERT gives every trace its id
    for trace, result in zip(traces, fresh, strict=True):
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
    return len(traces)
