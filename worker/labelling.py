"""The labelling stage's parts: a feedback model judges a chunk of pairs under sampled principles.

Resumable: pairs already labelled by this job are skipped; one comparison per job and pair.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.models import Comparison, LanguageModel, Prompt, ReplyPair
from app.prompt_sets import prompt_messages
from app.recipe.documents import ConstitutionDoc
from app.specs.labelling import LabelSpec
from worker.constitution_cache import version_document
from worker.pipeline.ai_feedback import Comparison as Judgement
from worker.pipeline.ai_feedback import LabelConfig, PairInput


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


@dataclass
class LabelInputs:
    version_id: int
    model_id: int
    constitution: ConstitutionDoc
    pairs: list[PairInput]
    config: LabelConfig


def load_pairs(
    session: Session, pair_job_id: int, pair_ids: Sequence[int] | None = None
) -> list[PairInput]:
    """The pair run's pairs worth judging (all, or those of `pair_ids`), by id."""
    statement = (
        select(ReplyPair, Prompt)
        .join(Prompt, col(Prompt.id) == ReplyPair.prompt_id)
        .where(ReplyPair.job_id == pair_job_id)
        .order_by(col(ReplyPair.id))
    )
    if pair_ids is not None:
        statement = statement.where(col(ReplyPair.id).in_(pair_ids))
    rows = session.exec(statement).all()
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


def load_inputs(session: Session, spec: LabelSpec, pair_ids: Sequence[int]) -> LabelInputs:
    version = version_document(session, spec.constitution_version_id)
    if session.get(LanguageModel, spec.model_id) is None:
        raise LookupError(f"model {spec.model_id} does not exist")
    return LabelInputs(
        version_id=version.version_id,
        model_id=spec.model_id,
        constitution=version.document,
        pairs=load_pairs(session, spec.pair_job_id, pair_ids),
        config=label_config(spec),
    )


def store_comparisons(
    session: Session,
    *,
    job_id: int,
    version_id: int,
    model_id: int,
    judgements: list[Judgement],
) -> int:
    """Adds a chunk's comparisons to the session (the caller commits); stored pairs are skipped."""
    stored = set(
        session.exec(
            select(Comparison.pair_id).where(
                Comparison.job_id == job_id,
                col(Comparison.pair_id).in_([j.pair_id for j in judgements]),
            )
        )
    )
    judgements = [j for j in judgements if j.pair_id not in stored]
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
    return len(judgements)
