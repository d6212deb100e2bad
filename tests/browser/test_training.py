"""A person builds a dataset from a run, launches DPO training from the browser and watches its
curves grow while the job runs, then finds the trained model ready to generate with."""

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.browser.test_prompt_import import sign_in
from tests.live import LiveApp, wait_for_job

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def scalar(app: LiveApp, sql: str) -> Any:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def finished_run(app: LiveApp, tiny_model: Path) -> int:
    """A small generation run made over HTTP, so the browser starts from stored traces."""
    client = app.signed_in_client()
    token = app.csrf(client)
    client.post(
        "/models",
        data={
            "name": "tiny",
            "backend": "transformers",
            "path": str(tiny_model),
            "csrf_token": token,
        },
    )
    launched = client.post(
        "/generate",
        data={
            "constitution_version_id": scalar(app, "SELECT id FROM constitution_version"),
            "prompt_set_id": scalar(app, "SELECT id FROM prompt_set WHERE source = 'built-in'"),
            "model_id": scalar(app, "SELECT id FROM language_model WHERE name = 'tiny'"),
            "rounds": "1",
            "max_prompts": "6",
            "sample_size": "0",
            "seed": "0",
            "max_new_tokens": "8",
            "temperature": "1.0",
            "top_p": "1.0",
            "chunk_size": "6",
            "reviews_needed": "1",
            "stop": "",
            "csrf_token": token,
        },
    )
    assert launched.status_code == 303, launched.text
    job_id = int(launched.headers["location"].rsplit("/", 1)[1])
    wait_for_job(client, job_id, app, until=("succeeded",))
    return job_id


def test_build_a_dataset_launch_dpo_and_watch_the_curves_grow(
    page: Any, app: LiveApp, tiny_model: Path
) -> None:
    run_id = finished_run(app, tiny_model)
    sign_in(page)
    page.click("header >> text=Datasets")
    page.fill("input[name=name]", "first harmless set")
    page.check(f"input[name=runs][value='{run_id}']")
    page.select_option("select[name=review_filter]", "all")
    page.fill("input[name=test_fraction]", "0")
    page.click("button:has-text('Count the rows')")
    assert "train_sft 6" in page.inner_text("#build-preview")
    page.click("button:has-text('Build the dataset')")
    page.wait_for_url(re.compile(r"/datasets/\d+$"))
    page.wait_for_selector('#dataset-status[data-status="ready"]', timeout=60_000)

    page.click("text=Train a model on this dataset")
    page.wait_for_url(re.compile(r"/training\?dataset=\d+"))
    page.select_option("select[name=base_model_id]", label="tiny")
    # Choosing DPO refills the numbers from the preset's DPO settings, in place.
    page.select_option("select[name=method]", "dpo")
    page.wait_for_selector("input[name=beta]")
    assert page.input_value("input[name=learning_rate]") == "5e-06"
    assert page.input_value("select[name=base_model_id]") != ""
    page.fill("input[name=output_name]", "tiny-dpo")
    page.fill("input[name=learning_rate]", "1e-3")
    page.fill("input[name=max_steps]", "60")
    page.fill("input[name=max_length]", "64")
    page.click("button:has-text('Start training')")
    page.wait_for_url(re.compile(r"/jobs/\d+$"))

    chart = '#job-curves figure[data-chart="loss"]'
    loss = f'{chart} [data-metric="loss"]'
    page.wait_for_selector(f"{chart} canvas", timeout=300_000)
    early = int(page.get_attribute(loss, "data-points"))
    page.wait_for_selector(
        "#job-status:is([data-status=succeeded], [data-status=failed])", timeout=600_000
    )
    assert page.get_attribute("#job-status", "data-status") == "succeeded", page.inner_text(
        "#job-status"
    )
    # The last points come in the same answer as the finished status.
    page.wait_for_selector(f'{loss}[data-points="60"]', timeout=30_000)
    assert early < 60
    assert int(page.get_attribute(chart, "data-drawn")) >= 60  # the steps on the chart
    margins = '#job-curves figure[data-chart="rewards/margins"]'
    assert page.locator(f"{margins} canvas").count() == 1
    # Hovering the loss chart shows the loss at the step under the cursor.
    over = page.locator(f"{chart} .u-over")
    box = over.bounding_box()
    over.hover(position={"x": box["width"] / 2, "y": box["height"] / 2})
    expect(page.locator(f"{chart} .u-legend .u-series").nth(1).locator(".u-value")).to_have_text(
        re.compile(r"^-?\d")
    )
    assert "Registered as tiny-dpo" in page.inner_text("#job-status")

    page.click("#job-status >> text=Generate with it")
    page.wait_for_url(re.compile(r"/generate\?model=\d+"))
    assert page.inner_text("select[name=model_id] option:checked") == "tiny-dpo"
