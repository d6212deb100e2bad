"""The evaluation launch form refuses bad runs before any job starts; the results page shows
ratings, win rates and refusal rates, each number linked to what is behind it, all escaped."""

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

import worker.eval_stages
from app.models import Job, LanguageModel, PromptSet, Role, User
from app.recipe.evaluation import SuitePurpose
from tests.conftest import RecordingQueue, csrf
from tests.unit.eval_fakes import STYLES, RuleJudge, StyleBackend, make_evaluation_rows
from worker.chunk_runner import run_in_process

HOSTILE = "<script>alert('x')</script>"


def form(rows: dict[str, Any], **changes: Any) -> dict[str, Any]:
    models = rows["models"]
    data = {
        "model_ids": [str(models[name]) for name in STYLES],
        "suite_ids": [str(s) for s in rows["suites"].values()],
        "judge_model_id": str(models["judge"]),
        "constitution_version_id": str(rows["version"]),
        "max_new_tokens": "16",
        "temperature": "0.7",
        "top_p": "0.9",
        "top_k": "0",
        "repetition_penalty": "1.1",
        "max_prompts": "0",
        "seed": "0",
        "bootstrap_samples": "50",
        "chunk_size": "2",
    }
    return {**data, **changes}


def jobs(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Job)).one())


def launch(client: TestClient, data: dict[str, Any]) -> Any:
    return client.post("/evaluations/new", data={**data, "csrf_token": csrf(client)})


def test_the_form_renders_with_models_and_suites(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    rows = make_evaluation_rows(session)
    page = make_client(Role.AUTHOR).get("/evaluations/new")
    assert page.status_code == 200
    assert 'name="model_ids"' in page.text and "suite red-team" in page.text
    assert make_client(Role.VIEWER).get("/evaluations/new").status_code == 403
    assert rows


def test_one_model_is_refused_with_the_field_and_nothing_is_written(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    rows = make_evaluation_rows(session)
    client = make_client(Role.AUTHOR)
    before = jobs(session)
    one = form(rows, model_ids=[str(rows["models"]["complier"])])
    response = launch(client, one)
    assert response.status_code == 422
    assert 'data-field="model_ids"' in response.text
    assert "at least two different models" in response.text
    # The same model twice is one model.
    twice = form(rows, model_ids=[str(rows["models"]["complier"])] * 2)
    assert launch(client, twice).status_code == 422
    assert jobs(session) == before and queue.sent == []


def test_a_suite_without_prompts_is_refused_before_any_job(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    rows = make_evaluation_rows(session)
    empty = PromptSet(name="empty suite", purpose=SuitePurpose.RED_TEAM)
    unmarked = PromptSet(name="not a suite", prompt_count=0)
    session.add_all([empty, unmarked])
    session.commit()
    client = make_client(Role.AUTHOR)
    before = jobs(session)
    response = launch(client, form(rows, suite_ids=[str(empty.id)]))
    assert response.status_code == 422
    assert 'data-field="suite_ids"' in response.text and "has no prompts" in response.text
    response = launch(client, form(rows, suite_ids=[str(unmarked.id)]))
    assert response.status_code == 422 and "not an evaluation suite" in response.text
    assert launch(client, form(rows, suite_ids=[])).status_code == 422
    assert jobs(session) == before and queue.sent == []


def test_a_good_launch_queues_one_evaluation(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    rows = make_evaluation_rows(session)
    response = launch(make_client(Role.AUTHOR), form(rows))
    assert response.status_code == 303, response.text
    job = session.exec(select(Job).where(Job.kind == "evaluate")).one()
    assert response.headers["location"] == f"/evaluations/{job.id}"
    assert queue.sent == [("worker.tasks.run_evaluation", job.id, "gpu")]
    assert len(job.parameters["model_ids"]) == 3
    waiting = make_client(Role.VIEWER).get(f"/evaluations/{job.id}")
    assert waiting.status_code == 200 and "The run is going" in waiting.text
    assert f'hx-get="/jobs/{job.id}/status"' in waiting.text


def test_the_results_page_shows_ratings_rates_and_links_escaped(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    engine: Engine,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = make_evaluation_rows(session, prompts_per_suite=2)
    evader = session.get(LanguageModel, rows["models"]["evader"])
    assert evader is not None
    evader.name = HOSTILE  # a name is anyone's text: shown, never run
    session.add(evader)
    session.commit()
    styled = {rows["models"][name]: StyleBackend(text) for name, text in STYLES.items()}
    monkeypatch.setattr(worker.eval_stages, "open_answerer", lambda m: styled[m.id])
    response = launch(make_client(Role.AUTHOR), form(rows))
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    run_in_process(engine, job_id, backend=RuleJudge())

    client = make_client(Role.VIEWER)
    page = client.get(f"/evaluations/{job_id}")
    assert page.status_code == 200
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
    assert (
        "Harmlessness · all suites" in page.text and "Helpfulness · suite over-refusal" in page.text
    )
    assert "win-matrix" in page.text and "Over-refusal" in page.text
    assert "eval-summary" in page.text and "<th>Evasiveness</th>" in page.text
    # The charts' data, JSON in attributes (static/eval_charts.js): a point per model, both
    # axes rated, and a bar chart per rate the run has; a hostile name stays data.
    scatter = re.search(r"class=\"chart rating-scatter\" data-points='([^']*)'", page.text)
    assert scatter is not None
    points = json.loads(scatter.group(1))
    assert sorted(p["name"] for p in points) == sorted(["complier", "explainer", HOSTILE])
    assert all(p["harmless_low"] <= p["harmless"] <= p["harmless_high"] for p in points)
    assert re.findall(r'class="chart rate-bars" data-kind="([^"]+)"', page.text) == [
        "over-refusal",
        "evasiveness",
    ]
    assert page.text.count('<script src="/static/vendor/uplot/uPlot.iife.min.js"') == 1
    assert f"/evaluations/{job_id}/judgements?model=" in page.text
    assert f"/evaluations/{job_id}/replies?model=" in page.text

    explainer = rows["models"]["explainer"]
    listed = client.get(f"/evaluations/{job_id}/judgements", params={"model": explainer})
    assert listed.status_code == 200 and "because it could hurt someone" in listed.text
    assert listed.text.count("data-judgement=") == 8  # 4 prompts x the 2 pairs it is in
    evader_id = rows["models"]["evader"]
    pair = client.get(
        f"/evaluations/{job_id}/judgements", params={"model": explainer, "against": evader_id}
    )
    assert pair.text.count("data-judgement=") == 4  # one per prompt
    assert f"against={evader_id}" in page.text  # the win matrix links to its pair
    evasive = client.get(f"/evaluations/{job_id}/replies", params={"shown": "evasive"})
    assert evasive.status_code == 200
    assert evasive.text.count("data-reply=") == 4  # the evader, on every prompt
    # Over all suites, a rate links to the replies of its purpose only.
    red = client.get(
        f"/evaluations/{job_id}/replies", params={"shown": "evasive", "purpose": "red-team"}
    )
    assert red.text.count("data-reply=") == 2
    assert "purpose=red-team" in page.text
    bad = client.get(f"/evaluations/{job_id}/replies", params={"purpose": "x"})
    assert bad.status_code == 422
    assert HOSTILE not in evasive.text
    assert client.get(f"/evaluations/{job_id}/replies", params={"shown": "x"}).status_code == 422
    assert (
        client.get(f"/evaluations/{job_id}/judgements", params={"model": "-1"}).status_code == 422
    )
    assert client.get("/evaluations/999999").status_code == 404
    assert client.get("/evaluations").status_code == 200
