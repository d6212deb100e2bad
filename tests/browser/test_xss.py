"""Markup in every text a person or a model controls is shown as text and never runs: not in a
page, not in a fragment, not in a confirm dialog. Rows are written straight into the database,
then an admin whose own name is the payload visits every page that shows them."""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from app.constitutions import create_constitution, few_shots_of, principles_of, start_draft
from app.db import engine_for
from app.models import (
    AuditEvent,
    Comparison,
    Dataset,
    FewShotConversation,
    Job,
    JobMetric,
    JobStatus,
    LanguageModel,
    Principle,
    Prompt,
    PromptSet,
    ReplyPair,
    Review,
    Role,
    Trace,
    TraceStep,
)
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from app.recipe.documents import ConstitutionDoc, FewShotDoc, PrincipleDoc
from app.users import create_user
from tests.browser.test_prompt_import import sign_in
from tests.live import LiveApp
from tests.web.runs import make_run

pytestmark = [pytest.mark.browser]

# Breaks out of a single-quoted JS string (an inline handler decodes &#39; before it runs),
# out of a double-quoted attribute, and into the page as an element or a script. The short form
# fits fields of at most 64 characters (usernames, principle keys).
SHORT = 'a\'+(window.__xss=1)+\'"><img src=x onerror="window.__xss=1">'
EVIL = SHORT + "<script>window.__xss=1</script>"
PASSWORD = "evil admin password"


def evil(suffix: str = "", *, short: bool = False) -> str:
    return f"{SHORT if short else EVIL} {suffix}".rstrip()


def seed(app: LiveApp, tmp_path: Path) -> dict[str, int]:
    """Every user-controlled text field holds the payload; returns the ids the pages need."""
    engine = engine_for(app.env["DATABASE_URL"])
    with Session(engine) as session:
        admin = create_user(
            session=session,
            username=evil(short=True),
            password=PASSWORD,
            role=Role.ADMIN,
            actor=None,
        )
        constitution, published = create_constitution(
            session=session,
            doc=ConstitutionDoc(
                name=evil("constitution"),
                description=evil("description"),
                system_prompt=evil("system prompt"),
                note=evil("note"),
                principles=[
                    PrincipleDoc(
                        key=evil("k", short=True),
                        critique_request=evil("critique"),
                        revision_request=evil("revision"),
                        comparison_instruction=evil("comparison"),
                        tags=[evil("tag")],
                    )
                ],
                few_shots=[
                    FewShotDoc(
                        kind="critique-revision",
                        title=evil("title"),
                        messages=[
                            {"role": "user", "content": evil("turn 1")},
                            {"role": "assistant", "content": evil("turn 2")},
                        ],
                    )
                ],
            ),
            user=admin,
            publish=True,
        )
        draft = start_draft(
            session=session, constitution=constitution, source=published, user=admin
        )
        draft.note = evil("draft note")
        [principle] = principles_of(session=session, version=draft)
        principle.critique_request = evil("changed critique")
        [few_shot] = few_shots_of(session=session, version=draft)
        prompt_set = store_prompt_set(
            session=session,
            name=evil("prompt set"),
            description=evil("set description"),
            source=evil("file.jsonl"),
            prompts=[
                ParsedPrompt(
                    text=evil("prompt"),
                    context=[{"role": "user", "content": evil("context")}],
                    line=1,
                    metadata={"note": evil("meta")},
                )
            ],
            created_by_id=admin.id,
        )
        model = LanguageModel(
            name=evil("model"),
            backend="openai",
            path=evil("path"),
            base_url="http://127.0.0.1:9/v1",
            description=evil("model description"),
            created_by_id=admin.id,
        )
        session.add_all([draft, principle, model])
        session.commit()

        # A run of model output, one trace reviewed (comment, correction) and one left to review.
        run = make_run(session, engine, prompts=2, texts=[evil("run 0"), evil("run 1")])
        traces = session.exec(select(Trace).where(Trace.job_id == run.id)).all()
        for trace in traces:
            trace.initial_reply = evil("initial")
            trace.final_reply = evil("final")
            trace.flags = [evil("flag")]
            session.add(trace)
        for step in session.exec(select(TraceStep)).all():
            step.principle_key = evil("s", short=True)
            step.critique = evil("step critique")
            step.revision = evil("step revision")
            session.add(step)
        session.add(
            Review(
                trace_id=traces[0].id or 0,
                reviewer_id=admin.id or 0,
                verdict="reject",
                comment=evil("comment"),
                corrected_text=evil("correction"),
            )
        )
        failed = Job(
            kind="train",
            queue="gpu",
            status=JobStatus.FAILED,
            message=evil("message"),
            error=evil("error"),
            parameters={"name": evil("job parameter")},
            created_by_id=admin.id,
        )
        session.add(failed)
        session.flush()
        session.add(JobMetric(job_id=failed.id or 0, step=1, name=evil("metric"), value=1.0))

        # AI feedback: a reply pair and a feedback model's judgement of it.
        prompt = session.exec(select(Prompt).where(Prompt.id == traces[0].prompt_id)).one()
        pair_job = Job(kind="reply_pairs", queue="gpu", status=JobStatus.SUCCEEDED)
        session.add(pair_job)
        session.flush()
        pair = ReplyPair(
            job_id=pair_job.id or 0,
            prompt_id=prompt.id or 0,
            model_id=model.id or 0,
            reply_a=evil("reply a"),
            reply_b=evil("reply b"),
        )
        session.add(pair)
        session.flush()
        label_job = Job(
            kind="label_pairs",
            queue="gpu",
            status=JobStatus.SUCCEEDED,
            parameters={"pair_job_id": pair_job.id, "model_id": model.id},
        )
        session.add(label_job)
        session.flush()
        session.add(
            Comparison(
                job_id=label_job.id or 0,
                pair_id=pair.id or 0,
                constitution_version_id=published.id or 0,
                model_id=model.id or 0,
                principle_keys=[evil("compared key")],
                prob_a=0.7,
                prob_b=0.3,
                details=[{"principle": evil("detail"), "reasoning": evil("detail reasoning")}],
                reasoning=evil("reasoning"),
                label="A",
            )
        )

        # A built dataset whose preview rows, card and names hold the payload.
        folder = tmp_path / "evil-dataset"
        (folder / "jsonl").mkdir(parents=True)
        turn = {"role": "user", "content": evil("row prompt")}
        answer = {"role": "assistant", "content": evil("row answer")}
        rows = {
            "train_sft": {"messages": [turn, answer], "source": evil("source"), "trace_id": -1},
            "train_prefs": {
                "prompt": [turn],
                "chosen": [turn, answer],
                "rejected": [turn, {"role": "assistant", "content": evil("rejected")}],
                "source": evil("source"),
                "trace_id": -1,
            },
        }
        for split, row in rows.items():
            (folder / "jsonl" / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
        dataset = Dataset(
            name=evil("dataset"),
            description=evil("dataset description"),
            source_job_ids=[run.id],
            counts={"train_sft": 1, "train_prefs": 1},
            row_count=2,
            folder=str(folder),
            card=evil("card"),
            helpful_source=evil("helpful.jsonl"),
            status="ready",
            created_by_id=admin.id,
        )
        session.add(dataset)
        session.add(
            AuditEvent(
                actor_id=admin.id,
                action="evil.event",
                object_type="thing",
                object_id=evil(short=True),
                details={"text": evil("audit")},
            )
        )
        session.commit()
        return {
            "constitution": constitution.id or 0,
            "published": published.id or 0,
            "draft": draft.id or 0,
            "principle": principle.id or 0,
            "few_shot": few_shot.id or 0,
            "prompt_set": prompt_set.id or 0,
            "run": run.id or 0,
            "trace": traces[0].id or 0,
            "failed_job": failed.id or 0,
            "label_job": label_job.id or 0,
            "dataset": dataset.id or 0,
        }


def pages(ids: dict[str, int]) -> list[str]:
    draft, published, principle = ids["draft"], ids["published"], ids["principle"]
    return [
        "/constitutions",
        f"/constitutions/{ids['constitution']}",
        f"/constitutions/{ids['constitution']}/diff?a={published}&b={draft}",
        f"/versions/{published}",
        f"/versions/{draft}",
        f"/versions/{draft}/principles/{principle}/edit",
        f"/versions/{draft}/principles/{principle}/preview",
        "/prompt-sets",
        f"/prompt-sets/{ids['prompt_set']}",
        f"/prompt-sets/{ids['prompt_set']}?q=prompt",
        "/models",
        "/generate",
        "/training",
        "/traces",
        f"/traces?job={ids['run']}",
        f"/traces/{ids['trace']}",
        f"/review?job={ids['run']}",
        "/jobs",
        f"/jobs/{ids['run']}",
        f"/jobs/{ids['run']}/stats",
        f"/jobs/{ids['failed_job']}",
        "/feedback",
        "/feedback/pairs",
        "/feedback/label",
        "/feedback/eval",
        f"/feedback/runs/{ids['label_job']}",
        f"/feedback/runs/{ids['label_job']}/review",
        "/datasets",
        f"/datasets/{ids['dataset']}?split=train_sft",
        f"/datasets/{ids['dataset']}?split=train_prefs",
        "/admin/users",
        "/admin/audit",
        "/account/password",
    ]


def shows_payload(page: Any) -> bool:
    """The payload is on the page as text (or an attribute's value), so the check is not idle."""
    html = page.content()
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'")):
        html = html.replace(entity, char)
    return SHORT in html.replace("&amp;", "&")


def assert_nothing_ran(page: Any, where: str) -> None:
    assert page.evaluate("window.__xss") is None, f"the payload ran on {where}"
    assert page.locator("img[src=x]").count() == 0, f"the payload made an element on {where}"


def count(app: LiveApp, model: type[Any], row_id: int) -> int:
    with Session(engine_for(app.env["DATABASE_URL"])) as session:
        return 1 if session.get(model, row_id) is not None else 0


def test_markup_in_every_text_field_never_runs(page: Any, app: LiveApp, tmp_path: Path) -> None:
    ids = seed(app, tmp_path)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    sign_in(page, evil(short=True), PASSWORD)

    for url in pages(ids):
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        page.wait_for_load_state("load")
        assert url.endswith("/stats") or shows_payload(page), f"{url} does not show the payload"
        assert_nothing_ran(page, url)
    assert dialogs == [], "a page opened a dialog by itself"

    # Delete → Cancel on the prompt set: the question shows the name as text; nothing is deleted.
    page.goto(f"/prompt-sets/{ids['prompt_set']}")
    page.click("button:has-text('Delete this prompt set')")
    assert_nothing_ran(page, "the prompt set's Delete → Cancel")
    assert dialogs == [f"Delete the prompt set \u201c{evil('prompt set')}\u201d and its 1 prompts?"]
    assert page.url.endswith(f"/prompt-sets/{ids['prompt_set']}")
    assert count(app, PromptSet, ids["prompt_set"]) == 1

    # The draft's few-shot conversation (a plain form) and principle (htmx's hx-confirm).
    page.goto(f"/versions/{ids['draft']}")
    page.click("button:has-text('Delete the conversation')")
    assert dialogs[1:] == ["Delete this conversation?"]
    page.click(f"#principle-{ids['principle']} button:has-text('Delete')")
    assert dialogs[2:] == [f"Delete the principle '{evil('k', short=True)}'?"]
    assert_nothing_ran(page, "the draft's Delete → Cancel")
    assert page.url.endswith(f"/versions/{ids['draft']}")
    assert count(app, Principle, ids["principle"]) == 1
    assert count(app, FewShotConversation, ids["few_shot"]) == 1

    # An admin resets the payload-named user's password → Cancel: the question names them.
    page.goto("/admin/users")
    page.click("form[data-confirm*='onerror'] button:has-text('Reset password')")
    assert_nothing_ran(page, "the user's Reset password → Cancel")
    assert dialogs[3:] == [
        f"Give {evil(short=True)} a new one-time password and sign them out everywhere?"
    ]
    assert page.url.endswith("/admin/users")

    # htmx still works under the policy: a preview loads into its slot without a page load.
    page.goto(f"/versions/{ids['draft']}")
    page.evaluate("window.noReload = true")
    page.click(f"#principle-{ids['principle']} a:has-text('Preview')")
    page.wait_for_selector(f"#preview-{ids['principle']} :first-child")
    assert page.evaluate("window.noReload") is True
    assert_nothing_ran(page, "the principle preview")
    assert refused == [], "the page broke its own Content-Security-Policy:\n" + "\n".join(refused)
