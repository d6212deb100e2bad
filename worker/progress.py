"""What a running step says: "chunk 2 of 5 · round 1 critiques · 16 prompts · 23 tok/s · about
3 min left", from the tokens the backend returned so far and the job's remaining items.

Plain functions and a metering wrapper around a backend, shared by the chunk runner and the CLI.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from app.timeutil import format_duration
from worker.backends.base import (
    Backend,
    Conversation,
    Generation,
    GenerationParams,
    OptionsQuestion,
    options_scores,
)


def tokens_per_second(tokens: int, seconds: float) -> float | None:
    """None until there is something to divide: no tokens yet, or no time."""
    if tokens <= 0 or seconds <= 0:
        return None
    return tokens / seconds


def seconds_left(remaining_items: float, items_per_second: float | None) -> float | None:
    if items_per_second is None or items_per_second <= 0:
        return None
    return max(0.0, remaining_items) / items_per_second


def format_rate(rate: float) -> str:
    return f"{rate:.1f} tok/s" if rate < 10 else f"{rate:.0f} tok/s"


@dataclass(frozen=True)
class StepProgress:
    """Where one chunk stands at the start of a step, and what that says about the job."""

    chunk_number: int  # 1-based
    chunks: int
    step: str  # "round 1 critiques"
    items: int  # the chunk's items
    unit: str  # "prompts"
    steps_done: int  # steps of this chunk finished before this one
    steps_total: int
    tokens: int  # completion tokens the backend returned in this chunk so far
    seconds: float  # since this chunk's first step began (model loading excluded)
    job_remaining: int  # the job's items no finished chunk holds (this chunk's included)
    # Seconds per item from the job's finished chunks, for a chunk's first step.
    past_seconds_per_item: float | None = None
    running: int = 1  # chunks of the job running now, on this and other workers

    @property
    def items_done(self) -> float:
        """This chunk's items, counted by the share of its steps done."""
        if self.steps_total <= 0:
            return 0.0
        return self.items * min(self.steps_done, self.steps_total) / self.steps_total

    @property
    def tokens_per_second(self) -> float | None:
        return tokens_per_second(self.tokens, self.seconds)

    @property
    def items_per_second(self) -> float | None:
        """The job's rate: this chunk's own once a step finished, else past chunks'; times the
        chunks running side by side (each worker at about this pace)."""
        rate: float | None = None
        if self.items_done > 0 and self.seconds > 0:
            rate = self.items_done / self.seconds
        elif self.past_seconds_per_item:
            rate = 1.0 / self.past_seconds_per_item
        return rate * max(1, self.running) if rate is not None else None

    @property
    def seconds_left(self) -> float | None:
        return seconds_left(self.job_remaining - self.items_done, self.items_per_second)

    @property
    def message(self) -> str:
        parts = [
            f"chunk {self.chunk_number} of {max(self.chunks, self.chunk_number)}",
            self.step,
            f"{self.items} {self.unit}",
        ]
        rate = self.tokens_per_second
        if rate is not None:
            parts.append(format_rate(rate))
        left = self.seconds_left
        if left is not None:
            parts.append(f"about {format_duration(left)} left")
        return " · ".join(parts)


class MeteredBackend:
    """A backend that counts the completion tokens it returns and the seconds it generates."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend
        self.name = backend.name
        self.context_length = backend.context_length
        self.tokens = 0
        self.seconds = 0.0

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        started = time.perf_counter()
        generations = self.inner.generate(conversations, params)
        self.seconds += time.perf_counter() - started
        self.tokens += sum(g.completion_tokens for g in generations)
        return generations

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        return self.inner.score(contexts, continuations)

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        return options_scores(self.inner, questions)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> object:
        # Backend-specific helpers (a tokenizer for counting tokens, say) pass through.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def run_summary(*, items: int, unit: str, tokens: int, seconds: float, where: str = "") -> str:
    """The CLI's last line: "8 prompts · 2,304 tokens in 1 min (31 tok/s) → traces.jsonl"."""
    rate = tokens_per_second(tokens, seconds)
    parts = [f"{items} {unit}", f"{tokens:,} tokens in {format_duration(seconds)}"]
    if rate is not None:
        parts[-1] += f" ({format_rate(rate)})"
    return " · ".join(parts) + (f" → {where}" if where else "")
