"""Finding, reading and reviewing traces: the queries behind the trace list, page and queue."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, exists, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.audit import record_event
from app.models import Job, Principle, Prompt, Review, Trace, TraceStep, User
from app.text_search import contains
from app.timeutil import utcnow
from app.users import usernames

VERDICTS = ("approve", "reject")
STATUSES = {
    "pending": "needs review",
    "approved": "approved",
    "rejected": "rejected",
    "mixed": "reviewers disagree",
}
PAGE_SIZE = 50
COUNT_CAP = 10_000


@dataclass(frozen=True)
class TraceFilter:
    job_id: int | None = None
    principle: str = ""
    status: str = ""  # "" | "pending" | "reviewed" | "approved" | "rejected" | "mixed"
    text: str = ""

    def conditions(self) -> list[Any]:
        conditions: list[Any] = []
        if self.job_id:
            conditions.append(col(Trace.job_id) == self.job_id)
        if self.principle:
            conditions.append(
                exists().where(
                    and_(
                        col(TraceStep.trace_id) == Trace.id,
                        col(TraceStep.principle_key) == self.principle,
                    )
                )
            )
        if self.status == "reviewed":
            conditions.append(col(Trace.review_status) != "pending")
        elif self.status in STATUSES:
            conditions.append(col(Trace.review_status) == self.status)
        if self.text.strip():
            conditions.append(contains(self.text.strip(), col(Prompt.text), col(Trace.final_reply)))
        return conditions


@dataclass
class TracePage:
    rows: list[tuple[Trace, str]]
    total: int  # at most COUNT_CAP + 1, which reads "more than COUNT_CAP"
    next_after: int | None  # the id to continue after, or None on the last page

    @property
    def total_text(self) -> str:
        return f"{COUNT_CAP:,}+" if self.total > COUNT_CAP else f"{self.total:,}"


def list_traces(
    *, session: Session, filters: TraceFilter, after: int | None = None, limit: int = PAGE_SIZE
) -> TracePage:
    """Newest first, continued by id (keyset), so a page costs the same at any depth."""
    conditions = filters.conditions()
    base = select(Trace, Prompt.text).join(Prompt, col(Prompt.id) == Trace.prompt_id)
    if after is not None:
        base = base.where(col(Trace.id) < after)
    rows = session.exec(
        base.where(*conditions).order_by(col(Trace.id).desc()).limit(limit + 1)
    ).all()
    # Counted up to a cap: an exact count of a huge run grows with the run, a page must not.
    matching = select(Trace.id)
    if filters.text.strip():
        matching = matching.join(Prompt, col(Prompt.id) == Trace.prompt_id)
    capped = matching.where(*conditions).limit(COUNT_CAP + 1).subquery()
    total = session.exec(select(func.count()).select_from(capped)).one()
    page = [(trace, text) for trace, text in rows[:limit]]
    return TracePage(
        rows=page, total=int(total), next_after=page[-1][0].id if len(rows) > limit else None
    )


def principle_keys(*, session: Session, job_id: int | None) -> list[str]:
    """The principles runs could have sampled, read from the versions they pinned: the small
    principle table, not the trace steps (a scan of every step cost 150 ms at 100,000 traces)."""
    jobs = select(Job.parameters).where(Job.kind == "generate")
    if job_id:
        jobs = jobs.where(Job.id == job_id)
    versions = {p.get("constitution_version_id") for p in session.exec(jobs)} - {None}
    keys = session.exec(
        select(Principle.key)
        .where(col(Principle.version_id).in_(versions), col(Principle.enabled))
        .distinct()
    )
    return sorted(keys)


def steps_of(*, session: Session, trace: Trace) -> list[TraceStep]:
    return list(
        session.exec(
            select(TraceStep).where(TraceStep.trace_id == trace.id).order_by(col(TraceStep.round))
        )
    )


def reviews_of(*, session: Session, trace: Trace) -> list[Review]:
    return list(
        session.exec(select(Review).where(Review.trace_id == trace.id).order_by(col(Review.id)))
    )


class ReviewError(ValueError):
    pass


def _refresh_statuses(session: Session, condition: Any, needed: int) -> None:
    """Recounts reviews and sets the status of the traces matching `condition`, in one UPDATE:
    pending below `needed` reviews, else approved or rejected when all agree, else mixed."""
    reviews = select(func.count()).where(col(Review.trace_id) == Trace.id).scalar_subquery()

    def any_review(verdict: str) -> Any:
        return exists().where(col(Review.trace_id) == Trace.id, col(Review.verdict) == verdict)

    status = case(
        (reviews < needed, "pending"),
        (~any_review("reject"), "approved"),
        (~any_review("approve"), "rejected"),
        else_="mixed",
    )
    session.execute(
        update(Trace).where(condition).values(review_count=reviews, review_status=status),
        execution_options={"synchronize_session": False},
    )


def set_reviews_needed(*, session: Session, job: Job, reviews_needed: int, user: User) -> None:
    """A run setting: how many reviewers must judge each trace; every status follows at once."""
    before = job.reviews_needed
    job.reviews_needed = reviews_needed
    session.add(job)
    session.flush()
    _refresh_statuses(session, col(Trace.job_id) == job.id, reviews_needed)
    record_event(
        session=session,
        actor=user,
        action="run.reviews_needed",
        object_type="job",
        object_id=job.id,
        before=before,
        after=reviews_needed,
    )


def submit_review(
    *,
    session: Session,
    trace: Trace,
    reviewer: User,
    verdict: str,
    corrected_text: str | None,
    comment: str,
) -> tuple[Review, bool]:
    """Records the reviewer's one review of the trace; returns it and whether it replaced one."""
    if verdict not in VERDICTS:
        raise ReviewError(f"the verdict must be one of {', '.join(VERDICTS)}")
    if corrected_text is not None and not corrected_text.strip():
        raise ReviewError(
            "a correction cannot be empty: write the corrected reply, or approve or reject"
        )
    job = session.get(Job, trace.job_id)
    needed = job.reviews_needed if job else 1

    def existing() -> Review | None:
        return session.exec(
            select(Review).where(Review.trace_id == trace.id, Review.reviewer_id == reviewer.id)
        ).first()

    review = existing()
    replaced = review is not None
    if review is None:
        review = Review(trace_id=trace.id or 0, reviewer_id=reviewer.id or 0, verdict=verdict)
        session.add(review)
        try:
            session.flush()
        except IntegrityError:
            # The same reviewer, another tab, a moment earlier: that review is updated instead.
            session.rollback()
            review, replaced = existing(), True
            assert review is not None
    review.verdict = verdict
    review.corrected_text = corrected_text.strip() if corrected_text else None
    review.comment = comment.strip()[:4000]
    review.updated_at = utcnow()
    session.add(review)
    session.flush()
    _refresh_statuses(session, col(Trace.id) == trace.id, needed)
    session.expire(trace)
    record_event(
        session=session,
        actor=reviewer,
        action="review.update" if replaced else "review.create",
        object_type="trace",
        object_id=trace.id,
        verdict=verdict,
        corrected=corrected_text is not None,
    )
    return review, replaced


def _queue_conditions(reviewer: User, job_id: int | None) -> list[Any]:
    mine = exists().where(
        and_(col(Review.trace_id) == Trace.id, col(Review.reviewer_id) == reviewer.id)
    )
    conditions: list[Any] = [col(Trace.review_count) < Job.reviews_needed, ~mine]
    if job_id:
        conditions.append(col(Trace.job_id) == job_id)
    return conditions


def next_for_review(
    *, session: Session, reviewer: User, job_id: int | None, after: int = 0
) -> Trace | None:
    """The next trace, in run order, that still needs a review and that I have not reviewed."""
    statement = (
        select(Trace)
        .join(Job, col(Job.id) == Trace.job_id)
        .where(col(Trace.id) > after, *_queue_conditions(reviewer, job_id))
        .order_by(col(Trace.id))
        .limit(1)
    )
    return session.exec(statement).first()


def previous_trace(*, session: Session, job_id: int | None, before: int) -> Trace | None:
    statement = select(Trace).where(col(Trace.id) < before).order_by(col(Trace.id).desc()).limit(1)
    if job_id:
        statement = statement.where(Trace.job_id == job_id)
    return session.exec(statement).first()


def queue_left(*, session: Session, reviewer: User, job_id: int | None) -> int:
    statement = (
        select(func.count())
        .select_from(Trace)
        .join(Job, col(Job.id) == Trace.job_id)
        .where(*_queue_conditions(reviewer, job_id))
    )
    return int(session.exec(statement).one())


@dataclass
class RunReviewStats:
    traces: int
    complete: int  # traces with all the reviews they need
    per_reviewer: list[tuple[str, int, int, int]]  # name, reviews, approvals, rejections
    agreement: Any
    principles: list[Any]


def run_review_stats(*, session: Session, job: Job) -> RunReviewStats:
    from app.recipe.agreement import agreement
    from app.recipe.principle_stats import StepRecord, principle_stats

    reviews = session.exec(
        select(Review.trace_id, Review.reviewer_id, Review.verdict)
        .join(Trace, col(Trace.id) == Review.trace_id)
        .where(Trace.job_id == job.id)
    ).all()
    names = usernames(session=session)
    per_reviewer: dict[int, list[int]] = {}
    verdicts: dict[int, list[str]] = {}
    for trace_id, reviewer_id, verdict in reviews:
        counts = per_reviewer.setdefault(reviewer_id, [0, 0, 0])
        counts[0] += 1
        counts[1 if verdict == "approve" else 2] += 1
        verdicts.setdefault(trace_id, []).append(verdict)
    # SQLAlchemy's select: SQLModel's typed one takes at most four columns.
    steps = session.execute(
        sa_select(
            col(TraceStep.principle_key),
            col(TraceStep.trace_id),
            col(Trace.initial_reply),
            col(TraceStep.revision),
            col(TraceStep.flags),
        )
        .join(Trace, col(Trace.id) == TraceStep.trace_id)
        .where(col(Trace.job_id) == job.id)
    ).all()
    total = session.exec(
        select(func.count()).select_from(Trace).where(Trace.job_id == job.id)
    ).one()
    complete = session.exec(
        select(func.count())
        .select_from(Trace)
        .where(Trace.job_id == job.id, col(Trace.review_status) != "pending")
    ).one()
    return RunReviewStats(
        traces=int(total),
        complete=int(complete),
        per_reviewer=sorted(
            ((names.get(rid, "?"), *counts) for rid, counts in per_reviewer.items()),  # type: ignore[misc]
            key=lambda row: -row[1],
        ),
        agreement=agreement([(t, r, v) for t, r, v in reviews]),
        principles=principle_stats(
            (
                StepRecord(key, trace_id, initial, revision, tuple(flags))
                for key, trace_id, initial, revision, flags in steps
            ),
            verdicts,
        ),
    )
