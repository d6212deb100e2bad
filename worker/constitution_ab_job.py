"""The constitution A/B job: `cai compare-runs` as a job of its own, launched from the browser
(app/routes/constitution_ab.py). It judges a step of prompts at a time
(worker.pipeline.constitution_ab), storing each step's comparisons (ABComparison) and reporting
progress, so a cancel stops it at the next step and a resume judges only the prompts not yet
judged; its result is the report made from every stored comparison, with the runs' and the
judge's names."""

import time
from collections.abc import Callable, Sequence

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.constitutions import to_document
from app.models import ABComparison, ConstitutionVersion, LanguageModel
from app.specs.constitution_ab import ConstitutionABSpec
from worker.backends.base import Backend
from worker.backends.loading import load_backend
from worker.constitution_ab_rows import load_ab_items
from worker.lifecycle import JobContext
from worker.pipeline.constitution_ab import KINDS, ABItem, ABJudgement, ab_report, compare_runs

# Prompts per judge call: small enough that progress moves and a cancel lands soon, large
# enough that the backend batches (three comparisons, six questions, per prompt).
STEP = 8


def stored_judgements(session: Session, job_id: int) -> list[ABJudgement]:
    rows = session.exec(select(ABComparison).where(ABComparison.job_id == job_id)).all()
    return [
        ABJudgement(
            r.prompt_id,
            r.kind,
            tuple(r.principle_keys),
            tuple(r.groups),
            r.prob_second,
            tuple(r.flags),
        )
        for r in rows
    ]


def comparison_rows(
    job_id: int, items: Sequence[ABItem], judged: Sequence[ABJudgement]
) -> list[ABComparison]:
    """The rows of one step's comparisons: which traces' replies each one compared."""
    by_prompt = {i.prompt_id: i for i in items}
    rows = []
    for j in judged:
        item = by_prompt[j.prompt_id]
        first, second = (item.a, item.b) if j.kind == "ab" else (getattr(item, j.kind),) * 2
        rows.append(
            ABComparison(
                job_id=job_id,
                prompt_id=j.prompt_id,
                kind=j.kind,
                first_trace_id=first.trace_id or 0,
                second_trace_id=second.trace_id or 0,
                principle_keys=list(j.principle_keys),
                groups=list(j.groups),
                prob_second=j.prob_second,
                flags=list(j.flags),
            )
        )
    return rows


def run_constitution_ab(
    engine: Engine,
    context: JobContext,
    *,
    open_backend: Callable[[LanguageModel], Backend] | None = None,
    step: int = STEP,
) -> None:
    spec = ConstitutionABSpec.from_parameters(context.parameters)
    with Session(engine) as session:
        # An ABRunsError (no shared prompt, not a generation run) fails the job with its words.
        items = load_ab_items(session, spec.run_a_id, spec.run_b_id, limit=spec.limit)
        judge = session.get(LanguageModel, spec.judge_model_id)
        if judge is None:
            raise LookupError(f"model {spec.judge_model_id} does not exist")
        version = session.get(ConstitutionVersion, spec.constitution_version_id)
        if version is None:
            raise LookupError(f"constitution version {spec.constitution_version_id} does not exist")
        constitution = to_document(session=session, version=version)
        session.expunge(judge)
        # A resumed job keeps what it judged: only prompts missing a comparison are judged.
        wanted = {i.prompt_id for i in items}
        counts: dict[int, int] = {}
        stored = stored_judgements(session, context.job_id)
        for j in stored:
            counts[j.prompt_id] = counts.get(j.prompt_id, 0) + 1
        complete = {p for p in wanted if counts.get(p) == len(KINDS)}
    judged_so_far = [j for j in stored if j.prompt_id in complete]
    todo = [i for i in items if i.prompt_id not in complete]
    names = {"judge": judge.name, "version": version.label}
    total = len(items)
    done = len(complete)
    context.progress(done, total, f"loading {judge.name}")
    started = time.monotonic()
    if todo:
        backend = (open_backend or load_backend)(judge)

        def store(judged: Sequence[ABJudgement], items_done: int) -> None:
            with Session(engine) as session:
                # Steps commit whole, so no prompt is half stored; were one, its rows go first.
                prompts = list({j.prompt_id for j in judged})
                session.execute(
                    delete(ABComparison).where(
                        col(ABComparison.job_id) == context.job_id,
                        col(ABComparison.prompt_id).in_(prompts),
                    )
                )
                for row in comparison_rows(context.job_id, todo, judged):
                    session.add(row)
                session.commit()
            # The rates so far: a job cancelled now shows what it judged (its page, the result).
            judged_so_far.extend(judged)
            context.result.update(names, **ab_report(judged_so_far))
            context.progress(
                done + items_done, total, f"{done + items_done} of {total} prompts judged"
            )

        context.progress(done, total, f"judging {len(todo)} prompts with {judge.name}")
        try:
            compare_runs(todo, constitution, backend, seed=spec.seed, step=step, on_step=store)
        finally:
            backend.close()
    with Session(engine) as session:
        report = ab_report(
            [j for j in stored_judgements(session, context.job_id) if j.prompt_id in wanted]
        )
    context.progress(total, total, f"{total} prompts judged")
    context.result.update(names, seconds=round(time.monotonic() - started, 3), **report)
