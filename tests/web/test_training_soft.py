"""Soft labels on the training form, and a preference model's calibration on its job page."""

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models import Job, JobStatus, Role, User
from app.specs.training import TrainingJobSpec
from tests.conftest import RecordingQueue, post
from tests.web.test_training import form_for, make_dataset, make_model


def test_the_form_offers_soft_labels_for_pairs_and_stores_them(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    base = make_model(session)
    dataset = make_dataset(session, train_sft=10, train_prefs=8)
    author = make_client(Role.AUTHOR)
    box = '<input type="checkbox" name="soft_labels"'
    assert box not in author.get("/training", params={"method": "sft"}).text
    assert box in author.get("/training", params={"method": "reward"}).text
    # The refill after a change of preset keeps the box as it was.
    refilled = author.get(
        "/training", params={"method": "dpo", "preset": "hf-7b", "soft_labels": "true"}
    ).text
    assert f'{box} value="true" checked>' in refilled

    form = form_for(author, method="reward", model=str(base.id), dataset=str(dataset.id))
    response = post(author, "/training", data={**form, "soft_labels": "true"})
    assert response.status_code == 303, response.text
    job = session.get(Job, int(response.headers["location"].rsplit("/", 1)[1]))
    assert job is not None
    assert TrainingJobSpec.from_parameters(job.parameters).soft_labels is True

    sft = form_for(author, method="sft", model=str(base.id), dataset=str(dataset.id))
    refused = post(author, "/training", data={**sft, "soft_labels": "true"})
    assert refused.status_code == 400
    assert "Soft labels are for DPO and reward models" in refused.text
    assert len(queue.sent) == 1


CALIBRATION = {
    "pairs": 4,
    "accuracy": 0.75,
    "mean_abs_error": 0.125,
    "expected_calibration_error": 0.0625,
    "bins": [
        {
            "low": i / 10,
            "high": (i + 1) / 10,
            "count": {6: 3, 4: 1}.get(i, 0),
            "mean_predicted": {6: 0.65, 4: 0.45}.get(i),
            "mean_observed": {6: 0.7, 4: 0.6}.get(i),
        }
        for i in range(10)
    ],
    "people_pairs": 2,
    "people_agreement": 0.5,
}


def test_a_preference_models_job_page_shows_its_calibration(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    job = Job(
        kind="train",
        queue="gpu",
        status=JobStatus.SUCCEEDED,
        parameters={"dataset_id": 1, "method": "reward", "soft_labels": True},
        result={"calibration": CALIBRATION, "steps": 3},
    )
    session.add(job)
    session.commit()
    page = make_client(Role.VIEWER).get(f"/jobs/{job.id}").text
    assert "trained on soft labels" in page
    assert '<tr data-metric="accuracy"><th>Accuracy (leans as the label does)</th><td>75.0%' in page
    assert "<td>0.125</td>" in page and "<td>0.062</td>" in page  # error, ECE
    assert "50.0% of 2" in page
    # The non-empty bins only, each with its mean prediction and mean target.
    row = '<tr data-bin="4"><td>0.4\u20130.5</td><td>1</td><td>0.450</td><td>0.600</td></tr>'
    assert row in page
    assert 'data-bin="6"' in page and 'data-bin="0"' not in page
