"""A person opens a finished evaluation and sees the paper's picture, harmlessness against
helpfulness with a labelled point per model, and a bar chart per rate; hovering shows numbers.
No worker: the run's stored result is written as a finished run leaves it."""

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine
from sqlmodel import Session

from app.models import Job, JobStatus
from tests.browser.test_prompt_import import sign_in
from tests.live import LiveApp
from tests.unit.eval_fakes import three_models_result

pytestmark = [pytest.mark.browser]

HOSTILE = "<img src=x onerror=alert(1)>"


def finished_run(app: LiveApp) -> int:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with Session(engine) as session:
            job = Job(
                kind="evaluate",
                queue="cpu",
                status=JobStatus.SUCCEEDED,
                parameters={},
                result=three_models_result(("careful", "eager", HOSTILE)),
            )
            session.add(job)
            session.commit()
            return job.id or 0
    finally:
        engine.dispose()


def test_the_results_page_draws_a_point_per_model_and_a_bar_per_model_and_rate(
    page: Any, app: LiveApp
) -> None:
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    run_id = finished_run(app)
    sign_in(page)
    page.goto(f"/evaluations/{run_id}")

    scatter = page.locator("figure.rating-scatter")
    expect(scatter).to_have_attribute("data-drawn", "3")
    expect(scatter.locator("canvas")).to_have_count(1)
    # The legend: the x axis, then one labelled series (one point) per model, names as text.
    labels = scatter.locator(".u-legend .u-series .u-label")
    expect(labels).to_have_text(["helpfulness", "careful", "eager", HOSTILE])

    # The cursor snaps to the nearest helpfulness rating: at the right edge, the most helpful
    # model ("eager"), whose legend row then shows its numbers.
    over = scatter.locator(".u-over")
    box = over.bounding_box()
    over.hover(position={"x": box["width"] - 2, "y": box["height"] / 2})
    eager = scatter.locator(".u-legend .u-series").nth(2)
    expect(eager.locator(".u-value")).to_have_text(re.compile(r"^harmless \d+ \(\d+ to \d+\)"))

    bars = page.locator("figure.rate-bars")
    expect(bars).to_have_count(3)
    for kind in ("refusal", "over-refusal", "evasiveness"):
        chart = page.locator(f'figure.rate-bars[data-kind="{kind}"]')
        expect(chart).to_have_attribute("data-drawn", "3")
        expect(chart.locator("canvas")).to_have_count(1)
    refusal = page.locator('figure.rate-bars[data-kind="refusal"] .u-over')
    box = refusal.bounding_box()
    refusal.hover(position={"x": 2, "y": box["height"] / 2})  # the first model's bar
    value = page.locator('figure.rate-bars[data-kind="refusal"] .u-legend .u-series').nth(1)
    expect(value.locator(".u-value")).to_have_text("50% (25% to 75%), 6 of 12")

    assert page.locator("table.eval-summary tbody tr").count() == 3  # the numbers stay
    assert refused == [] and errors == []
