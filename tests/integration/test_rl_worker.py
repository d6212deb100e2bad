"""RL through a real worker: a tiny policy optimised with RLOO against a registered reward
model from the browser's form, its curves and samples on the job page, the registered policy
with its lineage, and a generation run with it."""

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from transformers import AutoModelForSequenceClassification, set_seed

from tests.integration.test_training_worker import launched_job, one, query
from tests.live import live_app, wait_for_job
from worker.backends.local_models import load_tokenizer

pytestmark = [pytest.mark.worker, pytest.mark.services]


def reward_model(tiny_model: Path, folder: Path) -> Path:
    set_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model), num_labels=1)
    tokenizer = load_tokenizer(str(tiny_model))
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def test_rl_against_a_reward_model_registers_a_policy_that_generates(
    tmp_path: Path, tiny_model: Path, postgres_url: str, redis_url: str
) -> None:
    pm_folder = reward_model(tiny_model, tmp_path / "pm")
    with live_app(tmp_path, database_url=postgres_url, broker_url=redis_url) as app:
        client = app.signed_in_client()
        token = app.csrf(client)
        app.register_model(client, "tiny", tiny_model)
        tiny_id = one(app, "SELECT id FROM language_model WHERE name = 'tiny'")
        # A reward model as training would register it (that path has its own worker test).
        engine = create_engine(app.env["DATABASE_URL"])
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO language_model (name, backend, path, base_url, api_key_env, "
                    "description, kind, created_at) "
                    "VALUES ('tiny-pm', 'transformers', :p, '', '', '', 'reward', now())"
                ),
                {"p": str(pm_folder)},
            )
        engine.dispose()
        pm_id = one(app, "SELECT id FROM language_model WHERE name = 'tiny-pm'")
        set_id = one(app, "SELECT id FROM prompt_set WHERE source = 'built-in'")
        form = {
            "policy_model_id": tiny_id,
            "reward_model_id": pm_id,
            f"weight_{set_id}": "1",
            "preset": "cpu-smoke",
            "algorithm": "rloo",
            "output_name": "tiny-rl",
            "beta": "0.05",
            "num_generations": "2",
            "max_completion_length": "8",
            "temperature": "1",
            "top_p": "1",
            "max_steps": "2",
            "learning_rate": "1e-5",
            "per_device_train_batch_size": "4",
            "gradient_accumulation_steps": "1",
            "sample_every": "1",
            "logging_steps": "1",
            "save_steps": "0",
            "seed": "0",
            "csrf_token": token,
        }
        job_id = launched_job(client.post("/rl", data=form))
        fragment = wait_for_job(client, job_id, app, timeout=600)
        assert 'data-status="succeeded"' in fragment, fragment
        for metric in ("reward", "kl", "entropy", "completions/mean_length"):
            assert f'data-metric="{metric}"' in fragment, metric
        assert 'class="rl-samples"' in fragment
        # The reward's chart carries its spread (static/curves.js draws it as a band).
        assert 'data-chart="reward"' in fragment and 'data-metric="reward_std"' in fragment
        model_id, kind, parent = query(
            app, "SELECT id, kind, parent_id FROM language_model WHERE name = 'tiny-rl'"
        )[0]
        assert (kind, parent) == ("policy", tiny_id)
        result = one(app, "SELECT result FROM job WHERE id = :j", j=job_id)
        assert result["model_id"] == model_id and result["steps"] == 2
        assert result["lineage"]["reward_model_id"] == pm_id
        assert result["lineage"]["prompt_mix"] == [{"prompt_set_id": set_id, "weight": 1.0}]
        assert [table["step"] for table in result["samples"]] == [1, 2]
        assert f'href="/generate?model={model_id}"' in client.get(f"/jobs/{job_id}").text

        version_id = one(app, "SELECT id FROM constitution_version WHERE number = 1")
        run_id = launched_job(
            client.post(
                "/generate",
                data={
                    "constitution_version_id": version_id,
                    "prompt_set_id": set_id,
                    "model_id": model_id,
                    "rounds": "1",
                    "max_prompts": "2",
                    "sample_size": "0",
                    "seed": "1",
                    "max_new_tokens": "8",
                    "temperature": "1.0",
                    "top_p": "1.0",
                    "chunk_size": "2",
                    "reviews_needed": "1",
                    "stop": "",
                    "csrf_token": token,
                },
            )
        )
        wait_for_job(client, run_id, app, until=("succeeded",))
