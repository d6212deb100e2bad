"""OpenAIBackend against a small OpenAI-compatible server of our own on loopback
(tests/openai_fake.py)."""

import re
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.openai_fake import (
    API_KEY,
    MODEL,
    NO_LOGPROBS_MODEL,
    SLOW_SECONDS,
    FakeServer,
    fake_logprob,
    free_port,
    running_fake,
)
from worker.backends.base import BackendError, GenerationParams
from worker.backends.openai_backend import OpenAIBackend, render_for_scoring


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeServer, str]]:
    with running_fake() as running:
        yield running


@pytest.fixture
def backend(server: tuple[FakeServer, str]) -> Iterator[OpenAIBackend]:
    client = OpenAIBackend(server[1], MODEL, api_key=API_KEY, retries=3, backoff=0.01, timeout=5)
    yield client
    client.close()


def key() -> str:
    return uuid.uuid4().hex[:8]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


PARAMS = GenerationParams(max_new_tokens=50, temperature=0.0)


def test_results_in_order_with_capped_concurrency(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    fake.reset_peak()
    fake.delay = 0.1
    backend = OpenAIBackend(url, MODEL, max_in_flight=4, backoff=0.01)
    try:
        prompts = [f"prompt {i} {key()}" for i in range(12)]
        results = backend.generate([user(p) for p in prompts], PARAMS)
    finally:
        fake.delay = 0.0
        backend.close()
    assert [r.text for r in results] == [f"echo: {p}" for p in prompts]
    assert 1 < fake.peak <= 4


def test_request_body_and_api_key(server: tuple[FakeServer, str], backend: OpenAIBackend) -> None:
    fake, _ = server
    plain, seeded = f"plain {key()}", f"seeded {key()}"
    backend.generate([user(plain)], PARAMS)
    backend.generate(
        [user(seeded)], GenerationParams(max_new_tokens=7, top_p=0.9, stop=("\n",), seed=3)
    )
    assert "stop" not in fake.bodies[plain] and "seed" not in fake.bodies[plain]
    body = fake.bodies[seeded]
    assert body["model"] == MODEL and body["messages"] == user(seeded)
    assert (body["max_tokens"], body["top_p"], body["stop"], body["seed"]) == (7, 0.9, ["\n"], 3)
    assert fake.auth[-1] == f"Bearer {API_KEY}"


def test_finish_reason_and_token_counts(backend: OpenAIBackend) -> None:
    system = {"role": "system", "content": "be brief"}
    long, cut, odd, nousage = (
        f"one two three four five {key()}",
        f"keep this STOP not this {key()}",
        f"odd: {key()}",
        f"nousage: {key()}",
    )
    params = GenerationParams(max_new_tokens=4, stop=("STOP",))
    results = backend.generate([[system, *user(long)], user(cut), user(odd), user(nousage)], params)
    assert results[0].text == "echo: one two three"
    assert (results[0].finish_reason, results[0].completion_tokens) == ("length", 4)
    assert results[0].prompt_tokens == 2 + 6
    assert (results[1].text, results[1].finish_reason) == ("echo: keep this ", "stop")
    assert results[1].completion_tokens == 4
    assert results[2].finish_reason == "stop"  # anything but "length" reads as "stop"
    assert (results[3].prompt_tokens, results[3].completion_tokens) == (0, 0)
    assert not any(r.truncated for r in results)


def test_transient_errors_are_retried(
    server: tuple[FakeServer, str], backend: OpenAIBackend
) -> None:
    fake, _ = server
    message = f"transient:2:{key()}"
    [result] = backend.generate([user(message)], PARAMS)
    assert result.text == f"echo: {message}"
    assert fake.attempts[message] == 3


def test_client_error_fails_at_once(server: tuple[FakeServer, str], backend: OpenAIBackend) -> None:
    fake, url = server
    message = f"bad400:{key()}"
    with pytest.raises(BackendError) as raised:
        backend.generate([user(message)], PARAMS)
    assert fake.attempts[message] == 1
    assert "400" in str(raised.value)
    assert "max_tokens is too large for this model" in str(raised.value)
    assert f"{url}/chat/completions" in str(raised.value)


def test_one_failure_fails_the_batch(backend: OpenAIBackend) -> None:
    conversations = [user(f"fine {i} {key()}") for i in range(5)] + [user(f"bad400:{key()}")]
    with pytest.raises(BackendError, match="max_tokens is too large"):
        backend.generate(conversations, PARAMS)


def test_retries_spent_name_the_url_and_last_error(
    server: tuple[FakeServer, str], backend: OpenAIBackend
) -> None:
    fake, url = server
    message = f"always500:{key()}"
    with pytest.raises(BackendError) as raised:
        backend.generate([user(message)], PARAMS)
    assert fake.attempts[message] == 4  # the first try and 3 retries
    assert str(raised.value) == (
        f"{url}/chat/completions did not answer after 3 retries: HTTP 500: boom number 4"
    )


def test_timeout_is_transient(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    backend = OpenAIBackend(url, MODEL, timeout=0.2, retries=1, backoff=0.01)
    message = f"slow:{key()}"
    started = time.monotonic()
    try:
        with pytest.raises(BackendError) as raised:
            backend.generate([user(message)], PARAMS)
    finally:
        backend.close()
    assert time.monotonic() - started < SLOW_SECONDS
    assert fake.attempts[message] == 2
    assert f"{url}/chat/completions did not answer after 1 retries" in str(raised.value)
    assert "Timeout" in str(raised.value)


def test_connection_refused_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIBackend(url, MODEL, retries=2, backoff=0.01)
    try:
        with pytest.raises(BackendError) as raised:
            backend.generate([user("hello")], PARAMS)
    finally:
        backend.close()
    assert f"{url}/chat/completions did not answer after 2 retries" in str(raised.value)
    assert "ConnectError" in str(raised.value)


def test_score_sums_the_continuation_logprobs(backend: OpenAIBackend) -> None:
    context = [{"role": "system", "content": "Judge."}, *user("Which is better?")]
    assert render_for_scoring(context) == "System: Judge.\n\nUser: Which is better?\n\nAssistant: "
    # The server splits words with their leading spaces: " Hello" straddles the boundary
    # after "Assistant:" and belongs to the continuation.
    scores = backend.score([context, context, user("x")], ["Hello big world", "No.", ""])
    expected = [
        fake_logprob(" Hello") + fake_logprob(" big") + fake_logprob(" world"),
        fake_logprob(" No."),
        0.0,
    ]
    assert scores == pytest.approx(expected)
    assert scores[0] == pytest.approx(-1.6)


def test_score_without_logprobs_fails(server: tuple[FakeServer, str]) -> None:
    _, url = server
    backend = OpenAIBackend(url, NO_LOGPROBS_MODEL)
    try:
        with pytest.raises(BackendError) as raised:
            backend.score([user("Which?")], ["This one."])
    finally:
        backend.close()
    assert str(raised.value) == (
        f"the server at {url}/completions returns no log-probabilities; use a server that "
        "supports echo with logprobs (vLLM) or logprobs on generated tokens, or the local "
        "transformers backend"
    )


def test_check(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    OpenAIBackend.check(url, MODEL, api_key=API_KEY)
    assert fake.auth[-1] == f"Bearer {API_KEY}"
    OpenAIBackend.check(url + "/", "llama3")  # Ollama's "name:latest"
    with pytest.raises(BackendError, match=r"does not serve the model 'missing'.*tiny-echo"):
        OpenAIBackend.check(url, "missing")
    with pytest.raises(BackendError, match=r"HTTP 404.*ends in /v1"):
        OpenAIBackend.check(url.removesuffix("/v1"), MODEL)
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError, match=f"cannot reach {re.escape(closed)}/models"):
        OpenAIBackend.check(closed, MODEL, timeout=2)
