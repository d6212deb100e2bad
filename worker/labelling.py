"""The labelling job: a feedback model judges a pair run's reply pairs under sampled principles.

Resumable: pairs already labelled by this job are skipped; one comparison per job and pair.
"""

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.constitutions import to_document
from app.models import Comparison, ConstitutionVersion, LanguageModel, Prompt, ReplyPair
from app.prompt_sets import prompt_messages
from app.specs.labelling import LabelSpec
from worker.backends.base import Backend
from worker.backends.loading import load_backend
from worker.lifecycle import JobContext
from worker.pipeline.ai_feedback import Comparison as Judgement
from worker.pipeline.ai_feedback import LabelConfig, PairInput, label_pairs


def label_config(spec: LabelSpec) -> LabelConfig:
    """The engine's config: the spec's fields by the same names."""
    return LabelConfig(
        order_average=spec.order_average,
        ensemble=spec.ensemble,
        chain_of_thought=spec.chain_of_thought,
        clamp_low=spec.clamp_low,
        clamp_high=spec.clamp_high,
        few_shot=spec.few_shot,
        seed=spec.seed,
        cot_max_new_tokens=spec.cot_max_new_tokens,
    )


def load_pairs(session: Session, pair_job_id: int) -> list[PairInput]:
    rows = session.exec(
        select(ReplyPair, Prompt)
        .join(Prompt, col(Prompt.id) == ReplyPair.prompt_id)
        .where(ReplyPair.job_id == pair_job_id)
        .order_by(col(ReplyPair.id))
    ).all()
    return [
        PairInput(
            pair_id=pair.id or 0,
            conversation=prompt_messages(prompt.text, prompt.context),
            reply_a=pair.reply_a,
            reply_b=pair.reply_b,
        )
        for pair, prompt in rows
        # A pair whose replies are the same or empty has nothing to prefer.
        if not {"identical", "empty_output"} & set(pair.flags)
    ]


def store_comparisons(
    session: Session,
    *,
    job_id: int,
    version_id: int,
    model_id: int,
    judgements: list[Judgement],
) -> int:
    session.add_all(
        Comparison(
            job_id=job_id,
            pair_id=j.pair_id,
            constitution_version_id=version_id,
            model_id=model_id,
            principle_keys=j.principle_keys,
            prob_a=j.prob_a,
            prob_b=j.prob_b,
            details=j.per_principle,
            reasoning=j.reasoning,
            label=j.label,
            flags=j.flags,
        )
        for j in judgements
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return 0
    return len(judgements)


def run_labelling(engine: Engine, context: JobContext, backend: Backend | None = None) -> None:
    spec = LabelSpec.from_parameters(context.parameters)
    chunk_size = spec.chunk_size
    with Session(engine) as session:
        version = session.get(ConstitutionVersion, spec.constitution_version_id)
        if version is None:
            raise LookupError(f"constitution version {spec.constitution_version_id} is gone")
        constitution = to_document(session=session, version=version)
        pairs = load_pairs(session, spec.pair_job_id)
        done_ids = set(
            session.exec(select(Comparison.pair_id).where(Comparison.job_id == context.job_id))
        )
        model = session.get(LanguageModel, spec.model_id)
        if model is None:
            raise LookupError(f"model {spec.model_id} does not exist")
    if not pairs:
        raise ValueError(f"pair run {spec.pair_job_id} has no pairs with two distinct replies")
    total = len(pairs)
    todo = [p for p in pairs if p.pair_id not in done_ids]
    done = total - len(todo)
    context.progress(done, total, f"loading {model.name}")
    config = label_config(spec)
    own_backend = backend is None
    backend = backend or load_backend(model)
    skipped = 0
    try:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            judgements = label_pairs(chunk, constitution, backend, config)
            skipped += sum(1 for j in judgements if j.label == "skipped")
            with Session(engine) as session:
                store_comparisons(
                    session,
                    job_id=context.job_id,
                    version_id=version.id or 0,
                    model_id=model.id or 0,
                    judgements=judgements,
                )
            done += len(chunk)
            context.progress(
                done,
                total,
                f"{done} of {total} pairs labelled"
                + (f"; {skipped} skipped (too long for the model)" if skipped else ""),
            )
    finally:
        if own_backend:
            backend.close()
    context.result.update(comparisons=done, skipped=skipped)
