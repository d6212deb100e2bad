"""Launching training from the browser's form, its curves on the job page, the model registry."""

import json
import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.models import Dataset, Job, JobMetric, JobStatus, LanguageModel, Role, User
from app.specs.training import Method, TrainingJobSpec, preset_spec
from tests.conftest import RecordingQueue, post


def make_dataset(session: Session, **counts: int) -> Dataset:
    dataset = Dataset(
        name="built", status="ready", folder="/nowhere", counts=counts, source_job_ids=[]
    )
    session.add(dataset)
    session.commit()
    return dataset


def make_model(session: Session, name: str = "base", **fields: str) -> LanguageModel:
    model = LanguageModel(
        **{"backend": "transformers", "path": "/models/base", **fields, "name": name}
    )
    session.add(model)
    session.commit()
    return model


def form_for(client: TestClient, **query: str) -> dict[str, str]:
    """The launch form's fields as the page fills them in (inputs, checked boxes, selections)."""
    page = client.get("/training", params=query).text
    form = dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', page))
    form.update(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    for name in re.findall(r'<input type="checkbox" name="(\w+)" value="true" checked>', page):
        form[name] = "true"
    for name, body in re.findall(r'<select name="(\w+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        form[name] = chosen.group(1) if chosen else ""
    return form


def test_presets_fill_the_form_and_a_valid_launch_queues_a_gpu_job(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    base = make_model(session)
    dataset = make_dataset(session, train_sft=10, train_prefs=8)
    author = make_client(Role.AUTHOR)
    hf = form_for(author, method="dpo", preset="hf-7b", model=str(base.id), dataset=str(dataset.id))
    assert hf["learning_rate"] == "5e-07" and hf["beta"] == "0.1" and hf["num_train_epochs"] == "3"
    smoke = form_for(author, method="sft", preset="cpu-smoke")
    assert smoke["max_steps"] != "-1"

    form = form_for(
        author, method="dpo", preset="cpu-smoke", model=str(base.id), dataset=str(dataset.id)
    )
    response = post(author, "/training", data=form)
    assert response.status_code == 303, response.text
    job = session.get(Job, int(response.headers["location"].rsplit("/", 1)[1]))
    assert job is not None and job.kind == "train" and job.queue == "gpu"
    assert queue.sent[-1] == ("worker.tasks.run_training", job.id, "gpu")
    stored = TrainingJobSpec.from_parameters(job.parameters)
    assert stored.method == "dpo"
    assert stored.learning_rate == float(form["learning_rate"])
    assert stored.output_name == f"base-dpo-d{dataset.id}"


def test_bad_launches_are_refused_with_the_field_and_the_reason(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    base = make_model(session)
    served = make_model(session, "served", backend="openai", base_url="http://127.0.0.1:1/v1")
    sft_only = make_dataset(session, train_sft=10)
    author = make_client(Role.AUTHOR)
    form = form_for(author, method="dpo", preset="cpu-smoke")

    no_prefs = post(
        author, "/training", data={**form, "base_model_id": base.id, "dataset_id": sft_only.id}
    )
    assert no_prefs.status_code == 400
    assert "has no train_prefs rows, which DPO trains on" in no_prefs.text

    over_http = post(
        author,
        "/training",
        data={**form, "base_model_id": served.id, "dataset_id": sft_only.id, "method": "sft"},
    )
    assert "training needs a local model" in over_http.text

    numbers = post(
        author,
        "/training",
        data={
            **form,
            "base_model_id": base.id,
            "dataset_id": sft_only.id,
            "method": "sft",
            "learning_rate": "fast",
            "max_steps": "0",
        },
    )
    assert numbers.status_code == 400
    assert "A number from" in numbers.text and "At least 1 step" in numbers.text
    assert not queue.sent


def test_a_training_job_page_carries_its_metrics_as_chart_data(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
) -> None:
    job = Job(kind="train", queue="gpu", status=JobStatus.RUNNING, parameters={"dataset_id": 1})
    session.add(job)
    session.commit()
    for step, loss in [(1, 2.0), (2, 1.5), (3, 1.0)]:
        session.add(JobMetric(job_id=job.id or 0, step=step, name="loss", value=loss))
        session.add(JobMetric(job_id=job.id or 0, step=step, name="epoch", value=step / 3))
    session.add(JobMetric(job_id=job.id or 0, step=3, name="rewards/margins", value=0.2))
    session.commit()
    viewer = make_client(Role.VIEWER)
    status = viewer.get(f"/jobs/{job.id}/status").text
    # One chart per metric, the points as JSON for static/curves.js; the same in words beside it.
    charts = dict(re.findall(r'data-chart="([^"]+)" data-series=\'([^\']*)\'', status))
    assert list(charts) == ["loss", "rewards/margins"]  # no chart for the epoch
    assert json.loads(charts["loss"]) == {"loss": [[1, 2.0], [2, 1.5], [3, 1.0]]}
    assert json.loads(charts["rewards/margins"]) == {"rewards/margins": [[3, 0.2]]}
    assert 'data-metric="loss" data-points="3">loss: 1 at step 3; steps 1\u20133, 1 to 2<' in status
    assert "<svg" not in status and "polyline" not in status  # uPlot draws, on a canvas
    assert 'hx-trigger="load delay:1s"' in status  # it keeps polling while the job runs


def test_the_registry_shows_a_trained_models_lineage(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
) -> None:
    base = make_model(session)
    dataset = make_dataset(session, train_sft=3)
    job = Job(kind="train", queue="gpu", status=JobStatus.SUCCEEDED)
    session.add(job)
    session.commit()
    trained = make_model(session, "trained")
    trained.parent_id, trained.dataset_id, trained.job_id = base.id, dataset.id, job.id
    reward = make_model(session, "judge")
    reward.kind = "reward"
    session.add_all([trained, reward])
    session.commit()
    page = make_client(Role.AUTHOR).get("/models").text
    row = re.search(rf'<tr data-model="{trained.id}".*?</tr>', page, re.S)
    assert row is not None
    assert "from base" in row.group(0) and f'href="/datasets/{dataset.id}"' in row.group(0)
    assert f'href="/jobs/{job.id}"' in row.group(0)
    assert f'href="/generate?model={trained.id}"' in row.group(0)
    judge = re.search(rf'<tr data-model="{reward.id}".*?</tr>', page, re.S)
    assert judge is not None and "/generate?model=" not in judge.group(0)
    launch = make_client(Role.AUTHOR).get("/generate", params={"model": trained.id}).text
    assert f'<option value="{trained.id}" selected>trained</option>' in launch
    assert ">judge<" not in launch


def test_a_preset_fills_every_setting_and_the_job_stores_the_spec(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    base = make_model(session)
    dataset = make_dataset(session, train_sft=10, train_prefs=8)
    author = make_client(Role.AUTHOR)
    form = form_for(
        author, method="sft", preset="hf-7b", model=str(base.id), dataset=str(dataset.id)
    )
    assert form["gradient_checkpointing"] == "true" and form["logging_steps"] == "10"
    assert form["warmup_ratio"] == "0.1" and form["save_steps"] == "100"

    response = post(author, "/training", data={**form, "output_name": "  mine  "})
    assert response.status_code == 303, response.text
    job = session.get(Job, int(response.headers["location"].rsplit("/", 1)[1]))
    assert job is not None
    stored = TrainingJobSpec.from_parameters(job.parameters)
    assert stored.hyperparameters() == preset_spec("hf-7b", Method.SFT)
    assert (stored.base_model_id, stored.dataset_id) == (base.id, dataset.id)
    assert stored.preset == "hf-7b"
    assert stored.output_name == "mine"


def test_changing_the_method_refills_the_form_in_place(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    author = make_client(Role.AUTHOR)
    sft = author.get("/training", params={"method": "sft", "preset": "cpu-smoke"}).text
    refill = re.search(r'<div hx-get="/training" hx-trigger="change"[^>]*>(.*?)</div>', sft, re.S)
    assert refill is not None
    assert '<select name="method">' in refill.group(1)
    assert '<select name="preset">' in refill.group(1)
    assert '<input type="hidden" name="beta" value="0.1">' in sft
    dpo = author.get("/training", params={"method": "dpo", "preset": "cpu-smoke"}).text
    assert '<input name="beta" value="0.1"' in dpo
    assert '<option value="dpo" selected>' in dpo
    # A preset or method the form does not know falls back to cpu-smoke SFT, not a 500.
    unknown = form_for(author, method="ppo", preset="nope")
    assert unknown["max_length"] == "384"


def test_a_crafted_launch_names_every_bad_field_and_queues_nothing(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    author = make_client(Role.AUTHOR)
    form = form_for(author, method="sft", preset="cpu-smoke")
    response = post(
        author,
        "/training",
        data={
            **form,
            "base_model_id": "1e3",
            "dataset_id": "99",
            "method": "ppo",
            "preset": "nope",
            "output_name": "x" * 201,
            "lora_dropout": "1",
            "per_device_train_batch_size": "2.5",
        },
    )
    assert response.status_code == 400
    for message in (
        "Choose the model to start from.",
        "Choose a dataset.",
        "Choose SFT, DPO or a reward model.",
        "Choose a preset.",
        "At most 200 characters.",
        "Input should be less than 1",
        "A whole number from 1 to 4096.",
    ):
        assert message in response.text
    assert not queue.sent
    assert session.exec(select(func.count()).select_from(Job)).one() == 0


def test_resume_queues_a_stopped_training_job_again_to_continue_from_its_checkpoint(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    author = make_client(Role.AUTHOR)
    for status in (JobStatus.FAILED, JobStatus.LOST, JobStatus.CANCELLED):
        stopped = Job(kind="train", queue="gpu", status=status, parameters={"dataset_id": 1})
        session.add(stopped)
        session.commit()
        page = author.get(f"/jobs/{stopped.id}").text
        assert f'action="/jobs/{stopped.id}/resume"' in page, status
        assert "continues from its latest checkpoint" in page, status

    cancelled = Job(
        kind="train",
        queue="gpu",
        status=JobStatus.CANCELLED,
        cancel_requested=True,
        message="cancelled at step 4; Resume continues from step 4",
        parameters={"dataset_id": 1},
    )
    session.add(cancelled)
    session.commit()
    assert post(author, f"/jobs/{cancelled.id}/resume").status_code == 303
    session.refresh(cancelled)
    assert cancelled.status == JobStatus.QUEUED and not cancelled.cancel_requested
    assert queue.sent == [("worker.tasks.run_training", cancelled.id, "gpu")]
    # Queued again, it cannot be resumed twice.
    assert post(author, f"/jobs/{cancelled.id}/resume").status_code == 409
