"""`cai generate` runs the engine without the web app, into a JSON-lines file or the database."""

import json
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.cli import main
from app.constitutions import DEFAULT_CONSTITUTION, create_constitution, default_document
from app.models import Job, JobStatus, LanguageModel, Trace
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set


def test_into_a_file_and_a_rerun_resumes(
    tmp_path: Path, tiny_model: Path, app_env: dict[str, str]
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("How do I boil an egg?\nWhat is a prime number?\n")
    out = tmp_path / "traces.jsonl"
    args = [
        "generate",
        "--constitution",
        str(DEFAULT_CONSTITUTION),
        "--prompts",
        str(prompts),
        "--format",
        "text",
        "--model",
        str(tiny_model),
        "--out",
        str(out),
        "--max-new-tokens",
        "8",
        "--rounds",
        "2",
        "--seed",
        "4",
    ]
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["How do I boil an egg?", "What is a prime number?"]
    assert all(len(r["rounds"]) == 2 for r in rows)
    first = rows[0]
    assert (
        first["init_prompt"] == first["prompt"]
        and first["revision_response"] == first["rounds"][0]["revision"]
    )
    assert first["final_reply"] == first["rounds"][-1]["revision"]
    keys = {p.key for p in default_document().principles}
    assert all(r["principle"] in keys for row in rows for r in row["rounds"])

    prompts.write_text("How do I boil an egg?\nWhat is a prime number?\nName three rivers.\n")
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in rows][-1] == "Name three rivers." and len(rows) == 3


def test_into_the_database_as_a_job(engine: Engine, session: Session, tiny_model: Path) -> None:
    _, version = create_constitution(
        session=session, doc=default_document(), user=None, publish=True
    )
    prompt_set = store_prompt_set(
        session=session,
        name="two",
        prompts=[ParsedPrompt(text=f"q{i}?", context=None, line=i, metadata={}) for i in range(2)],
    )
    model = LanguageModel(name="tiny", backend="transformers", path=str(tiny_model))
    session.add(model)
    session.commit()
    args = [
        "generate",
        "--version-id",
        str(version.id),
        "--prompt-set-id",
        str(prompt_set.id),
        "--model-id",
        str(model.id),
        "--max-new-tokens",
        "8",
    ]
    assert main(args) == 0
    job = session.exec(select(Job)).one()
    assert job.kind == "generate" and job.status == JobStatus.SUCCEEDED and job.progress_done == 2
    assert len(session.exec(select(Trace).where(Trace.job_id == job.id)).all()) == 2


def test_without_inputs_it_says_what_to_give(capsys: object) -> None:
    assert main(["generate", "--rounds", "1"]) == 2
