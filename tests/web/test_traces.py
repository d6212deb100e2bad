import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.models import AuditEvent, Principle, Review, Role, Trace, TraceStep, User
from tests.conftest import post
from tests.web.runs import make_run
from worker.backends.fake import FakeBackend


def trace_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-trace="(\d+)"', html)]


def test_list_filters_and_keyset_pages(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    first = make_run(session, engine, prompts=60)
    second = make_run(session, engine, prompts=3, texts=["alpha", "beta", "gamma"])
    client = make_client(Role.VIEWER)
    page = client.get("/traces", params={"job": first.id}).text
    ids = trace_ids(page)
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    assert "Traces <small>60</small>" in page
    after = re.search(r'href="(/traces\?[^"]*after=\d+)"', page).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    rest = trace_ids(client.get(after).text)
    assert len(rest) == 10 and not set(rest) & set(ids) and max(rest) < min(ids)

    assert len(trace_ids(client.get("/traces").text)) == 50
    assert "Traces <small>63</small>" in client.get("/traces").text
    found = client.get("/traces", params={"q": "BETA"}).text
    assert "Traces <small>1</small>" in found and "beta" in found

    harm = {
        t for t in session.exec(select(TraceStep.trace_id).where(TraceStep.principle_key == "harm"))
    }
    only_harm = trace_ids(
        client.get("/traces", params={"job": second.id, "principle": "harm"}).text
    )
    assert set(only_harm) == harm & {
        t.id for t in session.exec(select(Trace).where(Trace.job_id == second.id))
    }

    reviewer = make_client(Role.REVIEWER)
    target = session.exec(select(Trace).where(Trace.job_id == second.id)).first()
    assert target is not None
    post(reviewer, f"/traces/{target.id}/review", data={"verdict": "reject"})
    assert trace_ids(client.get("/traces", params={"status": "rejected"}).text) == [target.id]
    assert target.id not in trace_ids(
        client.get("/traces", params={"status": "pending", "job": second.id}).text
    )


def test_the_trace_page_shows_every_step(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    job = make_run(session, engine, prompts=1, rounds=2)
    trace = session.exec(select(Trace)).one()
    steps = session.exec(select(TraceStep).where(TraceStep.trace_id == trace.id)).all()
    page = make_client(Role.VIEWER).get(f"/traces/{trace.id}").text
    assert "question number 0?" in page and trace.initial_reply in page
    for step in steps:
        assert (
            f'data-round="{step.round}"' in page and step.critique in page and step.revision in page
        )
        assert f"#principle-{step.principle_id}" in page
    assert "rounds 2" in page and f'href="/jobs/{job.id}"' in page
    assert '<div class="pre new card" id="final-reply">' in page and "<ins>" in page
    assert make_client(Role.VIEWER).get("/traces/99999").status_code == 404


def test_reviews_corrections_and_two_tabs(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    make_run(session, engine, prompts=2)
    trace = session.exec(select(Trace)).first()
    assert trace is not None
    tab_one, tab_two = make_client(Role.REVIEWER), make_client(Role.REVIEWER)
    empty = post(
        tab_one,
        f"/traces/{trace.id}/review",
        data={"verdict": "approve", "corrected_text": "", "correcting": "1"},
    )
    assert empty.status_code == 400 and "a correction cannot be empty" in empty.text
    assert session.exec(select(Review)).all() == []

    first = post(
        tab_one,
        f"/traces/{trace.id}/review",
        data={
            "verdict": "approve",
            "corrected_text": "A better reply.",
            "comment": "close",
            "correcting": "1",
        },
    )
    assert first.status_code == 303
    second = post(tab_two, f"/traces/{trace.id}/review", data={"verdict": "reject"})
    assert second.headers["location"].endswith("?updated=1")
    reviews = session.exec(select(Review)).all()
    assert (
        len(reviews) == 1 and reviews[0].verdict == "reject" and reviews[0].corrected_text is None
    )
    session.refresh(trace)
    assert (trace.review_count, trace.review_status) == (1, "rejected")

    post(
        tab_one,
        f"/traces/{trace.id}/review",
        data={"verdict": "approve", "corrected_text": "A better reply.", "correcting": "1"},
    )
    page = tab_one.get(f"/traces/{trace.id}").text
    assert "A better reply." in page and "the model's final revision" in page
    assert trace.final_reply in page  # the original stays beside the correction
    actions = [
        e.action for e in session.exec(select(AuditEvent).where(AuditEvent.object_type == "trace"))
    ]
    assert actions.count("review.create") == 1 and actions.count("review.update") == 2


def test_the_queue_serves_what_still_needs_my_review(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    job = make_run(session, engine, prompts=3, reviews_needed=2)
    ids = [
        t.id for t in session.exec(select(Trace).where(Trace.job_id == job.id).order_by(Trace.id))
    ]
    reviewer = make_client(Role.REVIEWER)
    first = reviewer.get("/review", params={"job": job.id})
    assert f"<h1>Trace {ids[0]} " in first.text and 'id="queue-left">3<' in first.text
    moved = post(
        reviewer,
        f"/traces/{ids[0]}/review",
        data={"verdict": "approve", "in_queue": "1", "queue_job": str(job.id)},
    )
    assert moved.headers["location"] == f"/review?job={job.id}&after={ids[0]}"
    assert f"<h1>Trace {ids[1]} " in reviewer.get(moved.headers["location"]).text
    # Needs two reviews: still pending, and still in another reviewer's queue.
    assert session.get(Trace, ids[0]).review_status == "pending"  # type: ignore[union-attr]
    admin = make_client(Role.ADMIN)
    assert f"<h1>Trace {ids[0]} " in admin.get("/review", params={"job": job.id}).text
    # Skipping the last two wraps round to them; reviewing them empties my queue.
    assert (
        f"<h1>Trace {ids[1]} "
        in reviewer.get("/review", params={"job": job.id, "after": ids[2]}).text
    )
    for trace_id in ids[1:]:
        post(reviewer, f"/traces/{trace_id}/review", data={"verdict": "reject"})
    done = reviewer.get("/review", params={"job": job.id})
    assert 'id="queue-done"' in done.text
    assert (
        f"<h1>Trace {ids[1]} "
        in reviewer.get("/review", params={"job": job.id, "before": ids[2]}).text
    )


def test_a_suggested_principle_lands_in_a_draft_linked_to_the_trace(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    make_run(session, engine, prompts=1)
    trace = session.exec(select(Trace)).one()
    reviewer = make_client(Role.REVIEWER)
    bad = post(
        reviewer,
        f"/traces/{trace.id}/suggest-principle",
        data={"key": "harm", "critique_request": "", "revision_request": "x"},
    )
    assert (
        bad.status_code == 400
        and "already has a principle" in bad.text
        and "cannot be empty" in bad.text
    )
    ok = post(
        reviewer,
        f"/traces/{trace.id}/suggest-principle",
        data={
            "key": "flattery",
            "critique_request": "Did it flatter?",
            "revision_request": "Drop the flattery.",
        },
    )
    assert ok.status_code == 303
    principle = session.exec(select(Principle).where(Principle.key == "flattery")).one()
    assert principle.suggested_from_trace_id == trace.id and principle.tags == ["suggested"]
    assert ok.headers["location"].endswith(f"#principle-{principle.id}")


def test_model_output_is_shown_as_text_never_as_html(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    make_run(
        session,
        engine,
        prompts=1,
        backend=FakeBackend(
            replies={
                "question number 0?": [evil],
                "Make it harmless.": [evil],
                "Make it honest.": [evil],
            }
        ),
    )
    trace = session.exec(select(Trace)).one()
    assert trace.initial_reply == evil
    for url in (f"/traces/{trace.id}", "/traces"):
        page = make_client(Role.VIEWER).get(url).text
        assert "<script>alert(1)" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_run_statistics_agreement_and_the_reviews_needed_setting(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    job = make_run(session, engine, prompts=4)
    ids = [
        t.id for t in session.exec(select(Trace).where(Trace.job_id == job.id).order_by(Trace.id))
    ]
    reviewer, admin = make_client(Role.REVIEWER), make_client(Role.ADMIN)
    for trace_id, (mine, theirs) in zip(
        ids,
        [("approve", "approve"), ("reject", "reject"), ("approve", "reject"), ("reject", "reject")],
        strict=True,
    ):
        post(reviewer, f"/traces/{trace_id}/review", data={"verdict": mine})
        post(admin, f"/traces/{trace_id}/review", data={"verdict": theirs})
    page = make_client(Role.VIEWER).get(f"/jobs/{job.id}/stats").text
    assert "4 of 4 traces have the 1 review they need" in page
    # 3 of 4 agree; p_o = .75, p_e = (2/4)(1/4) + (2/4)(3/4) = .5, kappa = .5
    assert (
        "Cohen&#39;s kappa: <b>0.50</b>" in page
        and "(moderate)" in page
        and "raw agreement 75%" in page
    )
    assert '<tr data-key="harm">' in page or '<tr data-key="honesty">' in page
    assert (
        post(
            make_client(Role.AUTHOR), f"/jobs/{job.id}/reviews-needed", data={"reviews_needed": "3"}
        ).status_code
        == 303
    )
    assert {t.review_status for t in session.exec(select(Trace).where(Trace.job_id == job.id))} == {
        "pending"
    }
    assert (
        "0 of 4 traces have the 3 reviews they need"
        in make_client(Role.VIEWER).get(f"/jobs/{job.id}/stats").text
    )


def test_a_huge_count_is_capped(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.traces

    monkeypatch.setattr(app.traces, "COUNT_CAP", 5)
    make_run(session, engine, prompts=8)
    page = make_client(Role.VIEWER).get("/traces").text
    assert "Traces <small>5+</small>" in page and len(trace_ids(page)) == 8
