"""The generation launch form before a run starts: sampling defaults per model, the paper's
preset, and the expected tokens and time from the model's past runs."""

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.constitutions import create_constitution, default_document
from app.models import Chunk, Job, LanguageModel, Role, User
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from app.run_rates import job_tokens
from tests.conftest import RecordingQueue, post
from worker.backends.base import Conversation, Generation, GenerationParams
from worker.backends.fake import FakeBackend
from worker.chunk_runner import run_in_process


@pytest.fixture
def rows(session: Session, users: dict[Role, User], tmp_path: Path) -> dict[str, int]:
    _, version = create_constitution(
        session=session, doc=default_document(), user=None, publish=True
    )
    prompt_set = store_prompt_set(
        session=session,
        name="six",
        # 40 characters each: about 10 tokens a prompt.
        prompts=[
            ParsedPrompt(
                text=f"question {i:02d} " + "x" * 27 + "?", context=None, line=i, metadata={}
            )
            for i in range(6)
        ],
    )
    folder = tmp_path / "tuned"
    folder.mkdir()
    (folder / "generation_config.json").write_text(
        json.dumps({"temperature": 0.6, "top_p": 0.95, "top_k": 20, "repetition_penalty": 1.05})
    )
    gguf = tmp_path / "small.gguf"
    gguf.write_bytes(b"GGUF")
    tuned = LanguageModel(name="tuned", backend="transformers", path=str(folder))
    small = LanguageModel(name="small", backend="transformers", path=str(gguf))
    session.add_all([tuned, small])
    session.commit()
    return {
        "version": version.id or 0,
        "set": prompt_set.id or 0,
        "tuned": tuned.id or 0,
        "small": small.id or 0,
    }


def field_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no field {name}"
    return match.group(1)


def sampling_values(html: str) -> tuple[str, str, str, str]:
    names = ("temperature", "top_p", "top_k", "repetition_penalty")
    a, b, c, d = (field_value(html, name) for name in names)
    return a, b, c, d


def test_the_forms_fill_in_each_models_sampling_defaults_and_the_papers_preset(
    make_client: Callable[..., TestClient], rows: dict[str, int]
) -> None:
    client = make_client(Role.AUTHOR)
    # No model chosen: the defaults for small chat models, not the paper's 1.0 / 1.0.
    assert sampling_values(client.get("/generate").text) == ("0.7", "0.9", "0", "1.1")
    page = client.get(f"/generate?model={rows['tuned']}").text
    assert sampling_values(page) == ("0.6", "0.95", "20", "1.05")
    assert "generation_config.json" in page and 'hx-get="/generate/sampling"' in page
    # The fragment htmx swaps in when the model changes, and the presets.
    fragment = client.get(f"/generate/sampling?model_id={rows['small']}&stage=generate")
    assert fragment.status_code == 200 and '<fieldset id="sampling"' in fragment.text
    assert sampling_values(fragment.text) == ("0.7", "0.9", "0", "1.1")
    assert "GGUF file" in fragment.text and "<html" not in fragment.text
    paper = client.get(f"/generate/sampling?model_id={rows['tuned']}&preset=paper").text
    assert sampling_values(paper) == ("1", "1", "0", "1")
    assert "Temperature (0: greedy)" in paper
    pairs = client.get(f"/feedback/pairs?model={rows['tuned']}").text
    assert sampling_values(pairs) == ("0.6", "0.95", "20", "1.05")
    pair_fields = client.get(f"/generate/sampling?model_id={rows['tuned']}&stage=pairs").text
    assert "the two replies must differ" in pair_fields
    # A bad stage or preset is a 4xx naming it; a bad model id is "no model": the defaults.
    assert client.get("/generate/sampling?stage=train").status_code == 422
    assert client.get("/generate/sampling?preset=hot").status_code == 422
    assert sampling_values(client.get("/generate/sampling?model_id=abc").text)[0] == "0.7"


class Recording(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.params: list[GenerationParams] = []

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        self.params.append(params)
        return super().generate(conversations, params)


def launch_form(rows: dict[str, int], **overrides: str) -> dict[str, str]:
    return {
        "constitution_version_id": str(rows["version"]),
        "prompt_set_id": str(rows["set"]),
        "model_id": str(rows["tuned"]),
        "rounds": "1",
        "seed": "0",
        "max_new_tokens": "16",
        "temperature": "0.6",
        "top_p": "0.95",
        "top_k": "20",
        "repetition_penalty": "1.05",
        "chunk_size": "3",
        "reviews_needed": "1",
        "max_prompts": "0",
        "sample_size": "0",
        "stop": "",
        **overrides,
    }


def test_top_k_and_the_repetition_penalty_reach_the_backend(
    make_client: Callable[..., TestClient],
    rows: dict[str, int],
    queue: RecordingQueue,
    engine: Engine,
) -> None:
    client = make_client(Role.AUTHOR)
    bad = post(client, "/generate", data=launch_form(rows, top_k="-1", repetition_penalty="9"))
    assert bad.status_code == 400 and "From 0 to 1000" in bad.text and "From 0.5 to 2" in bad.text
    assert post(client, "/generate", data=launch_form(rows)).status_code == 303
    backend = Recording()
    run_in_process(engine, queue.sent[-1][1], backend=backend)
    assert backend.params and all(
        (p.temperature, p.top_p, p.top_k, p.repetition_penalty) == (0.6, 0.95, 20, 1.05)
        for p in backend.params
    )


def estimate(client: TestClient, rows: dict[str, int], **fields: str) -> str:
    query = {
        "constitution_version_id": str(rows["version"]),
        "prompt_set_id": str(rows["set"]),
        "model_id": str(rows["tuned"]),
        "rounds": "2",
        "max_new_tokens": "100",
        **fields,
    }
    response = client.get("/generate/estimate", params=query)
    assert response.status_code == 200
    return " ".join(response.text.split())


def test_the_estimate_before_launch_with_and_without_past_runs(
    make_client: Callable[..., TestClient],
    rows: dict[str, int],
    queue: RecordingQueue,
    engine: Engine,
    session: Session,
) -> None:
    client = make_client(Role.AUTHOR)
    # 6 prompts x (1 reply + 2 rounds x 2) = 30 outputs of at most 100 tokens.
    text = estimate(client, rows)
    assert "6 prompts · 30 outputs" in text and "at most 3,000 new tokens" in text
    assert "about 60 tokens in all" in text  # 6 prompts of 40 characters
    assert "no measurement yet" in text
    assert "4 prompts" in estimate(client, rows, sample_size="5", max_prompts="4")
    # Fields not filled in (or wrong) leave it waiting, never a server error.
    assert "Choose a prompt set and a model" in estimate(client, rows, model_id="")
    assert "Fix rounds" in estimate(client, rows, rounds="abc")
    # The launch page shows it, and htmx renders it again as the form changes.
    page = client.get(f"/generate?model={rows['tuned']}&prompt_set={rows['set']}").text
    assert 'id="estimate"' in page and "change from:#launch" in page and "18 outputs" in page

    # A finished run of the model: 6 prompts, 1 round, its two chunks 5 s each.
    post(client, "/generate", data=launch_form(rows))
    job_id = queue.sent[-1][1]
    run_in_process(engine, job_id, backend=FakeBackend())
    session.exec(update(Chunk).where(col(Chunk.job_id) == job_id).values(seconds=5.0))
    session.commit()
    tokens = job_tokens(session, job_id)
    assert tokens > 0
    rate, per_output = tokens / 10.0, tokens / 18
    text = estimate(client, rows)
    assert f"at {rate:.1f} tok/s" in text and f"{per_output:.0f} tokens an output" in text
    assert "measured on 1 past run of tuned" in text and "on the gpu queue" in text
    assert "no measurement yet" not in text
    # Another model's estimate does not borrow this one's runs.
    assert "no measurement yet" in estimate(client, rows, model_id=str(rows["small"]))
    job = session.get(Job, job_id)
    assert job is not None and job.result == {"traces": 6}
