"""Constitution A/B in the browser: the form refuses runs it cannot compare (no shared prompt,
the same run twice, an unfinished run, a bad judge or version) with the field named and no job;
a good one queues a job whose page shows B's win rate over A per principle and how often each
run's revisions beat their initial replies; a version's page links to the prefilled form."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from app.constitutions import create_constitution, default_document, publish_version, start_draft
from app.models import (
    ABComparison,
    Job,
    JobStatus,
    LanguageModel,
    Prompt,
    Role,
    Trace,
    TraceStep,
    User,
)
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from tests.conftest import RecordingQueue, csrf
from tests.unit.eval_fakes import RuleJudge
from worker.constitution_ab_job import run_constitution_ab
from worker.lifecycle import JobCancelled, JobContext, running_job


def _prompts(session: Session, name: str, count: int) -> list[int]:
    prompt_set = store_prompt_set(
        session=session,
        name=name,
        prompts=[
            ParsedPrompt(text=f"{name} question {i}?", context=None, line=i, metadata={})
            for i in range(count)
        ],
    )
    rows = session.exec(select(Prompt).where(Prompt.prompt_set_id == prompt_set.id)).all()
    return [p.id or 0 for p in rows]


def _run(
    session: Session,
    version_id: int,
    model_id: int,
    prompts: list[int],
    final: str,
    status: JobStatus = JobStatus.SUCCEEDED,
) -> int:
    job = Job(
        kind="generate",
        queue="gpu",
        status=status,
        parameters={"constitution_version_id": version_id},
    )
    session.add(job)
    session.flush()
    for prompt_id in prompts:
        trace = Trace(
            job_id=job.id or 0,
            prompt_id=prompt_id,
            constitution_version_id=version_id,
            model_id=model_id,
            initial_reply="Sure.",
            final_reply=final,
        )
        session.add(trace)
        session.flush()
        session.add(
            TraceStep(
                trace_id=trace.id or 0,
                round=0,
                principle_key="harm",
                critique_request="c?",
                critique="c",
                revision_request="r?",
                revision=final,
            )
        )
    session.commit()
    return job.id or 0


@pytest.fixture
def ab_rows(session: Session, users: dict[Role, User]) -> dict[str, int]:
    """Two published versions; runs A (v1) and B (v2) over the same three prompts, B's revisions
    giving a reason (which the rule judge prefers); a run over other prompts; a running run."""
    constitution, v1 = create_constitution(
        session=session, doc=default_document(), user=None, publish=True
    )
    draft = start_draft(
        session=session, constitution=constitution, source=v1, user=users[Role.ADMIN]
    )
    v2 = publish_version(session=session, version=draft, user=None, note="second")
    session.commit()
    model = LanguageModel(name="policy", backend="transformers", path="fake")
    judge = LanguageModel(name="judge", backend="transformers", path="fake-judge")
    session.add_all([model, judge])
    session.commit()
    shared = _prompts(session, "shared", 3)
    other = _prompts(session, "other", 2)
    m = model.id or 0
    return {
        "v1": v1.id or 0,
        "v2": v2.id or 0,
        "judge": judge.id or 0,
        "a": _run(session, v1.id or 0, m, shared, "Sure, here it is."),
        "b": _run(session, v2.id or 0, m, shared, "No, because it could hurt someone."),
        "other": _run(session, v2.id or 0, m, other, "Fine."),
        "running": _run(session, v2.id or 0, m, shared, "x", status=JobStatus.RUNNING),
    }


def jobs(session: Session) -> int:
    session.expire_all()
    return int(session.exec(select(func.count()).select_from(Job)).one())


def form(rows: dict[str, int], **changes: str) -> dict[str, str]:
    data = {
        "run_a_id": str(rows["a"]),
        "run_b_id": str(rows["b"]),
        "judge_model_id": str(rows["judge"]),
        "constitution_version_id": str(rows["v2"]),
        "limit": "0",
        "seed": "0",
    }
    return {**data, **changes}


def launch(client: TestClient, data: dict[str, str]) -> Any:
    return client.post("/evaluations/ab", data={**data, "csrf_token": csrf(client)})


def test_the_form_offers_finished_runs_to_authors(
    make_client: Callable[..., TestClient], ab_rows: dict[str, int]
) -> None:
    assert make_client(Role.VIEWER).get("/evaluations/ab").status_code == 403
    page = make_client(Role.AUTHOR).get(
        "/evaluations/ab", params={"run_a_id": ab_rows["a"], "run_b_id": ab_rows["b"]}
    )
    assert page.status_code == 200
    assert f'<option value="{ab_rows["a"]}" selected>run {ab_rows["a"]} under v1' in page.text
    assert f'<option value="{ab_rows["b"]}" selected>run {ab_rows["b"]} under v2' in page.text
    assert f'value="{ab_rows["running"]}"' not in page.text  # not finished: not offered


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"run_b_id": "other"}, "run_b_id", "share no prompt"),
        ({"run_b_id": "a"}, "run_b_id", "choose two different runs"),
        ({"run_b_id": "running"}, "run_b_id", "is running: choose a finished one"),
        ({"run_a_id": "judge"}, "run_a_id", "is not a generation run"),
        ({"judge_model_id": "999"}, "judge_model_id", "no judge model 999"),
        ({"constitution_version_id": "999"}, "constitution_version_id", "published"),
        ({"run_a_id": "abc"}, "run_a_id", ""),
        ({"limit": "-1"}, "limit", ""),
    ],
)
def test_runs_it_cannot_compare_are_refused_and_no_job_starts(
    make_client: Callable[..., TestClient],
    session: Session,
    queue: RecordingQueue,
    ab_rows: dict[str, int],
    change: dict[str, str],
    field: str,
    message: str,
) -> None:
    # A change names a row of the fixture (its id goes in) or is the raw text.
    changes = {k: str(ab_rows.get(v, v)) if v in ab_rows else v for k, v in change.items()}
    if change.get("run_a_id") == "judge":
        changes["run_a_id"] = str(ab_rows["v1"] + 10_000)
    before = jobs(session)
    response = launch(make_client(Role.AUTHOR), form(ab_rows, **changes))
    assert response.status_code == 422, response.text
    assert f'data-field="{field}"' in response.text
    section = response.text.split(f'data-field="{field}"', 1)[1].split("data-field=", 1)[0]
    assert 'class="field-error"' in section and message in section
    assert jobs(session) == before and queue.sent == []


def test_a_good_launch_runs_and_shows_win_rates_per_principle(
    make_client: Callable[..., TestClient],
    engine: Engine,
    session: Session,
    queue: RecordingQueue,
    ab_rows: dict[str, int],
) -> None:
    response = launch(make_client(Role.AUTHOR), form(ab_rows))
    assert response.status_code == 303, response.text
    job = session.exec(select(Job).where(Job.kind == "constitution_ab")).one()
    assert response.headers["location"] == f"/evaluations/ab/{job.id}"
    assert queue.sent == [("worker.tasks.run_constitution_ab", job.id, "gpu")]
    viewer = make_client(Role.VIEWER)
    waiting = viewer.get(f"/evaluations/ab/{job.id}")
    assert waiting.status_code == 200 and "The comparison is going" in waiting.text

    with running_job(engine, job.id or 0, task_id=None, heartbeat_seconds=60) as context:
        run_constitution_ab(engine, context, open_backend=lambda m: RuleJudge())
    page = viewer.get(f"/evaluations/ab/{job.id}")
    assert "3 in common" in page.text and "judge under v2" in page.text
    b_over_a = page.text.split('id="b_over_a"', 1)[1].split("</section>", 1)[0]
    # B's revisions give a reason, A's do not: B wins every decided comparison.
    all_href = f"/evaluations/ab/{job.id}/comparisons?kind=ab&amp;group=all"
    assert (
        f'<tr data-group="all principles"><td>all principles</td><td><a href="{all_href}">100%</a>'
        in b_over_a
    )
    revision_b = page.text.split('id="revision_b"', 1)[1].split("</section>", 1)[0]
    harm_href = f"/evaluations/ab/{job.id}/comparisons?kind=b&amp;group=harm"
    assert f'<tr data-group="harm"><td>harm</td><td><a href="{harm_href}">100%</a>' in revision_b
    assert f'<a href="{harm_href}">3 of 3</a>' in revision_b

    # Each number opens the comparisons behind it: the prompt, both replies, P(second).
    behind = viewer.get(harm_href.replace("&amp;", "&"))
    assert behind.status_code == 200
    assert behind.text.count("data-comparison=") == 3
    assert "shared question 0?" in behind.text
    assert "No, because it could hurt someone." in behind.text
    assert "B&#39;s initial reply" in behind.text and "Sure." in behind.text
    probs = [float(p) for p in re.findall(r'<td class="prob">([0-9.]+)', behind.text)]
    assert len(probs) == 3 and all(p > 0.5 for p in probs)
    ab_page = viewer.get(all_href.replace("&amp;", "&"))
    assert "A&#39;s final revision" in ab_page.text and "Sure, here it is." in ab_page.text
    assert ab_page.text.count("data-comparison=") == 3
    none = viewer.get(f"/evaluations/ab/{job.id}/comparisons", params={"kind": "a", "group": "x"})
    assert "No comparisons match" in none.text
    bad = viewer.get(f"/evaluations/ab/{job.id}/comparisons", params={"kind": "zz"})
    assert bad.status_code == 422 and "kind" in bad.text
    assert viewer.get("/evaluations/ab/999999").status_code == 404
    assert viewer.get(f"/evaluations/ab/{ab_rows['a']}").status_code == 404


def test_a_version_page_links_to_the_prefilled_comparison(
    make_client: Callable[..., TestClient], ab_rows: dict[str, int]
) -> None:
    client = make_client(Role.VIEWER)
    second = client.get(f"/versions/{ab_rows['v2']}")
    # The newest finished run under v2 ("other") shares no prompt with A: "b" is the one.
    href = (
        f"/evaluations/ab?run_a_id={ab_rows['a']}&amp;run_b_id={ab_rows['b']}"
        f"&amp;constitution_version_id={ab_rows['v2']}"
    )
    assert href in second.text and "Compare with the previous version</a>" in second.text
    first = client.get(f"/versions/{ab_rows['v1']}")
    assert "There is no earlier published version to compare with." in first.text


class CountingJudge(RuleJudge):
    """The rule judge, counting the comparison questions it is asked."""

    asked = 0

    def score_options(self, questions: Any) -> list[list[float]]:
        CountingJudge.asked += len(questions)
        return super().score_options(questions)


def test_the_job_judges_in_steps_stops_on_cancel_and_resumes_what_is_left(
    make_client: Callable[..., TestClient],
    engine: Engine,
    session: Session,
    ab_rows: dict[str, int],
) -> None:
    job = Job(
        kind="constitution_ab",
        queue="gpu",
        parameters={k: int(v) for k, v in form(ab_rows).items()},
    )
    session.add(job)
    session.commit()
    reports: list[tuple[int, int | None, str]] = []

    def cancel_after_first_step(done: int, total: int | None, message: str) -> None:
        reports.append((done, total, message))
        if done >= 1:
            raise JobCancelled()

    context = JobContext(job.id or 0, dict(job.parameters), cancel_after_first_step, {})
    CountingJudge.asked = 0
    with pytest.raises(JobCancelled):
        run_constitution_ab(engine, context, open_backend=lambda m: CountingJudge(), step=1)
    # One step of one prompt: three comparisons, both orders each, then the cancel stops it.
    assert CountingJudge.asked == 6
    assert reports[-1][:2] == (1, 3) and "1 of 3 prompts judged" in reports[-1][2]
    stored = session.exec(select(ABComparison).where(ABComparison.job_id == job.id)).all()
    assert sorted(r.kind for r in stored) == ["a", "ab", "b"]
    # What a cancelled job keeps on its row: the rates of the prompts it judged.
    assert context.result["prompts"] == 1 and context.result["judge"] == "judge"
    assert context.result["b_over_a"][0]["wins"] == 1
    job.status, job.result = JobStatus.CANCELLED, dict(context.result)
    session.add(job)
    session.commit()
    page = make_client(Role.VIEWER).get(f"/evaluations/ab/{job.id}")
    assert "1 judged so far" in page.text and "Stopped part-way (cancelled)" in page.text
    assert "1 of 1</a>" in page.text.split('id="b_over_a"', 1)[1]

    reports.clear()
    resumed = JobContext(job.id or 0, dict(job.parameters), lambda *r: reports.append(r), {})
    run_constitution_ab(engine, resumed, open_backend=lambda m: CountingJudge(), step=1)
    assert CountingJudge.asked == 6 * 3  # only the two prompts left were judged
    assert reports[0][:2] == (1, 3) and reports[-1][:2] == (3, 3)
    assert [d for d, _, m in reports if "prompts judged" in m] == [2, 3, 3]
    assert resumed.result["prompts"] == 3
    assert resumed.result["b_over_a"][0]["wins"] == 3
    session.expire_all()
    assert len(session.exec(select(ABComparison).where(ABComparison.job_id == job.id)).all()) == 9
