"""A person labels an evaluation's comparisons and a reply from the keyboard (the keys of the
feedback review page: 1, 2, 3, and e for evasive), and the results page's judge-people
agreement changes with their labels."""

from typing import Any

import pytest
from sqlmodel import Session, create_engine, select

import worker.eval_stages
from app.evaluations import KIND
from app.forms import parse_spec
from app.job_records import create_job
from app.models import ConstitutionVersion, EvalJudgement, EvalRefusalLabel, Job
from app.specs.evaluation import EvaluationSpec
from tests.browser.test_labels import press
from tests.browser.test_prompt_import import sign_in
from tests.live import LiveApp
from tests.unit.eval_fakes import STYLES, RuleJudge, StyleBackend, make_evaluation_rows
from tests.web.test_evaluations import form
from worker.chunk_runner import run_in_process

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def finished_evaluation(app: LiveApp, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """An evaluation of three styled fake models judged by a rule-following fake, run here in
    the test's process into the live app's database: (run id, its red-team suite's id)."""
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with Session(engine) as session:
            # `cai init` made the default constitution: its first version judges.
            version = session.exec(
                select(ConstitutionVersion).where(ConstitutionVersion.number == 1)
            ).first()
            assert version is not None
            rows: dict[str, Any] = make_evaluation_rows(
                session, prompts_per_suite=2, version_id=version.id
            )
            data = form(rows)
            spec, errors = parse_spec(
                EvaluationSpec,
                {
                    **data,
                    "model_ids": "\n".join(data["model_ids"]),
                    "suite_ids": "\n".join(data["suite_ids"]),
                },
            )
            assert spec is not None, errors
            job = create_job(session=session, kind=KIND, parameters=spec.to_parameters(), user=None)
            # Not queued for the live worker: it runs here, with the fakes.
            job.celery_task_id = "browser-test"
            session.add(job)
            session.commit()
            job_id = job.id or 0
            suite_id = int(next(iter(rows["suites"].values())))
        styled = {rows["models"][name]: StyleBackend(text) for name, text in STYLES.items()}
        monkeypatch.setattr(worker.eval_stages, "open_answerer", lambda m: styled[m.id])
        run_in_process(engine, job_id, backend=RuleJudge())
        with Session(engine) as session:
            done = session.get(Job, job_id)
            assert done is not None and done.status.value == "succeeded", done and done.message
        return job_id, suite_id
    finally:
        engine.dispose()


def judge_choices(app: LiveApp, job_id: int, suite_id: int) -> list[str]:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with Session(engine) as session:
            found = session.exec(
                select(EvalJudgement)
                .where(EvalJudgement.job_id == job_id, EvalJudgement.suite_id == suite_id)
                .order_by(EvalJudgement.id)  # type: ignore[arg-type]
            ).all()
        return [
            "A" if (j.prob_a or 0.5) > 0.5 else "B" if (j.prob_a or 0.5) < 0.5 else "tie"
            for j in found
        ]
    finally:
        engine.dispose()


def agreement_cells(page: Any, suite: str, kind: str) -> tuple[str, str]:
    row = page.locator(f'table.eval-agreement tr[data-suite="{suite}"][data-kind="{kind}"]')
    return row.locator("td.labels").inner_text(), row.locator("td.raw").inner_text()


def test_label_three_comparisons_by_keyboard_and_see_the_agreement_change(
    page: Any, app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, suite_id = finished_evaluation(app, monkeypatch)
    suite = "suite red-team"
    sign_in(page)
    page.goto(f"/evaluations/{job_id}")
    assert agreement_cells(page, suite, "comparisons") == ("0", "\u2013")

    # The results page's link labels more of that suite.
    with page.expect_navigation():
        page.click(f'tr[data-suite="{suite}"][data-kind="comparisons"] a:has-text("Label more")')
    assert f"suite={suite_id}" in page.url
    assert page.get_attribute("#ai-view", "open") is None  # the judge's view is folded away
    page.keyboard.press("v")
    page.wait_for_selector("#ai-view[open]")
    for key, saved in (("1", "A is better"), ("2", "B is better"), ("3", "Tie or equivalent")):
        press(page, key)
        assert f"Saved: {saved}." in page.inner_text(".notice[role=status]")

    judged = judge_choices(app, job_id, suite_id)[:3]
    agree = sum(j == p for j, p in zip(judged, ["A", "B", "tie"], strict=True))
    page.goto(f"/evaluations/{job_id}")
    assert agreement_cells(page, suite, "comparisons") == ("3", f"{100 * agree / 3:.0f}% ({agree})")

    # A reply: e ticks "evasive", 2 saves it as a refusal.
    with page.expect_navigation():
        page.click(
            f'tr[data-suite="{suite}"][data-kind="refusal classes"] a:has-text("Label more")'
        )
    page.keyboard.press("e")
    page.wait_for_selector("#evasive:checked")
    press(page, "2")
    assert "Saved: Refuses, evasive." in page.inner_text(".notice[role=status]")
    page.goto(f"/evaluations/{job_id}")
    assert agreement_cells(page, suite, "refusal classes")[0] == "1"
    assert agreement_cells(page, suite, "evasiveness")[0] == "1"
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with Session(engine) as session:
            [label] = session.exec(select(EvalRefusalLabel)).all()
            assert (label.refusal_class, label.evasive) == ("refuses", True)
    finally:
        engine.dispose()
