"""Every upload route refuses hostile files (gzip bombs, deep nesting, huge numbers) with a 400
that names the user's file and line, stores nothing and leaves nothing in DATA_DIR/uploads; a
job that fails on its upload removes the file too."""

import gzip
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.models import Constitution, Dataset, Job, JobStatus, LanguageModel, PromptSet, Role, User
from app.recipe.comparison_text import ANSWER_CUE
from app.recipe.hhh_file import HHHFileError
from app.settings import get_settings
from tests.conftest import RecordingQueue, post
from tests.web.runs import make_run
from tests.web.test_datasets import BUILD_FORM
from worker.dataset_build import build_dataset
from worker.eval_job import run_labeller_eval
from worker.prompt_import import import_prompts
from worker.tasks import run_stage

DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5000
HHH_ROW = json.dumps(
    {
        "prompt": f"Which is better?\n\nOptions:\n (A) [[[yes]]]\n (B) [[[no]]]\n\n{ANSWER_CUE}",
        "corrects": [" (A)"],
        "incorrects": [" (B)"],
    }
)
HELPFUL_ROW = json.dumps({"prompt": "How do I boil an egg?", "completion": "Simmer it."})


@pytest.fixture(autouse=True)
def one_mb_limit(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MAX_UPLOAD_MB", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def bomb(line: str, megabytes: int = 4) -> bytes:
    """A few kB of gzip that expand to `megabytes` MB of `line`s: over the 1 MB limit."""
    raw = (line + "\n").encode()
    return gzip.compress(raw * (megabytes * 2**20 // len(raw)), compresslevel=9)


def leftovers(data_dir: Path) -> list[Path]:
    uploads = data_dir / "uploads"
    return list(uploads.iterdir()) if uploads.exists() else []


def hhh_model(session: Session) -> int:
    model = LanguageModel(name="judge", backend="transformers", path="fake")
    session.add(model)
    session.commit()
    return model.id or 0


# --- prompt sets ---------------------------------------------------------------------------


def import_prompts_form(client: TestClient, filename: str, content: bytes, **form: str) -> Any:
    data = {"name": "My set", "format": "jsonl", "field": "prompt", **form}
    return post(client, "/prompt-sets/import", data=data, files={"file": (filename, content)})


@pytest.mark.parametrize(
    ("filename", "content", "form", "problem"),
    [
        ("p.txt.gz", bomb("How do I bake bread?"), {"format": "text"}, "once decompressed"),
        ("p.jsonl", f'{{"prompt": "ok"}}\n{DEEP}\n'.encode(), {}, "line 2: nested more than 64"),
        ("p.jsonl", f'{{"prompt": "ok", "n": {HUGE}}}\n'.encode(), {}, "line 1: a number of 5000"),
    ],
    ids=["gzip-bomb", "deep", "huge-int"],
)
def test_a_hostile_prompt_file_is_refused_and_leaves_nothing(
    filename: str,
    content: bytes,
    form: dict[str, str],
    problem: str,
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
    data_dir: Path,
) -> None:
    assert len(content) < 2**20
    response = import_prompts_form(make_client(Role.AUTHOR), filename, content, **form)
    assert response.status_code == 400
    assert f"{filename}: " in response.text and problem in response.text, response.text
    assert queue.sent == [] and session.exec(select(PromptSet)).all() == []
    assert leftovers(data_dir) == []


def test_a_failing_import_job_removes_its_upload(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing is checked in the request, so the job meets the bomb.
    monkeypatch.setenv("CHECK_UPLOAD_IN_REQUEST_MB", "0")
    get_settings.cache_clear()
    content = bomb("How do I bake bread?")
    response = import_prompts_form(make_client(Role.AUTHOR), "p.txt.gz", content, format="text")
    assert response.status_code == 303 and len(leftovers(data_dir)) == 1
    job_id = queue.sent[-1][1]
    with pytest.raises(ValueError, match=r"^p\.txt\.gz: line \d+: more than 1 MB once decompr"):
        run_stage(job_id, None, import_prompts)
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.FAILED
    assert (job.error or "").startswith("p.txt.gz: line ")
    assert session.exec(select(PromptSet)).all() == [] and leftovers(data_dir) == []


def test_cancelling_a_queued_import_removes_its_upload(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
    data_dir: Path,
) -> None:
    client = make_client(Role.AUTHOR)
    response = import_prompts_form(client, "p.jsonl", b'{"prompt": "How do I bake bread?"}\n')
    assert response.status_code == 303 and len(leftovers(data_dir)) == 1
    job_id = queue.sent[-1][1]
    assert post(client, f"/jobs/{job_id}/cancel").status_code == 303
    job = session.get(Job, job_id)
    assert job is not None and job.status == JobStatus.CANCELLED
    assert leftovers(data_dir) == []


# --- the labeller evaluation (HHH file) ----------------------------------------------------


def post_hhh(client: TestClient, model_id: int, filename: str, content: bytes) -> Any:
    form = {"model_id": str(model_id), "settings": ["plain"], "limit": "0"}
    return post(client, "/feedback/eval", data=form, files={"file": (filename, content)})


@pytest.mark.parametrize(
    ("filename", "content", "problem"),
    [
        ("my-hhh.jsonl", f"{HHH_ROW}\n{DEEP}\n".encode(), "my-hhh.jsonl line 2: nested more"),
        ("my-hhh.jsonl", f'{HHH_ROW}\n{{"n": {HUGE}}}\n'.encode(), "my-hhh.jsonl line 2: a num"),
        ("my-hhh.jsonl.gz", bomb(HHH_ROW), "my-hhh.jsonl.gz line "),
    ],
    ids=["deep", "huge-int", "gzip-bomb"],
)
def test_a_hostile_hhh_file_names_the_users_file_and_line(
    filename: str,
    content: bytes,
    problem: str,
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
    data_dir: Path,
) -> None:
    response = post_hhh(make_client(Role.AUTHOR), hhh_model(session), filename, content)
    assert response.status_code == 400
    assert problem in response.text, response.text
    if filename.endswith(".gz"):
        assert "once decompressed" in response.text
    # Not the server's copy ("368ca1ca….jsonl") nor a byte position.
    assert not re.search(r"[0-9a-f]{32}\.jsonl", response.text) and "(char " not in response.text
    assert queue.sent == [] and session.exec(select(Job)).all() == []
    assert leftovers(data_dir) == []


def test_a_failing_evaluation_job_names_the_file_and_removes_it(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
    data_dir: Path,
) -> None:
    response = post_hhh(
        make_client(Role.AUTHOR), hhh_model(session), "my-hhh.jsonl", HHH_ROW.encode()
    )
    assert response.status_code == 303
    job_id = queue.sent[-1][1]
    job = session.get(Job, job_id)
    assert job is not None
    # The file changed after the upload: the job must refuse it, by the user's name.
    Path(job.parameters["path"]).write_text(f"{HHH_ROW}\n{DEEP}\n")
    with pytest.raises(HHHFileError, match=r"^my-hhh\.jsonl line 2: nested more than 64"):
        run_stage(job_id, None, run_labeller_eval)
    session.refresh(job)
    assert job.status == JobStatus.FAILED and leftovers(data_dir) == []


# --- helpful rows for a dataset ------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content", "problem"),
    [
        ("helpful.jsonl.gz", bomb(HELPFUL_ROW), "once decompressed"),
        ("helpful.jsonl", f'{{"prompt": "q", "completion": {HUGE}}}\n'.encode(), "line 1: a num"),
        ("helpful.jsonl", f"{HELPFUL_ROW}\n{DEEP}\n".encode(), "line 2: nested more than 64"),
    ],
    ids=["gzip-bomb", "huge-int", "deep"],
)
def test_a_hostile_helpful_file_is_refused_and_leaves_nothing(
    filename: str,
    content: bytes,
    problem: str,
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
    engine: Engine,
    data_dir: Path,
) -> None:
    run = make_run(session, engine, prompts=2)
    response = post(
        make_client(Role.AUTHOR),
        "/datasets",
        data={**BUILD_FORM, "runs": [run.id], "helpful_max_rows": "10000000"},
        files={"helpful_file": (filename, content)},
    )
    assert response.status_code == 400
    assert f"{filename}: " in response.text and problem in response.text, response.text
    assert session.exec(select(Dataset)).all() == [] and queue.sent == []
    assert leftovers(data_dir) == []


def test_a_failing_build_removes_its_helpful_upload(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    queue: RecordingQueue,
    session: Session,
    engine: Engine,
    data_dir: Path,
) -> None:
    run = make_run(session, engine, prompts=2)
    response = post(
        make_client(Role.AUTHOR),
        "/datasets",
        data={**BUILD_FORM, "runs": [run.id], "helpful_max_rows": "5"},
        files={"helpful_file": ("helpful.jsonl", HELPFUL_ROW.encode())},
    )
    assert response.status_code == 303 and len(leftovers(data_dir)) == 1
    job_id = queue.sent[-1][1]
    job = session.get(Job, job_id)
    assert job is not None
    # Only 5 rows are read, so a bomb would not be noticed: a bad first row is.
    Path(job.parameters["helpful_path"]).write_text(DEEP)
    with pytest.raises(ValueError, match=r"^helpful\.jsonl: line 1: nested more than 64"):
        run_stage(job_id, None, build_dataset)
    session.refresh(job)
    assert job.status == JobStatus.FAILED and leftovers(data_dir) == []


# --- constitution import -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content", "problem"),
    [
        ("mine.json", DEEP.encode(), "mine.json: line 1 column 65: nested more than 64"),
        ("mine.yaml", b"principles: " + b"[" * 100_000, "mine.yaml: not valid YAML (line 1"),
        ("mine.json", b'{"format": ' + HUGE.encode() + b"}", "mine.json: line 1 column 12"),
        ("mine.yaml", b"format: " + HUGE.encode() + b"\n", "a number of 5000 digits"),
    ],
    ids=["deep-json", "deep-yaml", "huge-json-int", "huge-yaml-int"],
)
def test_a_hostile_constitution_is_refused_with_its_file_and_line(
    filename: str,
    content: bytes,
    problem: str,
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
) -> None:
    before = len(session.exec(select(Constitution)).all())
    response = post(
        make_client(Role.AUTHOR),
        "/constitutions/import",
        data={"name": "Hostile", "into": ""},
        files=[("files", (filename, content))],
    )
    assert response.status_code == 400
    assert problem in response.text, response.text
    assert len(session.exec(select(Constitution)).all()) == before
