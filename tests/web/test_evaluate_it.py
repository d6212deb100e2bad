""" "Evaluate it": a finished RL or training job and the models page link to the evaluation form
with the trained model and the one it started from ticked; the form reads `model` from the
query, leaving out (with a note) what names no policy model, never failing on it."""

import re
from collections.abc import Callable
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

import app.evaluation_goodhart
import worker.eval_stages
from app.models import Job, JobStatus, LanguageModel, Role, User
from tests.unit.eval_fakes import STYLES, RuleJudge, StyleBackend, make_evaluation_rows
from tests.web.test_evaluations import form, launch
from tests.web.test_rl import make_model
from worker.chunk_runner import run_in_process


def ticked(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="model_ids" value="(\d+)" checked', page)]


def notes(page: str) -> list[str]:
    return [unescape(n) for n in re.findall(r'class="hint prefill-note"[^>]*>([^<]*)<', page)]


def evaluate_links(page: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'<a href="([^"]*)" data-evaluate-it>', page)]


def test_the_form_ticks_the_models_a_link_names(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    base, tuned = make_model(session, "base"), make_model(session, "tuned")
    client = make_client(Role.AUTHOR)
    page = client.get("/evaluations/new", params=[("model", tuned.id), ("model", base.id)])
    assert page.status_code == 200
    assert sorted(ticked(page.text)) == sorted([base.id, tuned.id])
    assert notes(page.text) == []
    # Without a query nothing is ticked.
    assert ticked(client.get("/evaluations/new").text) == []


def test_bad_model_values_are_left_out_with_a_note_never_a_500(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    policy = make_model(session, "policy")
    reward = make_model(session, "judge-pm", kind="reward")
    client = make_client(Role.AUTHOR)
    query = [
        ("model", str(policy.id)),
        ("model", str(policy.id)),  # a repeat is one model, no note
        ("model", "abc"),
        ("model", "-3"),
        ("model", str(2**63)),  # past the largest id a database stores
        ("model", "999999"),
        ("model", str(reward.id)),
        ("model", "<script>x</script>"),
    ]
    page = client.get("/evaluations/new", params=query)
    assert page.status_code == 200
    assert ticked(page.text) == [policy.id]
    found = notes(page.text)
    assert found == [
        "model: 'abc' is not a model id; left out.",
        "model: '-3' is not a model id; left out.",
        f"model: '{2**63}' is not a model id; left out.",
        "model: there is no model 999999; left out.",
        "model: judge-pm is a reward model, which does not answer prompts; left out.",
        "model: '<script>x</script>' is not a model id; left out.",
    ]
    assert "<script>x</script>" not in page.text  # the note is escaped
    # A flood of values is read only as far as a run could use.
    many = client.get("/evaluations/new", params=[("model", "x")] * 500)
    assert many.status_code == 200 and "500 values" in many.text
    # Viewers cannot launch, with or without a query.
    viewer = make_client(Role.VIEWER)
    assert viewer.get("/evaluations/new", params={"model": policy.id}).status_code == 403


def finished(
    session: Session, kind: str, parameters: dict[str, object], model: LanguageModel
) -> Job:
    job = Job(
        kind=kind,
        queue="gpu",
        status=JobStatus.SUCCEEDED,
        parameters=parameters,
        result={"model_id": model.id, "model_name": model.name, "steps": 2},
    )
    session.add(job)
    session.commit()
    return job


def test_a_finished_rl_job_links_to_an_evaluation_against_its_starting_policy(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    start = make_model(session, "start")
    pm = make_model(session, "pm", kind="reward")
    policy = make_model(session, "start-rl")
    job = finished(
        session,
        "rl",
        {"policy_model_id": start.id, "reward_model_id": pm.id, "prompt_mix": []},
        policy,
    )
    client = make_client(Role.AUTHOR)
    links = evaluate_links(client.get(f"/jobs/{job.id}").text)
    assert links == [f"/evaluations/new?model={policy.id}&model={start.id}"]
    # The link opens the form with both ticked.
    assert sorted(ticked(client.get(links[0]).text)) == sorted([policy.id, start.id])
    # The status fragment (what the polling page swaps in as the job ends) has it too.
    assert evaluate_links(client.get(f"/jobs/{job.id}/status").text) == links
    # A viewer, who cannot launch, gets no link.
    assert evaluate_links(make_client(Role.VIEWER).get(f"/jobs/{job.id}").text) == []


def test_a_finished_training_job_and_the_models_page_link_the_model_with_its_parent(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    base = make_model(session, "base")
    tuned = make_model(session, "base-sft")
    tuned.parent_id = base.id
    session.add(tuned)
    session.commit()
    job = finished(session, "train", {"base_model_id": base.id, "method": "sft"}, tuned)
    pm = make_model(session, "base-pm", kind="reward")
    pm_job = finished(session, "train", {"base_model_id": base.id, "method": "reward"}, pm)
    client = make_client(Role.AUTHOR)
    expected = f"/evaluations/new?model={tuned.id}&model={base.id}"
    assert evaluate_links(client.get(f"/jobs/{job.id}").text) == [expected]
    # A preference model does not answer prompts: nothing to evaluate.
    assert evaluate_links(client.get(f"/jobs/{pm_job.id}").text) == []
    models = evaluate_links(client.get("/models").text)
    # One per policy: the tuned model with its parent, the base alone; none for the reward model.
    assert sorted(models) == sorted([expected, f"/evaluations/new?model={base.id}"])


def test_the_results_page_shows_the_goodhart_watch_per_model(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    engine: Engine,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = make_evaluation_rows(session, prompts_per_suite=2)
    styled = {rows["models"][name]: StyleBackend(text) for name, text in STYLES.items()}
    monkeypatch.setattr(worker.eval_stages, "open_answerer", lambda m: styled[m.id])
    response = launch(make_client(Role.AUTHOR), form(rows))
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    client = make_client(Role.VIEWER)
    # Before the run has results there is no watch.
    assert 'id="goodhart"' not in client.get(f"/evaluations/{job_id}").text
    run_in_process(engine, job_id, backend=RuleJudge())

    page = client.get(f"/evaluations/{job_id}").text
    assert 'id="goodhart"' in page
    # Every model says its one sentence to every prompt: each of its n-grams is in all its
    # replies, and the top three (ties broken alphabetically) are the explainer's and evader's.
    phrases = [unescape(p) for p in re.findall(r'<q class="goodhart-phrase">([^<]*)</q>', page)]
    assert phrases == [
        "because it could hurt",
        "can't help with that",
        "could hurt someone instead",
    ]
    table = page[page.index('class="grid goodhart-watch"') :]
    cells = re.findall(r"<tr><td>(.*?)</td></tr>", table)
    pooled = [re.split(r"</td><td>", c) for c in cells if c.startswith("all suites")]
    shares = {unescape(row[1]): row[2] for row in pooled}
    assert shares == {"complier": "0%", "explainer": "100%", "evader": "100%"}
    replies_count = len(rows["suites"]) * 2
    evader = next(row for row in pooled if row[1] == "evader")
    assert f"{replies_count} of {replies_count}" in evader[3]
    assert f"/evaluations/{job_id}/replies?model={rows['models']['evader']}" in evader[3]
    assert evader[4] == "5.0"  # "I can't help with that." in words
    # And per suite, as the run has several.
    assert len(cells) == len(pooled) * (1 + len(rows["suites"]))

    # The run stored the watch with its result: the page reads no replies for it.
    def no_reading(**_: object) -> None:
        raise AssertionError("the results page read the run's replies")

    monkeypatch.setattr(app.evaluation_goodhart, "run_replies", no_reading)
    assert client.get(f"/evaluations/{job_id}").text == page
    monkeypatch.undo()
    # A run finished before the watch was stored has it measured from its replies, the same.
    job = session.get(Job, job_id)
    assert job is not None and "goodhart" in job.result
    job.result = {k: v for k, v in job.result.items() if k != "goodhart"}
    session.add(job)
    session.commit()
    assert client.get(f"/evaluations/{job_id}").text == page
