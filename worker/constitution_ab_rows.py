"""Constitution A/B from the database: two generation runs' traces over the same prompts, as
the items worker.pipeline.constitution_ab judges."""

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.models import Job, Prompt, Trace, TraceStep
from app.prompt_sets import prompt_messages
from worker.pipeline.constitution_ab import ABItem, RunReply


class ABRunsError(ValueError):
    """Two runs that cannot be compared; the message says why."""


def _replies(session: Session, job_id: int) -> dict[int, RunReply]:
    job = session.get(Job, job_id)
    if job is None or job.kind != "generate":
        raise ABRunsError(f"job {job_id} is not a generation run")
    traces = session.exec(select(Trace).where(Trace.job_id == job_id)).all()
    steps: dict[int, list[TraceStep]] = {}
    ids = [t.id for t in traces]
    for step in session.exec(
        select(TraceStep).where(col(TraceStep.trace_id).in_(ids)).order_by(col(TraceStep.round))
    ):
        steps.setdefault(step.trace_id, []).append(step)
    return {
        t.prompt_id: RunReply(
            t.initial_reply,
            t.final_reply,
            tuple(s.principle_key for s in steps.get(t.id or 0, [])),
            t.id,
        )
        for t in traces
    }


def load_ab_items(session: Session, run_a: int, run_b: int, *, limit: int = 0) -> Sequence[ABItem]:
    """The prompts both runs answered, in prompt order (the first `limit`, 0: all)."""
    if run_a == run_b:
        raise ABRunsError("choose two different runs")
    a, b = _replies(session, run_a), _replies(session, run_b)
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ABRunsError(f"runs {run_a} and {run_b} have no prompt in common")
    prompts = session.exec(select(Prompt).where(col(Prompt.id).in_(shared))).all()
    ordered = sorted(prompts, key=lambda p: (p.prompt_set_id, p.position, p.id or 0))
    if limit:
        ordered = ordered[:limit]
    return [
        ABItem(p.id or 0, prompt_messages(p.text, p.context), a[p.id or 0], b[p.id or 0])
        for p in ordered
    ]
