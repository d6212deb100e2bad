"""A backend that talks to an OpenAI-compatible HTTP server: vLLM, llama.cpp's server, Ollama.

Generation posts one ``/chat/completions`` request per conversation, at most ``max_in_flight`` at
once, and retries transient failures with exponential back-off. Scoring goes through
``/completions`` in the model's own chat template, after a probe of the server's
log-probabilities (``server_probe``) has chosen how (``server_scoring``).
"""

import json
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

import httpx

from worker.backends.base import (
    BackendError,
    Conversation,
    Generation,
    GenerationParams,
    OptionsQuestion,
    TransientBackendError,
    score_each_option,
)
from worker.backends.server_probe import ServerProbe, probe_server
from worker.backends.server_scoring import ChatRenderer, ServerScorer, render_plain

# The plain rendering, for a server whose chat template the worker cannot know.
render_for_scoring = render_plain

T = TypeVar("T")
R = TypeVar("R")

# Answers worth another try: the server is busy, restarting or briefly overloaded.
TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# The longest wait a server's Retry-After header can ask for before we ignore it.
MAX_RETRY_AFTER = 30.0
ERROR_TEXT_LIMIT = 500


class _Cancelled(BackendError):
    """Another request of the same batch failed: stop retrying this one."""


class _Transient(TransientBackendError):
    """One failed attempt worth retrying; ``retry_after`` is the server's requested wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _error_text(response: httpx.Response) -> str:
    """The server's own explanation of a failed request, as short readable text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
    else:
        text = ""
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict) and error.get("message"):
                text = str(error["message"])  # OpenAI, vLLM, llama.cpp, Ollama
            elif isinstance(error, str):
                text = error
            elif body.get("detail") is not None:  # FastAPI-style servers
                detail = body["detail"]
                text = detail if isinstance(detail, str) else json.dumps(detail)
            elif body.get("message"):
                text = str(body["message"])
        if not text:
            text = json.dumps(body)
    if len(text) > ERROR_TEXT_LIMIT:
        text = text[:ERROR_TEXT_LIMIT] + "..."
    return text or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from model servers, fall back to our own back-off
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class OpenAIBackend:
    """Generation and scoring through an OpenAI-compatible server (``base_url`` ends in /v1)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_in_flight: int = 8,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.5,
        context_length: int = 8192,
        tokenizer: str | None = None,
        on_probe: Callable[[ServerProbe], None] | None = None,
    ) -> None:
        """``tokenizer``: a local folder or GGUF file whose chat template scoring renders;
        None tries ``model`` itself. ``on_probe`` receives the probe's result once, to record it."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if retries < 0:
            raise ValueError("retries cannot be negative")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.context_length = context_length
        # One client shared by the worker threads; its pool also caps the connections at
        # max_in_flight, so concurrent calls on one backend never exceed it together.
        self._client = httpx.Client(
            headers=_headers(api_key),
            timeout=httpx.Timeout(timeout, pool=None),
            limits=httpx.Limits(
                max_connections=max_in_flight, max_keepalive_connections=max_in_flight
            ),
        )
        # A model id that is an absolute path (llama-cpp-python's default id, vLLM's folder)
        # names the tokenizer where the worker sees the same file.
        if tokenizer is None:
            tokenizer = model if model.startswith(("/", "~")) else ""
        self._tokenizer_source = tokenizer
        self._on_probe = on_probe
        self._scorer: ServerScorer | None = None
        self._render: ChatRenderer | None = None
        self.probe: ServerProbe | None = None
        self._probe_lock = threading.Lock()

    # -- the Backend interface ------------------------------------------------------------

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        url = f"{self.base_url}/chat/completions"

        def one(conversation: Conversation, cancel: threading.Event) -> Generation:
            body: dict[str, Any] = {
                "model": self.model,
                "messages": list(conversation),
                "max_tokens": params.max_new_tokens,
                "temperature": params.temperature,
                "top_p": params.top_p,
            }
            if params.stop:
                body["stop"] = list(params.stop)
            if params.seed is not None:
                body["seed"] = params.seed
            return _parse_chat(url, self._post(url, body, cancel))

        return self._run_all(one, list(conversations))

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation after its context, rendered in the
        model's chat template with the assistant's turn opened; the way the server is asked
        (echo, echo corrected for a shift, or next-token) comes from ``probe_scoring``."""
        if len(contexts) != len(continuations):
            raise ValueError("score needs one continuation per context")
        scorer, render = self.probe_scoring()

        def one(pair: tuple[Conversation, str], cancel: threading.Event) -> float:
            context, continuation = pair
            return scorer.score(render(context), continuation, cancel) if continuation else 0.0

        return self._run_all(one, list(zip(contexts, continuations, strict=True)))

    def probe_scoring(self) -> tuple[ServerScorer, ChatRenderer]:
        """Probes the server once (see ``server_probe``) and finds the chat template."""
        with self._probe_lock:
            if self._scorer is None or self._render is None:
                render = ChatRenderer(self._tokenizer_source)
                render.use_server(self.base_url, self._client)
                url = f"{self.base_url}/completions"

                def post(target: str, body: dict[str, Any]) -> dict[str, Any]:
                    return self._post(target, body, threading.Event())

                # The probe's numbers follow a question in the same template as scoring's.
                prefix = render([{"role": "user", "content": "Count from one to six."}])
                self.probe = probe_server(
                    post, url, self.model, prefix=prefix, template=render.source
                )
                self._scorer = ServerScorer(
                    self._post, url, self.model, self.probe.mode, end_ids=render.end_ids
                )
                self._render = render
                if self._on_probe is not None:
                    self._on_probe(self.probe)
            return self._scorer, self._render

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        # Every option its own request, all in flight together: a server shares no work here.
        return score_each_option(self, questions)

    def close(self) -> None:
        self._client.close()

    @staticmethod
    def check(base_url: str, model: str, api_key: str | None = None, timeout: float = 10) -> None:
        """Raises BackendError with a readable message unless the server answers and lists
        the model."""
        url = f"{base_url.rstrip('/')}/models"
        try:
            response = httpx.get(url, headers=_headers(api_key), timeout=timeout)
        except httpx.TimeoutException:
            raise BackendError(f"{url} did not answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise BackendError(f"cannot reach {url}: {_describe(exc)}") from None
        if response.status_code in (401, 403):
            raise BackendError(
                f"{url} refused the request (HTTP {response.status_code}): check the API key; "
                f"the server says: {_error_text(response)}"
            )
        if response.status_code != 200:
            hint = " (the base URL normally ends in /v1)" if response.status_code == 404 else ""
            raise BackendError(
                f"{url} answered HTTP {response.status_code}{hint}: {_error_text(response)}"
            )
        try:
            data = response.json()["data"]
            names = [str(entry["id"]) for entry in data]
        except (ValueError, KeyError, TypeError):
            raise BackendError(
                f"{url} did not answer with an OpenAI-style model list; "
                "is this an OpenAI-compatible server?"
            ) from None
        # Ollama lists "name:latest" for a model that is called by "name".
        if model in names or f"{model}:latest" in names:
            return
        listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") or "none"
        raise BackendError(
            f"the server at {url} does not serve the model {model!r}; it lists: {listed}"
        )

    # -- requests -----------------------------------------------------------------------------

    def _run_all(self, one: Callable[[T, threading.Event], R], items: list[T]) -> list[R]:
        """``one`` over every item, at most max_in_flight at once; results in the items' order.

        The first failure is raised at once: requests not yet started are dropped, and the
        running ones stop at their next retry.
        """
        cancel = threading.Event()
        if len(items) <= 1:
            return [one(item, cancel) for item in items]
        pool = ThreadPoolExecutor(
            max_workers=min(self.max_in_flight, len(items)), thread_name_prefix="openai-backend"
        )
        futures: list[Future[R]] = [pool.submit(one, item, cancel) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f.done() and not f.cancelled() and f.exception()]
        if failed:
            cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            error = failed[0].exception()
            assert error is not None
            raise error
        pool.shutdown(wait=True)
        return [f.result() for f in futures]

    def _post(self, url: str, body: dict[str, Any], cancel: threading.Event) -> dict[str, Any]:
        """POSTs ``body`` and returns the JSON answer, retrying transient failures."""
        last_error: TransientBackendError | None = None
        for attempt in range(self.retries + 1):
            if cancel.is_set():
                raise _Cancelled("cancelled: another request of the batch failed")
            try:
                return self._post_once(url, body)
            except _Transient as exc:
                last_error = exc
                if attempt < self.retries:
                    delay = max(self.backoff * 2**attempt, exc.retry_after or 0.0)
                    # Small jitter so a batch of failed requests does not come back at once.
                    cancel.wait(delay + random.uniform(0, 0.1 * delay))
        raise BackendError(f"{url} did not answer after {self.retries} retries: {last_error}")

    def _post_once(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(url, json=body)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Transient(_describe(exc)) from exc
        except httpx.HTTPError as exc:  # a malformed URL, an unsupported scheme, a proxy
            raise BackendError(f"cannot send a request to {url}: {_describe(exc)}") from None
        status = response.status_code
        if status in TRANSIENT_STATUSES:
            raise _Transient(f"HTTP {status}: {_error_text(response)}", _retry_after(response))
        if status != 200:
            hint = ""
            if status == 404:
                hint = " (check the model name, and that the base URL ends in /v1)"
            elif status in (401, 403):
                hint = " (check the API key)"
            raise BackendError(f"{url} answered HTTP {status}{hint}: {_error_text(response)}")
        try:
            answer = response.json()
        except ValueError:
            raise BackendError(f"{url} answered with something other than JSON") from None
        if not isinstance(answer, dict):
            raise BackendError(f"{url} answered with unexpected JSON: {answer!r:.200}")
        return answer


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _parse_chat(url: str, answer: dict[str, Any]) -> Generation:
    try:
        choice = answer["choices"][0]
        text = choice["message"].get("content") or ""
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BackendError(
            f"{url} answered without choices[0].message: {json.dumps(answer)[:200]}"
        ) from None
    usage = answer.get("usage") or {}
    return Generation(
        text=str(text),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason="length" if finish == "length" else "stop",
    )
