"""OpenAIBackend against a small OpenAI-compatible server of our own on loopback.

The server answers ``/v1/chat/completions`` with "echo: " + the last user message, cut by stop
sequences and then by ``max_tokens`` counted in words. The last user message can ask for a
failure: ``transient:N:KEY`` answers 503 to the first N requests, ``always500:KEY`` always 500,
``bad400:KEY`` 400 with an error body, ``slow:KEY`` sleeps past the client's timeout. The
server counts requests per message, and the peak number of requests in flight at once.
"""

import asyncio
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from worker.backends.base import BackendError, GenerationParams
from worker.backends.openai_backend import OpenAIBackend, render_for_scoring

MODEL = "tiny-echo"
NO_LOGPROBS_MODEL = "no-logprobs"
API_KEY = "sk-test"
SLOW_SECONDS = 1.0


class FakeServer:
    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        self.auth: list[str | None] = []
        self.in_flight = 0
        self.peak = 0
        self.delay = 0.0
        self.lock = threading.Lock()
        self.app = self._build()

    def reset_peak(self) -> None:
        with self.lock:
            self.peak = 0

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models(request: Request) -> dict[str, Any]:
            self.auth.append(request.headers.get("authorization"))
            return {
                "object": "list",
                "data": [{"id": name, "object": "model"} for name in (MODEL, "llama3:latest")],
            }

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            self.auth.append(request.headers.get("authorization"))
            last = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
            with self.lock:
                self.attempts[last] += 1
                attempt = self.attempts[last]
                self.bodies[last] = body
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            try:
                if self.delay:
                    await asyncio.sleep(self.delay)
                return await self._answer(body, last, attempt)
            finally:
                with self.lock:
                    self.in_flight -= 1

        @app.post("/v1/completions")
        async def completions(request: Request) -> Any:
            body = await request.json()
            prompt = body["prompt"]
            tokens = re.findall(r"\s*\S+|\s+", prompt)  # words with their leading spaces
            offsets, position = [], 0
            for token in tokens:
                offsets.append(position)
                position += len(token)
            logprobs = {
                "tokens": tokens,
                "token_logprobs": [None] + [fake_logprob(t) for t in tokens[1:]],
                "text_offset": offsets,
                "top_logprobs": None,
            }
            no_logprobs = body["model"] == NO_LOGPROBS_MODEL or not body.get("echo")
            return {
                "object": "text_completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "text": prompt,
                        "logprobs": None if no_logprobs else logprobs,
                        "finish_reason": "length",
                    }
                ],
                "usage": {"prompt_tokens": len(tokens), "completion_tokens": 0},
            }

        return app

    async def _answer(self, body: dict[str, Any], last: str, attempt: int) -> Any:
        if match := re.match(r"transient:(\d+):", last):
            if attempt <= int(match.group(1)):
                return error(503, "the engine is warming up")
        elif last.startswith("always500:"):
            return error(500, f"boom number {attempt}")
        elif last.startswith("bad400:"):
            return error(400, "max_tokens is too large for this model")
        elif last.startswith("slow:"):
            await asyncio.sleep(SLOW_SECONDS)
        text = "echo: " + last
        finish = "stop"
        for stop in body.get("stop") or []:
            if stop in text:
                text = text[: text.index(stop)]
        words = text.split(" ")
        if len(words) > body["max_tokens"]:
            words, finish = words[: body["max_tokens"]], "length"
        text = " ".join(words)
        usage = {
            "prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
            "completion_tokens": len(words),
        }
        if last.startswith("nousage:"):
            usage = {}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "eos_token" if last.startswith("odd:") else finish,
                }
            ],
            "usage": usage,
        }


def fake_logprob(token: str) -> float:
    return -0.1 * len(token)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "BadRequestError", "code": status}},
        status_code=status,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeServer, str]]:
    fake = FakeServer()
    port = free_port()
    config = uvicorn.Config(
        fake.app, host="127.0.0.1", port=port, log_level="error", timeout_graceful_shutdown=2
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert thread.is_alive(), "the fake server did not start"
        assert time.monotonic() < deadline, "the fake server did not start within 10 s"
        time.sleep(0.02)
    yield fake, f"http://127.0.0.1:{port}/v1"
    uv.should_exit = True
    thread.join(timeout=5)


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
        "supports echo with logprobs (vLLM) or the local transformers backend"
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
