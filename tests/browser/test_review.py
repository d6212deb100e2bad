"""A reviewer works through the queue with the keyboard; model output never runs as code."""

import re
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.db import engine_for
from app.models import Review, Trace
from tests.browser.test_prompt_import import sign_in
from tests.live import LiveApp
from tests.web.runs import make_run
from worker.backends.fake import FakeBackend

pytestmark = [pytest.mark.browser]


def current_trace(page: Any) -> int:
    return int(re.search(r"Trace (\d+)", page.inner_text("h1")).group(1))  # type: ignore[union-attr]


def test_keyboard_review_from_the_first_trace_to_the_end_of_the_queue(
    page: Any, app: LiveApp
) -> None:
    engine = engine_for(app.env["DATABASE_URL"])
    with Session(engine) as session:
        job = make_run(session, engine, prompts=3)
        ids = list(
            session.exec(select(Trace.id).where(Trace.job_id == job.id).order_by(col(Trace.id)))
        )
    sign_in(page)
    page.goto(f"/review?job={job.id}")
    assert current_trace(page) == ids[0]
    assert page.inner_text("#queue-left") == "3"

    page.keyboard.press("?")
    assert page.is_visible("#keys-help")
    page.keyboard.press("a")  # approve: on to the next trace
    page.wait_for_url(re.compile(rf"after={ids[0]}"))
    assert current_trace(page) == ids[1]

    page.keyboard.press("k")  # back to the one just approved
    page.wait_for_url(re.compile(rf"before={ids[1]}"))
    assert current_trace(page) == ids[0]
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf"after={ids[0]}"))
    assert current_trace(page) == ids[1]

    page.keyboard.press("e")  # correct: the box opens with the model's text, focused
    assert page.evaluate("document.activeElement.id") == "corrected-text"
    page.fill("#corrected-text", "")
    page.click("#save-correction")  # an empty correction is refused, with a message
    assert "a correction cannot be empty" in page.inner_text(".field-error")
    page.fill("#corrected-text", "A careful, kinder answer.")
    page.keyboard.press("Escape")
    page.fill("#review-comment", "fixed the tone")
    page.click("#save-correction")
    page.wait_for_url(re.compile(rf"after={ids[1]}"))
    assert current_trace(page) == ids[2]

    page.keyboard.press("s")  # skip: the queue wraps round to the skipped one
    page.wait_for_load_state()
    assert current_trace(page) == ids[2]
    page.keyboard.press("r")
    page.wait_for_selector("#queue-done")

    with Session(engine) as session:
        reviews = {r.trace_id: r for r in session.exec(select(Review))}
    assert [reviews[i].verdict for i in ids] == ["approve", "approve", "reject"]
    assert reviews[ids[1]].corrected_text == "A careful, kinder answer."
    assert reviews[ids[1]].comment == "fixed the tone"


def test_model_output_with_markup_is_shown_and_never_runs(page: Any, app: LiveApp) -> None:
    evil = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> plain words'
    engine = engine_for(app.env["DATABASE_URL"])
    with Session(engine) as session:
        backend = FakeBackend(
            replies={
                "question number 0?": [evil],
                "Make it harmless.": [evil],
                "Make it honest.": [evil],
            }
        )
        make_run(session, engine, prompts=1, backend=backend)
        trace_id = session.exec(select(Trace.id)).one()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page)
    for url in (f"/traces/{trace_id}", "/traces", "/review"):
        page.goto(url)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__xss") is None, url
        assert page.locator("img[src=x]").count() == 0, url
    page.goto(f"/traces/{trace_id}")
    assert "<script>window.__xss = 1</script>" in page.inner_text("#initial-reply")
    assert dialogs == []
