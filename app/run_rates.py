"""How fast a model generated on past runs: completion tokens over the seconds its chunks ran.

A chunk's seconds are the worker's wall time for it (loading the model on a fresh worker
included), so the rate is what a launch can expect, not the backend's best.
"""

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.models import Chunk, ChunkStatus, Job, JobStatus, Trace, TraceStep

# Past runs looked at per model: recent ones say most about today's workers.
RECENT_RUNS = 10
_SCANNED_JOBS = 500


@dataclass(frozen=True)
class MeasuredRate:
    queue: str  # the worker kind the runs went to
    runs: int
    tokens: int
    outputs: int  # replies, critiques and revisions written
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def tokens_per_output(self) -> float:
        return self.tokens / self.outputs if self.outputs else 0.0


def job_tokens(session: Session, job_id: int) -> int:
    """Completion tokens a generation job's stored traces hold (replies, critiques, revisions)."""
    initial = session.execute(
        sa_select(func.coalesce(func.sum(col(Trace.initial_tokens)), 0)).where(
            col(Trace.job_id) == job_id
        )
    ).scalar_one()
    steps = session.execute(
        sa_select(
            func.coalesce(
                func.sum(col(TraceStep.critique_tokens) + col(TraceStep.revision_tokens)), 0
            )
        )
        .join(Trace, col(Trace.id) == col(TraceStep.trace_id))
        .where(col(Trace.job_id) == job_id)
    ).scalar_one()
    return int(initial) + int(steps)


def _job_outputs(session: Session, job_id: int) -> int:
    traces = session.execute(
        sa_select(func.count()).select_from(Trace).where(col(Trace.job_id) == job_id)
    ).scalar_one()
    steps = session.execute(
        sa_select(func.count())
        .select_from(TraceStep)
        .join(Trace, col(Trace.id) == col(TraceStep.trace_id))
        .where(col(Trace.job_id) == job_id)
    ).scalar_one()
    return int(traces) + 2 * int(steps)


def _chunk_seconds(session: Session, job_id: int) -> float:
    seconds = session.execute(
        sa_select(func.coalesce(func.sum(col(Chunk.seconds)), 0.0)).where(
            col(Chunk.job_id) == job_id, col(Chunk.status) == ChunkStatus.DONE
        )
    ).scalar_one()
    return float(seconds)


def measured_rates(session: Session, *, model_id: int) -> list[MeasuredRate]:
    """The model's tokens/s on its recent finished generation runs, one entry per queue
    (worker kind), the most runs first; empty when it has none."""
    jobs = session.exec(
        select(Job)
        .where(Job.kind == "generate", Job.status == JobStatus.SUCCEEDED)
        .order_by(col(Job.id).desc())
        .limit(_SCANNED_JOBS)
    ).all()
    # The model is inside the parameters' JSON; filtering here works on SQLite and PostgreSQL.
    by_queue: dict[str, list[tuple[int, int, float]]] = {}
    for job in jobs:
        if job.id is None or job.parameters.get("model_id") != model_id:
            continue
        runs = by_queue.setdefault(job.queue, [])
        if len(runs) >= RECENT_RUNS:
            continue
        tokens, seconds = job_tokens(session, job.id), _chunk_seconds(session, job.id)
        if tokens and seconds > 0:
            runs.append((tokens, _job_outputs(session, job.id), seconds))
    rates = [
        MeasuredRate(
            queue=queue,
            runs=len(runs),
            tokens=sum(t for t, _, _ in runs),
            outputs=sum(o for _, o, _ in runs),
            seconds=sum(s for _, _, s in runs),
        )
        for queue, runs in by_queue.items()
        if runs
    ]
    return sorted(rates, key=lambda rate: (-rate.runs, rate.queue))
