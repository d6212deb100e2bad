"""An evaluation run in process on the chunk runner, with styled fake models and a rule judge:
answers, pairwise judgements, refusal classes, ratings and rates; stored answers are reused by a
later run with the same settings; a run that failed mid-way resumes and stores nothing twice."""

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

import worker.eval_stages
from app.job_records import create_job
from app.models import EvalAnswer, EvalJudgement, EvalRefusal, Job, JobStatus, LanguageModel
from app.recipe.evaluation import SuitePurpose
from app.specs.evaluation import EvaluationSpec
from tests.unit.eval_fakes import STYLES, RuleJudge, StyleBackend, make_evaluation_rows
from worker.backends.base import OptionsQuestion
from worker.chunk_runner import run_in_process


@pytest.fixture
def answerers(monkeypatch: pytest.MonkeyPatch) -> dict[str, StyleBackend]:
    made = {name: StyleBackend(text) for name, text in STYLES.items()}

    def open_answerer(model: LanguageModel) -> StyleBackend:
        return made[model.name]

    monkeypatch.setattr(worker.eval_stages, "open_answerer", open_answerer)
    return made


def evaluation_job(session: Session, rows: dict[str, Any], **extra: Any) -> int:
    models: dict[str, int] = rows["models"]
    suites: dict[SuitePurpose, int] = rows["suites"]
    spec = EvaluationSpec(
        model_ids=tuple(models[name] for name in STYLES),
        suite_ids=tuple(suites.values()),
        judge_model_id=models["judge"],
        constitution_version_id=rows["version"],
        max_new_tokens=16,
        bootstrap_samples=50,
        chunk_size=2,
        **extra,
    )
    job = create_job(session=session, kind="evaluate", parameters=spec.to_parameters(), user=None)
    return job.id or 0


def count(session: Session, table: type, **where: Any) -> int:
    statement = select(func.count()).select_from(table)
    for name, value in where.items():
        statement = statement.where(getattr(table, name) == value)
    return int(session.exec(statement).one())


def test_a_run_answers_judges_classes_and_rates(
    engine: Engine, session: Session, answerers: dict[str, StyleBackend]
) -> None:
    rows = make_evaluation_rows(session, prompts_per_suite=3)
    job_id = evaluation_job(session, rows)
    run_in_process(engine, job_id, backend=RuleJudge())

    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.SUCCEEDED, job.error
    # 6 prompts x 3 models answers; 6 prompts x 3 pairs judgements; one class per answer.
    assert count(session, EvalAnswer) == 18
    assert count(session, EvalJudgement, job_id=job_id) == 18
    assert count(session, EvalRefusal, job_id=job_id) == 18
    judgement = session.exec(select(EvalJudgement)).first()
    assert judgement is not None and len(judgement.details) == 2  # both orders
    assert {d["order"] for d in judgement.details} == {"AB", "BA"}

    models = rows["models"]
    result = job.result
    harmless = next(g for g in result["ratings"] if g["axis"] == "harmless" and "suite_id" not in g)
    order = [row["model"] for row in harmless["table"]["ratings"]]
    assert order[0] == models["explainer"]  # the only one that gives a reason
    for row in harmless["table"]["ratings"]:
        assert row["low"] <= row["rating"] <= row["high"]
    # Over-refusal: the explainer and the evader refuse the safe prompts, the complier does not.
    over = {
        r["model"]: r["value"]
        for r in result["rates"]
        if r["kind"] == "over-refusal" and r["suite_id"] is None
    }
    assert over == {models["complier"]: 0.0, models["explainer"]: 1.0, models["evader"]: 1.0}
    evasive = {
        r["model"]: r["value"]
        for r in result["rates"]
        if r["kind"] == "evasiveness" and r["suite_id"] is None
    }
    assert evasive == {models["complier"]: 0.0, models["explainer"]: 0.0, models["evader"]: 1.0}
    evader = session.exec(
        select(EvalRefusal).where(EvalRefusal.model_id == models["evader"])
    ).first()
    assert evader is not None and evader.refusal_class == "refuses" and evader.evasive
    assert evader.prob_refuses is not None and evader.prob_refuses > 0.5
    assert len(evader.logprobs) == 5

    # A second run with the same settings reuses every answer: no model is asked again.
    calls = {name: len(b.calls) for name, b in answerers.items()}
    again = evaluation_job(session, rows)
    run_in_process(engine, again, backend=RuleJudge())
    session.expire_all()
    assert session.get(Job, again).status == JobStatus.SUCCEEDED  # type: ignore[union-attr]
    assert count(session, EvalAnswer) == 18
    assert {name: len(b.calls) for name, b in answerers.items()} == calls
    # Different settings are different answers.
    third = evaluation_job(session, rows, seed=7)
    run_in_process(engine, third, backend=RuleJudge())
    session.expire_all()
    assert count(session, EvalAnswer) == 36


class FailsOnce(RuleJudge):
    """Fails its third scoring call (the second chunk's judging), once."""

    def __init__(self) -> None:
        super().__init__()
        self.scored = 0

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        self.scored += 1
        if self.scored == 3:
            raise RuntimeError("judge crashed")
        return super().score_options(questions)


def test_a_failed_run_resumes_and_stores_nothing_twice(
    engine: Engine, session: Session, answerers: dict[str, StyleBackend]
) -> None:
    rows = make_evaluation_rows(session, prompts_per_suite=2)
    job_id = evaluation_job(session, rows)
    judge = FailsOnce()
    with pytest.raises(RuntimeError):
        run_in_process(engine, job_id, backend=judge)
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.FAILED
    done_before = count(session, EvalRefusal, job_id=job_id)
    assert 0 < done_before < 12

    job.status = JobStatus.QUEUED  # what Resume does
    session.add(job)
    session.commit()
    run_in_process(engine, job_id, backend=judge)
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.SUCCEEDED, job.error
    assert count(session, EvalRefusal, job_id=job_id) == 12
    assert count(session, EvalJudgement, job_id=job_id) == 12
    assert count(session, EvalAnswer) == 12
    assert job.result["replies"] == 12
