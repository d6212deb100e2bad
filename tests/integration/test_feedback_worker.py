"""RL-CAI through a real worker: sample reply pairs, label them by log-probabilities, build a
preference dataset from the AI's labels and train a soft-label reward model on it, which reports
its calibration and its agreement with a person's labels on the held-out pairs."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.live import LiveApp, live_app, wait_for_job

pytestmark = [pytest.mark.worker]


def query(app: LiveApp, sql: str, **params: object) -> list[Any]:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def as_json(value: Any) -> Any:
    # A raw query returns SQLite's JSON columns as text.
    return json.loads(value) if isinstance(value, str) else value


def launched(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_pairs_labels_dataset_and_reward_model_through_a_worker(
    tmp_path: Path, tiny_model: Path
) -> None:
    with live_app(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'live.sqlite'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
    ) as app:
        client = app.signed_in_client()
        token = app.csrf(client)
        client.post(
            "/models",
            data={
                "name": "tiny",
                "backend": "transformers",
                "path": str(tiny_model),
                "csrf_token": token,
            },
        )
        model_id = query(app, "SELECT id FROM language_model WHERE name = 'tiny'")[0][0]
        set_id = query(app, "SELECT id FROM prompt_set WHERE source = 'built-in'")[0][0]
        version_id = query(app, "SELECT id FROM constitution_version WHERE number = 1")[0][0]
        pairs = launched(
            client.post(
                "/feedback/pairs",
                data={
                    "prompt_set_id": set_id,
                    "model_id": model_id,
                    "max_prompts": "6",
                    "sample_size": "0",
                    "seed": "2",
                    "max_new_tokens": "10",
                    "temperature": "1.0",
                    "top_p": "1.0",
                    "chunk_size": "3",
                    "csrf_token": token,
                },
            )
        )
        wait_for_job(client, pairs, app, until=("succeeded",))
        stored = query(app, "SELECT reply_a, reply_b FROM reply_pair WHERE job_id = :j", j=pairs)
        assert len(stored) == 6 and any(a != b for a, b in stored)

        labels = launched(
            client.post(
                "/feedback/label",
                data={
                    "pair_job_id": pairs,
                    "constitution_version_id": version_id,
                    "model_id": model_id,
                    "order_average": "1",
                    "ensemble": "2",
                    "clamp_low": "0.4",
                    "clamp_high": "0.6",
                    "seed": "0",
                    "chunk_size": "4",
                    "cot_max_new_tokens": "16",
                    "csrf_token": token,
                },
            )
        )
        wait_for_job(client, labels, app, until=("succeeded",))
        judged = query(
            app, "SELECT prob_a, prob_b, label FROM comparison WHERE job_id = :j", j=labels
        )
        distinct = sum(1 for a, b in stored if a != b and a and b)
        assert len(judged) == distinct
        for prob_a, prob_b, label in judged:
            assert abs(prob_a + prob_b - 1) < 1e-6
            assert label == ("A" if prob_a > 0.5 else "B" if prob_a < 0.5 else "tie")

        # A person labels every comparison "A"; the dataset still follows the AI's labels.
        for (comparison_id,) in query(app, "SELECT id FROM comparison WHERE job_id = :j", j=labels):
            saved = client.post(
                f"/comparisons/{comparison_id}/label", data={"choice": "A", "csrf_token": token}
            )
            assert saved.status_code == 303, saved.text

        dataset_id = launched(
            client.post(
                f"/feedback/runs/{labels}/dataset",
                data={
                    "name": "tiny rlaif",
                    "min_margin": "0",
                    "test_fraction": "50",
                    "seed": "0",
                    "csrf_token": token,
                },
            )
        )
        build_job = query(app, "SELECT build_job_id FROM dataset WHERE id = :d", d=dataset_id)
        wait_for_job(client, build_job[0][0], app, until=("succeeded",))

        reward = launched(
            client.post(
                "/training",
                data={
                    "base_model_id": model_id,
                    "dataset_id": dataset_id,
                    "method": "reward",
                    "preset": "cpu-smoke",
                    "output_name": "tiny-judge",
                    "learning_rate": "1e-3",
                    "num_train_epochs": "1",
                    "max_steps": "2",
                    "per_device_train_batch_size": "2",
                    "gradient_accumulation_steps": "1",
                    "max_length": "256",
                    "beta": "0.1",
                    "lora_r": "8",
                    "lora_alpha": "16",
                    "seed": "0",
                    "save_steps": "0",
                    "soft_labels": "true",
                    "csrf_token": token,
                },
            )
        )
        fragment = wait_for_job(client, reward, app, timeout=300)
        assert 'data-status="succeeded"' in fragment, fragment
        assert query(
            app,
            "SELECT kind, dataset_id FROM language_model WHERE name = 'tiny-judge'",
        ) == [("reward", dataset_id)]
        (result,) = query(app, "SELECT result FROM job WHERE id = :j", j=reward)[0]
        (counts,) = query(app, "SELECT counts FROM dataset WHERE id = :d", d=dataset_id)[0]
        calibration = as_json(result)["calibration"]
        counts = as_json(counts)
        assert calibration["pairs"] == counts["test_prefs"] > 0
        assert 0 <= calibration["expected_calibration_error"] <= 1
        # Every held-out comparison has the person's label: A, which is `chosen` where the AI
        # also chose A.
        assert calibration["people_pairs"] == calibration["pairs"]
        assert 0 <= calibration["people_agreement"] <= 1
        page = client.get(f"/jobs/{reward}").text
        assert 'id="calibration"' in page and "trained on soft labels" in page
