"""Evaluation runs in the domain: checking the rows a run names, its prompts, and reading its
judgements and replies back (the web pages, the CLI and the worker share these)."""

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from app.models import (
    ConstitutionVersion,
    EvalAnswer,
    EvalJudgement,
    EvalRefusal,
    Job,
    LanguageModel,
    Prompt,
    PromptSet,
    VersionState,
)
from app.recipe.eval_goodhart import Reply
from app.specs.evaluation import EvaluationSpec

KIND = "evaluate"


def _model_error(session: Session, model_id: int, what: str) -> str | None:
    model = session.get(LanguageModel, model_id)
    if model is None:
        return f"There is no model {model_id}."
    if model.kind != "policy":
        return f"{model.name} is a reward model: it cannot {what}."
    return None


def suite_error(session: Session, suite_id: int) -> str | None:
    suite = session.get(PromptSet, suite_id)
    if suite is None:
        return f"There is no prompt set {suite_id}."
    if suite.purpose is None:
        return f"'{suite.name}' is not an evaluation suite: import it with a purpose."
    if not session.exec(
        select(func.count()).select_from(Prompt).where(Prompt.prompt_set_id == suite_id)
    ).one():
        return f"The suite '{suite.name}' has no prompts."
    return None


def evaluation_errors(*, session: Session, spec: EvaluationSpec) -> dict[str, str]:
    """What is wrong with the rows a run names, by field, before any job is stored."""
    errors: dict[str, str] = {}
    for model_id in spec.model_ids:
        error = _model_error(session, model_id, "answer prompts")
        if error:
            errors.setdefault("model_ids", error)
    judge_error = _model_error(session, spec.judge_model_id, "judge replies")
    if judge_error:
        errors["judge_model_id"] = judge_error
    for suite_id in spec.suite_ids:
        error = suite_error(session, suite_id)
        if error:
            errors.setdefault("suite_ids", error)
    version = session.get(ConstitutionVersion, spec.constitution_version_id)
    if version is None or version.state != VersionState.PUBLISHED:
        errors["constitution_version_id"] = "Choose a published constitution version."
    return errors


def suite_prompts(session: Session, spec: EvaluationSpec) -> list[Prompt]:
    """The run's prompts: each suite's in order (at most `max_prompts` of each), suites in the
    run's order."""
    rows: list[Prompt] = []
    for suite_id in spec.suite_ids:
        statement = (
            select(Prompt).where(Prompt.prompt_set_id == suite_id).order_by(col(Prompt.position))
        )
        if spec.max_prompts:
            statement = statement.limit(spec.max_prompts)
        rows.extend(session.exec(statement))
    return rows


def evaluation_runs(*, session: Session, limit: int = 50) -> Sequence[Job]:
    return session.exec(
        select(Job).where(Job.kind == KIND).order_by(col(Job.id).desc()).limit(limit)
    ).all()


def judgement_rows(
    *,
    session: Session,
    job_id: int,
    model_id: int | None = None,
    suite_id: int | None = None,
    axis: str | None = None,
    against: int | None = None,
    after: int = 0,
    limit: int = 50,
) -> list[tuple[EvalJudgement, Prompt, EvalAnswer, EvalAnswer]]:
    """A run's judgements with their prompt and both answers, by id; filtered by a model (on
    either side), the model it met (`against`, with `model_id`), a suite or an axis."""
    answer_a, answer_b = aliased(EvalAnswer), aliased(EvalAnswer)
    statement = (
        select(EvalJudgement, Prompt, answer_a, answer_b)
        .join(Prompt, col(Prompt.id) == EvalJudgement.prompt_id)
        .join(answer_a, col(answer_a.id) == EvalJudgement.answer_a_id)
        .join(answer_b, col(answer_b.id) == EvalJudgement.answer_b_id)
        .where(EvalJudgement.job_id == job_id, col(EvalJudgement.id) > after)
        .order_by(col(EvalJudgement.id))
        .limit(limit)
    )
    if model_id:
        statement = statement.where(
            (col(EvalJudgement.model_a_id) == model_id)
            | (col(EvalJudgement.model_b_id) == model_id)
        )
    if model_id and against:
        statement = statement.where(
            (col(EvalJudgement.model_a_id) == against) | (col(EvalJudgement.model_b_id) == against)
        )
    if suite_id:
        statement = statement.where(EvalJudgement.suite_id == suite_id)
    if axis:
        statement = statement.where(EvalJudgement.axis == axis)
    return [(j, p, a, b) for j, p, a, b in session.exec(statement).all()]


def reply_rows(
    *,
    session: Session,
    job_id: int,
    model_id: int | None = None,
    suite_id: int | None = None,
    suite_ids: Sequence[int] | None = None,
    refusal_class: str | None = None,
    evasive: bool = False,
    after: int = 0,
    limit: int = 50,
) -> list[tuple[EvalRefusal, Prompt, EvalAnswer]]:
    """A run's classed replies with their prompt and answer, by id, filtered by a model, a
    suite or several (`suite_ids`: those of one purpose), a class ("refusing": wholly or partly)
    or evasiveness."""
    statement = (
        select(EvalRefusal, Prompt, EvalAnswer)
        .join(Prompt, col(Prompt.id) == EvalRefusal.prompt_id)
        .join(EvalAnswer, col(EvalAnswer.id) == EvalRefusal.answer_id)
        .where(EvalRefusal.job_id == job_id, col(EvalRefusal.id) > after)
        .order_by(col(EvalRefusal.id))
        .limit(limit)
    )
    if model_id:
        statement = statement.where(EvalRefusal.model_id == model_id)
    if suite_id:
        statement = statement.where(EvalRefusal.suite_id == suite_id)
    if suite_ids is not None:
        statement = statement.where(col(EvalRefusal.suite_id).in_(list(suite_ids)))
    if refusal_class == "refusing":
        statement = statement.where(
            col(EvalRefusal.refusal_class).in_(["refuses", "partly-refuses"])
        )
    elif refusal_class:
        statement = statement.where(EvalRefusal.refusal_class == refusal_class)
    if evasive:
        statement = statement.where(col(EvalRefusal.evasive).is_(True))
    return [(r, p, a) for r, p, a in session.exec(statement).all()]


def model_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    rows = session.exec(select(LanguageModel).where(col(LanguageModel.id).in_(list(ids)))).all()
    names = {row.id or 0: row.name for row in rows}
    return {i: names.get(i, f"model {i}") for i in ids}


def form_suites(session: Session) -> list[PromptSet]:
    """The prompt sets a run may take: those marked as suites."""
    return list(
        session.exec(
            select(PromptSet).where(col(PromptSet.purpose).is_not(None)).order_by(col(PromptSet.id))
        )
    )


def parameters_ok(parameters: Mapping[str, object]) -> EvaluationSpec | None:
    try:
        return EvaluationSpec.from_parameters(dict(parameters))
    except ValueError:
        return None


def run_replies(*, session: Session, job_id: int) -> list[Reply]:
    """Every reply of the run (classed or not), with its model and suite."""
    statement = (
        select(EvalRefusal.model_id, EvalRefusal.suite_id, EvalAnswer.text)
        .join(EvalAnswer, col(EvalAnswer.id) == EvalRefusal.answer_id)
        .where(EvalRefusal.job_id == job_id)
        .order_by(col(EvalRefusal.id))
    )
    return [Reply(model, suite, text) for model, suite, text in session.exec(statement).all()]
