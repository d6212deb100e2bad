"""Seeds a database with one finished generation run of many traces, fast, for benchmarks.

Runs the migrations, then inserts directly (SQLAlchemy Core, batches of 5,000 rows, one
transaction per batch): users, the default constitution published as v1, a prompt set, a model,
a succeeded generation job, its traces with two steps each, and reviews for about 30% of them.

    .venv/bin/python -m benchmarks.seed_traces sqlite:///var/bench/seed.sqlite 100000
"""

import argparse
import hashlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from app.constitutions import create_constitution, default_document
from app.db import engine_for
from app.migrate import upgrade_to_head
from app.models import (
    Job,
    JobStatus,
    LanguageModel,
    Principle,
    Prompt,
    PromptSet,
    Review,
    Role,
    Trace,
    TraceStep,
    User,
)
from app.security import hash_password
from app.timeutil import utcnow

BATCH = 5_000
REVIEWED_SHARE = 0.3
PASSWORD = "benchmark password"
VERDICTS = {"approved": "approve", "rejected": "reject"}
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "shi", "vo", "pe", "da", "fi", "gu", "zo", "an")


@dataclass
class Seeded:
    job_id: int
    first_trace_id: int
    last_trace_id: int
    reviewers: list[str] = field(default_factory=list)
    password: str = PASSWORD
    seconds: float = 0.0


class Words:
    """Deterministic pseudo-random prose from a fixed vocabulary of made-up words."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.vocabulary = sorted(
            {"".join(self.rng.choices(SYLLABLES, k=self.rng.randint(1, 4))) for _ in range(4000)}
        )

    def sentence(self) -> str:
        words = self.rng.choices(self.vocabulary, k=self.rng.randint(5, 14))
        return " ".join(words).capitalize() + self.rng.choice(".....?!")

    def text(self, low: int, high: int) -> str:
        target, parts, length = self.rng.randint(low, high), [], 0
        while length < target:
            parts.append(self.sentence())
            length += len(parts[-1]) + 1
        return " ".join(parts)

    def revise(self, text: str) -> str:
        """A revision: most sentences kept, about a third rewritten, as the recipe's look."""
        parts = text.split(". ")
        return ". ".join(p if self.rng.random() > 0.35 else self.sentence()[:-1] for p in parts)


def _insert(engine: Engine, table: Any, rows: Iterator[dict[str, Any]]) -> None:
    while batch := list(islice(rows, BATCH)):
        with engine.begin() as connection:  # one transaction per batch
            connection.execute(insert(table), batch)


def _row(instance: SQLModel) -> dict[str, Any]:
    """A row's columns with the model's defaults, less the id: per-row values go over it."""
    return instance.model_dump(exclude={"id"})


def _setup(session: Session, n_traces: int, rounds: int, reviewers: int) -> dict[str, Any]:
    password_hash = hash_password(PASSWORD)  # one hash: argon2 is slow on purpose
    users = [User(username="bench-admin", role=Role.ADMIN, password_hash=password_hash)]
    users += [User(username="seed-reviewer", role=Role.REVIEWER, password_hash=password_hash)]
    users += [
        User(username=f"reviewer-{i}", role=Role.REVIEWER, password_hash=password_hash)
        for i in range(reviewers)
    ]
    session.add_all(users)
    session.flush()
    _, version = create_constitution(
        session=session, doc=default_document(), user=users[0], publish=True
    )
    principles = (
        session.execute(select(Principle).where(col(Principle.version_id) == version.id))
        .scalars()
        .all()
    )
    prompt_set = PromptSet(name="benchmark prompts", source="benchmark", prompt_count=n_traces)
    model = LanguageModel(name="benchmark-model", backend="transformers", path="bench/model")
    session.add_all([prompt_set, model])
    session.flush()
    parameters = {"rounds": rounds, "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 256,
                  "seed": 1, "constitution_version_id": version.id,
                  "prompt_set_id": prompt_set.id, "model_id": model.id}  # fmt: skip
    now = utcnow()
    job = Job(kind="generate", queue="gpu", status=JobStatus.SUCCEEDED, parameters=parameters,
              reviews_needed=1, progress_done=n_traces, progress_total=n_traces,
              created_by_id=users[0].id, started_at=now, finished_at=now)  # fmt: skip
    session.add(job)
    session.commit()
    assert job.id is not None and version.id is not None and model.id is not None
    steps = [
        _row(TraceStep(trace_id=0, round=0, principle_id=p.id, principle_key=p.key,
                       critique_request=p.critique_request, revision_request=p.revision_request,
                       critique="", revision="", critique_tokens=60, revision_tokens=150,
                       critique_seconds=0.8, revision_seconds=1.6))
        for p in principles
    ]  # fmt: skip
    return {
        "job_id": job.id,
        "reviewers": [u.username for u in users[2:]],
        "steps": steps,
        "prompt": _row(Prompt(prompt_set_id=prompt_set.id or 0, position=0, text="",
                              content_hash="")),
        "trace": _row(Trace(job_id=job.id, prompt_id=0, constitution_version_id=version.id,
                            model_id=model.id, initial_reply="", final_reply="",
                            initial_seconds=1.5)),
        "review": _row(Review(trace_id=0, reviewer_id=users[1].id or 0, verdict="")),
    }  # fmt: skip


def seed(database_url: str, n_traces: int, rounds: int = 2, reviewers: int = 10) -> Seeded:
    started = time.perf_counter()
    upgrade_to_head(database_url)
    engine = engine_for(database_url)
    with Session(engine) as session:
        ids = _setup(session, n_traces, rounds, reviewers)
    words = Words(seed=5)

    def prompts() -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        while len(seen) < n_traces:
            text = words.text(80, 240)
            if text not in seen:
                seen.add(text)
                digest = hashlib.sha256(text.encode()).hexdigest()
                yield {**ids["prompt"], "position": len(seen), "text": text, "content_hash": digest}

    _insert(engine, Prompt, prompts())
    with engine.connect() as connection:
        prompt_set_id = ids["prompt"]["prompt_set_id"]
        result = connection.execute(
            select(col(Prompt.id)).where(col(Prompt.prompt_set_id) == prompt_set_id)
        )
        prompt_ids: list[int] = sorted(result.scalars())  # type: ignore[arg-type]
    finals: dict[int, str] = {}

    def traces() -> Iterator[dict[str, Any]]:
        for prompt_id in prompt_ids:
            initial = words.text(400, 800)
            finals[prompt_id] = final = words.revise(words.revise(initial))
            status = "pending"
            if words.rng.random() < REVIEWED_SHARE:
                status = words.rng.choice(["approved", "approved", "rejected"])
            yield {**ids["trace"], "prompt_id": prompt_id, "initial_reply": initial,
                   "initial_tokens": len(initial) // 4, "final_reply": final,
                   "review_status": status, "review_count": int(status != "pending")}  # fmt: skip

    _insert(engine, Trace, traces())
    with engine.connect() as connection:
        trace_rows = connection.execute(
            select(col(Trace.id), col(Trace.prompt_id), col(Trace.review_status))
            .where(col(Trace.job_id) == ids["job_id"])
            .order_by(col(Trace.id))
        ).all()

    def steps() -> Iterator[dict[str, Any]]:
        for trace_id, prompt_id, _ in trace_rows:
            for number in range(1, rounds + 1):
                principle = words.rng.choice(ids["steps"])
                final = finals[prompt_id]
                revision = final if number == rounds else words.revise(final)
                yield {**principle, "trace_id": trace_id, "round": number,
                       "critique": words.text(150, 350), "revision": revision}  # fmt: skip

    _insert(engine, TraceStep, steps())
    reviews = (
        {**ids["review"], "trace_id": trace_id, "verdict": VERDICTS[status]}
        for trace_id, _, status in trace_rows
        if status != "pending"
    )
    _insert(engine, Review, reviews)
    engine.dispose()
    first, last = int(trace_rows[0][0] or 0), int(trace_rows[-1][0] or 0)
    return Seeded(ids["job_id"], first, last, ids["reviewers"],
                  seconds=time.perf_counter() - started)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database_url")
    parser.add_argument("n_traces", type=int)
    args = parser.parse_args()
    seeded = seed(args.database_url, args.n_traces)
    print(f"seeded {args.n_traces} traces in {seeded.seconds:.1f} s: {seeded}")


if __name__ == "__main__":
    main()
