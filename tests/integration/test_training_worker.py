"""The loop through a real worker: generate, build a dataset, train SFT, DPO and a reward model,
cancel a training run, and generate with the model that training registered."""

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from safetensors.torch import load_file
from sqlalchemy import create_engine, text

from tests.live import LiveApp, live_app, wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.services]


def query(app: LiveApp, sql: str, **params: object) -> list[Any]:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def one(app: LiveApp, sql: str, **params: object) -> Any:
    rows = query(app, sql, **params)
    assert len(rows) == 1, rows
    return rows[0][0]


def launched_job(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def weights(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(file)))
    assert tensors, f"no safetensors in {folder}"
    return tensors


def changed(base: dict[str, torch.Tensor], trained: dict[str, torch.Tensor]) -> int:
    """How many of the base model's tensors the trained model holds with different values."""
    return sum(
        1
        for name, tensor in base.items()
        if name in trained
        and trained[name].shape == tensor.shape
        and not torch.equal(trained[name].float(), tensor.float())
    )


def train(client: httpx.Client, app: LiveApp, **fields: object) -> int:
    form = {
        "preset": "cpu-smoke",
        "output_name": "",
        "learning_rate": "1e-3",
        "num_train_epochs": "1",
        "max_steps": "3",
        "per_device_train_batch_size": "2",
        "gradient_accumulation_steps": "1",
        "max_length": "128",
        "beta": "0.1",
        "lora_r": "8",
        "lora_alpha": "16",
        "seed": "0",
        "save_steps": "0",
        "csrf_token": app.csrf(client),
        **fields,
    }
    return launched_job(client.post("/training", data=form))


def test_generate_build_train_cancel_and_generate_again_through_a_worker(
    tmp_path: Path, tiny_model: Path, postgres_url: str, redis_url: str
) -> None:
    with live_app(tmp_path, database_url=postgres_url, broker_url=redis_url) as app:
        client = app.signed_in_client()
        token = app.csrf(client)
        app.register_model(client, "tiny", tiny_model)
        tiny_id = one(app, "SELECT id FROM language_model WHERE name = 'tiny'")
        version_id = one(app, "SELECT id FROM constitution_version WHERE number = 1")
        set_id = one(app, "SELECT id FROM prompt_set WHERE source = 'built-in'")
        generation = {
            "constitution_version_id": version_id,
            "prompt_set_id": set_id,
            "rounds": "1",
            "max_prompts": "8",
            "sample_size": "0",
            "seed": "1",
            "max_new_tokens": "12",
            "temperature": "1.0",
            "top_p": "1.0",
            "chunk_size": "8",
            "reviews_needed": "1",
            "stop": "",
            "csrf_token": token,
        }
        run_id = launched_job(client.post("/generate", data={**generation, "model_id": tiny_id}))
        wait_for_job(client, run_id, app, until=("succeeded",))

        built = client.post(
            "/datasets",
            data={
                "name": "tiny data",
                "runs": [run_id],
                "review_filter": "all",
                "min_change": "0",
                "min_chars": "1",
                "max_chars": "0",
                "max_prompt_chars": "0",
                "drop_duplicates": "1",
                "test_fraction": "0",
                "seed": "0",
                "helpful_max_rows": "0",
                "action": "build",
                "csrf_token": token,
            },
        )
        dataset_id = launched_job(built)
        build_job = one(app, "SELECT build_job_id FROM dataset WHERE id = :d", d=dataset_id)
        wait_for_job(client, build_job, app, until=("succeeded",))
        counts = one(app, "SELECT counts FROM dataset WHERE id = :d", d=dataset_id)
        assert counts["train_sft"] == 8, counts

        base = weights(tiny_model)
        for method in ("sft", "dpo", "reward"):
            job_id = train(
                client,
                app,
                base_model_id=tiny_id,
                dataset_id=dataset_id,
                method=method,
                output_name=f"tiny-{method}",
            )
            fragment = wait_for_job(client, job_id, app, timeout=600)
            assert 'data-status="succeeded"' in fragment, fragment
            assert 'data-metric="loss"' in fragment
            model_id, path, kind, parent, lineage_dataset = query(
                app,
                "SELECT id, path, kind, parent_id, dataset_id FROM language_model "
                "WHERE job_id = :j",
                j=job_id,
            )[0]
            assert (parent, lineage_dataset) == (tiny_id, dataset_id)
            assert kind == ("reward" if method == "reward" else "policy")
            assert changed(base, weights(Path(path))) > 0, method
            losses = query(
                app, "SELECT step FROM job_metric WHERE job_id = :j AND name = 'loss'", j=job_id
            )
            assert len(losses) == 3, (method, losses)
            if method == "dpo":
                assert query(
                    app,
                    "SELECT value FROM job_metric WHERE job_id = :j AND name = 'rewards/margins'",
                    j=job_id,
                )
            if method == "sft":
                sft_model_id = model_id

        # Cancel stops at the next step and keeps the model at that step, unregistered.
        long_job = train(
            client,
            app,
            base_model_id=tiny_id,
            dataset_id=dataset_id,
            method="sft",
            output_name="never-finished",
            max_steps="100000",
        )
        deadline = time.monotonic() + 120
        while not query(app, "SELECT 1 FROM job_metric WHERE job_id = :j LIMIT 1", j=long_job):
            assert time.monotonic() < deadline, app.log_tail()
            time.sleep(0.3)
        client.post(f"/jobs/{long_job}/cancel", data={"csrf_token": token})
        fragment = wait_for_job(client, long_job, app, timeout=300)
        assert 'data-status="cancelled"' in fragment, fragment
        result = one(app, "SELECT result FROM job WHERE id = :j", j=long_job)
        assert 0 < result["steps"] < 100000
        assert weights(Path(result["output_dir"]))
        assert not query(app, "SELECT 1 FROM language_model WHERE name = 'never-finished'")

        # The trained model is a policy a new run can use straight away.
        again = launched_job(
            client.post("/generate", data={**generation, "model_id": sft_model_id})
        )
        wait_for_job(client, again, app, until=("succeeded",))
        assert one(app, "SELECT count(*) FROM trace WHERE job_id = :j", j=again) == 8
