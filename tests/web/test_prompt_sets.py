import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models import AuditEvent, Job, JobStatus, Prompt, PromptSet, Role, User
from tests.conftest import RecordingQueue, post
from worker.prompt_import import import_prompts
from worker.tasks import run_stage


def upload(client: TestClient, filename: str, content: bytes, **form: str) -> Any:
    data = {"name": "My set", "format": "jsonl", "field": "prompt", **form}
    return post(client, "/prompt-sets/import", data=data, files={"file": (filename, content)})


def run_queued_job(queue: RecordingQueue) -> int:
    task_name, job_id, queue_name = queue.sent[-1]
    assert (task_name, queue_name) == ("worker.tasks.run_import_prompts", "cpu")
    run_stage(job_id, None, import_prompts)
    return job_id


def jsonl(*prompts: str) -> bytes:
    return "\n".join(json.dumps({"prompt": p}) for p in prompts).encode()


def test_import_runs_as_a_job_and_drops_duplicates(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
) -> None:
    client = make_client(Role.AUTHOR)
    response = upload(
        client,
        "mine.jsonl",
        jsonl("How do I bake bread?", "how do i  BAKE bread?", "Tell me a joke."),
    )
    assert response.status_code == 303
    job_id = run_queued_job(queue)
    assert response.headers["location"] == f"/jobs/{job_id}"
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.SUCCEEDED
    assert job.created_by_id == users[Role.AUTHOR].id
    prompt_set = session.get(PromptSet, job.result["prompt_set_id"])
    assert prompt_set is not None
    assert (prompt_set.prompt_count, prompt_set.duplicates_dropped) == (2, 1)
    imported = session.exec(
        select(AuditEvent).where(AuditEvent.action == "prompt_set.import")
    ).one()
    assert (
        imported.actor_id == users[Role.AUTHOR].id and imported.details["duplicates_dropped"] == 1
    )
    texts = session.exec(
        select(Prompt.text)
        .where(Prompt.prompt_set_id == prompt_set.id)
        .order_by(col(Prompt.position))
    ).all()
    assert list(texts) == ["How do I bake bread?", "Tell me a joke."]
    page = client.get(f"/jobs/{job_id}")
    assert "succeeded" in page.text and f"/prompt-sets/{prompt_set.id}" in page.text


@pytest.mark.parametrize(
    ("content", "form", "message"),
    [
        (b"", {}, "is empty"),
        (b'{"prompt": "fine"}\n{"prompt": "also fine"}\nnot json at all\n', {}, "line 3"),
        (b'{"prompt": "fine"}\n{"text": "no prompt field"}\n', {}, "line 2"),
        (b"\x00\x01\x02binary\xff\xfe", {}, "binary"),
        (b"a,b\n1,2\n", {"format": "csv", "column": "prompt"}, "column"),
    ],
    ids=["empty", "not-json", "missing-field", "binary", "missing-column"],
)
def test_a_malformed_upload_names_the_problem_and_stores_nothing(
    content: bytes,
    form: dict[str, str],
    message: str,
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
    data_dir: Path,
) -> None:
    client = make_client(Role.AUTHOR)
    response = upload(client, "bad.jsonl", content, description="kept text", **form)
    assert response.status_code == 400
    assert message in response.text
    assert "kept text" in response.text and 'value="My set"' in response.text
    assert queue.sent == []
    assert session.exec(select(PromptSet)).all() == []
    assert list((data_dir / "uploads").glob("*")) == []


def test_form_errors_keep_the_input(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client(Role.AUTHOR)
    response = upload(client, "x.jsonl", jsonl("a"), name="", field="", description="my notes")
    assert response.status_code == 400
    assert "Give the set a name" in response.text and "Name the JSON field" in response.text
    assert "my notes" in response.text


def test_an_upload_over_the_size_limit_is_refused(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    monkeypatch: pytest.MonkeyPatch,
    queue: RecordingQueue,
) -> None:
    from app.settings import get_settings

    monkeypatch.setattr(get_settings(), "MAX_UPLOAD_MB", 1)
    client = make_client(Role.AUTHOR)
    response = upload(client, "big.jsonl", jsonl("x" * 2_000_000))
    assert response.status_code == 400 and "over the 1 MB limit" in response.text
    assert queue.sent == []


def test_a_failing_job_stores_nothing_and_says_which_line(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
) -> None:
    # Files too big to check in the request are checked by the job; simulate one that
    # changed after the upload, which the job must still refuse whole.
    client = make_client(Role.AUTHOR)
    assert upload(client, "ok.jsonl", jsonl("one", "two")).status_code == 303
    job = session.get(Job, queue.sent[-1][1])
    assert job is not None
    Path(job.parameters["path"]).write_text('{"prompt": "one"}\n{"prompt": 5}\n')
    with pytest.raises(ValueError, match="line 2"):
        run_stage(job.id or 0, None, import_prompts)
    session.refresh(job)
    assert job.status == JobStatus.FAILED and "line 2" in (job.error or "")
    assert session.exec(select(PromptSet)).all() == []
    assert "Import again" in client.get(f"/jobs/{job.id}").text


def test_import_hh_rlhf_then_search_paginate_and_sample(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
    shared_data: Callable[[str], Path],
) -> None:
    hh_rlhf = shared_data("hh-rlhf/harmless-base-test-dev.jsonl.gz")
    client = make_client(Role.AUTHOR)
    response = upload(client, hh_rlhf.name, hh_rlhf.read_bytes(), format="hh-rlhf", field="")
    assert response.status_code == 303, response.text
    job = session.get(Job, run_queued_job(queue))
    assert job is not None and job.status == JobStatus.SUCCEEDED, job.error if job else None
    set_id = job.result["prompt_set_id"]
    prompt_set = session.get(PromptSet, set_id)
    assert prompt_set is not None
    assert prompt_set.prompt_count + prompt_set.duplicates_dropped == 1800
    assert prompt_set.prompt_count > 1000

    first_page = client.get(f"/prompt-sets/{set_id}")
    assert first_page.text.count('class="prompt-text"') == 50
    assert "Page 1 of" in first_page.text
    second = client.get(f"/prompt-sets/{set_id}?page=2")
    assert 'start="51"' in second.text

    # Search is case-insensitive and treats % and _ literally.
    some = session.exec(select(Prompt).where(Prompt.prompt_set_id == set_id).limit(1)).one()
    word = max(some.text.split(), key=len)
    found = client.get(f"/prompt-sets/{set_id}", params={"q": word.upper()})
    expected = [
        p
        for p in session.exec(select(Prompt.text).where(Prompt.prompt_set_id == set_id))
        if word.lower() in p.lower()
    ]
    assert f"{len(expected)} prompt" in found.text
    assert "0 prompts" in client.get(f"/prompt-sets/{set_id}", params={"q": "%_%zzqq"}).text
    fragment = client.get(
        f"/prompt-sets/{set_id}",
        params={"q": word},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert fragment.text.lstrip().startswith('<section id="results">')

    made = []
    for _ in range(2):
        response = post(
            client,
            f"/prompt-sets/{set_id}/sample",
            data={"size": "25", "seed": "7", "name": "sample"},
        )
        assert response.status_code == 303
        made.append(int(response.headers["location"].rsplit("/", 1)[1]))
    samples = [
        list(
            session.exec(
                select(Prompt.content_hash)
                .where(Prompt.prompt_set_id == i)
                .order_by(col(Prompt.position))
            )
        )
        for i in made
    ]
    assert len(samples[0]) == 25 and samples[0] == samples[1]
    other = post(
        client, f"/prompt-sets/{set_id}/sample", data={"size": "25", "seed": "8", "name": "other"}
    )
    other_id = int(other.headers["location"].rsplit("/", 1)[1])
    assert (
        list(session.exec(select(Prompt.content_hash).where(Prompt.prompt_set_id == other_id)))
        != samples[0]
    )
    assert (
        session.exec(select(AuditEvent).where(AuditEvent.action == "prompt_set.sample")).first()
        is not None
    )

    too_many = post(
        client, f"/prompt-sets/{set_id}/sample", data={"size": "999999", "seed": "1", "name": "x"}
    )
    assert (
        too_many.status_code == 400
        and "only" in too_many.text
        and 'value="999999"' in too_many.text
    )


def test_gzip_text_and_csv_uploads(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
) -> None:
    client = make_client(Role.AUTHOR)
    cases = [
        ("p.txt.gz", gzip.compress(b"first line\n\nsecond line\n"), {"format": "text"}, 2),
        (
            "p.csv",
            b'id,question\n1,What is tea?\n2,"Commas, too?"\n',
            {"format": "csv", "column": "question"},
            2,
        ),
    ]
    for filename, content, form, count in cases:
        assert upload(client, filename, content, **form).status_code == 303
        job = session.get(Job, run_queued_job(queue))
        assert job is not None and job.status == JobStatus.SUCCEEDED, job.error if job else None
        prompt_set = session.get(PromptSet, job.result["prompt_set_id"])
        assert prompt_set is not None and prompt_set.prompt_count == count


def test_deleting_a_set_removes_its_prompts_and_keeps_its_samples(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    from app.prompt_files import ParsedPrompt
    from app.prompt_sets import store_prompt_set

    source = store_prompt_set(
        session=session,
        name="to delete",
        prompts=[ParsedPrompt(text=f"p{i}", context=None, line=i, metadata={}) for i in range(5)],
    )
    session.commit()
    source_id = source.id
    client = make_client(Role.AUTHOR)
    sampled = post(
        client, f"/prompt-sets/{source_id}/sample", data={"size": "2", "seed": "3", "name": "kept"}
    )
    sample_id = int(sampled.headers["location"].rsplit("/", 1)[1])
    assert post(client, f"/prompt-sets/{source_id}/delete").status_code == 303
    session.expire_all()
    assert session.get(PromptSet, source_id) is None
    assert session.exec(select(Prompt).where(Prompt.prompt_set_id == source_id)).all() == []
    sample = session.get(PromptSet, sample_id)
    assert sample is not None and sample.parent_id is None
    assert len(session.exec(select(Prompt).where(Prompt.prompt_set_id == sample_id)).all()) == 2
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "prompt_set.delete")).one()
    assert event.details["name"] == "to delete" and event.actor_id == users[Role.AUTHOR].id
    assert client.get(f"/prompt-sets/{source_id}").status_code == 404


def test_a_refused_sample_keeps_the_page_as_it_was(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    from app.prompt_files import ParsedPrompt
    from app.prompt_sets import store_prompt_set

    source = store_prompt_set(
        session=session,
        name="parent set",
        prompts=[ParsedPrompt(text=f"p{i}", context=None, line=i, metadata={}) for i in range(3)],
    )
    session.commit()
    client = make_client(Role.AUTHOR)
    made = post(
        client, f"/prompt-sets/{source.id}/sample", data={"size": "2", "seed": "1", "name": "child"}
    )
    child_id = int(made.headers["location"].rsplit("/", 1)[1])
    refused = post(
        client, f"/prompt-sets/{child_id}/sample", data={"size": "9", "seed": "1", "name": "x"}
    )
    assert refused.status_code == 400 and "only 2 prompts" in refused.text
    assert f'href="/prompt-sets/{source.id}">parent set</a>' in refused.text
