"""Scoring a continuation through an OpenAI-compatible server, in the way its probe chose.

The prompt text is the model's own chat template (``ChatRenderer``), and ``/completions``
is asked one of three ways (``ScoringMode``):

- echo: the prompt and continuation are echoed with log-probabilities; the continuation's
  entries are summed (vLLM).
- echo, shifted: the same, but each entry holds the next token's distribution, so a token's
  log-probability is read from the previous entry's ``top_logprobs`` (llama-cpp-python 0.3.36).
- next token: the continuation is walked token by token: the prompt so far is sent with
  ``max_tokens: 1``, and the first generated token's ``top_logprobs`` give the log-probability
  of the continuation's next piece (llama.cpp's server, Ollama). Answers are kept, so the two
  options of a question ("The answer is: (A)" and "(B)") share every step up to the letter,
  and both letters are read from one answer after the answer cue. Where the model's likeliest
  next token ends its turn (a small judge after "The answer is:"), a server stops at once and
  returns no log-probabilities: the step is asked again with the end tokens banned by
  ``logit_bias``, which changes the token generated, not the log-probabilities returned (they
  are the model's own, before sampling, in llama-cpp-python, llama.cpp's server and vLLM).

Where a token is missing from a ``top_logprobs`` list, its log-probability is only known to be
at most the list's k-th value: that bound is used and counted in ``bounded``. Such tokens are
rare in the answer's few tokens ("The answer is: (A)") and common in long free text.
"""

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from worker.backends.base import BackendError, Conversation
from worker.backends.server_logprobs import (
    TokenLogprobs,
    generated_entries,
    parse_logprobs,
    prompt_tail,
)
from worker.backends.server_probe import TOP_LOGPROBS, ScoringMode

Post = Callable[[str, dict[str, Any], threading.Event], dict[str, Any]]
# The next-token answers kept per backend; beyond this the oldest half is dropped.
MEMO_LIMIT = 4096
# OpenAI's lowest logit bias: the token is never generated.
END_TOKEN_BIAS = -100
NO_LOGPROBS = (
    "returns no log-probabilities; use a server that supports echo with logprobs (vLLM) or "
    "logprobs on generated tokens, or the local transformers backend"
)


def render_plain(context: Conversation) -> str:
    """``"Role: content"`` turns and a closing ``"Assistant: "``: the last resort for a server
    whose chat template is unknown to the worker."""
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in context]
    parts.append("Assistant: ")
    return "\n\n".join(parts)


class ChatRenderer:
    """The model's chat template as text, with the assistant's turn opened.

    From a tokenizer the worker can load (the registered path where it is a local folder or
    GGUF file, such as llama-cpp-python's model id, or a tokenizer given for the model); else
    from the server (llama.cpp's ``/apply-template``); else ``render_plain``."""

    def __init__(self, tokenizer_source: str = "") -> None:
        self._tokenizer: Any = None
        self.source = "plain"
        # The tokens that end the model's turn, where its tokenizer is known.
        self.end_ids: list[int] = []
        self._server_url = ""
        path = Path(tokenizer_source).expanduser() if tokenizer_source else None
        if path is not None and path.exists():
            from worker.backends.local_models import load_tokenizer

            try:
                self._tokenizer = load_tokenizer(path)
            except Exception as exc:  # a folder without a tokenizer, a broken GGUF
                raise BackendError(f"cannot load the tokenizer at {path}: {exc}") from exc
            if self._tokenizer.chat_template:
                self.source = "tokenizer"
            from worker.backends.finishing import end_of_turn_ids

            self.end_ids = end_of_turn_ids(self._tokenizer)

    def use_server(self, base_url: str, client: httpx.Client) -> None:
        """Asks llama.cpp's ``/apply-template`` (beside ``/v1``) once; used when it answers."""
        if self.source != "plain":
            return
        root = base_url.removesuffix("/v1")
        try:
            response = client.post(f"{root}/apply-template", json={"messages": [_PING]})
            prompt = response.json().get("prompt") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            prompt = None
        if isinstance(prompt, str) and _PING["content"] in prompt:
            self.source, self._server_url = "server", f"{root}/apply-template"
            self._client = client

    def __call__(self, context: Conversation) -> str:
        if self.source == "tokenizer":
            text = self._tokenizer.apply_chat_template(
                list(context), add_generation_prompt=True, tokenize=False
            )
            return str(text)
        if self.source == "server":
            response = self._client.post(self._server_url, json={"messages": list(context)})
            if response.status_code != 200:
                raise BackendError(f"{self._server_url} answered HTTP {response.status_code}")
            return str(response.json()["prompt"])
        return render_plain(context)


_PING = {"role": "user", "content": "ping-7f3a"}


class _Step:
    """One next-token answer, shared by the threads that need it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.top: dict[str, float] = {}
        self.error: BaseException | None = None


class ServerScorer:
    """Scores one (prompt text, continuation) at a time; safe to share between threads."""

    def __init__(
        self, post: Post, url: str, model: str, mode: ScoringMode, end_ids: Sequence[int] = ()
    ) -> None:
        self._post, self.url, self.model, self.mode = post, url, model, mode
        self.end_ids = list(end_ids)
        self.asked_again = 0  # next-token steps asked again with the end tokens banned
        self._memo: dict[str, _Step] = {}
        self._lock = threading.Lock()
        self.bounded = 0  # tokens scored by a bound (missing from a top_logprobs list)
        self.requests = 0

    def score(self, prompt: str, continuation: str, cancel: threading.Event) -> float:
        if not continuation:
            return 0.0
        if self.mode is ScoringMode.UNSUPPORTED:
            raise BackendError(f"the server at {self.url} {NO_LOGPROBS}")
        if self.mode is ScoringMode.NEXT_TOKEN:
            return self._walk(prompt, continuation, cancel)
        shifted = self.mode is ScoringMode.ECHO_SHIFTED
        body = {
            "model": self.model,
            "prompt": prompt + continuation,
            # 1, not 0: llama-cpp-python reads max_tokens 0 as "until the context is full".
            "max_tokens": 1,
            "echo": True,
            "logprobs": TOP_LOGPROBS if shifted else 1,
            "temperature": 0,
        }
        answer = self._ask(body, cancel)
        logprobs = parse_logprobs(answer)
        if logprobs is None:
            raise BackendError(f"the server at {self.url} {NO_LOGPROBS}")
        generated = generated_entries(answer, logprobs, prompt + continuation, continuation)
        entries = prompt_tail(logprobs, len(continuation), generated)
        return self._shifted_sum(logprobs, entries) if shifted else _aligned_sum(logprobs, entries)

    def _ask(self, body: dict[str, Any], cancel: threading.Event) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
        return self._post(self.url, body, cancel)

    def _shifted_sum(self, logprobs: TokenLogprobs, entries: list[int]) -> float:
        total = 0.0
        for index in entries:
            if index == 0:
                continue  # the very first token has nothing before it
            total += self._read(logprobs.tops[index - 1], logprobs.tokens[index])
        return total

    def _read(self, top: dict[str, float], token: str) -> float:
        if token in top:
            return top[token]
        if not top:
            raise BackendError(f"the server at {self.url} gave no top_logprobs to read")
        with self._lock:
            self.bounded += 1
        # Not the lowest value: llama-cpp-python adds the entry's own token to its list at
        # whatever value it has. A token outside the top k is at most the k-th value.
        ranked = sorted(top.values(), reverse=True)
        return ranked[min(TOP_LOGPROBS, len(ranked)) - 1]

    def _next_tops(self, text: str, cancel: threading.Event) -> dict[str, float]:
        """The next token's alternatives after ``text``, asked once even when threads scoring
        the options of one question reach the same step together."""
        with self._lock:
            slot = self._memo.get(text)
            owner = slot is None
            if slot is None:
                if len(self._memo) >= MEMO_LIMIT:
                    for key in [k for k, v in self._memo.items() if v.done.is_set()][
                        : MEMO_LIMIT // 2
                    ]:
                        del self._memo[key]
                slot = self._memo[text] = _Step()
        if not owner:
            slot.done.wait()
            if slot.error is not None:
                raise slot.error
            return slot.top
        try:
            slot.top = self._ask_next(text, cancel)
        except BaseException as exc:
            slot.error = exc
            with self._lock:
                self._memo.pop(text, None)
            raise
        finally:
            slot.done.set()
        return slot.top

    def _ask_next(self, text: str, cancel: threading.Event) -> dict[str, float]:
        body = {
            "model": self.model,
            "prompt": text,
            "max_tokens": 1,
            "logprobs": TOP_LOGPROBS,
            "temperature": 0,
        }
        logprobs = parse_logprobs(self._ask(body, cancel))
        if (logprobs is None or not len(logprobs)) and self.end_ids:
            # Most likely the model ended its turn here: ask for the next token that does not.
            with self._lock:
                self.asked_again += 1
            banned = {str(token): END_TOKEN_BIAS for token in self.end_ids}
            logprobs = parse_logprobs(self._ask({**body, "logit_bias": banned}, cancel))
        if logprobs is None or not len(logprobs):
            raise BackendError(f"the server at {self.url} {NO_LOGPROBS}")
        top = dict(logprobs.tops[0])
        if logprobs.values[0] is not None:
            top.setdefault(logprobs.tokens[0], logprobs.values[0])
        return top

    def _walk(self, prompt: str, continuation: str, cancel: threading.Event) -> float:
        total, done = 0.0, 0
        while done < len(continuation):
            top = self._next_tops(prompt + continuation[:done], cancel)
            rest = continuation[done:]
            fitting = [(token, value) for token, value in top.items() if rest.startswith(token)]
            fitting = [(token, value) for token, value in fitting if token]
            if not fitting:
                # The rest is not among the likely tokens: bound it once and stop here.
                return total + self._read(top, "\x00")
            # The longest piece that fits is the one a tokenizer would have made.
            token, value = max(fitting, key=lambda item: len(item[0]))
            total += value
            done += len(token)
        return total


def _aligned_sum(logprobs: TokenLogprobs, entries: list[int]) -> float:
    return sum(float(v) for v in (logprobs.values[i] for i in entries) if v is not None)
