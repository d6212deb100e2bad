"""The RL job: resolves the policy, the preference model and the prompt sets by id, runs GRPO
or RLOO (worker/training/rl.py), and registers the result as a policy with its lineage.

As for training (worker/training_job.py, whose folder, metric writer and checkpoint rules it
shares), a later attempt continues from the latest checkpoint in the job's folder.
"""

import threading
from dataclasses import asdict
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import Dataset, Job, LanguageModel, Prompt, PromptSet
from app.recipe.goodhart import GoodhartPoint
from app.recipe.prompt_mix import mix_prompts
from app.settings import get_settings
from app.specs.rl import RLJobSpec
from worker.backends.local_models import resolve_model_folder
from worker.lifecycle import JobCancelled, JobContext
from worker.model_registry import TrainedModel, register_trained_model
from worker.training.checkpoints import remove_checkpoints, resume_point
from worker.training.rl import load_preference_model, train_rl
from worker.training.rl_reward import Sample
from worker.training.run import BaseModelError, training_device
from worker.training_job import MetricWriter, trained_model_folder

# The sample tables a job keeps (the latest), rows per table and characters per text: the
# job row stays small enough to read on every poll.
MAX_TABLES = 12
MAX_ROWS = 16
MAX_CHARS = 2000
# A run never needs more prompts than this, however many steps it has.
MAX_PROMPTS = 200_000

Messages = list[dict[str, str]]


def _messages(prompt: Prompt) -> Messages:
    return [*(prompt.context or []), {"role": "user", "content": prompt.text}]


def _check_models(
    policy: LanguageModel | None, reward: LanguageModel | None, spec: RLJobSpec
) -> None:
    if policy is None or policy.kind != "policy" or policy.backend != "transformers":
        raise BaseModelError(f"model {spec.policy_model_id} is not a local policy model")
    if reward is None or reward.kind != "reward" or reward.backend != "transformers":
        raise BaseModelError(f"model {spec.reward_model_id} is not a local reward model")


def lineage(
    session: Session, spec: RLJobSpec, reward: LanguageModel, job_id: int
) -> dict[str, Any]:
    """What the RL policy comes from, beyond the model row's columns: the preference model, the
    dataset it trained on and the labelling runs behind that dataset, and the prompt mix."""
    dataset = session.get(Dataset, reward.dataset_id) if reward.dataset_id else None
    return {
        "policy_model_id": spec.policy_model_id,
        "reward_model_id": spec.reward_model_id,
        "reward_dataset_id": dataset.id if dataset else None,
        "reward_dataset_kind": dataset.kind if dataset else None,
        # An AI-feedback dataset's source jobs are its labelling runs.
        "reward_source_job_ids": list(dataset.source_job_ids) if dataset else [],
        "reward_training_job_id": reward.job_id,
        "prompt_mix": [share.model_dump() for share in spec.prompt_mix],
        "job_id": job_id,
    }


class SampleTables:
    """Keeps the latest sample tables on the job row as they come, so the page shows them while
    the run goes on (and context.result, which the job's end writes, holds the same)."""

    def __init__(self, engine: Engine, context: JobContext, tables: list[dict[str, Any]]) -> None:
        self.engine, self.context, self.tables = engine, context, tables
        context.result["samples"] = tables

    def __call__(self, step: int, samples: list[Sample], point: GoodhartPoint) -> None:
        rows = [
            {**asdict(s), "prompt": s.prompt[:MAX_CHARS], "completion": s.completion[:MAX_CHARS]}
            for s in samples[:MAX_ROWS]
        ]
        table = {
            "step": step,
            "repeated_share": point.share,
            "mean_words": point.mean_words,
            "reward_mean": sum(s.reward for s in samples) / len(samples),
            "top_ngrams": list(point.top),
            "rows": rows,
        }
        kept = [t for t in self.tables if t["step"] != step][-(MAX_TABLES - 1) :]
        self.tables[:] = [*kept, table]
        with Session(self.engine) as session:
            job = session.get(Job, self.context.job_id)
            if job is not None:
                job.result = {**job.result, "samples": list(self.tables)}
                session.add(job)
                session.commit()


def run_rl(engine: Engine, context: JobContext) -> None:
    spec = RLJobSpec.from_parameters(context.parameters)
    with Session(engine) as session:
        policy = session.get(LanguageModel, spec.policy_model_id)
        reward = session.get(LanguageModel, spec.reward_model_id)
        _check_models(policy, reward, spec)
        assert policy is not None and reward is not None
        job = session.get(Job, context.job_id)
        owner_id = job.created_by_id if job is not None else None
        earlier_tables = list((job.result or {}).get("samples", [])) if job is not None else []
        sets: dict[int, list[Messages]] = {}
        for share in spec.prompt_mix:
            if session.get(PromptSet, share.prompt_set_id) is None:
                raise LookupError(f"prompt set {share.prompt_set_id} does not exist")
            rows = session.exec(
                select(Prompt)
                .where(Prompt.prompt_set_id == share.prompt_set_id)
                .order_by(col(Prompt.position))
            ).all()
            sets[share.prompt_set_id] = [_messages(p) for p in rows]
        if not any(sets.values()):
            raise LookupError("the chosen prompt sets hold no prompts")
        policy_name, policy_path, policy_id = policy.name, policy.path, policy.id
        reward_name, reward_path = reward.name, reward.path
        origin = lineage(session, spec, reward, context.job_id)
        run = {
            "job_id": context.job_id,
            "created_at": job.created_at.isoformat() if job is not None else None,
            "spec": spec.to_parameters(),
        }
    output_dir = trained_model_folder(context.job_id)
    checkpoint = resume_point(output_dir, run)
    resumed_from = checkpoint.step if checkpoint is not None else 0
    metrics = MetricWriter(engine, context.job_id)
    metrics.forget_after(resumed_from)
    tables = SampleTables(
        engine, context, [t for t in earlier_tables if t.get("step", 0) <= resumed_from]
    )
    cache = get_settings().DATA_DIR / "models"
    context.progress(resumed_from, spec.max_steps, f"loading {reward_name}")
    try:
        preference = load_preference_model(
            resolve_model_folder(reward_path, cache), device=training_device()
        )
        policy_folder = resolve_model_folder(policy_path, cache)
    except BaseModelError:
        raise
    except Exception as exc:  # a GGUF that cannot be converted, a hub id offline
        raise BaseModelError(f"cannot load {policy_name} or {reward_name}: {exc}") from exc
    count = min(MAX_PROMPTS, spec.max_steps * max(spec.prompts_per_step, 1))
    prompts = mix_prompts(sets, spec.weights(), count, spec.seed)

    cancel_requested = threading.Event()

    def progress(step: int, total: int, message: str) -> None:
        try:
            context.progress(step, total, message)
        except JobCancelled:
            cancel_requested.set()

    outcome = train_rl(
        spec.hyperparameters(),
        policy_folder=policy_folder,
        reward=preference,
        prompts=prompts,
        output_dir=output_dir,
        report=metrics,
        should_stop=cancel_requested.is_set,
        progress=progress,
        on_samples=tables,
        resume_from=checkpoint,
    )
    context.result.update(
        output_dir=str(outcome.output_dir),
        steps=outcome.steps,
        prompts=outcome.prompts,
        seconds=round(outcome.seconds, 1),
        final_metrics=outcome.final_metrics,
        lineage=origin,
    )
    if outcome.resumed_from:
        context.result["resumed_from_step"] = outcome.resumed_from
    if outcome.stopped_early:
        raise JobCancelled(
            f"cancelled at step {outcome.steps}; the policy at that step is kept in "
            f"{outcome.output_dir} (not registered); Resume continues from step {outcome.steps}"
        )
    mix = ", ".join(f"set {s.prompt_set_id} x{s.weight:g}" for s in spec.prompt_mix)
    model_id, name = register_trained_model(
        engine,
        TrainedModel(
            name=spec.output_name or f"{policy_name}-{spec.algorithm.value}-{context.job_id}",
            path=outcome.output_dir,
            kind="policy",
            description=(
                f"{spec.algorithm.value.upper()} of {policy_name} against preference model "
                f"{reward_name} (beta {spec.beta:g}), prompts {mix}, {outcome.steps} steps"
            ),
            parent_id=policy_id,
            job_id=context.job_id,
            owner_id=owner_id,
            audit={"reward_model_id": spec.reward_model_id},
        ),
    )
    context.result.update(model_id=model_id, model_name=name)
    remove_checkpoints(output_dir)
    context.progress(
        outcome.steps, outcome.steps, f"trained {outcome.steps} steps; registered {name}"
    )
