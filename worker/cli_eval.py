"""`cai eval`: an evaluation run in this process, into the database, with a progress bar; the
same spec, checks and chunked stage as a run launched from the browser."""

import argparse
import sys

from sqlmodel import Session
from tqdm import tqdm

from app.evaluations import KIND, evaluation_errors
from app.models import Job, JobStatus, LanguageModel
from app.sampling import PRESETS, preset_values
from app.specs import SpecError
from app.specs.evaluation import EvaluationSpec
from worker.progress import StepProgress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-ids", type=int, nargs="+", required=True, help="two or more")
    parser.add_argument("--suite-ids", type=int, nargs="+", required=True, help="prompt set ids")
    parser.add_argument("--judge-id", type=int, required=True, help="the judge model's id")
    parser.add_argument("--version-id", type=int, required=True, help="a published version")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--max-prompts", type=int, default=0, help="per suite; 0: all")
    # Unset: the first model's defaults; the same settings go to every model.
    parser.add_argument("--preset", choices=sorted(PRESETS), default="model")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--repetition-penalty", type=float)
    parser.add_argument("--bootstrap-samples", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=8)


def build_spec(session: Session, args: argparse.Namespace) -> EvaluationSpec:
    first = session.get(LanguageModel, args.model_ids[0])
    sampling = preset_values(
        args.preset, first.backend if first else "", first.path if first else ""
    ).values()
    for name in sampling:
        given = getattr(args, name)
        if given is not None:
            sampling[name] = given
    return EvaluationSpec.from_parameters(
        {
            "model_ids": args.model_ids,
            "suite_ids": args.suite_ids,
            "judge_model_id": args.judge_id,
            "constitution_version_id": args.version_id,
            "seed": args.seed,
            "max_new_tokens": args.max_new_tokens,
            "max_prompts": args.max_prompts,
            "bootstrap_samples": args.bootstrap_samples,
            "chunk_size": args.chunk_size,
            **sampling,
        }
    )


def print_result(job: Job) -> None:
    names = job.result.get("models", {})
    for group in job.result.get("ratings", []):
        where = f"suite {group['suite_id']}" if group.get("suite_id") else "all suites"
        print(f"{group['axis']} · {where}:")
        if "error" in group:
            print(f"  not rated: {group['error']}")
            continue
        for row in group["table"]["ratings"]:
            name = names.get(str(row["model"]), row["model"])
            print(f"  {name:30} {row['rating']:7.0f}  [{row['low']:.0f}, {row['high']:.0f}]")
    for entry in job.result.get("rates", []):
        if entry["suite_id"] is None and entry["value"] is not None:
            name = names.get(str(entry["model"]), entry["model"])
            print(
                f"{entry['kind']:13} {name:30} {100 * entry['value']:5.1f}%  "
                f"[{100 * entry['low']:.1f}, {100 * entry['high']:.1f}]  n={entry['trials']}"
            )


def run(args: argparse.Namespace) -> int:
    from app.db import get_engine
    from app.job_records import create_job
    from worker.chunk_runner import run_in_process

    engine = get_engine()
    with Session(engine) as session:
        try:
            spec = build_spec(session, args)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            return 2
        errors = evaluation_errors(session=session, spec=spec)
        if errors:
            for name, error in errors.items():
                print(f"{name}: {error}", file=sys.stderr)
            return 2
        job_id = create_job(
            session=session, kind=KIND, parameters=spec.to_parameters(), user=None
        ).id
    print(f"job {job_id}: an evaluation into the database", flush=True)
    with tqdm(total=0, unit="prompt", file=sys.stderr, dynamic_ncols=True) as bar:

        def on_step(step: StepProgress) -> None:
            bar.total = bar.total or step.job_remaining
            bar.n = round(bar.total - step.job_remaining + step.items_done, 2)
            bar.set_postfix_str(step.message, refresh=True)

        run_in_process(engine, job_id or 0, on_step=on_step)
        bar.n = bar.total
        bar.refresh()
    with Session(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            return 1
        print(f"job {job_id}: {job.status}: {job.message}", flush=True)
        if job.status == JobStatus.SUCCEEDED:
            print_result(job)
        return 0 if job.status == JobStatus.SUCCEEDED else 1
