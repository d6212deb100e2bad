"""A person launches RL of a policy against a reward model from the models page, watches the
reward curves and sample tables come in, and finds the new policy ready to generate with."""

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.browser.test_prompt_import import sign_in
from tests.browser.test_training import scalar
from tests.integration.test_rl_worker import reward_model
from tests.live import LiveApp

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_launch_rl_from_the_models_page_and_watch_rewards_and_samples(
    page: Any, app: LiveApp, tiny_model: Path, tmp_path: Path
) -> None:
    client = app.signed_in_client()
    client.post(
        "/models",
        data={
            "name": "tiny",
            "backend": "transformers",
            "path": str(tiny_model),
            "csrf_token": app.csrf(client),
        },
    )
    engine = create_engine(app.env["DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO language_model (name, backend, path, base_url, api_key_env, "
                "description, kind, created_at) "
                "VALUES ('tiny-pm', 'transformers', :p, '', '', '', 'reward', CURRENT_TIMESTAMP)"
            ),
            {"p": str(reward_model(tiny_model, tmp_path / "pm"))},
        )
    engine.dispose()
    set_id = scalar(app, "SELECT id FROM prompt_set WHERE source = 'built-in'")

    sign_in(page)
    page.goto("/models")
    page.click("tr:has-text('tiny') >> text=Optimise it with RL")
    page.wait_for_url(re.compile(r"/rl\?model=\d+"))
    page.select_option("select[name=reward_model_id]", label="tiny-pm")
    page.fill(f"input[name=weight_{set_id}]", "1")
    page.fill("input[name=output_name]", "tiny-rl")
    page.fill("input[name=max_steps]", "6")
    page.fill("input[name=max_completion_length]", "8")
    page.fill("input[name=sample_every]", "2")
    page.click("button:has-text('Start RL')")
    page.wait_for_url(re.compile(r"/jobs/\d+$"))

    chart = '#job-curves figure[data-chart="reward"]'
    reward = f'{chart} [data-metric="reward"]'
    page.wait_for_selector(f"{chart} canvas", timeout=300_000)
    page.wait_for_selector(
        "#job-status:is([data-status=succeeded], [data-status=failed])", timeout=600_000
    )
    assert page.get_attribute("#job-status", "data-status") == "succeeded", page.inner_text(
        "#job-status"
    )
    page.wait_for_selector(f'{reward}[data-points="6"]', timeout=30_000)
    for metric in ("kl", "entropy", "completions/mean_length"):
        assert page.locator(f'#job-curves figure[data-chart="{metric}"] canvas').count() == 1
    # The reward's chart carries its spread: mean, mean + std and mean - std.
    labels = page.locator(f"{chart} .u-legend .u-series .u-label").all_inner_texts()
    assert labels == ["step", "reward", "reward + std", "reward \u2212 std"], labels
    assert page.locator("details.rl-samples").count() == 3  # steps 2, 4 and 6
    assert page.locator("details.rl-samples[open] table.samples tbody tr").count() > 0
    assert "Registered as tiny-rl" in page.inner_text("#job-status")
    page.click("#job-status >> text=Generate with it")
    page.wait_for_url(re.compile(r"/generate\?model=\d+"))
    assert page.inner_text("select[name=model_id] option:checked") == "tiny-rl"
