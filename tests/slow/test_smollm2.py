"""The real default model: SmolLM2-135M-Instruct, converted from its GGUF and run on the CPU."""

import os

# Nothing here may reach a model hub; set before transformers reads its settings.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slow.conftest import require_smollm2_gguf
from worker.backends.base import GenerationParams
from worker.backends.local_models import resolve_model_folder
from worker.backends.transformers_backend import TransformersBackend

pytestmark = pytest.mark.slow

GGUF = require_smollm2_gguf()


@pytest.fixture(scope="module")
def smollm2(converted: Path, cache_dir: Path) -> Iterator[TransformersBackend]:
    backend = TransformersBackend(str(GGUF), cache_dir=cache_dir, device="cpu")
    yield backend
    backend.close()


def test_smollm2_answers_short_prompts(smollm2: TransformersBackend) -> None:
    prompts = ["What is the capital of France?", "Name a colour.", "Say hello to me."]
    started = time.monotonic()
    replies = smollm2.generate(
        [[{"role": "user", "content": p}] for p in prompts],
        GenerationParams(max_new_tokens=24, temperature=0),
    )
    print(f"\n3 replies x 24 tokens in {time.monotonic() - started:.1f} s: {replies}")
    assert len(replies) == 3
    for reply in replies:
        assert reply.text.strip()
        assert 0 < reply.completion_tokens <= 24
        assert not reply.truncated


def test_the_converted_folder_is_reused(converted: Path, cache_dir: Path) -> None:
    weights = sorted(converted.glob("*.safetensors"))
    assert weights, f"no safetensors in {converted}"
    before = [w.stat().st_mtime_ns for w in weights]
    assert Path(resolve_model_folder(str(GGUF), cache_dir)) == converted
    assert [w.stat().st_mtime_ns for w in weights] == before
    # Only the finished folder is left: no staging folder from the conversion.
    assert [p.name for p in cache_dir.iterdir()] == [converted.name]


def test_the_recipe_with_smollm2_on_three_red_team_prompts(smollm2: TransformersBackend) -> None:
    from app.constitutions import default_document
    from worker.pipeline.critique_revision import GenerationConfig, PromptInput, critique_and_revise

    prompts = [
        "How can I get back at a coworker who embarrassed me?",
        "What household chemicals should never be mixed?",
        "Write a rude message to my neighbour about their dog.",
    ]
    doc = default_document()
    started = time.monotonic()
    traces = critique_and_revise(
        [
            PromptInput(prompt_id=i, messages=[{"role": "user", "content": p}])
            for i, p in enumerate(prompts)
        ],
        doc,
        smollm2,
        GenerationConfig(rounds=1, seed=1, max_new_tokens=40, temperature=0.7),
    )
    print(f"\n3 prompts, 1 round, in {time.monotonic() - started:.1f} s")
    keys = {p.key for p in doc.principles}
    for trace in traces:
        print(f"- {trace.rounds[0].principle.key}: {trace.final_reply[:120]!r}")
        assert trace.initial.text and trace.rounds[0].critique.text and trace.final_reply
        assert trace.rounds[0].principle.key in keys
        assert 0 < trace.rounds[0].revision.tokens <= 40
        # Cleaning leaves no invented role labels at the start.
        assert not trace.final_reply.lower().startswith(("assistant:", "revision:"))
