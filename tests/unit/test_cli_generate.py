"""`cai generate` runs the engine without the web app, into a JSON-lines file or the database."""

import json
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.cli import main
from app.constitutions import DEFAULT_CONSTITUTION, create_constitution, default_document
from app.models import Job, JobStatus, LanguageModel, Trace
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from app.run_rates import job_tokens


def test_into_a_file_and_a_rerun_resumes(
    tmp_path: Path, tiny_model: Path, app_env: dict[str, str], capsys: pytest.CaptureFixture[str]
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
    printed = capsys.readouterr()
    # A progress bar on stderr with each step, and a summary as the last line of stdout.
    assert "2/2" in printed.err and "round 2 revisions" in printed.err
    assert "chunk 1 of 1 · initial replies · 2 prompts" in printed.err
    summary = printed.out.strip().splitlines()[-1]
    assert re.fullmatch(rf"2 prompts · [\d,]+ tokens in \d+ s( \(.+ tok/s\))? → {out}", summary)
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


def test_into_the_database_as_a_job(
    engine: Engine, session: Session, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
    printed = capsys.readouterr()
    assert "2/2" in printed.err and "chunk 1 of 1 · round 1 revisions · 2 prompts" in printed.err
    job = session.exec(select(Job)).one()
    tokens = job_tokens(session, job.id or 0)
    assert printed.out.strip().splitlines()[-1].startswith(f"2 prompts · {tokens:,} tokens in ")
    assert job.kind == "generate" and job.status == JobStatus.SUCCEEDED and job.progress_done == 2
    # No sampling flags: the model's defaults (a folder whose generation_config.json sets none:
    # those for small chat models); --preset paper and a flag given win.
    assert (job.parameters["temperature"], job.parameters["repetition_penalty"]) == (0.7, 1.1)
    assert main([*args, "--preset", "paper", "--top-k", "5"]) == 0
    paper = session.exec(select(Job).order_by(col(Job.id).desc())).first()
    assert paper is not None
    assert (paper.parameters["temperature"], paper.parameters["top_p"]) == (1.0, 1.0)
    assert (paper.parameters["top_k"], paper.parameters["repetition_penalty"]) == (5, 1.0)
    assert len(session.exec(select(Trace).where(Trace.job_id == job.id)).all()) == 2


def test_without_inputs_it_says_what_to_give(capsys: object) -> None:
    assert main(["generate", "--rounds", "1"]) == 2
