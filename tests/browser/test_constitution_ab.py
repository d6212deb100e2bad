"""Constitution A/B in the browser: a person chooses two finished generation runs over the same
prompts on the form, launches the comparison (judged by the tiny model in the live worker), sees
B's win rate over A and each run's revision-over-initial rates per principle, and follows one
number to the comparisons behind it."""

import re
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, create_engine, select

from app.models import ConstitutionVersion, LanguageModel
from tests.browser.test_prompt_import import sign_in
from tests.live import LiveApp, wait_for_job
from tests.web.test_constitution_ab import _prompts, _run

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def two_runs(app: LiveApp, tiny_model: Path) -> dict[str, int]:
    """Runs A and B over the same three prompts (stored as a generation run stores them, under
    `cai init`'s first version) and the tiny model as the judge."""
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with Session(engine) as session:
            version = session.exec(
                select(ConstitutionVersion).where(ConstitutionVersion.number == 1)
            ).one()
            judge = LanguageModel(name="tiny-judge", backend="transformers", path=str(tiny_model))
            session.add(judge)
            session.commit()
            prompts = _prompts(session, "shared", 3)
            v, m = version.id or 0, judge.id or 0
            return {
                "a": _run(session, v, m, prompts, "Sure, here it is."),
                "b": _run(session, v, m, prompts, "No, because it could hurt someone."),
                "judge": m,
                "version": v,
            }
    finally:
        engine.dispose()


def test_choose_two_runs_launch_and_follow_a_win_rate_to_its_comparisons(
    page: Any, app: LiveApp, tiny_model: Path
) -> None:
    ids = two_runs(app, tiny_model)
    sign_in(page)
    page.goto("/evaluations/ab")
    page.select_option("select[name=run_a_id]", str(ids["a"]))
    page.select_option("select[name=run_b_id]", str(ids["b"]))
    page.select_option("select[name=judge_model_id]", str(ids["judge"]))
    page.select_option("select[name=constitution_version_id]", str(ids["version"]))
    with page.expect_navigation():
        page.click("#ab-form button[type=submit]")
    match = re.search(r"/evaluations/ab/(\d+)$", page.url)
    assert match, page.url
    job_id = int(match.group(1))
    wait_for_job(app.signed_in_client(), job_id, app, timeout=300, until=("succeeded",))

    page.reload()
    assert "3 in common" in page.inner_text("dl.facts")
    for table in ("b_over_a", "revision_a", "revision_b"):
        rows = page.locator(f"section#{table} tbody tr")
        assert rows.count() >= 2  # "all principles", then a principle's row
        assert rows.first.get_attribute("data-group") == "all principles"
    # Run B's traces were revised under "harm": its row has a rate and an interval.
    harm = page.locator('section#revision_b tr[data-group="harm"] td')
    assert re.fullmatch(r"\d+%|\u2013", harm.nth(1).inner_text())
    assert " to " in harm.nth(2).inner_text()

    with page.expect_navigation():
        page.click('section#b_over_a tr[data-group="all principles"] td:nth-child(2) a')
    assert "/comparisons?kind=ab&group=all" in page.url
    rows = page.locator("table.ab-comparisons tbody tr")
    assert rows.count() == 3
    first = rows.first.locator("td")
    assert "shared question" in first.nth(0).inner_text()
    assert first.nth(1).inner_text() == "Sure, here it is."
    assert first.nth(2).inner_text() == "No, because it could hurt someone."
    assert re.fullmatch(r"[01]\.\d\d", first.nth(3).inner_text().strip())
    assert first.nth(4).inner_text().strip()  # the judging principle
