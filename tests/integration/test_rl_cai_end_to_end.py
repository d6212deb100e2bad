"""RL-CAI from end to end through a real worker, with the tiny model: reply pairs, AI labels
(soft), a soft-label preference model with its calibration, RL against it, the registered
policy with its lineage, and an evaluation run, launched by the RL job's "Evaluate it" link,
comparing the policy with the one it started from.

Each stage is as small as it can be and still produce what the next one needs: the test is
about the stages' hand-offs, which the stages' own worker tests do not cover."""

import json
import re
import time
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_feedback_worker import as_json, launched, query
from tests.live import live_app, wait_for_job

pytestmark = [pytest.mark.worker]


def one(rows: list[Any]) -> Any:
    assert len(rows) == 1, rows
    return rows[0][0]


def test_pairs_soft_labels_preference_model_rl_and_an_evaluation_of_the_policy(
    tmp_path: Path, tiny_model: Path
) -> None:
    started = time.monotonic()
    with live_app(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'live.sqlite'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
    ) as app:
        client = app.signed_in_client()
        token = app.csrf(client)
        app.register_model(client, "tiny", tiny_model)
        tiny_id = one(query(app, "SELECT id FROM language_model WHERE name = 'tiny'"))
        set_id = one(query(app, "SELECT id FROM prompt_set WHERE source = 'built-in'"))
        suite_id = one(query(app, "SELECT id FROM prompt_set WHERE source = 'built-in suite'"))
        version_id = one(query(app, "SELECT id FROM constitution_version WHERE number = 1"))

        # 1. Reply pairs from the policy.
        pairs = launched(
            client.post(
                "/feedback/pairs",
                data={
                    "prompt_set_id": set_id,
                    "model_id": tiny_id,
                    "max_prompts": "4",
                    "sample_size": "0",
                    "seed": "2",
                    "max_new_tokens": "8",
                    "temperature": "1.0",
                    "top_p": "1.0",
                    "chunk_size": "4",
                    "csrf_token": token,
                },
            )
        )
        wait_for_job(client, pairs, app, until=("succeeded",))

        # 2. AI labels by log-probabilities, two principles each, both orders.
        labels = launched(
            client.post(
                "/feedback/label",
                data={
                    "pair_job_id": pairs,
                    "constitution_version_id": version_id,
                    "model_id": tiny_id,
                    "order_average": "1",
                    "ensemble": "2",
                    "clamp_low": "0.4",
                    "clamp_high": "0.6",
                    "seed": "0",
                    "chunk_size": "4",
                    "cot_max_new_tokens": "8",
                    "csrf_token": token,
                },
            )
        )
        wait_for_job(client, labels, app, until=("succeeded",))

        # 3. A preference dataset that keeps the labels soft.
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
        build = one(query(app, "SELECT build_job_id FROM dataset WHERE id = :d", d=dataset_id))
        wait_for_job(client, build, app, until=("succeeded",))
        rows = [
            json.loads(line)
            for split in ("train_prefs", "test_prefs")
            for line in (
                Path(app.env["DATA_DIR"])
                / "datasets"
                / str(dataset_id)
                / "jsonl"
                / f"{split}.jsonl"
            )
            .read_text()
            .splitlines()
        ]
        soft = [row["soft_label"] for row in rows]
        assert rows and all(0 <= p <= 1 for p in soft)
        assert any(0 < p < 1 for p in soft), soft

        # 4. A soft-label preference model, with its calibration on the held-out pairs.
        pm_job = launched(
            client.post(
                "/training",
                data={
                    "base_model_id": tiny_id,
                    "dataset_id": dataset_id,
                    "method": "reward",
                    "preset": "cpu-smoke",
                    "output_name": "tiny-pm",
                    "learning_rate": "1e-3",
                    "num_train_epochs": "1",
                    "max_steps": "1",
                    "per_device_train_batch_size": "2",
                    "gradient_accumulation_steps": "1",
                    "max_length": "128",
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
        wait_for_job(client, pm_job, app, timeout=300, until=("succeeded",))
        pm_id, pm_kind, pm_dataset = query(
            app, "SELECT id, kind, dataset_id FROM language_model WHERE name = 'tiny-pm'"
        )[0]
        assert (pm_kind, pm_dataset) == ("reward", dataset_id)
        pm_result = as_json(one(query(app, "SELECT result FROM job WHERE id = :j", j=pm_job)))
        calibration = pm_result["calibration"]
        assert calibration["pairs"] > 0
        assert 0 <= calibration["expected_calibration_error"] <= 1

        # 5. RL against the preference model: a policy registered with its lineage.
        rl_job = launched(
            client.post(
                "/rl",
                data={
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
                    "max_steps": "1",
                    "learning_rate": "1e-5",
                    "per_device_train_batch_size": "2",
                    "gradient_accumulation_steps": "1",
                    "sample_every": "1",
                    "logging_steps": "1",
                    "save_steps": "0",
                    "seed": "0",
                    "csrf_token": token,
                },
            )
        )
        fragment = wait_for_job(client, rl_job, app, timeout=300, until=("succeeded",))
        policy_id, kind, parent = query(
            app, "SELECT id, kind, parent_id FROM language_model WHERE name = 'tiny-rl'"
        )[0]
        assert (kind, parent) == ("policy", tiny_id)
        lineage = as_json(one(query(app, "SELECT result FROM job WHERE id = :j", j=rl_job)))[
            "lineage"
        ]
        assert lineage["reward_model_id"] == pm_id
        assert lineage["reward_dataset_id"] == dataset_id
        assert lineage["reward_source_job_ids"] == [labels]
        assert lineage["reward_training_job_id"] == pm_job

        # 6. "Evaluate it" opens the evaluation form with the policy and its start ticked.
        link = re.search(r'<a href="([^"]*)" data-evaluate-it>', fragment)
        assert link, fragment
        assert unescape(link.group(1)) == f"/evaluations/new?model={policy_id}&model={tiny_id}"
        form_page = client.get(unescape(link.group(1))).text
        ticked = re.findall(r'name="model_ids" value="(\d+)" checked', form_page)
        assert sorted(map(int, ticked)) == sorted([policy_id, tiny_id])
        evaluation = launched(
            client.post(
                "/evaluations/new",
                data={
                    "model_ids": ticked,
                    "suite_ids": [str(suite_id)],
                    "judge_model_id": str(tiny_id),
                    "constitution_version_id": str(version_id),
                    "max_new_tokens": "8",
                    "temperature": "1.0",
                    "top_p": "1.0",
                    "top_k": "0",
                    "repetition_penalty": "1.0",
                    "max_prompts": "2",
                    "seed": "1",
                    "bootstrap_samples": "10",
                    "chunk_size": "2",
                    "csrf_token": token,
                },
            )
        )
        wait_for_job(client, evaluation, app, timeout=300, until=("succeeded",))
        judged = query(
            app,
            "SELECT model_a_id, model_b_id, prob_a FROM eval_judgement WHERE job_id = :j",
            j=evaluation,
        )
        assert len(judged) == 2
        assert all({a, b} == {policy_id, tiny_id} and p is not None for a, b, p in judged)
        result = as_json(one(query(app, "SELECT result FROM job WHERE id = :j", j=evaluation)))
        (pooled,) = [g for g in result["ratings"] if g.get("suite_id") is None]
        assert {row["model"] for row in pooled["table"]["ratings"]} == {policy_id, tiny_id}
        page = client.get(f"/evaluations/{evaluation}").text
        assert 'id="goodhart"' in page and "tiny-rl" in page
    print(f"RL-CAI end to end: {time.monotonic() - started:.0f} s")
