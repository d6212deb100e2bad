"""`cai eval-judge`: the refusal judge checked against a people-labelled completions file
(XSTest's format) in this process, with a progress bar; stored as a judge-check job, so that an
evaluation run with this judge counts the check."""

import argparse
import sys
from pathlib import Path

from sqlmodel import Session, select
from tqdm import tqdm

from app.judge_checks import KIND
from app.models import Job, JobStatus, LanguageModel
from app.prompt_files.xstest import XSTestFileError, load_labelled_completions
from app.specs import SpecError
from app.specs.judge_check import JudgeCheckSpec
from worker.judge_check import format_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a labelled completions CSV (XSTest's format)")
    parser.add_argument("--model", required=True, help="the judge: a registered model's id or name")
    parser.add_argument("--limit", type=int, default=0, help="only the first N rows (0: all)")
    parser.add_argument("--batch-size", type=int, default=8)


def find_model(session: Session, given: str) -> LanguageModel | None:
    from app.default_model import DEFAULT_MODEL_NAME
    from app.generation import ensure_default_model

    if given.isdigit():
        return session.get(LanguageModel, int(given))
    if given == DEFAULT_MODEL_NAME:
        ensure_default_model(session=session)  # the bundled SmolLM2, registered once
    return session.exec(select(LanguageModel).where(LanguageModel.name == given)).first()


def run(args: argparse.Namespace) -> int:
    from app.db import get_engine
    from app.job_records import create_job
    from worker.judge_check_job import run_judge_check
    from worker.lifecycle import running_job

    try:
        rows = len(load_labelled_completions(args.file))
    except (XSTestFileError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 2
    engine = get_engine()
    with Session(engine) as session:
        model = find_model(session, args.model)
        if model is None or model.kind != "policy":
            print(f"--model: no policy model '{args.model}' is registered", file=sys.stderr)
            return 2
        try:
            spec = JudgeCheckSpec.from_parameters(
                {
                    "model_id": model.id,
                    "limit": args.limit,
                    "batch_size": args.batch_size,
                    "path": str(args.file.resolve()),
                    "filename": args.file.name,
                    "rows": rows,
                }
            )
        except SpecError as exc:
            print(exc, file=sys.stderr)
            return 2
        name = model.name
        job_id = create_job(
            session=session, kind=KIND, parameters=spec.to_parameters(), user=None
        ).id
    print(f"job {job_id}: {name} on {args.file.name}", flush=True)
    assert job_id is not None
    total = min(rows, spec.limit or rows)
    with (
        tqdm(total=total, unit="reply", file=sys.stderr) as bar,
        running_job(engine, job_id, task_id=None, heartbeat_seconds=30) as context,
    ):
        shown = context.progress

        def progress(done: int, total: int | None, message: str) -> None:
            bar.n = done
            bar.refresh()
            shown(done, total, message)

        context.progress = progress
        run_judge_check(engine, context)
    with Session(engine) as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.SUCCEEDED:
            print(f"job {job_id}: {job.status if job else 'gone'}: {job and job.error}")
            return 1
        print(format_summary(job.result))
        return 0
