"""A small OpenAI-compatible server of our own on loopback, for the backend's unit tests.

The server answers ``/v1/chat/completions`` with "echo: " + the last user message, cut by stop
sequences and then by ``max_tokens`` counted in words. The last user message can ask for a
failure: ``transient:N:KEY`` answers 503 to the first N requests, ``always500:KEY`` always 500,
``bad400:KEY`` 400 with an error body, ``slow:KEY`` sleeps past the client's timeout. The
server counts requests per message, and the peak number of requests in flight at once.
``/v1/completions`` answers as a tiny counting model would, in the ways real servers do
(``fake_completion``), and keeps every request body.
"""

import asyncio
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

MODEL = "tiny-echo"
NO_LOGPROBS_MODEL = "no-logprobs"
SHIFTED = "shifted"
NEXT_ONLY = "next-only"
# NEXT_ONLY whose model ends its turn after a colon ("The answer is:"): a server then returns
# no token and so no log-probabilities, unless a logit_bias bans END_TOKEN_ID (SmolLM2's
# <|im_end|>, the tiny test model's tokenizer's too).
ENDS_EARLY = "ends-early"
END_TOKEN_ID = 2
API_KEY = "sk-test"
SLOW_SECONDS = 1.0


class FakeServer:
    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        self.auth: list[str | None] = []
        self.completions: list[dict[str, Any]] = []
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
            with self.lock:
                self.completions.append(body)
            return fake_completion(body)

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


# The fake's tokens: a digit or a word with its leading space, a punctuation mark, spaces.
TOKEN = re.compile(r"\s?\d|\s?[A-Za-z]+|\s?[^\sA-Za-z\d]|\s+")
# Few enough besides the numbers that every one fits in a top-20 list.
VOCAB = ["The", "Hello", "No", "A", "B", " The", " answer", " is", " Hello", " big", " world"]
VOCAB += [" No", ":", " (", ")", ".", ",", " ", *"123456789", *(" " + d for d in "123456789")]


def fake_logprob(token: str, before: str = "") -> float:
    """A tiny counting model: after "n," the number n + 1 is likely, any other number (or a
    number elsewhere) is not; other tokens cost 0.1 a character."""
    if token.strip().isdigit():
        numbers = re.findall(r"\d", before)
        after_comma = before.rstrip(" ").endswith(",")
        expected = after_comma and numbers and int(numbers[-1]) + 1 == int(token.strip())
        return -0.1 if expected else -8.0
    return -0.1 * len(token)


def distribution(before: str) -> dict[str, float]:
    return {token: fake_logprob(token, before) for token in VOCAB}


def fake_completion(body: dict[str, Any]) -> dict[str, Any]:
    """/v1/completions as servers answer it, by model name: MODEL aligned (vLLM), SHIFTED as
    llama-cpp-python 0.3.36 (each entry one position late), NEXT_ONLY with log-probabilities
    for generated tokens only, in the chat shape (llama.cpp's server), NO_LOGPROBS_MODEL none."""
    prompt, model = body["prompt"], body["model"]
    if model == ENDS_EARLY:
        if (
            prompt.endswith(":")
            and float((body.get("logit_bias") or {}).get(str(END_TOKEN_ID), 0)) > -50
        ):
            return {
                "object": "text_completion",
                "model": model,
                "choices": [
                    {"index": 0, "text": "", "logprobs": {"content": []}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": len(TOKEN.findall(prompt)), "completion_tokens": 0},
            }
        model = NEXT_ONLY
    tokens = TOKEN.findall(prompt)
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    generated = max(distribution(prompt).items(), key=lambda item: item[1])[0]
    wanted = body.get("logprobs")
    echo = bool(body.get("echo")) and model != NEXT_ONLY
    shown = [*tokens, generated] if echo else [generated]
    first = len(tokens) if not echo else 0
    text_before = ["".join(tokens[:i]) for i in range(len(tokens) + 1)]
    values: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    for n, token in enumerate(shown):
        position = first + n
        # Where the model stands when it predicts this entry; one token late when shifted.
        seen = text_before[min(position + (model == SHIFTED), len(tokens))]
        if model == SHIFTED and position >= len(tokens):
            seen = prompt + generated
        dist = distribution(seen)
        top = dict(sorted(dist.items(), key=lambda item: -item[1])[: int(wanted or 0)])
        top[token] = fake_logprob(token, seen)
        values.append(fake_logprob(token, seen))
        tops.append(top)
    if echo:
        values[0], tops[0] = None, None
    logprobs: dict[str, Any] | None = {
        "tokens": shown,
        "token_logprobs": values,
        "text_offset": [*offsets, len(prompt)] if echo else [len(prompt)],
        "top_logprobs": tops,
    }
    if model == NEXT_ONLY:
        alternatives = [{"token": t, "logprob": v} for t, v in (tops[-1] or {}).items()]
        logprobs = {
            "content": [
                {
                    "token": generated,
                    "logprob": values[-1],
                    "top_logprobs": alternatives,
                }
            ]
        }
    if model == NO_LOGPROBS_MODEL or wanted is None:
        logprobs = None
    return {
        "object": "text_completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": (prompt if echo else "") + generated,
                "logprobs": logprobs,
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": len(tokens), "completion_tokens": 1},
    }


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


@contextmanager
def running_fake() -> Iterator[tuple[FakeServer, str]]:
    """The fake served by uvicorn in a thread; yields it and its base URL (ending in /v1)."""
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
    try:
        yield fake, f"http://127.0.0.1:{port}/v1"
    finally:
        uv.should_exit = True
        thread.join(timeout=5)
