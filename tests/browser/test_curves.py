"""A job page's curves (static/curves.js with uPlot): drawn from the page's data, grown by each
poll's new points (the eval loss joining the loss chart, a new metric getting a chart of its
own), values on hover, and the RL reward drawn with its spread. No worker runs these jobs: the
test writes their metric rows as a worker would."""

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Job, JobMetric, JobStatus
from tests.browser.test_prompt_import import sign_in
from tests.live import LiveApp

pytestmark = [pytest.mark.browser]


def add_metrics(engine: Engine, job_id: int, rows: list[tuple[int, str, float]]) -> None:
    with Session(engine) as session:
        session.add_all(JobMetric(job_id=job_id, step=s, name=n, value=v) for s, n, v in rows)
        session.commit()


def add_job(engine: Engine, **fields: Any) -> int:
    with Session(engine) as session:
        job = Job(**fields)
        session.add(job)
        session.commit()
        return job.id or 0


def watch_for_trouble(page: Any) -> list[str]:
    trouble: list[str] = []
    page.on(
        "console",
        lambda message: (
            trouble.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: trouble.append(str(error)))
    return trouble


def test_the_curves_grow_with_each_poll_and_show_values_on_hover(page: Any, app: LiveApp) -> None:
    engine = create_engine(app.env["DATABASE_URL"])
    # Queued on a queue no worker reads: it stays active, so its page keeps polling.
    job_id = add_job(
        engine, kind="train", queue="nobody", status=JobStatus.QUEUED, parameters={"dataset_id": 1}
    )
    add_metrics(engine, job_id, [(s, "loss", 1 / s) for s in range(1, 6)])
    trouble = watch_for_trouble(page)
    sign_in(page)
    page.goto(f"/jobs/{job_id}")

    loss = page.locator('#job-curves figure[data-chart="loss"]')
    expect(loss).to_have_attribute("data-drawn", "5")
    expect(loss.locator("canvas")).to_have_count(1)

    later = [(s, "loss", 1 / s) for s in range(6, 11)]
    later += [(5, "eval_loss", 0.5), (10, "eval_loss", 0.25)]
    later += [(s, "grad_norm", float(s)) for s in range(6, 11)]
    later += [(10, "epoch", 1.0)]  # bookkeeping: no chart
    add_metrics(engine, job_id, later)
    expect(loss.locator('[data-metric="loss"]')).to_have_attribute("data-points", "10")
    # The eval loss joins the training loss on its chart, on the same steps.
    expect(loss.locator('[data-metric="eval_loss"]')).to_have_attribute("data-points", "2")
    expect(loss).to_have_attribute("data-drawn", "10")
    expect(loss.locator(".u-legend .u-series .u-label")).to_have_text(["step", "loss", "eval_loss"])
    grad = page.locator('#job-curves figure[data-chart="grad_norm"]')
    expect(grad.locator("canvas")).to_have_count(1)
    expect(grad).to_have_attribute("data-drawn", "5")
    expect(page.locator("#job-curves figure.curve")).to_have_count(2)

    # At the right edge the cursor is on step 10: the legend shows both losses there.
    over = loss.locator(".u-over")
    box = over.bounding_box()
    over.hover(position={"x": box["width"] - 1, "y": box["height"] / 2})
    expect(loss.locator(".u-legend .u-value")).to_have_text(["10", "0.1", "0.25"])

    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = JobStatus.SUCCEEDED
        session.add(job)
        session.commit()
    expect(page.locator("#job-status")).to_have_attribute("data-status", "succeeded")
    assert trouble == []

    # An RL run's reward is drawn with its spread: mean, mean plus and minus one std.
    rl = add_job(
        engine,
        kind="rl",
        queue="nobody",
        status=JobStatus.SUCCEEDED,
        parameters={"policy_model_id": 1, "reward_model_id": 2, "prompt_mix": []},
    )
    add_metrics(
        engine,
        rl,
        [(s, "reward", 0.1 * s) for s in (2, 4, 6)] + [(s, "reward_std", 0.05) for s in (2, 4, 6)],
    )
    engine.dispose()
    page.goto(f"/jobs/{rl}")
    reward = page.locator('#job-curves figure[data-chart="reward"]')
    expect(reward.locator(".u-legend .u-series .u-label")).to_have_text(
        ["step", "reward", "reward + std", "reward \u2212 std"]
    )
    over = reward.locator(".u-over")
    box = over.bounding_box()
    over.hover(position={"x": 1, "y": box["height"] / 2})
    expect(reward.locator(".u-legend .u-value")).to_have_text(["2", "0.2", "0.25", "0.15"])
    assert trouble == []
