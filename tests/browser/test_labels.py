"""A person labels AI-judged comparisons from the keyboard: 1 chooses A, 2 B, s skips, 3 a tie,
v unfolds the feedback model's view; the run page then counts their labels against the AI's."""

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.browser.test_prompt_import import sign_in
from tests.live import LiveApp, wait_for_job

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def rows(app: LiveApp, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def launched_job(client: httpx.Client, app: LiveApp, url: str, data: dict[str, Any]) -> int:
    response = client.post(url, data={**data, "csrf_token": app.csrf(client)})
    assert response.status_code == 303, response.text
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    wait_for_job(client, job_id, app, until=("succeeded",))
    return job_id


def labelled_run(app: LiveApp, tiny_model: Path) -> int:
    """Reply pairs from the tiny model, judged by the tiny model: made over HTTP."""
    client = app.signed_in_client()
    registered = client.post(
        "/models",
        data={
            "name": "tiny",
            "backend": "transformers",
            "path": str(tiny_model),
            "csrf_token": app.csrf(client),
        },
    )
    assert registered.status_code == 303, registered.text
    [(model_id,)] = rows(app, "SELECT id FROM language_model WHERE name = 'tiny'")
    [(prompt_set_id,)] = rows(app, "SELECT id FROM prompt_set WHERE source = 'built-in'")
    [(version_id,)] = rows(app, "SELECT id FROM constitution_version WHERE number = 1")
    pair_run = launched_job(
        client,
        app,
        "/feedback/pairs",
        {
            "prompt_set_id": prompt_set_id,
            "model_id": model_id,
            "max_prompts": "4",
            "sample_size": "0",
            "seed": "0",
            "max_new_tokens": "8",
            "temperature": "1.0",
            "top_p": "1.0",
            "chunk_size": "4",
        },
    )
    label_run = launched_job(
        client,
        app,
        "/feedback/label",
        {
            "pair_job_id": pair_run,
            "constitution_version_id": version_id,
            "model_id": model_id,
            "order_average": "1",
            "ensemble": "2",
            "seed": "0",
            "chunk_size": "16",
            "clamp_low": "0.4",
            "clamp_high": "0.6",
            "cot_max_new_tokens": "16",
        },
    )
    client.close()
    return label_run


def shown(page: Any) -> int:
    return int(page.get_attribute("#comparison", "data-comparison"))


def press(page: Any, key: str) -> None:
    """Presses a key that leaves the page, and waits for the next one to load."""
    with page.expect_navigation():
        page.keyboard.press(key)


def test_label_comparisons_from_the_keyboard_and_see_the_agreement(
    page: Any, app: LiveApp, tiny_model: Path
) -> None:
    run_id = labelled_run(app, tiny_model)
    comparisons = [
        cid
        for (cid,) in rows(
            app,
            f"SELECT id FROM comparison WHERE job_id = {run_id} AND label != 'skipped' ORDER BY id",
        )
    ]
    # Four to label: the one skipped comes back once the one after it is labelled.
    assert len(comparisons) == 4, comparisons
    first, second, third, fourth = comparisons

    sign_in(page)
    page.goto(f"/feedback/runs/{run_id}/review")
    assert shown(page) == first
    assert page.locator(".notice").count() == 0
    assert page.get_attribute("#ai-view", "open") is None  # folded until asked for

    press(page, "1")
    assert "Saved: A." in page.inner_text(".notice[role=status]")
    assert shown(page) == second
    press(page, "2")
    assert "Saved: B." in page.inner_text(".notice[role=status]")
    assert shown(page) == third
    press(page, "s")
    assert re.search(rf"after={third}$", page.url)
    assert page.locator(".notice").count() == 0
    assert shown(page) == fourth

    page.keyboard.press("v")
    page.wait_for_selector("#ai-view[open]")
    assert "P(A) = " in page.inner_text("#ai-view")
    page.keyboard.press("v")
    page.wait_for_selector("#ai-view:not([open])")

    press(page, "3")
    assert "Saved: tie." in page.inner_text(".notice[role=status]")
    # The skip holds after a label: nothing is left past it, and the way back is offered.
    assert page.locator("#all-labelled").count() == 1
    page.click("#restart")
    assert shown(page) == third

    page.goto(f"/feedback/runs/{run_id}")
    overall = page.locator('table.agreement tr[data-principle="all principles"] td')
    assert overall.nth(1).inner_text() == "3"  # human labels
    assert overall.nth(5).inner_text() == "1"  # human ties
    principles = page.locator("table.agreement tbody tr")
    assert principles.count() >= 2
    people = {
        cid: page.locator(f'table.comparisons tr[data-comparison="{cid}"] td').nth(5).inner_text()
        for cid in comparisons
    }
    assert people == {first: "A", second: "B", third: "", fourth: "tie"}

    stored = rows(app, "SELECT comparison_id, choice FROM human_label ORDER BY comparison_id")
    assert stored == [(first, "A"), (second, "B"), (fourth, "tie")]
