"""Trace review latency under load (issue 5): the trace list, a trace page and a review submit.

For each backend and size: a fresh database seeded with one run of N traces
(benchmarks.seed_traces), the real app in one uvicorn process as `cai web` runs it, and
10 signed-in reviewers on loopback, each a thread with its own connection, sending requests
back to back. Per request kind: p50, p95 and requests per second. Goals: list and trace page
p95 under 150 ms, submit p95 under 50 ms, and the list page as fast at 100,000 traces as at 1,000.

    .venv/bin/python -m benchmarks.trace_review --sizes 1000,100000 --backends sqlite,postgres
"""

import argparse
import datetime
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from app.auth import expected_csrf_token
from app.cli import web_command
from benchmarks.seed_traces import Seeded, seed

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "var" / "bench"
OUT = REPO / "var" / "benchmarks" / "trace_review.json"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/"
GOALS_MS = {"list": 150.0, "page": 150.0, "review": 50.0}
Request = Callable[[httpx.Client, random.Random, int], httpx.Response]


@contextmanager
def database(backend: str, size: int) -> Iterator[str]:
    """A fresh, empty database for one case; removed afterwards."""
    if backend == "sqlite":
        path = BENCH / f"trace-review-{size}.sqlite"
        for stale in BENCH.glob(f"{path.name}*"):
            stale.unlink()
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in BENCH.glob(f"{path.name}*"):
                leftover.unlink()
        return
    name = f"cai_bench_trace_review_{size}"
    admin = POSTGRES.replace("+psycopg", "") + "postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield POSTGRES + name
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def server(database_url: str, label: str) -> Iterator[tuple[str, str]]:
    """The app in one uvicorn process, as in production; yields its URL and SECRET_KEY."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    data_dir = BENCH / f"data-{label}"
    shutil.rmtree(data_dir, ignore_errors=True)
    secret = secrets.token_urlsafe(48)
    env = {**os.environ, "ENVIRONMENT": "production", "SECRET_KEY": secret,
           "SESSION_COOKIE_SECURE": "false", "DATABASE_URL": database_url,
           "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    log = (BENCH / f"web-{label}.log").open("w")
    process = subprocess.Popen(
        web_command("127.0.0.1", port), env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start; see {log.name}")
            time.sleep(0.2)
        yield url, secret
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def sign_in(url: str, secret: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": expected_csrf_token(client.cookies, secret),
        },
    )
    if response.status_code != 303 or response.headers["location"] != "/":
        raise RuntimeError(f"{username} could not sign in: {response.status_code}")
    # The token is bound to the session the sign-in just started.
    client.headers["X-CSRF-Token"] = expected_csrf_token(client.cookies, secret) or ""
    return client


def kinds(seeded: Seeded, clients: int) -> dict[str, Request]:
    first, last = seeded.first_trace_id, seeded.last_trace_id

    def list_page(client: httpx.Client, rng: random.Random, _: int) -> httpx.Response:
        after = f"&after={rng.randint(first + 100, last + 1)}" if rng.random() < 0.5 else ""
        return client.get(f"/traces?job={seeded.job_id}{after}")

    def trace_page(client: httpx.Client, rng: random.Random, _: int) -> httpx.Response:
        return client.get(f"/traces/{rng.randint(first, last)}")

    def review(client: httpx.Client, rng: random.Random, index: int) -> httpx.Response:
        # Each client reviews its own share of the traces (id modulo the clients).
        trace_id = rng.randrange(first + index, last + 1, clients)
        verdict = rng.choice(["approve", "reject"])
        return client.post(f"/traces/{trace_id}/review", data={"verdict": verdict})

    return {"list": list_page, "page": trace_page, "review": review}


def expected(kind: str, response: httpx.Response) -> bool:
    if kind == "review":
        return response.status_code == 303 and response.headers["location"].startswith("/traces/")
    return response.status_code == 200 and "<h1>" in response.text


def load(clients: list[httpx.Client], kind: str, request: Request, total: int) -> dict[str, Any]:
    """`total` requests of one kind, shared by the clients, each sending them back to back."""
    latencies: list[float] = []
    failures: list[str] = []
    lock, barrier = threading.Lock(), threading.Barrier(len(clients))

    def work(index: int) -> None:
        rng, mine = random.Random(f"{kind}-{index}"), []
        barrier.wait()
        for _ in range(index, total, len(clients)):
            started = time.perf_counter()
            response = request(clients[index], rng, index)
            mine.append(time.perf_counter() - started)
            if not expected(kind, response):
                failures.append(f"{response.request.url} -> {response.status_code}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures or len(latencies) != total:
        raise RuntimeError(f"{kind}: {len(failures)} unexpected responses, e.g. {failures[:3]}")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"requests": total, "p50_ms": 1000 * cuts[49], "p95_ms": 1000 * cuts[94],
            "max_ms": 1000 * max(latencies), "per_second": total / wall}  # fmt: skip


def run_case(backend: str, size: int, n_clients: int, requests: int) -> dict[str, Any]:
    label = f"{backend}-{size}"
    with database(backend, size) as url:
        seeded = seed(url, size)
        print(f"{label}: seeded {size} traces in {seeded.seconds:.1f} s", flush=True)
        with server(url, label) as (base, secret):
            users = seeded.reviewers[:n_clients]
            clients = [sign_in(base, secret, name, seeded.password) for name in users]
            try:
                requests_of = kinds(seeded, n_clients)
                for kind, request in requests_of.items():  # warm-up: connections, caches
                    load(clients, kind, request, 3 * n_clients)
                results = {
                    kind: load(clients, kind, request, requests)
                    for kind, request in requests_of.items()
                }
            finally:
                for client in clients:
                    client.close()
    print(f"{label}: {json.dumps(results)}", flush=True)
    return {"backend": backend, "traces": size, "clients": n_clients,
            "seed_seconds": seeded.seconds, "results": results}  # fmt: skip


def table(cases: list[dict[str, Any]]) -> str:
    lines = ["| backend | traces | seed s | request | p50 ms | p95 ms | goal p95 | req/s |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    for case in cases:
        for kind, r in case["results"].items():
            lines.append(
                f"| {case['backend']} | {case['traces']:,} | {case['seed_seconds']:.1f} | {kind} "
                f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | < {GOALS_MS[kind]:.0f} "
                f"| {r['per_second']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    BENCH.mkdir(parents=True, exist_ok=True)
    cases = [
        run_case(backend, int(size), args.clients, args.requests)
        for backend in args.backends.split(",")
        for size in args.sizes.split(",")
    ]
    print(table(cases))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "cpus": os.cpu_count(), "args": vars(args) | {"out": str(args.out)},
              "cases": cases}  # fmt: skip
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
