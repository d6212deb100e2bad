"""AI feedback through the web app: reply pairs, labelling, people's labels and agreement,
preference datasets from AI labels, and the labeller evaluation. Queued jobs run in this process
with the worker's own code; a scripted backend stands in for the models."""

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.constitutions import create_constitution
from app.models import (
    Comparison,
    Dataset,
    HumanLabel,
    Job,
    JobStatus,
    LanguageModel,
    Prompt,
    ReplyPair,
    Role,
    User,
)
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from app.recipe.documents import ConstitutionDoc, PrincipleDoc
from app.specs.labelling import LabellerEvalSpec, LabelSpec
from tests.conftest import FIXTURES, RecordingQueue, post
from tests.queued import redirect_id, run_queued
from worker.backends.base import Conversation
from worker.backends.fake import FakeBackend

HHH_SAMPLE = FIXTURES / "hhh" / "sample.jsonl"
PROMPTS = ["How do I hurt someone?", "How do I bake bread?", "Tell me a secret."]


class PrefersSafe(FakeBackend):
    """Writes a safe and a risky reply to each prompt, and as a judge prefers the safe one."""

    def __init__(self) -> None:
        super().__init__({p: [f"a safe answer to {p}", f"a risky answer to {p}"] for p in PROMPTS})

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        scores = []
        for context, continuation in zip(contexts, continuations, strict=True):
            question = context[-1]["content"]
            safe_letter = "A" if re.search(r"\(A\) \[\[\[a safe", question) else "B"
            scores.append(-1.0 if continuation.rstrip().endswith(f"({safe_letter})") else -3.0)
        return scores


def setup(session: Session) -> dict[str, int]:
    _, version = create_constitution(
        session=session,
        doc=ConstitutionDoc(
            name="judge",
            principles=[
                PrincipleDoc(
                    key=key,
                    critique_request="c",
                    revision_request="r",
                    comparison_instruction=f"Which reply is more {key}?",
                )
                for key in ("harmless", "honest", "kind")
            ],
        ),
        user=None,
        publish=True,
    )
    prompt_set = store_prompt_set(
        session=session,
        name="red team",
        prompts=[
            ParsedPrompt(text=p, context=None, line=i, metadata={}) for i, p in enumerate(PROMPTS)
        ],
    )
    model = LanguageModel(name="policy", backend="transformers", path="fake")
    session.add(model)
    session.commit()
    return {"version": version.id or 0, "set": prompt_set.id or 0, "model": model.id or 0}


PAIRS_FORM = {
    "max_prompts": "0",
    "sample_size": "0",
    "seed": "0",
    "max_new_tokens": "32",
    "temperature": "1.0",
    "top_p": "1.0",
    "chunk_size": "2",
}
LABEL_FORM = {
    "ensemble": "2",
    "clamp_low": "0.4",
    "clamp_high": "0.6",
    "seed": "0",
    "chunk_size": "16",
    "cot_max_new_tokens": "32",
}


def test_pairs_labels_people_agreement_and_a_dataset_from_ai_labels(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
    queue: RecordingQueue,
) -> None:
    ids = setup(session)
    author = make_client(Role.AUTHOR)
    greedy = post(
        author,
        "/feedback/pairs",
        data={
            **PAIRS_FORM,
            "prompt_set_id": ids["set"],
            "model_id": ids["model"],
            "temperature": "0",
        },
    )
    assert greedy.status_code == 400 and "Two greedy replies are the same reply" in greedy.text

    redirect_id(
        post(
            author,
            "/feedback/pairs",
            data={**PAIRS_FORM, "prompt_set_id": ids["set"], "model_id": ids["model"]},
        )
    )
    assert queue.sent[-1][0::2] == ("worker.tasks.run_reply_pairs", "gpu")
    backend = PrefersSafe()
    pair_run = run_queued(engine, queue, backend=backend)
    pairs = session.exec(select(ReplyPair).where(ReplyPair.job_id == pair_run.id)).all()
    assert len(pairs) == 3 and all(p.reply_a.startswith("a safe") for p in pairs)

    label_run = redirect_id(
        post(
            author,
            "/feedback/label",
            data={
                **LABEL_FORM,
                "pair_job_id": pair_run.id,
                "constitution_version_id": ids["version"],
                "model_id": ids["model"],
                "order_average": "1",
            },
        )
    )
    run_queued(engine, queue, backend=backend)
    comparisons = session.exec(select(Comparison).where(Comparison.job_id == label_run)).all()
    assert len(comparisons) == 3
    for comparison in comparisons:
        assert comparison.label == "A" and comparison.prob_a is not None
        assert (
            comparison.prob_a > 0.5 and abs(comparison.prob_a + (comparison.prob_b or 0) - 1) < 1e-9
        )
        assert len(comparison.principle_keys) == 2
        assert set(comparison.principle_keys) <= {"harmless", "honest", "kind"}

    reviewer = make_client(Role.REVIEWER)
    first = reviewer.get(f"/feedback/runs/{label_run}/review").text
    shown = int(re.search(r'data-comparison="(\d+)"', first).group(1))  # type: ignore[union-attr]
    saved = post(reviewer, f"/comparisons/{shown}/label", data={"choice": "A"})
    assert saved.status_code == 303
    following = reviewer.get(saved.headers["location"]).text
    assert "Saved: A" in following
    second = int(re.search(r'data-comparison="(\d+)"', following).group(1))  # type: ignore[union-attr]
    assert second != shown
    post(reviewer, f"/comparisons/{second}/label", data={"choice": "B"})
    again = post(reviewer, f"/comparisons/{second}/label", data={"choice": "tie"})
    assert "replaced" in again.headers["location"]
    assert post(reviewer, f"/comparisons/{second}/label", data={"choice": "C"}).status_code == 422
    labels = session.exec(select(HumanLabel)).all()
    assert sorted(label.choice for label in labels) == ["A", "tie"]

    page = author.get(f"/feedback/runs/{label_run}").text
    overall = re.search(r'data-principle="all principles">(.*?)</tr>', page, re.S)
    assert overall is not None
    cells = re.findall(r"<td>(.*?)</td>", overall.group(1))
    assert cells[:4] == ["all principles", "2", "1", "50%"]

    dataset_form = {"name": "rlaif", "min_margin": "49", "test_fraction": "0", "seed": "0"}
    refused = post(author, f"/feedback/runs/{label_run}/dataset", data=dataset_form)
    assert refused.status_code == 400 and "No rows are left after filtering" in refused.text
    assert not session.exec(select(Dataset)).all()
    built = post(
        author,
        f"/feedback/runs/{label_run}/dataset",
        data={**dataset_form, "min_margin": "0", "prefer_human": "1"},
    )
    dataset_id = redirect_id(built)
    run_queued(engine, queue)
    dataset = session.get(Dataset, dataset_id)
    assert dataset is not None
    session.refresh(dataset)
    assert dataset.kind == "ai-feedback" and dataset.status == "ready"
    # The person's tie leaves one pair out; the other two are labelled A.
    assert dataset.counts["train_prefs"] == 2 and dataset.dropped == {"tie (human label)": 1}
    rows = [
        json.loads(line)
        for line in (Path(dataset.folder) / "jsonl" / "train_prefs.jsonl").read_text().splitlines()
    ]
    by_pair = {p.id: p for p in pairs}
    for row in rows:
        comparison = session.get(Comparison, row["comparison_id"])
        assert comparison is not None
        assert row["chosen"][0]["content"] == by_pair[comparison.pair_id].reply_a
        assert row["rejected"][0]["content"] == by_pair[comparison.pair_id].reply_b
        assert row["soft_label"] == comparison.prob_a
    assert "rlaif" in dataset.card and "soft_label" in dataset.card
    # DPO and the reward model can train on it: the training form offers it.
    assert f'<option value="{dataset_id}"' in author.get("/training").text


def test_labelling_runs_are_checked_before_they_start(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    ids = setup(session)
    author = make_client(Role.AUTHOR)
    response = post(
        author,
        "/feedback/label",
        data={
            **LABEL_FORM,
            "pair_job_id": "",
            "constitution_version_id": ids["version"],
            "model_id": ids["model"],
            "clamp_low": "0.7",
        },
    )
    assert response.status_code == 400
    assert "Choose a run of reply pairs" in response.text and "From 0 to 0.5" in response.text
    assert not queue.sent


def test_the_labeller_evaluation_refuses_a_bad_file_and_reports_a_table(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
    queue: RecordingQueue,
    tiny_model: Path,
) -> None:
    model = LanguageModel(name="tiny", backend="transformers", path=str(tiny_model))
    session.add(model)
    session.commit()
    author = make_client(Role.AUTHOR)
    form = {"model_id": model.id, "settings": ["plain", "order"], "limit": "0"}
    bad = post(
        author,
        "/feedback/eval",
        data=form,
        files={"file": ("hhh.jsonl", b'{"prompt": "no options here"}\n', "application/jsonl")},
    )
    assert bad.status_code == 400 and "hhh.jsonl" in bad.text and "line 1" in bad.text
    assert not queue.sent

    lines = HHH_SAMPLE.read_text(encoding="utf-8").splitlines()[:4]
    launched = post(
        author,
        "/feedback/eval",
        data=form,
        files={"file": ("hhh-dev.jsonl", "\n".join(lines).encode(), "application/jsonl")},
    )
    job = run_queued(engine, queue)
    assert job.id == redirect_id(launched)
    assert [r["setting"] for r in job.result["results"]] == ["plain", "order"]
    assert all(r["n"] == 4 and 0 <= r["accuracy"] <= 1 for r in job.result["results"])
    page = author.get(f"/jobs/{job.id}").text
    assert 'data-setting="plain"' in page and 'data-setting="order"' in page


def pair_run_with_a_pair(session: Session, model_id: int) -> int:
    prompt = session.exec(select(Prompt)).first()
    assert prompt is not None
    pair_job = Job(kind="reply_pairs", queue="gpu", status=JobStatus.SUCCEEDED)
    session.add(pair_job)
    session.flush()
    session.add(
        ReplyPair(
            job_id=pair_job.id or 0,
            prompt_id=prompt.id or 0,
            model_id=model_id,
            reply_a="a",
            reply_b="b",
        )
    )
    session.commit()
    return pair_job.id or 0


def test_the_label_form_ticks_its_default_and_an_unticked_box_stays_unticked(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    ids = setup(session)
    pair_run = pair_run_with_a_pair(session, ids["model"])
    author = make_client(Role.AUTHOR)
    page = author.get(f"/feedback/label?pairs={pair_run}").text
    assert re.search(r'name="order_average" value="true"\s+checked', page)
    assert not re.search(r'name="few_shot" value="true"\s+checked', page)
    assert f'<option value="{pair_run}" selected>Run {pair_run}: 1 pairs</option>' in page

    form = {
        **LABEL_FORM,
        "pair_job_id": pair_run,
        "constitution_version_id": ids["version"],
        "model_id": ids["model"],
        "few_shot": "true",
    }
    job = session.get(Job, redirect_id(post(author, "/feedback/label", data=form)))
    assert job is not None and queue.sent[-1][0] == "worker.tasks.run_labelling"
    spec = LabelSpec.from_parameters(job.parameters)
    assert (spec.order_average, spec.few_shot, spec.ensemble) == (False, True, 2)
    assert spec.cot_max_new_tokens == 32 and spec.pair_job_id == pair_run


def test_every_labelling_mistake_shows_at_once(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    ids = setup(session)
    empty_run = Job(kind="reply_pairs", queue="gpu", status=JobStatus.SUCCEEDED)
    session.add(empty_run)
    session.commit()
    author = make_client(Role.AUTHOR)
    response = post(
        author,
        "/feedback/label",
        data={
            **LABEL_FORM,
            "pair_job_id": empty_run.id,
            "constitution_version_id": "999",
            "model_id": ids["model"],
            "clamp_low": "0.5",
            "clamp_high": "0.5",
        },
    )
    assert response.status_code == 400
    for message in (
        "This run has stored no pairs yet.",
        "Choose a published constitution version.",
        "Above the lower clamp.",
    ):
        assert message in response.text
    assert not queue.sent


def test_a_labelling_run_page_reads_its_run_through_the_spec(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
) -> None:
    ids = setup(session)
    pair_run = pair_run_with_a_pair(session, ids["model"])
    spec = LabelSpec(
        pair_job_id=pair_run, constitution_version_id=ids["version"], model_id=ids["model"]
    )
    good = Job(kind="label_pairs", queue="gpu", parameters=spec.to_parameters())
    # A row its spec does not read (stored by hand): the page still shows, without the links.
    odd = Job(kind="label_pairs", queue="gpu", parameters={"pair_job_id": "x"})
    session.add_all([good, odd])
    session.commit()
    viewer = make_client(Role.VIEWER)
    page = viewer.get(f"/feedback/runs/{good.id}")
    assert page.status_code == 200 and f'href="/jobs/{pair_run}"' in page.text
    assert viewer.get(f"/feedback/runs/{odd.id}").status_code == 200


def test_the_labeller_evaluation_names_a_bad_setting_and_stores_its_spec(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    model = LanguageModel(name="judge", backend="transformers", path="fake")
    session.add(model)
    session.commit()
    author = make_client(Role.AUTHOR)
    form = author.get("/feedback/eval").text
    for setting, ticked in [("plain", True), ("order", True), ("cot", False)]:
        assert bool(re.search(rf'value="{setting}"\s+checked', form)) == ticked, setting
    content = "\n".join(HHH_SAMPLE.read_text(encoding="utf-8").splitlines()[:3]).encode()

    def launch(**data: Any) -> Any:
        files = {"file": ("hhh-dev.jsonl", content, "application/jsonl")}
        return post(author, "/feedback/eval", data={"model_id": model.id, **data}, files=files)

    unknown = launch(settings=["plain", "best"], limit="0")
    assert unknown.status_code == 400
    assert "Unknown setting &#39;best&#39;: choose from plain, order" in unknown.text
    none = launch(limit="-1")
    assert none.status_code == 400 and "Choose at least one setting." in none.text
    assert "From 0 to 100000." in none.text
    assert not queue.sent

    job = session.get(
        Job, redirect_id(launch(settings=["cot", "plain"], limit="2", cot_max_new_tokens="16"))
    )
    assert job is not None
    spec = LabellerEvalSpec.from_parameters(job.parameters)
    assert (spec.settings, spec.limit, spec.cot_max_new_tokens) == (("cot", "plain"), 2, 16)
    assert (spec.model_id, spec.filename, spec.questions) == (model.id, "hhh-dev.jsonl", 3)
