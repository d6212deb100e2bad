"""The refusal judge checked against people: per-row classes, the metrics, the job, the CLI,
and the real XSTest file end to end with the tiny model."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import worker.judge_check_job
from app.cli import main
from app.job_records import create_job
from app.judge_checks import KIND
from app.models import Job, JobStatus, LanguageModel
from app.prompt_files.xstest import load_labelled_completions
from app.specs.judge_check import JudgeCheckSpec
from tests.conftest import FIXTURES
from tests.queued import run_job_here
from tests.unit.eval_fakes import RuleJudge
from worker.judge_check import CLASSES, format_summary, judge_rows, summarise

COMPLETIONS = FIXTURES / "xstest" / "completions.csv"


def test_the_fake_judge_is_compared_with_the_people_row_by_row() -> None:
    rows = load_labelled_completions(COMPLETIONS)
    seen: list[int] = []
    results = judge_rows(rows, RuleJudge(), batch_size=2, progress=seen.append)
    assert seen == [2, 2, 1]
    # RuleJudge calls "can't"/"won't" a refusal: x-4 (a partial refusal to people) is missed.
    assert [(r["id"], r["people"], r["judge"]) for r in results] == [
        ("x-1", "complies", "complies"),
        ("x-2", "refuses", "refuses"),
        ("x-3", "complies", "complies"),
        ("x-4", "partly-refuses", "refuses"),
        ("x-6", "refuses", "refuses"),
    ]
    assert [r["line"] for r in results] == [row.line for row in rows]
    assert abs(sum(results[0]["probabilities"].values()) - 1) < 1e-9
    summary = summarise(results)
    assert summary["classes"] == list(CLASSES) == ["complies", "refuses", "partly-refuses"]
    assert summary["matrix"] == [[2, 0, 0], [0, 2, 0], [0, 1, 0]]
    assert (summary["n"], summary["skipped"]) == (5, 0)
    assert summary["accuracy"] == pytest.approx(0.8)
    # p_o = 0.8; p_e = 0.4 * 0.4 + 0.4 * 0.6 = 0.4; kappa = 0.4 / 0.6.
    assert summary["kappa"] == pytest.approx(2 / 3)
    assert summary["accuracy_low"] < 0.8 < summary["accuracy_high"]
    text = format_summary(summary)
    assert "accuracy 80.0%" in text and "kappa 0.667" in text


def test_a_row_the_judge_cannot_read_is_skipped_not_counted() -> None:
    rows = load_labelled_completions(COMPLETIONS)
    judge = RuleJudge()
    judge.context_length = 40  # every question is longer than this
    results = judge_rows(rows[:2], judge)
    assert [r["flags"] for r in results] == [["too_long"], ["too_long"]]
    summary = summarise(results)
    assert (summary["n"], summary["skipped"], summary["kappa"]) == (0, 2, None)
    assert "no row classed" in format_summary(summary)


def stored_check(session: Session, path: Path, model_id: int, limit: int = 0) -> int:
    spec = JudgeCheckSpec(
        model_id=model_id, limit=limit, path=str(path), filename="people.csv", rows=5
    )
    job = create_job(session=session, kind=KIND, parameters=spec.to_parameters(), user=None)
    assert job.id is not None
    return job.id


def test_the_job_stores_per_row_results_and_the_metrics(
    engine: Engine, session: Session, data_dir: Path
) -> None:
    judge = LanguageModel(name="judge", backend="transformers", path="fake")
    session.add(judge)
    session.commit()
    # A copy in the upload folder, as the web app leaves it: the job removes it once read.
    upload = data_dir / "uploads" / "abc.csv"
    upload.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(COMPLETIONS, upload)
    job_id = stored_check(session, upload, judge.id or 0, limit=4)
    run_job_here(engine, "worker.tasks.run_judge_check", job_id, open_backend=lambda m: RuleJudge())
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.SUCCEEDED, job and job.error
    assert not upload.exists()
    assert (job.result["n"], job.result["file"], job.result["model"]) == (4, "people.csv", "judge")
    assert [r["id"] for r in job.result["rows"]] == ["x-1", "x-2", "x-3", "x-4"]
    assert job.result["matrix"] == [[2, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert job.progress_done == job.progress_total == 4


def test_cai_eval_judge_prints_accuracy_confusion_and_kappa(
    engine: Engine,
    session: Session,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judge = LanguageModel(name="judge", backend="transformers", path="fake")
    session.add(judge)
    session.commit()
    monkeypatch.setattr(worker.judge_check_job, "load_backend", lambda model: RuleJudge())
    assert main(["eval-judge", "--model", "judge", str(COMPLETIONS)]) == 0
    captured = capsys.readouterr()
    assert "accuracy 80.0%" in captured.out and "Cohen's kappa 0.667" in captured.out
    assert "partly-refuses" in captured.out and "reply" in captured.err  # the progress bar
    job = session.exec(select(Job).where(Job.kind == KIND)).one()
    assert job.status == JobStatus.SUCCEEDED and job.result["n"] == 5
    assert COMPLETIONS.exists()  # the operator's own file is never removed


def test_cai_eval_judge_refuses_a_bad_file_or_model_before_a_job(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,completion,final_label\nHi,Hello,yes\n", encoding="utf-8")
    assert main(["eval-judge", "--model", "judge", str(bad)]) == 2
    assert "bad.csv line 2: the 'final_label' field is 'yes'" in capsys.readouterr().err
    assert main(["eval-judge", "--model", "nobody", str(COMPLETIONS)]) == 2
    assert "no policy model 'nobody'" in capsys.readouterr().err
    assert session.exec(select(Job)).first() is None


def test_the_tiny_model_on_the_shared_xstest_file_end_to_end(
    engine: Engine,
    session: Session,
    tiny_model: Path,
    shared_data_or_none: Callable[[str], Path | None],
) -> None:
    """The harness on the real file (a few rows on CPU), or on the project's own without it."""
    path = shared_data_or_none("xstest/completions_mistralinstruct_labelled.csv") or COMPLETIONS
    judge = LanguageModel(name="tiny", backend="transformers", path=str(tiny_model))
    session.add(judge)
    session.commit()
    job_id = stored_check(session, path, judge.id or 0, limit=6)
    run_job_here(engine, "worker.tasks.run_judge_check", job_id)
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.SUCCEEDED, job and job.error
    result = job.result
    rows = min(6, len(load_labelled_completions(path)))
    assert result["n"] + result["skipped"] == rows == len(result["rows"])
    assert sum(map(sum, result["matrix"])) == result["n"] > 0
    assert 0 <= result["accuracy"] <= 1 and -1 <= result["kappa"] <= 1
    assert path.exists()
