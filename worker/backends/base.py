"""The backend interface the recipe runs on: batched generation and log-probability scoring."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

Conversation = list[
    dict[str, str]
]  # chat messages: {"role": "system"|"user"|"assistant", "content": ...}
# A multiple-choice question: its context, and the options to score as the assistant's reply.
OptionsQuestion = tuple[Conversation, Sequence[str]]


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    # 0: no top-k cut. Both from the model's generation_config.json where it has them.
    top_k: int = 0
    # 1.0: none; above 1 discourages repeating tokens (small models fall into loops).
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    # Seeds the sampler for this call, so a run can be reproduced on the same backend.
    seed: int | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop sequence) or "length"
    # The conversation was longer than the model's context and was cut from the left.
    truncated: bool = False


class BackendError(Exception):
    """A backend that cannot work as configured (missing model, bad URL): fail at once."""


class TransientBackendError(BackendError):
    """Worth retrying with back-off: a timeout, a dropped connection, a 429 or 5xx answer."""


class Backend(Protocol):
    name: str
    context_length: int

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        """One reply per conversation, in order; the whole batch goes to the model together."""
        ...

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation as the assistant's reply to its context."""
        ...

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        """Per question, `score` of each of its options after its context, in order. A backend
        may read each question once for all its options; `score_each_option` is the plain way."""
        ...

    def close(self) -> None: ...


def score_each_option(backend: Backend, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
    """`score_options` for a backend that cannot share work between options: every option a
    row of one `score` call (a server then gets all the rows in flight at once)."""
    flat = [(context, option) for context, options in questions for option in options]
    scores = backend.score([c for c, _ in flat], [o for _, o in flat]) if flat else []
    out: list[list[float]] = []
    for _, options in questions:
        out.append(scores[: len(options)])
        scores = scores[len(options) :]
    return out


def options_scores(backend: Backend, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
    """The backend's own `score_options`, or `score_each_option` for one without it (a
    stand-in written before the method existed)."""
    own = getattr(backend, "score_options", None)
    return own(questions) if callable(own) else score_each_option(backend, questions)
