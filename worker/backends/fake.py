"""A deterministic backend for unit tests of the stages: it never stands in for a real model."""

import hashlib
from collections.abc import Sequence

from worker.backends.base import (
    Conversation,
    Generation,
    GenerationParams,
    OptionsQuestion,
    score_each_option,
)


class FakeBackend:
    name = "fake"
    context_length = 4096

    def __init__(self, replies: dict[str, list[str]] | None = None) -> None:
        # Scripted replies by the last user message; otherwise a reply derived from it.
        self.replies = {key: list(values) for key, values in (replies or {}).items()}
        self.calls: list[list[Conversation]] = []

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        self.calls.append([list(c) for c in conversations])
        results = []
        for conversation in conversations:
            last = conversation[-1]["content"]
            scripted = self.replies.get(last)
            if scripted:
                text = scripted.pop(0)
            else:
                digest = hashlib.sha256(str(conversation).encode()).hexdigest()[:8]
                text = f"reply {digest} to: {last[:40]}"
            words = text.split(" ")
            results.append(
                Generation(
                    text=" ".join(words[: params.max_new_tokens]),
                    prompt_tokens=sum(len(m["content"].split()) for m in conversation),
                    completion_tokens=min(len(words), params.max_new_tokens),
                    finish_reason="length" if len(words) > params.max_new_tokens else "stop",
                )
            )
        return results

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        return [-float(len(c)) for c in continuations]

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        return score_each_option(self, questions)

    def close(self) -> None:
        pass
