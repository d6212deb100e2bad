"""The server probe and the three ways of scoring through a server, against the fake of
tests/openai_fake.py: aligned echo (vLLM), echo shifted by one (llama-cpp-python 0.3.36), and
log-probabilities of generated tokens only (llama.cpp's server, Ollama)."""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.openai_fake import (
    END_TOKEN_ID,
    ENDS_EARLY,
    MODEL,
    NEXT_ONLY,
    NO_LOGPROBS_MODEL,
    SHIFTED,
    TOKEN,
    FakeServer,
    fake_completion,
    fake_logprob,
    running_fake,
)
from worker.backends.base import BackendError
from worker.backends.openai_backend import OpenAIBackend
from worker.backends.server_logprobs import parse_logprobs, prompt_tail
from worker.backends.server_probe import ScoringMode, ServerProbe, probe_server
from worker.backends.server_scoring import render_plain

CONTEXT = [{"role": "system", "content": "Judge."}, {"role": "user", "content": "Which is it?"}]
OPTIONS = ["The answer is: (A)", "The answer is: (B)"]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeServer, str]]:
    with running_fake() as running:
        yield running


def true_score(prompt: str, continuation: str) -> float:
    """What the fake model gives the continuation's tokens (echo's tokenization)."""
    tokens = TOKEN.findall(prompt + continuation)
    total, seen = 0.0, ""
    for token in tokens:
        if len(seen) + len(token) > len(prompt):
            total += fake_logprob(token, seen)
        seen += token
    return total


def walked_score(prompt: str, continuation: str) -> float:
    """The same read token by token from the prompt's end: pieces start at the boundary."""
    total, done = 0.0, 0
    while done < len(continuation):
        piece = TOKEN.match(continuation, done)
        assert piece
        total += fake_logprob(piece.group(), prompt + continuation[:done])
        done = piece.end()
    return total


def backend_for(url: str, model: str, **kwargs: object) -> OpenAIBackend:
    return OpenAIBackend(url, model, retries=1, backoff=0.01, timeout=5, **kwargs)  # type: ignore[arg-type]


def direct_post(url: str, body: dict[str, object]) -> dict[str, object]:
    return fake_completion(dict(body))


@pytest.mark.parametrize(
    ("model", "mode"),
    [
        (MODEL, ScoringMode.ECHO),
        (SHIFTED, ScoringMode.ECHO_SHIFTED),
        (NEXT_ONLY, ScoringMode.NEXT_TOKEN),
        (NO_LOGPROBS_MODEL, ScoringMode.UNSUPPORTED),
    ],
)
def test_the_probe_tells_the_servers_apart(model: str, mode: ScoringMode) -> None:
    probe = probe_server(direct_post, "fake/completions", model)  # type: ignore[arg-type]
    assert probe.mode is mode, probe.detail
    assert ServerProbe.from_json(probe.to_json()) == probe
    if mode is ScoringMode.ECHO_SHIFTED:
        # The shifted server's own entries put the counted numbers at -8: summing them, as
        # the backend did before the probe, scores the wrong tokens.
        assert probe.aligned == pytest.approx(-8.0) and probe.shifted == pytest.approx(-0.1)
    if mode is ScoringMode.ECHO:
        assert probe.aligned == pytest.approx(-0.1) and (probe.shifted or 0) < -2.5


@pytest.mark.parametrize("model", [MODEL, SHIFTED, NEXT_ONLY])
def test_every_mode_scores_the_true_log_probabilities(
    server: tuple[FakeServer, str], model: str
) -> None:
    _, url = server
    probes: list[ServerProbe] = []
    backend = backend_for(url, model, on_probe=probes.append)
    try:
        scores = backend.score([CONTEXT] * 3, [*OPTIONS, "Hello big world"])
        again = backend.score([CONTEXT], [OPTIONS[0]])
    finally:
        backend.close()
    prompt = render_plain(CONTEXT)
    exact = true_score if model != NEXT_ONLY else walked_score
    expected = [exact(prompt, c) for c in [*OPTIONS, "Hello big world"]]
    assert scores == pytest.approx(expected)
    assert again == pytest.approx(expected[:1])
    assert len(probes) == 1, "probed once per backend"
    assert probes[0].template == "plain"


def test_next_token_scoring_shares_the_steps_before_the_letter(
    server: tuple[FakeServer, str],
) -> None:
    fake, url = server
    backend = backend_for(url, NEXT_ONLY)
    try:
        scorer, _ = backend.probe_scoring()
        before = len(fake.completions)
        backend.score([CONTEXT, CONTEXT], OPTIONS)
    finally:
        backend.close()
    # "The", " answer", " is", ":", " (" and the letter once for both, then each ")".
    assert len(fake.completions) - before == 8
    asked = fake.completions[-8:]
    assert all(body["max_tokens"] == 1 and "echo" not in body for body in asked)
    assert any(body["prompt"].endswith("The answer is: (") for body in asked)
    assert scorer.bounded == 0


def test_a_token_missing_from_the_top_list_is_bounded(server: tuple[FakeServer, str]) -> None:
    _, url = server
    backend = backend_for(url, SHIFTED)
    try:
        scorer, _ = backend.probe_scoring()
        [score] = backend.score([CONTEXT], ["Zebra"])
    finally:
        backend.close()
    assert scorer.bounded == 1
    # At most the lowest listed log-probability: never a value from the wrong entry.
    assert score <= -0.8


def test_unsupported_server_fails_scoring_with_a_message(server: tuple[FakeServer, str]) -> None:
    _, url = server
    backend = backend_for(url, NO_LOGPROBS_MODEL)
    try:
        with pytest.raises(BackendError, match="returns no log-probabilities"):
            backend.score([CONTEXT], OPTIONS[:1])
        assert backend.probe is not None and backend.probe.mode is ScoringMode.UNSUPPORTED
    finally:
        backend.close()


def test_scoring_renders_the_models_chat_template(
    server: tuple[FakeServer, str], tiny_model: Path
) -> None:
    fake, url = server
    probes: list[ServerProbe] = []
    backend = backend_for(url, MODEL, tokenizer=str(tiny_model), on_probe=probes.append)
    try:
        backend.score([CONTEXT], OPTIONS[:1])
    finally:
        backend.close()
    prompt = fake.completions[-1]["prompt"]
    assert prompt.startswith("<|im_start|>system\nJudge.<|im_end|>\n")
    assert prompt.endswith("<|im_start|>assistant\nThe answer is: (A)")
    assert "User:" not in prompt and probes[0].template == "tokenizer"


def test_a_model_named_by_its_path_brings_its_tokenizer(tiny_model: Path) -> None:
    with running_fake() as (fake, url):
        backend = backend_for(url, str(tiny_model))
        try:
            backend.score([CONTEXT], OPTIONS[:1])
        finally:
            backend.close()
    assert fake.completions[-1]["prompt"].startswith("<|im_start|>system")


def test_prompt_tail_counts_back_past_generated_and_special_tokens() -> None:
    answer = {
        "choices": [
            {
                "logprobs": {
                    # llama-cpp-python writes special tokens as "" and offsets without them.
                    "tokens": ["", "Hi", "", " Yes", " no", ""],
                    "token_logprobs": [None, -1.0, -2.0, -0.5, -0.25, -3.0],
                    "text_offset": [0, 0, 2, 2, 6, 9],
                }
            }
        ]
    }
    logprobs = parse_logprobs(answer)
    assert logprobs is not None
    assert prompt_tail(logprobs, len("Yes no"), generated=1) == [3, 4]
    assert prompt_tail(logprobs, len("no"), generated=0) == [4]


def test_scores_from_threads_share_one_probe(server: tuple[FakeServer, str]) -> None:
    _, url = server
    probes: list[ServerProbe] = []
    backend = backend_for(url, SHIFTED, on_probe=probes.append)
    results: list[list[float]] = []
    try:
        threads = [
            threading.Thread(target=lambda: results.append(backend.score([CONTEXT], OPTIONS[:1])))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        backend.close()
    assert len(probes) == 1 and len(results) == 4
    assert len({round(r[0], 9) for r in results}) == 1


def test_generated_entries_are_found_from_the_text_not_the_usage() -> None:
    from worker.backends.server_logprobs import generated_entries

    def answer(tokens: list[str], text: str) -> dict[str, object]:
        values = [None] + [-1.0] * (len(tokens) - 1)
        logprobs = {"tokens": tokens, "token_logprobs": values}
        return {
            "choices": [{"text": text, "logprobs": logprobs}],
            "usage": {"completion_tokens": 1},
        }

    prompt = "<|im_start|>user\nHi<|im_end|>\nYes (A)"
    # llama-cpp-python lists the generated token only where it dropped a leading BOS.
    listed = answer(["user", "\n", "Hi", "", "\n", "Yes", " (", "A", ")", "\n"], prompt + "\n")
    unlisted = answer(["user", "\n", "Hi", "", "\n", "Yes", " (", "A", ")"], prompt + "\n")
    for case, expected in ((listed, 1), (unlisted, 0)):
        logprobs = parse_logprobs(case)
        assert logprobs is not None
        assert generated_entries(case, logprobs, prompt, "Yes (A)") == expected


def test_a_step_where_the_model_would_end_its_turn_is_asked_again_with_the_end_banned(
    tiny_model: Path,
) -> None:
    # After "The answer is:" a small judge's likeliest token is <|im_end|>: the server stops
    # at once and returns no log-probabilities for the step (measured on llama-cpp-python's
    # server with SmolLM2-135M: half the HH-RLHF pairs went unlabelled so).
    with running_fake() as (fake, url):
        backend = backend_for(url, ENDS_EARLY, tokenizer=str(tiny_model))
        try:
            scorer, render = backend.probe_scoring()
            assert scorer.mode is ScoringMode.NEXT_TOKEN
            assert END_TOKEN_ID in scorer.end_ids
            scores = backend.score([CONTEXT, CONTEXT], OPTIONS)
        finally:
            backend.close()
        prompt = render(CONTEXT)
        assert scores == pytest.approx([walked_score(prompt, option) for option in OPTIONS])
        again = [body for body in fake.completions if "logit_bias" in body]
        # Once, at the one step after the colon, shared by both options.
        assert len(again) == 1 and scorer.asked_again == 1
        assert again[0]["prompt"].endswith("The answer is:")
        assert again[0]["logit_bias"][str(END_TOKEN_ID)] == -100


def test_without_a_tokenizer_a_step_that_ends_the_turn_fails_with_the_message(
    server: tuple[FakeServer, str],
) -> None:
    _, url = server
    backend = backend_for(url, ENDS_EARLY, tokenizer="")
    try:
        with pytest.raises(BackendError, match="returns no log-probabilities"):
            backend.score([CONTEXT], OPTIONS[:1])
    finally:
        backend.close()
