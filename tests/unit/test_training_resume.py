"""A training run continues from its last checkpoint: after a crash, a lost worker or a cancel."""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.jobs import resume_job
from app.models import Dataset, Job, JobMetric, JobStatus, LanguageModel, Role, User
from app.specs.training import Method, TrainingJobSpec
from app.timeutil import utcnow
from tests.conftest import RecordingQueue
from tests.unit.test_training import Recorder, save_dataset, tiny_spec, weight
from worker.lifecycle import running_job
from worker.training.checkpoints import Checkpoint, latest_checkpoint, resume_point
from worker.training.run import TrainingOutcome, train_model
from worker.training_job import run_training, trained_model_folder


class WorkerDied(Exception):
    """Stands in for a killed worker: raised from a step's report, after a checkpoint."""


class CrashingRecorder(Recorder):
    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.crash_at = crash_at

    def on_progress(self, step: int, total: int, message: str) -> None:
        super().on_progress(step, total, message)
        if "step" in message and step >= self.crash_at:
            raise WorkerDied(f"killed at step {step}")


def train(
    output: Path,
    model: Path,
    data: Path,
    recorder: Recorder,
    resume_from: Checkpoint | None = None,
) -> TrainingOutcome:
    return train_model(
        tiny_spec(Method.SFT, max_steps=6, save_steps=2),
        base_model_folder=str(model),
        dataset_folder=data,
        output_dir=output,
        report=recorder.report,
        should_stop=recorder.should_stop,
        progress=recorder.on_progress,
        resume_from=resume_from,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_dataset(tmp_path_factory.mktemp("dataset"))


def test_a_crashed_run_resumes_from_its_checkpoint_as_if_never_stopped(
    tiny_model: Path, data: Path, tmp_path: Path
) -> None:
    whole = train(tmp_path / "whole", tiny_model, data, Recorder())

    output = tmp_path / "out"
    crashed = CrashingRecorder(crash_at=4)  # steps 1-3 logged, checkpoint-2 saved, 4 not
    with pytest.raises(WorkerDied):
        train(output, tiny_model, data, crashed)
    assert crashed.steps_with("loss") == {1, 2, 3}
    checkpoint = latest_checkpoint(output)
    assert checkpoint is not None and checkpoint.step == 2

    again = Recorder()
    outcome = train(output, tiny_model, data, again, resume_from=checkpoint)

    assert outcome.resumed_from == 2 and outcome.steps == 6 and not outcome.stopped_early
    assert again.steps_with("loss") == {3, 4, 5, 6}  # the steps after the checkpoint only
    assert any("resuming from step 2" in message for _, _, message in again.progress)
    assert (6, 6, "sft training (resumed from step 2): step 6 of 6") in again.progress
    assert (output / "model.safetensors").exists()
    # Same optimizer state, schedule and data order: the weights of an unbroken run.
    assert torch.allclose(weight(output), weight(whole.output_dir), atol=1e-6)
    # Every second step was saved, and the last kept two; the last step saves none.
    saved = sorted(path.name for path in (output / "checkpoints").glob("checkpoint-*"))
    assert saved == ["checkpoint-2", "checkpoint-4"]


def fake_checkpoint(output: Path, step: int, *, complete: bool = True) -> Path:
    folder = output / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def test_only_the_same_run_resumes_and_never_from_a_half_written_checkpoint(
    tmp_path: Path,
) -> None:
    run = {"job_id": 7, "created_at": "2026-01-01T00:00:00", "spec": {"max_steps": 6}}
    assert resume_point(tmp_path, run) is None  # a new folder: from the start
    fake_checkpoint(tmp_path, 2)
    fake_checkpoint(tmp_path, 4)
    half = fake_checkpoint(tmp_path, 6, complete=False)

    assert resume_point(tmp_path, run) == Checkpoint(tmp_path / "checkpoints/checkpoint-4", 4)
    assert not half.exists()  # removed: it would push a whole one out of the rotation

    # Another job that got the same folder (a new database, the same job id) starts afresh.
    other = {**run, "created_at": "2026-02-01T00:00:00"}
    assert resume_point(tmp_path, other) is None
    assert not (tmp_path / "checkpoints").exists()
    assert json.loads((tmp_path / "run.json").read_text()) == other


@pytest.fixture
def training_job(
    session: Session, users: dict[Role, User], tiny_model: Path, tmp_path: Path
) -> Job:
    base = LanguageModel(name="tiny", backend="transformers", path=str(tiny_model))
    dataset = Dataset(
        name="built",
        status="ready",
        folder=str(save_dataset(tmp_path / "dataset")),
        counts={"train_sft": 10},
        source_job_ids=[],
    )
    session.add_all([base, dataset])
    session.commit()
    spec = TrainingJobSpec.model_validate(
        {
            **tiny_spec(Method.SFT, max_steps=6, save_steps=2).to_parameters(),
            "base_model_id": base.id,
            "dataset_id": dataset.id,
        }
    )
    job = Job(
        kind="train",
        queue="gpu",
        parameters=spec.to_parameters(),
        created_by_id=users[Role.AUTHOR].id,
    )
    session.add(job)
    session.commit()
    session.refresh(job)
    return job


def attempt(engine: Engine, job_id: int, on_step: Any) -> list[str]:
    """Runs the job as the worker's task does; `on_step(step)` sees each step's report."""
    messages: list[str] = []
    with running_job(engine, job_id, task_id=None, heartbeat_seconds=1) as context:
        report = context.progress

        def progress(done: int, total: int | None, message: str) -> None:
            messages.append(message)
            if "step" in message and "resuming" not in message:
                on_step(done)
            report(done, total, message)

        context.progress = progress
        run_training(engine, context)
    return messages


def loss_steps(session: Session, job_id: int) -> list[int]:
    rows = session.exec(
        select(JobMetric.step).where(JobMetric.job_id == job_id, JobMetric.name == "loss")
    ).all()
    return sorted(rows)


def test_a_lost_then_cancelled_job_resumes_each_time_and_stores_each_step_once(
    engine: Engine,
    session: Session,
    users: dict[Role, User],
    training_job: Job,
) -> None:
    job_id = training_job.id or 0

    def die_at_4(step: int) -> None:
        if step >= 4:
            raise WorkerDied("the worker was killed")

    with pytest.raises(WorkerDied):
        attempt(engine, job_id, die_at_4)
    assert loss_steps(session, job_id) == [1, 2, 3]

    # The sweeper marks it lost (its heartbeat long stopped) and sends it again.
    session.refresh(training_job)
    training_job.status = JobStatus.LOST
    training_job.heartbeat_at = utcnow() - timedelta(hours=1)
    session.add(training_job)
    session.commit()

    def cancel_at_4(step: int) -> None:
        if step >= 4:
            with Session(engine) as other:
                job = other.get(Job, job_id)
                assert job is not None
                job.cancel_requested = True
                other.add(job)
                other.commit()

    messages = attempt(engine, job_id, cancel_at_4)
    assert "loading tiny; resuming from step 2" in messages
    assert "sft training: resuming from step 2" in messages
    session.refresh(training_job)
    assert training_job.status == JobStatus.CANCELLED
    assert "Resume continues from step 4" in training_job.message
    assert loss_steps(session, job_id) == [1, 2, 3, 4]  # step 3 again, stored once
    output = trained_model_folder(job_id)
    assert (output / "checkpoints" / "checkpoint-4").is_dir()  # the stop saved one

    queue = RecordingQueue()
    resume_job(session=session, queue=queue, job=training_job, user=users[Role.AUTHOR])
    assert queue.sent == [("worker.tasks.run_training", job_id, "gpu")]
    messages = attempt(engine, job_id, lambda step: None)

    assert "sft training: resuming from step 4" in messages
    session.refresh(training_job)
    assert training_job.status == JobStatus.SUCCEEDED, training_job.error
    assert training_job.result["steps"] == 6 and training_job.result["resumed_from_step"] == 4
    assert loss_steps(session, job_id) == [1, 2, 3, 4, 5, 6]
    model = session.exec(select(LanguageModel).where(col(LanguageModel.job_id) == job_id)).one()
    assert Path(model.path, "model.safetensors").exists()
    assert not (output / "checkpoints").exists()  # registered: no attempt will need them
