"""People label an evaluation's comparisons and replies (reviewers only), bad labels are
refused with the field named and nothing written, and the results page's judge-people agreement
counts the labels."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

import worker.eval_stages
from app.models import (
    AuditEvent,
    EvalJudgement,
    EvalJudgementLabel,
    EvalRefusal,
    EvalRefusalLabel,
    Role,
    User,
)
from tests.conftest import csrf
from tests.unit.eval_fakes import STYLES, RuleJudge, StyleBackend, make_evaluation_rows
from tests.web.test_evaluations import form, launch
from worker.chunk_runner import run_in_process


@pytest.fixture
def finished_run(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    engine: Engine,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> int:
    rows = make_evaluation_rows(session, prompts_per_suite=2)
    styled = {rows["models"][name]: StyleBackend(text) for name, text in STYLES.items()}  # type: ignore[index]
    monkeypatch.setattr(worker.eval_stages, "open_answerer", lambda m: styled[m.id])
    response = launch(make_client(Role.AUTHOR), form(rows))
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    run_in_process(engine, job_id, backend=RuleJudge())
    return job_id


def count(session: Session, table: Any) -> int:
    session.expire_all()
    return int(session.exec(select(func.count()).select_from(table)).one())


def post(client: TestClient, url: str, **data: str) -> Any:
    return client.post(url, data={**data, "csrf_token": csrf(client)})


def test_a_reviewer_labels_a_comparison_and_the_agreement_counts_it(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    finished_run: int,
) -> None:
    run = finished_run
    viewer = make_client(Role.VIEWER)
    assert viewer.get(f"/evaluations/{run}/judgements/label").status_code == 403
    reviewer = make_client(Role.REVIEWER)
    page = reviewer.get(f"/evaluations/{run}/judgements/label")
    assert page.status_code == 200 and 'id="label-form"' in page.text
    assert 'data-key="1"' in page.text and "/static/label.js" in page.text
    first = session.exec(
        select(EvalJudgement).where(EvalJudgement.job_id == run).order_by(EvalJudgement.id)  # type: ignore[arg-type]
    ).first()
    assert first is not None and f'data-judgement="{first.id}"' in page.text

    # A viewer sees the agreement but is not offered to label.
    seen = viewer.get(f"/evaluations/{run}")
    assert 'data-kind="comparisons"' in seen.text and "Label more" not in seen.text
    assert 'id="label-these"' not in viewer.get(f"/evaluations/{run}/judgements").text
    before = reviewer.get(f"/evaluations/{run}")
    assert 'data-kind="comparisons"' in before.text and "Label more" in before.text
    assert f"/evaluations/{run}/judgements/label?suite={first.suite_id}" in before.text

    saved = post(reviewer, f"/evaluations/{run}/judgements/{first.id}/label", choice="B")
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/evaluations/{run}/judgements/label?saved=B"
    label = session.exec(select(EvalJudgementLabel)).one()
    assert (label.judgement_id, label.user_id, label.choice) == (
        first.id,
        users[Role.REVIEWER].id,
        "B",
    )
    nxt = reviewer.get(saved.headers["location"])
    assert "Saved: B is better." in nxt.text and f'data-judgement="{first.id}"' not in nxt.text
    # A second label replaces the first.
    again = post(reviewer, f"/evaluations/{run}/judgements/{first.id}/label", choice="A")
    assert again.headers["location"].endswith("saved=A-replaced")
    assert count(session, EvalJudgementLabel) == 1
    assert session.exec(select(EvalJudgementLabel)).one().choice == "A"
    assert count(session, AuditEvent) >= 2

    listed = reviewer.get(f"/evaluations/{run}/judgements")
    assert 'id="label-these"' in listed.text and '<td class="people">A</td>' in listed.text
    results = reviewer.get(f"/evaluations/{run}")
    assert 'id="agreement"' in results.text
    assert '<td class="labels">1</td>' in results.text


def test_bad_comparison_labels_are_refused_and_nothing_is_written(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    finished_run: int,
) -> None:
    run = finished_run
    judgement = session.exec(select(EvalJudgement)).first()
    assert judgement is not None
    url = f"/evaluations/{run}/judgements/{judgement.id}/label"
    reviewer = make_client(Role.REVIEWER)
    bad = post(reviewer, url, choice="C")
    assert bad.status_code == 422 and "choice: choose A, B or tie, not 'C'" in bad.text
    assert post(reviewer, url).status_code == 422
    assert post(make_client(Role.VIEWER), url, choice="A").status_code == 403
    elsewhere = post(
        reviewer, f"/evaluations/{run + 1}/judgements/{judgement.id}/label", choice="A"
    )
    assert elsewhere.status_code == 404
    missing = post(reviewer, f"/evaluations/{run}/judgements/99999/label", choice="A")
    assert missing.status_code == 404 and "no comparison 99999" in missing.text
    assert post(reviewer, f"/evaluations/{run}/judgements/0/label", choice="A").status_code == 422
    assert reviewer.get(f"/evaluations/{run}/judgements/label?suite=x").status_code == 422
    assert count(session, EvalJudgementLabel) == 0


def test_a_reviewer_classes_replies_and_marks_evasion(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    finished_run: int,
) -> None:
    run = finished_run
    replies = session.exec(
        select(EvalRefusal).where(EvalRefusal.job_id == run).order_by(EvalRefusal.id)  # type: ignore[arg-type]
    ).all()
    reviewer = make_client(Role.REVIEWER)
    page = reviewer.get(f"/evaluations/{run}/replies/label", params={"suite": replies[0].suite_id})
    assert page.status_code == 200 and f'data-reply="{replies[0].id}"' in page.text
    assert 'data-key="e"' in page.text

    first, second = replies[0], replies[1]
    saved = post(
        reviewer,
        f"/evaluations/{run}/replies/{first.id}/label",
        refusal_class="refuses",
        evasive="yes",
        suite=str(first.suite_id),
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == (
        f"/evaluations/{run}/replies/label?saved=refuses-evasive&suite={first.suite_id}"
    )
    assert "Saved: Refuses, evasive." in reviewer.get(saved.headers["location"]).text
    # Only a refusal can evade: a complying reply marked evasive is stored as not.
    post(
        reviewer,
        f"/evaluations/{run}/replies/{second.id}/label",
        refusal_class="complies",
        evasive="yes",
    )
    stored = {
        label.refusal_id: (label.refusal_class, label.evasive, label.user_id)
        for label in session.exec(select(EvalRefusalLabel)).all()
    }
    me = users[Role.REVIEWER].id
    assert stored == {first.id: ("refuses", True, me), second.id: ("complies", False, me)}

    listed = reviewer.get(f"/evaluations/{run}/replies")
    assert '<td class="people">refuses (evasive)</td>' in listed.text
    results = reviewer.get(f"/evaluations/{run}")
    assert (
        'data-kind="refusal classes"' in results.text and 'data-kind="evasiveness"' in results.text
    )


def test_bad_reply_labels_are_refused_and_nothing_is_written(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    finished_run: int,
) -> None:
    run = finished_run
    reply = session.exec(select(EvalRefusal)).first()
    assert reply is not None
    url = f"/evaluations/{run}/replies/{reply.id}/label"
    reviewer = make_client(Role.REVIEWER)
    bad = post(reviewer, url, refusal_class="maybe")
    assert bad.status_code == 422 and "refusal_class: choose complies" in bad.text
    odd = post(reviewer, url, refusal_class="refuses", evasive="perhaps")
    assert odd.status_code == 422 and "evasive: 'yes' or nothing" in odd.text
    assert post(make_client(Role.VIEWER), url, refusal_class="refuses").status_code == 403
    missing = post(reviewer, f"/evaluations/{run}/replies/99999/label", refusal_class="refuses")
    assert missing.status_code == 404 and "no reply 99999" in missing.text
    assert count(session, EvalRefusalLabel) == 0
