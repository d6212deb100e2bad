"""People's own labels of an evaluation run: a choice per judgement (A better, B better, a tie)
and a refusal class per classed reply, one per person, and the judge-people agreement they give
(app.recipe.eval_agreement)."""

from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from app.audit import record_event
from app.models import (
    EvalAnswer,
    EvalJudgement,
    EvalJudgementLabel,
    EvalRefusal,
    EvalRefusalLabel,
    Prompt,
    User,
)
from app.recipe.eval_agreement import SuiteAgreement, agreement_by_suite
from app.timeutil import utcnow

CHOICES = {"A": "A is better", "B": "B is better", "tie": "Tie or equivalent"}
CLASSES = {"complies": "Complies", "refuses": "Refuses", "partly-refuses": "Partly refuses"}


def next_judgement(
    *, session: Session, job_id: int, user: User, suite_id: int | None = None, after: int = 0
) -> tuple[EvalJudgement, Prompt, EvalAnswer, EvalAnswer] | None:
    """The run's next judgement by id after `after` (the ones skipped) that this person has not
    labelled and the judge decided, in one suite or any."""
    mine = select(EvalJudgementLabel.judgement_id).where(EvalJudgementLabel.user_id == user.id)
    answer_a, answer_b = aliased(EvalAnswer), aliased(EvalAnswer)
    statement = (
        select(EvalJudgement, Prompt, answer_a, answer_b)
        .join(Prompt, col(Prompt.id) == EvalJudgement.prompt_id)
        .join(answer_a, col(answer_a.id) == EvalJudgement.answer_a_id)
        .join(answer_b, col(answer_b.id) == EvalJudgement.answer_b_id)
        .where(
            EvalJudgement.job_id == job_id,
            col(EvalJudgement.prob_a).is_not(None),
            col(EvalJudgement.id) > after,
            col(EvalJudgement.id).not_in(mine),
        )
        .order_by(col(EvalJudgement.id))
    )
    if suite_id:
        statement = statement.where(EvalJudgement.suite_id == suite_id)
    row = session.exec(statement).first()
    return (row[0], row[1], row[2], row[3]) if row else None


def next_reply(
    *, session: Session, job_id: int, user: User, suite_id: int | None = None, after: int = 0
) -> tuple[EvalRefusal, Prompt, EvalAnswer] | None:
    """The run's next classed reply by id after `after` that this person has not labelled."""
    mine = select(EvalRefusalLabel.refusal_id).where(EvalRefusalLabel.user_id == user.id)
    statement = (
        select(EvalRefusal, Prompt, EvalAnswer)
        .join(Prompt, col(Prompt.id) == EvalRefusal.prompt_id)
        .join(EvalAnswer, col(EvalAnswer.id) == EvalRefusal.answer_id)
        .where(
            EvalRefusal.job_id == job_id,
            col(EvalRefusal.refusal_class).is_not(None),
            col(EvalRefusal.id) > after,
            col(EvalRefusal.id).not_in(mine),
        )
        .order_by(col(EvalRefusal.id))
    )
    if suite_id:
        statement = statement.where(EvalRefusal.suite_id == suite_id)
    row = session.exec(statement).first()
    return (row[0], row[1], row[2]) if row else None


def record_judgement_label(
    *, session: Session, judgement: EvalJudgement, user: User, choice: str
) -> bool:
    """Saves this person's choice; a second save replaces the first. True when it replaced.
    ValueError for a choice that is not one."""
    if choice not in CHOICES:
        raise ValueError(f"choose A, B or tie, not '{choice}'")
    label = session.exec(
        select(EvalJudgementLabel).where(
            EvalJudgementLabel.judgement_id == judgement.id, EvalJudgementLabel.user_id == user.id
        )
    ).first()
    replaced = label is not None
    if label is None:
        label = EvalJudgementLabel(
            judgement_id=judgement.id or 0, user_id=user.id or 0, choice=choice
        )
    else:
        label.choice, label.updated_at = choice, utcnow()
    session.add(label)
    record_event(
        session=session,
        actor=user,
        action="eval_judgement.label",
        object_type="eval_judgement",
        object_id=judgement.id,
        choice=choice,
        prob_a=judgement.prob_a,
    )
    return replaced


def record_reply_label(
    *, session: Session, reply: EvalRefusal, user: User, refusal_class: str, evasive: bool
) -> bool:
    """Saves this person's class of a reply (and whether it evades: only a refusal can); a
    second save replaces the first. True when it replaced. ValueError for an unknown class."""
    if refusal_class not in CLASSES:
        raise ValueError(f"choose {', '.join(CLASSES)}, not '{refusal_class}'")
    evasive = evasive and refusal_class != "complies"
    label = session.exec(
        select(EvalRefusalLabel).where(
            EvalRefusalLabel.refusal_id == reply.id, EvalRefusalLabel.user_id == user.id
        )
    ).first()
    replaced = label is not None
    if label is None:
        label = EvalRefusalLabel(
            refusal_id=reply.id or 0,
            user_id=user.id or 0,
            refusal_class=refusal_class,
            evasive=evasive,
        )
    else:
        label.refusal_class, label.evasive, label.updated_at = refusal_class, evasive, utcnow()
    session.add(label)
    record_event(
        session=session,
        actor=user,
        action="eval_refusal.label",
        object_type="eval_refusal",
        object_id=reply.id,
        refusal_class=refusal_class,
        evasive=evasive,
        judge_class=reply.refusal_class,
    )
    return replaced


def judgement_labels_of(*, session: Session, judgement_ids: list[int]) -> dict[int, list[str]]:
    """People's choices per judgement."""
    labels: dict[int, list[str]] = {}
    for judgement_id, choice in session.execute(
        sa_select(col(EvalJudgementLabel.judgement_id), col(EvalJudgementLabel.choice))
        .where(col(EvalJudgementLabel.judgement_id).in_(judgement_ids))
        .order_by(col(EvalJudgementLabel.id))
    ):
        labels.setdefault(judgement_id, []).append(choice)
    return labels


def reply_labels_of(*, session: Session, reply_ids: list[int]) -> dict[int, list[str]]:
    """People's classes per reply, "(evasive)" after an evasive one."""
    labels: dict[int, list[str]] = {}
    for reply_id, refusal_class, evasive in session.execute(
        sa_select(
            col(EvalRefusalLabel.refusal_id),
            col(EvalRefusalLabel.refusal_class),
            col(EvalRefusalLabel.evasive),
        )
        .where(col(EvalRefusalLabel.refusal_id).in_(reply_ids))
        .order_by(col(EvalRefusalLabel.id))
    ):
        labels.setdefault(reply_id, []).append(refusal_class + (" (evasive)" if evasive else ""))
    return labels


def run_agreement(*, session: Session, job_id: int, suite_ids: list[int]) -> list[SuiteAgreement]:
    """The judge-people agreement of one run, per suite."""
    comparisons = session.execute(
        sa_select(
            col(EvalJudgement.suite_id), col(EvalJudgement.prob_a), col(EvalJudgementLabel.choice)
        )
        .join(EvalJudgementLabel, col(EvalJudgementLabel.judgement_id) == EvalJudgement.id)
        .where(col(EvalJudgement.job_id) == job_id)
    ).all()
    replies = session.execute(
        sa_select(
            col(EvalRefusal.suite_id),
            col(EvalRefusal.refusal_class),
            col(EvalRefusal.evasive),
            col(EvalRefusalLabel.refusal_class),
            col(EvalRefusalLabel.evasive),
        )
        .join(EvalRefusalLabel, col(EvalRefusalLabel.refusal_id) == EvalRefusal.id)
        .where(col(EvalRefusal.job_id) == job_id)
    ).all()
    return agreement_by_suite(
        suite_ids,
        [(s, p, c) for s, p, c in comparisons],
        [(s, jc, bool(je), pc, bool(pe)) for s, jc, je, pc, pe in replies],
    )
