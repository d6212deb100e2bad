"""Building datasets from reviewed runs in the browser's forms, and downloading them."""

import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.models import Dataset, Job, JobStatus, Role, Trace, User
from app.specs import SpecError
from app.specs.datasets import DatasetBuildJobSpec
from tests.conftest import RecordingQueue, post
from tests.queued import run_queued
from tests.web.runs import make_run
from worker.dataset_build import build_dataset
from worker.tasks import run_stage

BUILD_FORM = {
    "name": "harmless v1",
    "review_filter": "exclude_rejected",
    "min_change": "0",
    "min_chars": "1",
    "max_chars": "0",
    "max_prompt_chars": "0",
    "drop_duplicates": "1",
    "test_fraction": "0",
    "seed": "0",
    "helpful_max_rows": "0",
    "action": "build",
}


def test_a_dataset_is_built_from_reviewed_runs_and_downloads_in_every_format(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
    queue: RecordingQueue,
) -> None:
    run = make_run(session, engine, prompts=6)
    traces = list(session.exec(select(Trace).where(Trace.job_id == run.id).order_by(Trace.id)))
    reviewer = make_client(Role.REVIEWER)
    post(reviewer, f"/traces/{traces[0].id}/review", data={"verdict": "reject"})
    post(
        reviewer,
        f"/traces/{traces[1].id}/review",
        data={
            "verdict": "approve",
            "correcting": "1",
            "corrected_text": "A careful, corrected answer.",
        },
    )
    author = make_client(Role.AUTHOR)

    counted = post(author, "/datasets", data={**BUILD_FORM, "runs": [run.id], "action": "preview"})
    assert counted.status_code == 200
    assert "<strong>10</strong> rows" in counted.text
    assert "train_sft 5, test_sft 0, train_prefs 5, test_prefs 0" in counted.text
    assert "1 rejected by review" in counted.text
    assert not session.exec(select(Dataset)).all() and not queue.sent

    response = post(author, "/datasets", data={**BUILD_FORM, "runs": [run.id]})
    assert response.status_code == 303, response.text
    dataset_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert 'data-status="building"' in author.get(f"/datasets/{dataset_id}").text

    assert queue.sent[-1][0::2] == ("worker.tasks.run_build_dataset", "cpu")
    run_queued(engine, queue)
    page = author.get(f"/datasets/{dataset_id}").text
    assert 'data-status="ready"' in page
    dataset = session.get(Dataset, dataset_id)
    assert dataset is not None
    session.refresh(dataset)
    assert dataset.counts["train_sft"] == 5 and dataset.dropped == {"rejected by review": 1}
    # Every row links back to its trace; the page links each to the trace's own page.
    assert f'href="/traces/{traces[1].id}"' in page
    assert "constitutional-ai" in dataset.card and f"{run.id}" in dataset.card

    for fmt in ("jsonl", "parquet", "hf"):
        download = author.get(f"/datasets/{dataset_id}/download/{fmt}")
        assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
        assert "README.md" in names and any(n.startswith(f"{fmt}/") for n in names), names
    archive = zipfile.ZipFile(
        io.BytesIO(author.get(f"/datasets/{dataset_id}/download/jsonl").content)
    )
    rows = [json.loads(line) for line in archive.read("jsonl/train_sft.jsonl").splitlines()]
    by_trace = {row["trace_id"]: row for row in rows}
    assert traces[0].id not in by_trace
    assert by_trace[traces[1].id]["messages"][-1]["content"] == "A careful, corrected answer."
    assert by_trace[traces[1].id]["corrected"] is True
    assert by_trace[traces[2].id]["messages"][-1]["content"] == traces[2].final_reply
    assert by_trace[traces[2].id]["init_response"] == traces[2].initial_reply
    assert author.get(f"/datasets/{dataset_id}/download/csv").status_code == 404


def test_a_build_that_leaves_no_rows_is_refused_before_any_job(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
    queue: RecordingQueue,
) -> None:
    run = make_run(session, engine, prompts=3)
    author = make_client(Role.AUTHOR)
    response = post(
        author,
        "/datasets",
        data={**BUILD_FORM, "runs": [run.id], "review_filter": "approved_only"},
    )
    assert response.status_code == 400
    assert "No rows are left after filtering" in response.text
    assert "3 not approved" in response.text
    assert not session.exec(select(Dataset)).all() and not queue.sent

    nothing = post(author, "/datasets", data={**BUILD_FORM})
    assert nothing.status_code == 400 and "Choose at least one generation run" in nothing.text
    wrong = post(author, "/datasets", data={**BUILD_FORM, "runs": [run.id], "min_change": "150"})
    assert wrong.status_code == 400 and "From 0 to 100." in wrong.text


def test_a_bad_helpful_file_is_refused_with_its_line(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
    queue: RecordingQueue,
    data_dir: Path,
) -> None:
    run = make_run(session, engine, prompts=2)
    author = make_client(Role.AUTHOR)
    good = json.dumps({"prompt": "How do I boil an egg?", "completion": "Simmer it 8 minutes."})
    body = (good + "\n" + "{not json\n").encode()
    response = post(
        author,
        "/datasets",
        data={**BUILD_FORM, "runs": [run.id], "helpful_max_rows": "5"},
        files={"helpful_file": ("helpful.jsonl", body, "application/jsonl")},
    )
    assert response.status_code == 400
    assert re.search(r"helpful\.jsonl: .*line 2", response.text), response.text
    assert not session.exec(select(Dataset)).all() and not queue.sent
    assert not list((data_dir / "uploads").glob("*")) if (data_dir / "uploads").exists() else True

    mixed = post(
        author,
        "/datasets",
        data={**BUILD_FORM, "runs": [run.id], "helpful_max_rows": "5", "action": "preview"},
        files={"helpful_file": ("helpful.jsonl", (good + "\n").encode(), "application/jsonl")},
    )
    assert mixed.status_code == 200 and "train_sft 3," in mixed.text


def test_the_build_job_stores_the_forms_spec_and_a_row_without_one_fails_its_dataset(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
    queue: RecordingQueue,
) -> None:
    run = make_run(session, engine, prompts=3)
    author = make_client(Role.AUTHOR)
    form = {**BUILD_FORM, "runs": [run.id], "min_change": "0", "test_fraction": "20", "seed": "5"}
    refused = post(author, "/datasets", data={**form, "name": "", "max_chars": "0.5"})
    # Every mistake at once, and the form as it was typed (percent, not shares).
    assert refused.status_code == 400 and "Give the dataset a name." in refused.text
    assert "A whole number from 0 to 10000000." in refused.text
    assert 'name="test_fraction" value="20"' in refused.text
    assert f'name="runs" value="{run.id}" checked' in refused.text

    response = post(author, "/datasets", data=form)
    assert response.status_code == 303, response.text
    job = session.get(Job, queue.sent[-1][1])
    assert job is not None
    spec = DatasetBuildJobSpec.from_parameters(job.parameters)
    dataset_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert spec.dataset_id == dataset_id and spec.runs == (run.id,)
    assert spec.test_fraction == 0.2 and spec.seed == 5 and spec.name == "harmless v1"
    run_queued(engine, queue)

    # A row stored by hand (or by an older version) is refused by name; its dataset fails.
    stale = Dataset(name="stale", source_job_ids=[run.id or 0])
    session.add(stale)
    session.commit()
    old_row = Job(
        kind="build_dataset",
        queue="cpu",
        parameters={"dataset_id": stale.id, "helpful_path": "", "user_id": users[Role.AUTHOR].id},
    )
    session.add(old_row)
    session.commit()
    with pytest.raises(SpecError, match="runs"):
        run_stage(old_row.id or 0, None, build_dataset)
    session.refresh(stale)
    session.refresh(old_row)
    assert stale.status == "failed" and old_row.status == JobStatus.FAILED
