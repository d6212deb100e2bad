"""The training job: resolves the base model and dataset by id, trains, registers the result.

A later attempt of the same job (the sweeper re-sent a lost one, or someone pressed Resume)
continues from the latest checkpoint in the job's folder.
"""

import math
import threading
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from app.models import Comparison, Dataset, HumanLabel, Job, JobMetric, LanguageModel, ReplyPair
from app.recipe.label_agreement import majority_choice
from app.settings import get_settings
from app.specs.training import Method, TrainingJobSpec
from worker.backends.local_models import resolve_model_folder
from worker.lifecycle import JobCancelled, JobContext
from worker.model_registry import TrainedModel, register_trained_model
from worker.training.checkpoints import remove_checkpoints, resume_point
from worker.training.run import BaseModelError, train_model


def trained_model_folder(job_id: int) -> Path:
    return get_settings().DATA_DIR / "trained" / f"job-{job_id}"


class MetricWriter:
    """Stores reported metrics as JobMetric rows, one short transaction per report."""

    def __init__(self, engine: Engine, job_id: int) -> None:
        self.engine, self.job_id = engine, job_id

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        rows = [
            JobMetric(job_id=self.job_id, step=step, name=name[:64], value=float(value))
            for name, value in metrics.items()
            # NaN cannot be stored everywhere (and cannot be drawn); divergence is reported
            # by the training loop itself.
            if math.isfinite(value)
        ]
        if rows:
            with Session(self.engine) as session:
                session.add_all(rows)
                session.commit()

    def forget_after(self, step: int) -> None:
        """Drops the metrics an earlier attempt stored after `step`, where this one starts:
        it reports those steps again, and each step is to be stored once."""
        with Session(self.engine) as session:
            session.exec(
                delete(JobMetric).where(
                    col(JobMetric.job_id) == self.job_id, col(JobMetric.step) > step
                )
            )
            session.commit()


def people_preferred_replies(engine: Engine, comparison_ids: list[int]) -> dict[int, str]:
    """The reply most people chose, by comparison, for those people labelled without a tie."""
    if not comparison_ids:
        return {}
    with Session(engine) as session:
        rows = session.exec(
            select(
                HumanLabel.comparison_id, HumanLabel.choice, ReplyPair.reply_a, ReplyPair.reply_b
            )
            .join(Comparison, col(Comparison.id) == HumanLabel.comparison_id)
            .join(ReplyPair, col(ReplyPair.id) == Comparison.pair_id)
            .where(col(HumanLabel.comparison_id).in_(sorted(set(comparison_ids))))
        ).all()
    choices: dict[int, list[str]] = {}
    replies: dict[int, tuple[str, str]] = {}
    for comparison_id, choice, reply_a, reply_b in rows:
        choices.setdefault(comparison_id, []).append(choice)
        replies[comparison_id] = (reply_a, reply_b)
    preferred: dict[int, str] = {}
    for comparison_id, made in choices.items():
        winner = majority_choice(made)
        if winner in ("A", "B"):
            preferred[comparison_id] = replies[comparison_id][0 if winner == "A" else 1]
    return preferred


def run_training(engine: Engine, context: JobContext) -> None:
    spec = TrainingJobSpec.from_parameters(context.parameters)
    with Session(engine) as session:
        base = session.get(LanguageModel, spec.base_model_id)
        dataset = session.get(Dataset, spec.dataset_id)
        job = session.get(Job, context.job_id)
        if base is None:
            raise BaseModelError(f"base model {spec.base_model_id} does not exist")
        if dataset is None or dataset.status != "ready":
            raise LookupError(f"dataset {spec.dataset_id} does not exist or is not built")
        base_name, base_path, base_id = base.name, base.path, base.id
        # Whoever launched the job owns the model it registers.
        owner_id = job.created_by_id if job is not None else None
        dataset_folder, dataset_name = Path(dataset.folder), dataset.name
        # What makes a checkpoint in the job's folder this job's, not a stale one's.
        run = {
            "job_id": context.job_id,
            "created_at": job.created_at.isoformat() if job is not None else None,
            "spec": spec.to_parameters(),
        }
    if base.backend != "transformers":
        raise BaseModelError(f"{base_name} is served over HTTP; training needs a local model")
    output_dir = trained_model_folder(context.job_id)
    checkpoint = resume_point(output_dir, run)
    resumed_from = checkpoint.step if checkpoint is not None else 0
    metrics = MetricWriter(engine, context.job_id)
    metrics.forget_after(resumed_from)
    resuming = f"; resuming from step {resumed_from}" if checkpoint is not None else ""
    context.progress(resumed_from, None, f"loading {base_name}{resuming}")
    try:
        base_folder = resolve_model_folder(base_path, get_settings().DATA_DIR / "models")
    except Exception as exc:
        raise BaseModelError(f"cannot load base model {base_name}: {exc}") from exc

    # The trainer reports progress after every step, and each report reads the job row: a
    # cancel request found there stops training at that step's end (raising inside the trainer
    # would lose the model).
    cancel_requested = threading.Event()

    def progress(step: int, total: int, message: str) -> None:
        try:
            context.progress(step, total, message)
        except JobCancelled:
            cancel_requested.set()

    outcome = train_model(
        spec,
        base_model_folder=base_folder,
        dataset_folder=dataset_folder,
        output_dir=output_dir,
        report=metrics,
        should_stop=cancel_requested.is_set,
        progress=progress,
        resume_from=checkpoint,
        people_prefer=lambda ids: people_preferred_replies(engine, ids),
    )
    context.result.update(
        output_dir=str(outcome.output_dir),
        steps=outcome.steps,
        train_rows=outcome.train_rows,
        seconds=round(outcome.seconds, 1),
        final_metrics=outcome.final_metrics,
    )
    if outcome.calibration is not None:
        context.result["calibration"] = outcome.calibration
    if outcome.resumed_from:
        context.result["resumed_from_step"] = outcome.resumed_from
    if outcome.stopped_early:
        # The stop saved a checkpoint (MetricsCallback): Resume continues from it.
        raise JobCancelled(
            f"cancelled at step {outcome.steps}; the model at that step is kept in "
            f"{outcome.output_dir} (not registered); Resume continues from step {outcome.steps}"
        )
    model_id, name = register_trained_model(
        engine,
        TrainedModel(
            name=spec.output_name or f"{base_name}-{spec.method.value}-{context.job_id}",
            path=outcome.output_dir,
            kind="reward" if spec.method == Method.REWARD else "policy",
            description=(
                f"{spec.method.value.upper()} of {base_name} on dataset '{dataset_name}' "
                f"({outcome.train_rows} rows, {outcome.steps} steps)"
            ),
            parent_id=base_id,
            dataset_id=spec.dataset_id,
            job_id=context.job_id,
            owner_id=owner_id,
        ),
    )
    context.result.update(model_id=model_id, model_name=name)
    # Only now: until the model is registered, a lost job still resumes from them.
    remove_checkpoints(output_dir)
    context.progress(
        outcome.steps, outcome.steps, f"trained {outcome.steps} steps; registered {name}"
    )
