"""`cai eval` checks the run before storing a job, runs it in process and prints the ratings."""

from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

import worker.chunk_runner
import worker.eval_stages
from app.cli import main
from app.models import Job, JobStatus
from tests.unit.eval_fakes import STYLES, RuleJudge, StyleBackend, make_evaluation_rows


def arguments(rows: dict[str, Any], models: list[int]) -> list[str]:
    return [
        "eval",
        "--model-ids",
        *[str(m) for m in models],
        "--suite-ids",
        *[str(s) for s in rows["suites"].values()],
        "--judge-id",
        str(rows["models"]["judge"]),
        "--version-id",
        str(rows["version"]),
        "--max-new-tokens",
        "8",
        "--bootstrap-samples",
        "20",
        "--chunk-size",
        "2",
    ]


def test_one_model_is_refused_before_a_job_is_stored(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = make_evaluation_rows(session, prompts_per_suite=1)
    assert main(arguments(rows, [rows["models"]["complier"]])) == 2
    assert "model_ids" in capsys.readouterr().err
    assert session.exec(select(func.count()).select_from(Job)).one() == 0


def test_a_run_in_process_prints_the_ratings_and_rates(
    engine: Engine,
    session: Session,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = make_evaluation_rows(session, prompts_per_suite=2)
    styled = {rows["models"][name]: StyleBackend(text) for name, text in STYLES.items()}
    monkeypatch.setattr(worker.eval_stages, "open_answerer", lambda model: styled[model.id])
    monkeypatch.setattr(worker.chunk_runner, "cached_backend", lambda model: RuleJudge())
    models = [rows["models"][name] for name in STYLES]
    assert main(arguments(rows, models)) == 0
    out = capsys.readouterr().out
    assert "harmless · all suites:" in out and "explainer" in out
    assert "over-refusal" in out and "evasiveness" in out
    job = session.exec(select(Job)).one()
    assert job.status == JobStatus.SUCCEEDED and job.kind == "evaluate"
