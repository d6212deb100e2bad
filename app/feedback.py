"""The web side of AI feedback: launching pair and labelling runs, reading comparisons, people's
own labels, agreement, and preference datasets from AI labels."""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import and_, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from app.audit import record_event
from app.datasets.feedback_rows import ComparisonRecord
from app.generation import prompt_set_error
from app.ids import parse_id
from app.job_records import runs_with_counts
from app.models import (
    Comparison,
    ConstitutionVersion,
    HumanLabel,
    Job,
    LanguageModel,
    Prompt,
    ReplyPair,
    User,
    VersionState,
)
from app.prompt_sets import prompt_messages
from app.recipe.label_agreement import LabelAgreement, agreement_by_principle, majority_choice
from app.recipe.principle_disagreement import queue_key
from app.timeutil import utcnow

CHOICES = {"A", "B", "tie"}
# The orders the people's label queue can serve a run's comparisons in: as stored, or where the
# feedback model was least sure first (|P(A) - 0.5| ascending, ties by id), so a reviewer's
# time goes where a person's label changes most.
# Or where the ensemble's principles disagree most first (app.recipe.principle_disagreement).
QueueOrder = Literal["id", "uncertain", "disagreement"]
QUEUE_ORDERS: dict[str, str] = {
    "id": "as stored",
    "uncertain": "where the AI is least sure first",
    "disagreement": "where the principles disagree most first",
}


def pair_row_errors(*, session: Session, form: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with the rows a reply-pair form chose."""
    errors = {
        "prompt_set_id": prompt_set_error(session, parse_id(form.get("prompt_set_id"))),
        "model_id": _policy_error(session, parse_id(form.get("model_id"))),
    }
    return {name: error for name, error in errors.items() if error}


def _policy_error(session: Session, model_id: int | None) -> str | None:
    model = session.get(LanguageModel, model_id) if model_id else None
    if model is None:
        return "Choose a model."
    if model.kind != "policy":
        return f"{model.name} is a reward model: it cannot write or judge in words."
    return None


def pair_runs(*, session: Session) -> list[tuple[Job, int]]:
    return runs_with_counts(session=session, job_id=ReplyPair.job_id, kind="reply_pairs")


def label_runs(*, session: Session) -> list[tuple[Job, int]]:
    return runs_with_counts(
        session=session, job_id=Comparison.job_id, kind="label_pairs", include_empty=True
    )


def label_row_errors(*, session: Session, form: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with the rows a labelling form chose (the numbers are LabelSpec's to
    check), so that every mistake shows at once."""
    errors = {
        "pair_job_id": pair_run_error(session, parse_id(form.get("pair_job_id"))),
        "constitution_version_id": _version_error(
            session, parse_id(form.get("constitution_version_id"))
        ),
        "model_id": _policy_error(session, parse_id(form.get("model_id"))),
    }
    return {name: error for name, error in errors.items() if error}


def pair_run_error(session: Session, job_id: int | None) -> str | None:
    pair_job = session.get(Job, job_id) if job_id else None
    if pair_job is None or pair_job.kind != "reply_pairs":
        return "Choose a run of reply pairs."
    if not session.exec(
        select(func.count()).select_from(ReplyPair).where(ReplyPair.job_id == pair_job.id)
    ).one():
        return "This run has stored no pairs yet."
    return None


def _version_error(session: Session, version_id: int | None) -> str | None:
    version = session.get(ConstitutionVersion, version_id) if version_id else None
    if version is None or version.state != VersionState.PUBLISHED:
        return "Choose a published constitution version."
    return None


def eval_row_errors(*, session: Session, form: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with the model a labeller evaluation form chose."""
    model_id = parse_id(form.get("model_id"))
    model = session.get(LanguageModel, model_id) if model_id else None
    if model is None or model.kind != "policy":
        return {"model_id": "Choose the feedback model to evaluate."}
    return {}


def comparison_rows(
    *, session: Session, job_id: int, limit: int = 50, after: int | None = None
) -> list[tuple[Comparison, ReplyPair, Prompt]]:
    statement = (
        select(Comparison, ReplyPair, Prompt)
        .join(ReplyPair, col(ReplyPair.id) == Comparison.pair_id)
        .join(Prompt, col(Prompt.id) == ReplyPair.prompt_id)
        .where(Comparison.job_id == job_id)
        .order_by(col(Comparison.id))
        .limit(limit)
    )
    if after:
        statement = statement.where(col(Comparison.id) > after)
    return [(c, p, q) for c, p, q in session.exec(statement).all()]


def next_to_label(
    *, session: Session, job_id: int, user: User, after: int = 0, order: QueueOrder = "id"
) -> tuple[Comparison, ReplyPair, Prompt] | None:
    """The next comparison of a run this person has not labelled, in `order`, after comparison
    `after` in that order (the ones skipped)."""
    mine = select(HumanLabel.comparison_id).where(HumanLabel.user_id == user.id)
    waiting = (
        Comparison.job_id == job_id,
        Comparison.label != "skipped",
        col(Comparison.id).not_in(mine),
    )
    statement = (
        select(Comparison, ReplyPair, Prompt)
        .join(ReplyPair, col(ReplyPair.id) == Comparison.pair_id)
        .join(Prompt, col(Prompt.id) == ReplyPair.prompt_id)
        .where(*waiting)
    )
    if order == "disagreement":
        chosen = _most_disagreed(session=session, waiting=waiting, after=after)
        statement = statement.where(col(Comparison.id) == chosen)
        row = session.exec(statement).first() if chosen is not None else None
        return (row[0], row[1], row[2]) if row else None
    if order == "uncertain":
        # Computed by the database on both sides, so a skipped comparison's own value compares
        # equal to itself and the cursor moves past it.
        uncertainty = func.abs(func.coalesce(col(Comparison.prob_a), 0.5) - 0.5)
        if after:
            # An alias: the same table unaliased would be correlated with the outer row.
            other = aliased(Comparison)
            skipped = (
                sa_select(func.abs(func.coalesce(col(other.prob_a), 0.5) - 0.5))
                .where(col(other.id) == after)
                .scalar_subquery()
            )
            statement = statement.where(
                or_(uncertainty > skipped, and_(uncertainty == skipped, col(Comparison.id) > after))
            )
        statement = statement.order_by(uncertainty, col(Comparison.id))
    else:
        statement = statement.where(col(Comparison.id) > after).order_by(col(Comparison.id))
    row = session.exec(statement).first()
    return (row[0], row[1], row[2]) if row else None


def _most_disagreed(*, session: Session, waiting: Sequence[Any], after: int) -> int | None:
    """The id of the next waiting comparison by principle disagreement, after comparison
    `after` in that order.

    The measure reads each comparison's per-principle details, which SQL cannot portably, so
    the waiting comparisons' ids and details are read and sorted here."""
    rows = session.exec(select(col(Comparison.id), col(Comparison.details)).where(*waiting)).all()
    keys = [queue_key(comparison_id or 0, details or []) for comparison_id, details in rows]
    if after:
        skipped = session.get(Comparison, after)
        if skipped is not None:
            cursor = queue_key(after, skipped.details or [])
            keys = [key for key in keys if key > cursor]
    return min(keys)[2] if keys else None


def record_human_label(
    *, session: Session, comparison: Comparison, user: User, choice: str
) -> tuple[HumanLabel, bool]:
    """Saves this person's choice; a second save replaces the first. True when it replaced."""
    if choice not in CHOICES:
        raise ValueError(f"choose A, B or tie, not '{choice}'")
    label = session.exec(
        select(HumanLabel).where(
            HumanLabel.comparison_id == comparison.id, HumanLabel.user_id == user.id
        )
    ).first()
    replaced = label is not None
    if label is None:
        label = HumanLabel(comparison_id=comparison.id or 0, user_id=user.id or 0, choice=choice)
    else:
        label.choice, label.updated_at = choice, utcnow()
    session.add(label)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="comparison.label",
        object_type="comparison",
        object_id=comparison.id,
        choice=choice,
        ai_label=comparison.label,
    )
    return label, replaced


def human_labels_of(*, session: Session, comparison_ids: list[int]) -> dict[int, list[str]]:
    labels: dict[int, list[str]] = {}
    for comparison_id, choice in session.execute(
        sa_select(col(HumanLabel.comparison_id), col(HumanLabel.choice)).where(
            col(HumanLabel.comparison_id).in_(comparison_ids)
        )
    ):
        labels.setdefault(comparison_id, []).append(choice)
    return labels


def run_agreement(*, session: Session, job_id: int) -> list[LabelAgreement]:
    rows = session.execute(
        sa_select(col(Comparison.principle_keys), col(Comparison.label), col(HumanLabel.choice))
        .join(HumanLabel, col(HumanLabel.comparison_id) == Comparison.id)
        .where(col(Comparison.job_id) == job_id)
    ).all()
    return agreement_by_principle((list(keys), label, choice) for keys, label, choice in rows)


def comparison_records(*, session: Session, job_id: int) -> list[ComparisonRecord]:
    rows = session.exec(
        select(Comparison, ReplyPair, Prompt)
        .join(ReplyPair, col(ReplyPair.id) == Comparison.pair_id)
        .join(Prompt, col(Prompt.id) == ReplyPair.prompt_id)
        .where(Comparison.job_id == job_id)
        .order_by(col(Comparison.id))
    ).all()
    humans = human_labels_of(session=session, comparison_ids=[c.id or 0 for c, _, _ in rows])
    return [
        ComparisonRecord(
            comparison_id=c.id or 0,
            pair_id=pair.id or 0,
            messages=prompt_messages(prompt.text, prompt.context),
            reply_a=pair.reply_a,
            reply_b=pair.reply_b,
            prob_a=c.prob_a,
            label=c.label,
            principle_keys=list(c.principle_keys),
            human_choice=majority_choice(humans.get(c.id or 0, [])),
        )
        for c, pair, prompt in rows
    ]
