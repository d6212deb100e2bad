"""Judge checks from the browser: a bad labelled file is refused with its line and nothing is
written; a good one runs and shows its metrics; an evaluation run's page warns about a judge
with no check, or one below the run's kappa threshold, and shows the HHH labeller check."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from app.judge_checks import KIND
from app.models import Job, JobStatus, LanguageModel, Role, User
from app.specs.evaluation import EvaluationSpec
from tests.conftest import FIXTURES, RecordingQueue, post
from tests.queued import redirect_id, run_queued
from tests.unit.eval_fakes import STYLES, RuleJudge, make_evaluation_rows

GOOD = (FIXTURES / "xstest" / "completions.csv").read_bytes()


def upload(client: TestClient, model_id: int | None, content: bytes, **form: str) -> Any:
    data = {"model_id": str(model_id), "limit": "0", "batch_size": "4", **form}
    return post(
        client, "/judge-checks/new", data=data, files={"file": ("people.csv", content, "text/csv")}
    )


def judge(session: Session) -> int:
    model = LanguageModel(name="judge", backend="transformers", path="fake")
    session.add(model)
    session.commit()
    return model.id or 0


def test_a_malformed_file_is_refused_with_its_line_and_nothing_is_written(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
    data_dir: Path,
) -> None:
    model_id = judge(session)
    author = make_client(Role.AUTHOR)
    assert 'name="file"' in author.get("/judge-checks/new").text
    cases = {
        b"prompt,completion\nHi,Hello\n": "people.csv line 1: no column &#39;final_label&#39;",
        b"prompt,completion,final_label\nHi,Hello,1_full_compliance\nHi,No,nope\n": (
            "people.csv line 3: the &#39;final_label&#39; field is &#39;nope&#39;"
        ),
        b'prompt,completion,final_label\nHi,Hello,1_full_compliance\nHi,"No,2_full_refusal\n': (
            "people.csv line 3: not valid CSV"
        ),
    }
    for content, message in cases.items():
        refused = upload(author, model_id, content)
        assert refused.status_code == 400 and message in refused.text, refused.text
    assert upload(author, None, GOOD).status_code == 400  # no judge chosen
    assert upload(author, model_id, GOOD, limit="-1").status_code == 400
    assert session.exec(select(func.count()).select_from(Job)).one() == 0 and not queue.sent
    uploads = data_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_a_good_file_runs_the_judge_and_its_page_shows_the_agreement(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
    queue: RecordingQueue,
    data_dir: Path,
) -> None:
    model_id = judge(session)
    author = make_client(Role.AUTHOR)
    launched = upload(author, model_id, GOOD)
    assert queue.sent[-1][0] == "worker.tasks.run_judge_check"
    job = run_queued(engine, queue, open_backend=lambda m: RuleJudge())
    assert job.id == redirect_id(launched) and job.kind == KIND
    assert not any((data_dir / "uploads").iterdir())  # the job read the upload and removed it
    page = author.get(f"/jobs/{job.id}").text
    assert 'data-metric="accuracy">80.0%' in page and 'data-metric="kappa">0.667' in page
    assert "<th>partly-refuses</th>" in page
    assert "people.csv" in author.get("/judge-checks/new").text  # listed among the checks


def evaluation_page(session: Session, client: TestClient, rows: dict[str, Any], **spec: Any) -> str:
    parameters = EvaluationSpec(
        model_ids=tuple(rows["models"][name] for name in STYLES),
        suite_ids=tuple(rows["suites"].values()),
        judge_model_id=rows["models"]["judge"],
        constitution_version_id=rows["version"],
        **spec,
    ).to_parameters()
    run = Job(kind="evaluate", queue="gpu", parameters=parameters)
    session.add(run)
    session.commit()
    page = client.get(f"/evaluations/{run.id}")
    assert page.status_code == 200
    return page.text


def stored(session: Session, kind: str, model_id: int, result: dict[str, Any]) -> int:
    job = Job(
        kind=kind,
        queue="gpu",
        status=JobStatus.SUCCEEDED,
        parameters={"model_id": model_id},
        result=result,
    )
    session.add(job)
    session.commit()
    return job.id or 0


def test_the_results_page_warns_about_an_unchecked_or_weak_judge(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    rows = make_evaluation_rows(session, prompts_per_suite=1)
    judge_id = rows["models"]["judge"]
    viewer = make_client(Role.VIEWER)
    page = evaluation_page(session, viewer, rows)
    assert page.count("data-judge-warning") == 2
    assert "has no check against people" in page and 'href="/judge-checks/new"' in page
    assert "has no HHH labeller check" in page

    # A check of another model does not count; a weak check of this one is below 0.4.
    stored(session, KIND, rows["models"]["complier"], {"kappa": 0.9, "accuracy": 0.9, "n": 9})
    weak = stored(session, KIND, judge_id, {"kappa": 0.21, "accuracy": 0.6, "n": 450})
    stored(
        session, "eval_labeller", judge_id, {"results": [{"setting": "order", "accuracy": 0.55}]}
    )
    page = evaluation_page(session, viewer, rows)
    assert page.count("data-judge-warning") == 1
    assert "kappa 0.21 (accuracy 60%, n=450) is below 0.40" in page
    assert f'href="/jobs/{weak}"' in page
    assert "HHH labeller check scored 55.0% (order" in page

    # The threshold is the run's own: a lenient run takes the same check without a warning.
    lenient = evaluation_page(session, viewer, rows, min_judge_kappa=0.2)
    assert "data-judge-warning" not in lenient and "Cohen&#39;s kappa 0.21" in lenient
