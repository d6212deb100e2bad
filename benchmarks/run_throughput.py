"""Run throughput with K workers (issue 13): one generation run, K = 1, 2 and 4, side by side.

Each K gets a fresh app (`cai init`, the web app and K celery workers, as tests/live.py starts
them) and one generation run of `--prompts` prompts in chunks of `--chunk-size` against an
OpenAI-compatible server of the benchmark's own on loopback, which answers each
`/v1/chat/completions` after `--per-token-ms` x max_tokens: the run waits on the "model", as a
run on GPU servers does, so the two CPUs of the machine are not the limit.

For each K it reports prompts per second of the run (the job's start to its end), the ratio to
K = 1 (goal: >= 0.9 K), and where the workers' time went:
- bookkeeping: time inside chunks (claim to finish) outside the model calls: claiming,
  preparing, progress and lease updates, storing the results and finishing the chunk (goal:
  under 5% of the workers' time, K x the run's wall time), less:
- loading the model: each worker's first chunk loads the model before its first call (here the
  HTTP client, the tokenizer and the server's probe; on a GPU worker, the weights), once per
  worker process, and it is counted on its own;
- between chunks: the rest of the workers' time (waiting for the next message, the planner, and
  at the end the workers with no chunk left).
The model calls' times come from the server, which finds each request's prompt by its number,
and the chunk by the chunk's prompt ids. CPU share: the machine's busy CPU time over the run
(all processes) / (CPUs x wall): well under 100% means the run was latency-bound as meant.

    .venv/bin/python -m benchmarks.run_throughput --prompts 240 --workers 1 2 4 \\
        --broker-url redis://127.0.0.1:6379/13
"""

import argparse
import asyncio
import datetime
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from sqlalchemy import create_engine, text
from sqlmodel import Session, col, select

from app.db import engine_for
from app.models import Chunk, Job, JobStatus, Prompt
from tests.live import LiveApp, free_port, live_app

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "var" / "benchmarks" / "run_throughput.json"
MODEL = "bench-latency"
MARK = re.compile(r"Benchmark prompt (\d+):")
TICKS = os.sysconf("SC_CLK_TCK")
ENDED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.LOST}


# --- the model server --------------------------------------------------------------------------


class LatencyServer:
    """Answers chat completions with max_tokens words after a fixed delay per token, and keeps
    each request's prompt number, start and end (wall clock, seconds)."""

    def __init__(self, per_token_seconds: float) -> None:
        self.per_token_seconds = per_token_seconds
        self.calls: list[tuple[int, float, float]] = []
        self.lock = threading.Lock()
        self.app = FastAPI()
        self.app.get("/v1/models")(self.models)
        self.app.post("/v1/chat/completions")(self.chat)

    async def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model"}]}

    async def chat(self, request: Request) -> dict[str, Any]:
        started = time.time()
        body = await request.json()
        tokens = int(body.get("max_tokens") or 16)
        await asyncio.sleep(self.per_token_seconds * tokens)
        numbers = [int(n) for m in body["messages"] for n in MARK.findall(m["content"])]
        with self.lock:
            self.calls.append((numbers[-1] if numbers else -1, started, time.time()))
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:8],
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(["word"] * tokens)},
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": tokens},
        }


@contextmanager
def serving(server: LatencyServer) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(server.app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        if time.monotonic() > deadline:
            sys.exit("the model server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Result:
    workers: int
    prompts: int
    chunks: int
    seconds: float  # the job's start (the planner) to its end (the last chunk)
    prompts_per_second: float
    in_chunks_seconds: float  # summed over chunks: claim to finish
    model_seconds: float  # summed over chunks: the union of its model calls
    # (in chunks - model - loading) / (workers x seconds)
    bookkeeping_share: float
    # Each worker's first chunk loads the model (for this server: the client, the tokenizer and
    # the server's probe), once per worker process; that chunk's time before its first call.
    loading_share: float
    between_chunks_share: float  # 1 - in chunks / (workers x seconds)
    cpu_share: float  # the machine's busy CPU / (CPUs x wall)
    retried_chunks: int
    model_calls: int
    # The bookkeeping split, summed over chunks: claim to the first model call, the gaps between
    # calls (the steps), and the last call to the chunk's end (storing and finishing).
    head_seconds: float = 0.0
    gaps_seconds: float = 0.0
    tail_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def machine_busy_seconds() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


def wait_for(condition: Any, timeout: float, what: str, app: LiveApp) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not happen in {timeout:.0f} s:\n{app.log_tail()}")
        time.sleep(0.2)


def wait_for_job(app: LiveApp, job_id: int, timeout: float) -> Job:
    engine = engine_for(app.env["DATABASE_URL"])

    def ended() -> Job | None:
        with Session(engine) as session:
            job = session.get(Job, job_id)
            return job if job is not None and job.status in ENDED else None

    job: Job = wait_for(ended, timeout, f"job {job_id} ending", app)
    if job.status != JobStatus.SUCCEEDED:
        sys.exit(f"job {job_id} is {job.status}: {job.error}\n{app.log_tail()}")
    return job


def aware(moment: datetime.datetime) -> float:
    if moment.tzinfo is None:  # SQLite gives back naive UTC
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def measure(args: argparse.Namespace, workers: int, base_url: str, server: LatencyServer) -> Result:
    folder = Path(tempfile.mkdtemp(prefix=f"run-throughput-{workers}-"))
    database_url, drop = database_for(args, folder)
    broker_url = args.broker_url or f"sqla+sqlite:///{folder / 'broker.sqlite'}"
    if broker_url.startswith("redis"):
        import redis

        with redis.Redis.from_url(broker_url) as client:
            client.flushdb()
    try:
        with live_app(
            folder,
            database_url=database_url,
            broker_url=broker_url,
            workers=workers,
            JOB_HEARTBEAT_SECONDS="10",
        ) as app:
            return run_once(args, app, workers, base_url, server)
    finally:
        drop()


def database_for(args: argparse.Namespace, folder: Path) -> tuple[str, Any]:
    if not args.postgres_admin_url:
        return f"sqlite:///{folder / 'cai.sqlite'}", lambda: None
    name = f"cai_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        engine_for.cache_clear()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return args.postgres_admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def run_once(
    args: argparse.Namespace, app: LiveApp, workers: int, base_url: str, server: LatencyServer
) -> Result:
    client = app.signed_in_client()
    for number in range(1, workers + 1):
        log = app.logs / ("worker.log" if number == 1 else f"worker-{number}.log")
        wait_for(
            lambda log=log: "ready." in log.read_text(errors="replace"),
            300,
            f"{log.name} ready",
            app,
        )
    token = app.csrf(client)
    lines = "".join(
        f"Benchmark prompt {n}: how should I plan week {n} of my garden?\n"
        for n in range(args.prompts)
    )
    imported = client.post(
        "/prompt-sets/import",
        data={"name": "benchmark prompts", "format": "text", "csrf_token": token},
        files={"file": ("prompts.txt", lines.encode())},
    )
    assert imported.status_code == 303, imported.text
    import_job = wait_for_job(app, int(imported.headers["location"].rsplit("/", 1)[1]), 300)
    set_id = int(import_job.result["prompt_set_id"])
    registered = client.post(
        "/models",
        data={
            "name": "latency",
            "backend": "openai",
            "path": MODEL,
            "base_url": base_url,
            "api_key_env": "",
            "csrf_token": token,
        },
    )
    assert registered.status_code == 303, registered.text
    engine = engine_for(app.env["DATABASE_URL"])
    with engine.connect() as connection:
        version_id = connection.execute(
            text("SELECT id FROM constitution_version WHERE number = 1")
        ).scalar_one()
        model_id = connection.execute(
            text("SELECT id FROM language_model WHERE name = 'latency'")
        ).scalar_one()
    with server.lock:
        server.calls.clear()
    busy, wall = machine_busy_seconds(), time.time()
    launched = client.post(
        "/generate",
        data={
            "constitution_version_id": version_id,
            "prompt_set_id": set_id,
            "model_id": model_id,
            "rounds": "1",
            "max_prompts": "0",
            "sample_size": "0",
            "seed": "1",
            "max_new_tokens": str(args.max_new_tokens),
            "temperature": "1.0",
            "top_p": "1.0",
            "chunk_size": str(args.chunk_size),
            "reviews_needed": "1",
            "stop": "",
            "csrf_token": token,
        },
    )
    assert launched.status_code == 303, launched.text
    job = wait_for_job(app, int(launched.headers["location"].rsplit("/", 1)[1]), args.timeout)
    wall = time.time() - wall
    cpu_share = (machine_busy_seconds() - busy) / ((os.cpu_count() or 1) * wall)
    return tally(engine, job, workers, server, cpu_share)


def tally(engine: Any, job: Job, workers: int, server: LatencyServer, cpu: float) -> Result:
    assert job.started_at is not None and job.finished_at is not None
    seconds = aware(job.finished_at) - aware(job.started_at)
    with Session(engine) as session:
        chunks = session.exec(select(Chunk).where(Chunk.job_id == job.id)).all()
        prompts = session.exec(
            select(Prompt).where(col(Prompt.id).in_([i for c in chunks for i in c.item_ids]))
        ).all()
    number_of = {p.id: int(MARK.findall(p.text)[0]) for p in prompts}
    with server.lock:
        calls = list(server.calls)
    in_chunks = model = head = tail = 0.0
    heads: dict[str, tuple[float, float]] = {}  # worker: (its first chunk's start, head)
    for chunk in chunks:
        if chunk.started_at is None or chunk.finished_at is None:
            continue
        start, end = aware(chunk.started_at), aware(chunk.finished_at)
        numbers = {number_of[i] for i in chunk.item_ids}
        # Only the calls of the chunk's last (successful) attempt, inside its window.
        mine = [
            (max(s, start), min(e, end))
            for n, s, e in calls
            if n in numbers and e > start and s < end
        ]
        in_chunks += end - start
        model += union_seconds(mine)
        if mine:
            head += min(s for s, _ in mine) - start
            tail += end - max(e for _, e in mine)
            first = heads.get(chunk.worker or "")
            if first is None or start < first[0]:
                heads[chunk.worker or ""] = (start, min(s for s, _ in mine) - start)
    capacity = workers * seconds
    loading = sum(h for _, h in heads.values())
    stored = len(number_of)
    return Result(
        workers=workers,
        prompts=stored,
        chunks=len(chunks),
        seconds=round(seconds, 2),
        prompts_per_second=round(stored / seconds, 3),
        in_chunks_seconds=round(in_chunks, 2),
        model_seconds=round(model, 2),
        bookkeeping_share=round((in_chunks - model - loading) / capacity, 4),
        loading_share=round(loading / capacity, 4),
        between_chunks_share=round(1 - in_chunks / capacity, 4),
        cpu_share=round(cpu, 3),
        retried_chunks=sum(1 for c in chunks if c.attempts > 1),
        model_calls=len(calls),
        head_seconds=round(head, 2),
        gaps_seconds=round(in_chunks - model - head - tail, 2),
        tail_seconds=round(tail, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prompts", type=int, default=240)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--per-token-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--broker-url", default="", help="default: a SQLite broker in a fresh folder per K"
    )
    parser.add_argument(
        "--postgres-admin-url",
        default="",
        help="a fresh PostgreSQL database per K from this server (default: SQLite)",
    )
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    server = LatencyServer(args.per_token_ms / 1000)
    results: list[Result] = []
    with serving(server) as base_url:
        for workers in args.workers:
            print(f"K = {workers} ...", flush=True)
            results.append(measure(args, workers, base_url, server))
            print(json.dumps(asdict(results[-1])), flush=True)

    one = next((r for r in results if r.workers == 1), results[0])
    print()
    print(
        "| K | prompts | chunks | run s | prompts/s | / K=1 | goal 0.9 K | bookkeeping "
        "| loading the model | between chunks | CPU share | retried |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = r.prompts_per_second / one.prompts_per_second
        print(
            f"| {r.workers} | {r.prompts} | {r.chunks} | {r.seconds:.1f} "
            f"| {r.prompts_per_second:.2f} | {ratio:.2f} | {0.9 * r.workers:.1f} "
            f"| {100 * r.bookkeeping_share:.1f}% | {100 * r.loading_share:.1f}% "
            f"| {100 * r.between_chunks_share:.1f}% "
            f"| {100 * r.cpu_share:.0f}% | {r.retried_chunks} |"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "arguments": vars(args),
                "cpus": os.cpu_count(),
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    print(f"\nwritten to {OUT}")


if __name__ == "__main__":
    main()
