"""The evaluation stage's database side: one chunk's inputs (its prompts, the models, the
answers stored already under the run's settings, the principles per axis), storing its results,
and the run's result once every chunk is done.

Resumable and exactly once: answers are unique per (model, prompt, settings hash), judgements
per (run, prompt, model pair), refusal classes per (run, answer); a prompt counts as stored for
a run once its refusal classes are, and they are stored in the chunk's one transaction.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from app.evaluations import model_names, run_replies
from app.models import (
    EvalAnswer,
    EvalJudgement,
    EvalRefusal,
    Job,
    LanguageModel,
    Prompt,
    PromptSet,
)
from app.prompt_sets import prompt_messages
from app.recipe.documents import ConstitutionDoc
from app.recipe.eval_axes import AXIS_OF_PURPOSE, Axis, principles_for_axis
from app.recipe.eval_goodhart import reply_watch, watch_json
from app.recipe.eval_results import ClassedReply, JudgedPair, Suite, evaluation_result
from app.recipe.evaluation import RefusalClass
from app.specs.evaluation import EvaluationSpec
from worker.constitution_cache import version_document
from worker.pipeline.evaluation import Answer, EvalPrompt, PairJudgement
from worker.pipeline.refusal_judge import RefusalJudgement


@dataclass
class EvalInputs:
    spec: EvaluationSpec
    settings_hash: str
    prompts: list[EvalPrompt]
    models: list[LanguageModel]  # the run's models, in its order (detached rows)
    stored: dict[tuple[int, int], str]  # (model, prompt) -> an answer stored already
    constitutions: dict[Axis, ConstitutionDoc]


@dataclass
class EvalChunkResult:
    answers: list[Answer]  # the answers this chunk wrote (not the reused ones)
    judgements: list[PairJudgement]
    refusals: list[tuple[int, int, RefusalJudgement]]  # (model, prompt, judgement)


def axis_constitutions(doc: ConstitutionDoc) -> tuple[dict[Axis, ConstitutionDoc], list[str]]:
    """The version as one document per axis, holding only that axis's principles, and the axes
    that fell back to every principle (none was tagged for them)."""
    out: dict[Axis, ConstitutionDoc] = {}
    fallback: list[str] = []
    for axis in Axis:
        chosen = principles_for_axis(doc.principles, axis)
        if chosen.fallback:
            fallback.append(axis.value)
        out[axis] = ConstitutionDoc(
            name=doc.name, principles=chosen.principles, few_shots=doc.few_shots
        )
    return out, fallback


def stored_answers(
    session: Session, settings_hash: str, model_ids: Sequence[int], prompt_ids: Sequence[int]
) -> dict[tuple[int, int], EvalAnswer]:
    rows = session.exec(
        select(EvalAnswer).where(
            EvalAnswer.settings_hash == settings_hash,
            col(EvalAnswer.model_id).in_(list(model_ids)),
            col(EvalAnswer.prompt_id).in_(list(prompt_ids)),
        )
    ).all()
    return {(row.model_id, row.prompt_id): row for row in rows}


def load_inputs(session: Session, spec: EvaluationSpec, prompt_ids: Sequence[int]) -> EvalInputs:
    models = []
    for model_id in spec.model_ids:
        model = session.get(LanguageModel, model_id)
        if model is None:
            raise LookupError(f"model {model_id} does not exist")
        models.append(model)
    rows = session.exec(select(Prompt).where(col(Prompt.id).in_(list(prompt_ids)))).all()
    by_id = {row.id: row for row in rows}
    suites = {
        s.id: s
        for s in session.exec(select(PromptSet).where(col(PromptSet.id).in_(spec.suite_ids)))
    }
    prompts = []
    for prompt_id in prompt_ids:
        row = by_id.get(prompt_id)
        suite = suites.get(row.prompt_set_id) if row is not None else None
        if row is None or suite is None or suite.purpose is None:
            continue  # deleted since planning: nothing to evaluate
        prompts.append(
            EvalPrompt(
                prompt_id=prompt_id,
                suite_id=suite.id or 0,
                axis=AXIS_OF_PURPOSE[suite.purpose],
                messages=prompt_messages(row.text, row.context),
            )
        )
    settings_hash = spec.settings_hash()
    stored = stored_answers(session, settings_hash, spec.model_ids, prompt_ids)
    constitutions, _ = axis_constitutions(
        version_document(session, spec.constitution_version_id).document
    )
    for model in models:
        session.expunge(model)
    return EvalInputs(
        spec=spec,
        settings_hash=settings_hash,
        prompts=prompts,
        models=models,
        stored={key: row.text for key, row in stored.items()},
        constitutions=constitutions,
    )


def store_results(
    session: Session, job_id: int, inputs: EvalInputs, result: EvalChunkResult
) -> None:
    """Adds the chunk's rows to the session (the caller commits); what is stored is skipped.

    An answer another run stored meanwhile (same model, prompt and settings) stands: the unique
    key refuses ours, the chunk runner rolls back and calls this again, which then finds it.
    Known limit: this chunk's judgements of that prompt then point at the other run's answer
    while they judged ours (two runs with the same settings at the same moment; sampled answers
    differ, greedy ones do not)."""
    prompt_ids = [p.prompt_id for p in inputs.prompts]
    model_ids = [m.id or 0 for m in inputs.models]
    present = stored_answers(session, inputs.settings_hash, model_ids, prompt_ids)
    settings = inputs.spec.answer_settings()
    for answer in result.answers:
        if (answer.model_id, answer.prompt_id) in present:
            continue
        row = EvalAnswer(
            model_id=answer.model_id,
            prompt_id=answer.prompt_id,
            settings_hash=inputs.settings_hash,
            settings=settings,
            text=answer.text,
            completion_tokens=answer.completion_tokens,
            seconds=answer.seconds,
            flags=list(answer.flags),
            job_id=job_id,
        )
        session.add(row)
        present[(answer.model_id, answer.prompt_id)] = row
    session.flush()  # the new answers' ids, for the rows that point at them
    judged = set(
        session.exec(
            select(
                EvalJudgement.prompt_id, EvalJudgement.model_a_id, EvalJudgement.model_b_id
            ).where(EvalJudgement.job_id == job_id, col(EvalJudgement.prompt_id).in_(prompt_ids))
        ).all()
    )
    for j in result.judgements:
        if (j.prompt_id, j.model_a, j.model_b) in judged:
            continue
        session.add(
            EvalJudgement(
                job_id=job_id,
                prompt_id=j.prompt_id,
                suite_id=j.suite_id,
                model_a_id=j.model_a,
                model_b_id=j.model_b,
                answer_a_id=present[(j.model_a, j.prompt_id)].id or 0,
                answer_b_id=present[(j.model_b, j.prompt_id)].id or 0,
                axis=j.axis.value,
                principle_key=j.principle_key,
                prob_a=j.prob_a,
                details=j.details,
                flags=j.flags,
            )
        )
    answer_ids = [row.id or 0 for row in present.values()]
    classed = set(
        session.exec(
            select(EvalRefusal.answer_id).where(
                EvalRefusal.job_id == job_id, col(EvalRefusal.answer_id).in_(answer_ids)
            )
        ).all()
    )
    suite_of = {p.prompt_id: p.suite_id for p in inputs.prompts}
    for model_id, prompt_id, r in result.refusals:
        stored = present[(model_id, prompt_id)]
        if stored.id in classed:
            continue
        session.add(
            EvalRefusal(
                job_id=job_id,
                answer_id=stored.id or 0,
                prompt_id=prompt_id,
                suite_id=suite_of[prompt_id],
                model_id=model_id,
                refusal_class=r.refusal_class.value if r.refusal_class else None,
                prob_complies=r.probabilities.get(RefusalClass.COMPLIES.value),
                prob_refuses=r.probabilities.get(RefusalClass.REFUSES.value),
                prob_partly=r.probabilities.get(RefusalClass.PARTLY_REFUSES.value),
                prob_no_reason=r.prob_no_reason,
                evasive=r.evasive,
                logprobs=r.logprobs,
                flags=r.flags,
            )
        )


def stored_prompts(session: Session, job_id: int) -> set[int]:
    return set(session.exec(select(EvalRefusal.prompt_id).where(EvalRefusal.job_id == job_id)))


def run_result(session: Session, job_id: int) -> dict[str, Any]:
    """Ratings, win rates and refusal rates from every stored row of the run."""
    job = session.get(Job, job_id)
    if job is None:
        raise LookupError(f"job {job_id} is gone")
    spec = EvaluationSpec.from_parameters(job.parameters)
    suites = [
        Suite(s.id or 0, s.name, s.purpose)
        for s in (session.get(PromptSet, i) for i in spec.suite_ids)
        if s is not None and s.purpose is not None
    ]
    pairs = [
        JudgedPair(j.prompt_id, j.suite_id, Axis(j.axis), j.model_a_id, j.model_b_id, j.prob_a)
        for j in session.exec(select(EvalJudgement).where(EvalJudgement.job_id == job_id))
    ]
    replies = [
        ClassedReply(
            r.prompt_id,
            r.suite_id,
            r.model_id,
            RefusalClass(r.refusal_class) if r.refusal_class else None,
            r.evasive,
        )
        for r in session.exec(select(EvalRefusal).where(EvalRefusal.job_id == job_id))
    ]
    _, fallback = axis_constitutions(
        version_document(session, spec.constitution_version_id).document
    )
    result = evaluation_result(
        pairs=pairs,
        replies=replies,
        suites=suites,
        models=model_names(session, spec.model_ids),
        samples=spec.bootstrap_samples,
        seed=spec.seed,
        fallback_axes=fallback,
    )
    # Measured once here, from the replies' text, so the results page need not read them.
    watch = reply_watch(
        run_replies(session=session, job_id=job_id),
        list(spec.model_ids),
        [s.id for s in suites],
    )
    return {**result, "goodhart": watch_json(watch)}
