"""Reading log-probabilities out of an OpenAI-compatible ``/completions`` answer.

Servers write them in two shapes: the legacy completions one (vLLM, llama-cpp-python:
``tokens``, ``token_logprobs``, ``top_logprobs`` as one ``{token: logprob}`` per entry,
``text_offset``) and the chat one that llama.cpp's own server also uses for completions
(``content``: one ``{token, logprob, top_logprobs: [{token, logprob}]}`` per entry). Both become
one ``TokenLogprobs``.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenLogprobs:
    """One entry per token of an answer (the echoed prompt and what was generated)."""

    tokens: list[str]
    values: list[float | None]  # as the server says; None where it gives none (the first)
    tops: list[dict[str, float]]  # each entry's most likely tokens; {} where it gives none
    offsets: list[int]  # each token's first character in the text

    def __len__(self) -> int:
        return len(self.tokens)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _legacy_tops(raw: Any, count: int) -> list[dict[str, float]]:
    tops: list[dict[str, float]] = []
    entries = raw if isinstance(raw, list) else []
    for index in range(count):
        entry = entries[index] if index < len(entries) else None
        top: dict[str, float] = {}
        if isinstance(entry, dict):
            for token, value in entry.items():
                number = _number(value)
                if number is not None:
                    top[str(token)] = number
        tops.append(top)
    return tops


def _from_content(content: list[Any]) -> TokenLogprobs | None:
    tokens: list[str] = []
    values: list[float | None] = []
    tops: list[dict[str, float]] = []
    for entry in content:
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            return None
        tokens.append(entry["token"])
        values.append(_number(entry.get("logprob")))
        top: dict[str, float] = {}
        for alternative in entry.get("top_logprobs") or []:
            if isinstance(alternative, dict) and isinstance(alternative.get("token"), str):
                number = _number(alternative.get("logprob"))
                if number is not None:
                    top[alternative["token"]] = number
        tops.append(top)
    return TokenLogprobs(tokens, values, tops, _running_offsets(tokens))


def _running_offsets(tokens: list[str]) -> list[int]:
    offsets, position = [], 0
    for token in tokens:
        offsets.append(position)
        position += len(token)
    return offsets


def parse_logprobs(answer: dict[str, Any]) -> TokenLogprobs | None:
    """The first choice's log-probabilities, or None where the answer carries none."""
    try:
        logprobs = answer["choices"][0].get("logprobs")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if isinstance(content, list) and content:
        return _from_content(content)
    tokens = logprobs.get("tokens")
    values = logprobs.get("token_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list) or not tokens:
        return None
    if len(tokens) != len(values) or not all(isinstance(t, str) for t in tokens):
        return None
    offsets = logprobs.get("text_offset")
    if not isinstance(offsets, list) or len(offsets) != len(tokens):
        offsets = _running_offsets(tokens)
    return TokenLogprobs(
        tokens=list(tokens),
        values=[_number(v) for v in values],
        tops=_legacy_tops(logprobs.get("top_logprobs"), len(tokens)),
        offsets=[int(o) for o in offsets],
    )


def prompt_tail(logprobs: TokenLogprobs, length: int, generated: int) -> list[int]:
    """The entries of the last ``length`` characters of the echoed prompt, oldest first.

    Counted back from the end, past the ``generated`` tokens the server added, because servers
    place ``text_offset`` differently (llama-cpp-python measures text without its special
    tokens). A token that straddles the start (" Yes" after "Assistant:") is part of the
    tail. Empty tokens (special ones written as nothing) at the very end are left out."""
    end = max(len(logprobs) - max(generated, 0), 0)
    chosen: list[int] = []
    covered = 0
    index = end - 1
    while index >= 0 and covered < length:
        token = logprobs.tokens[index]
        if token or chosen:
            chosen.append(index)
            covered += len(token)
        index -= 1
    return chosen[::-1]


def generated_entries(
    answer: dict[str, Any], logprobs: TokenLogprobs, prompt: str, tail: str
) -> int:
    """How many entries at the end of an echo are generated tokens, not the prompt's.

    Servers differ, and usage's completion_tokens does not say: llama-cpp-python lists the one
    generated token only when it dropped a leading BOS. So the echoed text decides: where the
    entries end with the generated text after the prompt's end, those entries are generated.
    """
    try:
        text = answer["choices"][0].get("text")
    except (KeyError, IndexError, TypeError, AttributeError):
        text = None
    if not isinstance(text, str) or not text.startswith(prompt) or len(text) == len(prompt):
        return 0
    generated = text[len(prompt) :]
    joined = "".join(logprobs.tokens)
    if not joined.endswith(tail + generated):
        return 0
    covered, count = 0, 0
    while covered < len(generated) and count < len(logprobs):
        covered += len(logprobs.tokens[len(logprobs) - 1 - count])
        count += 1
    return count
