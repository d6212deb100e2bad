"""A constitution A/B through a real worker with the tiny model: two generation runs over the
same prompts launched from the generation form, then the A/B job from its form, judged by the
tiny model: B's win rate over A with an interval, overall and per judging principle, and per
critique principle how often each run's revision beat its initial reply, every comparison
stored and shown behind its number."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.live import LiveApp, live_app, wait_for_job

pytestmark = [pytest.mark.worker]
PROMPTS = 3


def scalar(app: LiveApp, sql: str, **params: object) -> object:
    engine = create_engine(app.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar_one()
    finally:
        engine.dispose()


def generate(client: httpx.Client, token: str, ids: dict[str, object], seed: int) -> int:
    launched = client.post(
        "/generate",
        data={
            "constitution_version_id": ids["version"],
            "prompt_set_id": ids["set"],
            "model_id": ids["model"],
            "rounds": "1",
            "max_prompts": str(PROMPTS),
            "sample_size": "0",
            "seed": str(seed),
            "max_new_tokens": "12",
            "temperature": "1.0",
            "top_p": "1.0",
            "chunk_size": str(PROMPTS),
            "reviews_needed": "1",
            "stop": "",
            "csrf_token": token,
        },
    )
    assert launched.status_code == 303, launched.text
    return int(launched.headers["location"].rsplit("/", 1)[1])


def check_rates(entries: list[dict[str, Any]]) -> None:
    """ "all" first, counting every prompt once, then at least one principle's row; every
    decided rate lies within its Wilson interval."""
    assert entries[0]["group"] == "all" and len(entries) >= 2, entries
    first = entries[0]
    assert first["decided"] + first["ties"] + first["skipped"] == PROMPTS
    assert sum(e["decided"] + e["ties"] + e["skipped"] for e in entries[1:]) >= PROMPTS
    for e in entries:
        assert 0 <= e["wins"] <= e["decided"]
        if e["decided"]:
            assert 0.0 <= e["low"] <= e["value"] <= e["high"] <= 1.0
            assert e["value"] == pytest.approx(e["wins"] / e["decided"])


def test_an_ab_job_judges_two_runs_through_a_real_worker(tmp_path: Path, tiny_model: Path) -> None:
    with live_app(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'live.sqlite'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
    ) as app:
        client = app.signed_in_client()
        token = app.csrf(client)
        app.register_model(client, "tiny", tiny_model)
        ids = {
            "model": scalar(app, "SELECT id FROM language_model WHERE name = 'tiny'"),
            "version": scalar(app, "SELECT id FROM constitution_version WHERE number = 1"),
            "set": scalar(app, "SELECT id FROM prompt_set WHERE source = 'built-in'"),
        }
        runs = [generate(client, token, ids, seed) for seed in (1, 2)]
        for run in runs:
            wait_for_job(client, run, app, timeout=300, until=("succeeded",))

        launched = client.post(
            "/evaluations/ab",
            data={
                "run_a_id": str(runs[0]),
                "run_b_id": str(runs[1]),
                "judge_model_id": str(ids["model"]),
                "constitution_version_id": str(ids["version"]),
                "limit": "0",
                "seed": "0",
                "csrf_token": token,
            },
        )
        assert launched.status_code == 303, launched.text
        job_id = int(launched.headers["location"].rsplit("/", 1)[1])
        done = wait_for_job(client, job_id, app, timeout=300, until=("succeeded",))
        assert f"{PROMPTS} prompts judged" in done, done

        raw = scalar(app, "SELECT result FROM job WHERE id = :j", j=job_id)
        result = raw if isinstance(raw, dict) else json.loads(str(raw))
        assert result["prompts"] == PROMPTS and result["judge"] == "tiny"
        check_rates(result["b_over_a"])
        for side in ("a", "b"):
            check_rates(result["revision_over_initial"][side])
        # Three comparisons per prompt, stored: B over A and each run's revision over its reply.
        stored = scalar(app, "SELECT count(*) FROM ab_comparison WHERE job_id = :j", j=job_id)
        assert stored == 3 * PROMPTS

        page = client.get(f"/evaluations/ab/{job_id}")
        assert f"{PROMPTS} in common" in page.text
        behind = client.get(
            f"/evaluations/ab/{job_id}/comparisons", params={"kind": "b", "group": "all"}
        )
        assert behind.text.count("data-comparison=") == PROMPTS
