"""`cai compare-runs`: constitution A/B on the command line. Two generation runs over the same
prompts; the judge compares B's final revisions with A's, and each run's revisions with their
initial replies (worker.pipeline.constitution_ab); printed as win rates with Wilson intervals."""

import argparse
import json
import sys
from typing import Any

from sqlmodel import Session

from app.constitutions import to_document
from app.models import ConstitutionVersion
from worker.cli_judge import find_model
from worker.constitution_ab_rows import ABRunsError, load_ab_items


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-a", type=int, required=True, help="generation job A (baseline)")
    parser.add_argument("--run-b", type=int, required=True, help="generation job B")
    parser.add_argument("--judge", required=True, help="the judge: a registered model's id or name")
    parser.add_argument(
        "--version-id", type=int, required=True, help="the judging constitution version"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="only the first N shared prompts")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def format_rows(title: str, rows: list[dict[str, Any]]) -> list[str]:
    lines = [title]
    for row in rows:
        value = "  n/a" if row["value"] is None else f"{100 * row['value']:5.1f}%"
        lines.append(
            f"  {row['group']:24} {value}  [{100 * row['low']:.1f}, {100 * row['high']:.1f}]  "
            f"{row['wins']} of {row['decided']} (ties {row['ties']}, skipped {row['skipped']})"
        )
    return lines


def format_report(report: dict[str, Any]) -> str:
    revisions = report["revision_over_initial"]
    return "\n".join(
        [
            f"{report['prompts']} prompts in common",
            *format_rows("B's final revision over A's, per judging principle:", report["b_over_a"]),
            *format_rows("A: revision over initial reply, per critique principle:", revisions["a"]),
            *format_rows("B: revision over initial reply, per critique principle:", revisions["b"]),
        ]
    )


def run(args: argparse.Namespace) -> int:
    from app.db import get_engine
    from worker.backends.loading import load_backend
    from worker.pipeline.constitution_ab import compare_runs

    with Session(get_engine()) as session:
        try:
            items = load_ab_items(session, args.run_a, args.run_b, limit=args.limit)
        except ABRunsError as exc:
            print(exc, file=sys.stderr)
            return 2
        judge = find_model(session, args.judge)
        if judge is None or judge.kind != "policy":
            print(f"--judge: no policy model '{args.judge}' is registered", file=sys.stderr)
            return 2
        version = session.get(ConstitutionVersion, args.version_id)
        if version is None:
            print(f"--version-id: there is no version {args.version_id}", file=sys.stderr)
            return 2
        constitution = to_document(session=session, version=version)
        session.expunge(judge)
    print(f"judging {len(items)} prompts with {judge.name}", file=sys.stderr, flush=True)
    backend = load_backend(judge)
    try:
        report = compare_runs(items, constitution, backend, seed=args.seed)
    finally:
        backend.close()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
