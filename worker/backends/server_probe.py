"""Checking a server's log-probabilities once, with a sequence whose answer is known.

Servers differ in what ``/completions`` gives back, and some give wrong numbers without an
error: llama-cpp-python 0.3.36 answers ``echo`` with prompt log-probabilities shifted by one
position (entry i holds log P(token i | tokens <= i), and the distribution of token i + 1; the
right value sits in entry i - 1's ``top_logprobs``) for a prompt that does not start with the
model's BOS token, and aligned ones for a prompt that does. llama.cpp's own server and Ollama return
log-probabilities for generated tokens only. So before scoring through a server the backend
sends "1, 2, 3, 4, 5, 6" with ``echo``: in a counting sequence every model gives the next number
a high probability (SmolLM2-135M: "4" at -0.12), and a shifted server gives it at its own entry
a low one (-8.2). The outcome decides how the server scores (``ScoringMode``).
"""

import datetime
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from worker.backends.base import BackendError, TransientBackendError
from worker.backends.server_logprobs import (
    TokenLogprobs,
    generated_entries,
    parse_logprobs,
    prompt_tail,
)

PROBE_TEXT = "1, 2, 3, 4, 5, 6"
# The numbers whose log-probabilities are read (the first ones have too little to go on).
PROBED_DIGITS = frozenset("3456")
# How many alternatives per entry to ask for: vLLM's default --max-logprobs is 20.
TOP_LOGPROBS = 20
# A mean log-probability above this reads as "the model saw the sequence coming".
PREDICTABLE = -2.5
# What a token missing from an entry's top list counts as in the probe's means.
MISSING = -30.0

Post = Callable[[str, dict[str, Any]], dict[str, Any]]


class ScoringMode(StrEnum):
    ECHO = "echo"  # prompt log-probabilities, aligned (vLLM)
    ECHO_SHIFTED = "echo_shifted"  # prompt log-probabilities one entry late, corrected
    NEXT_TOKEN = "next_token"  # no usable prompt log-probabilities: read generated ones
    UNSUPPORTED = "unsupported"  # no log-probabilities at all: scoring fails with a message


MODE_TEXT = {
    ScoringMode.ECHO: "scores from the prompt's log-probabilities (echo)",
    ScoringMode.ECHO_SHIFTED: (
        "echo log-probabilities are shifted by one position: corrected from the previous "
        "entry's top_logprobs"
    ),
    ScoringMode.NEXT_TOKEN: (
        "no usable prompt log-probabilities: scores token by token from the next token's "
        "top_logprobs"
    ),
    ScoringMode.UNSUPPORTED: "gives no log-probabilities: labelling through it cannot work",
}


@dataclass(frozen=True)
class ServerProbe:
    """How a server scores, and the numbers that decided it (kept on the model's row)."""

    mode: ScoringMode
    detail: str
    # Mean log-probability of "3" to "6" read at their own entries (right for an aligned
    # server), and read from the previous entries' top_logprobs (right for a shifted one).
    aligned: float | None = None
    shifted: float | None = None
    # log P(" 6" | "1, 2, 3, 4, 5,") from the first generated token, where that was asked.
    next_token: float | None = None
    # Where scoring's prompt text comes from: "tokenizer", "server" or "plain".
    template: str = ""
    probed_at: str = ""

    @property
    def summary(self) -> str:
        return MODE_TEXT[self.mode]

    def to_json(self) -> dict[str, Any]:
        # The summary travels with the numbers: the web app shows it and imports no worker code.
        return {**asdict(self), "mode": self.mode.value, "summary": self.summary}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ServerProbe":
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{**fields, "mode": ScoringMode(data["mode"])})


def _digit_entries(logprobs: TokenLogprobs, generated: int) -> list[int]:
    tail = prompt_tail(logprobs, len(PROBE_TEXT), generated)
    return [i for i in tail if i > 0 and logprobs.tokens[i].strip() in PROBED_DIGITS]


def read_echo(logprobs: TokenLogprobs, generated: int) -> tuple[float, float] | None:
    """(aligned, shifted) means over the probed digits, or None when the echo lacks them."""
    entries = _digit_entries(logprobs, generated)
    if len(entries) < 2:
        return None
    aligned = [logprobs.values[i] for i in entries]
    if any(value is None for value in aligned):
        return None
    shifted = [logprobs.tops[i - 1].get(logprobs.tokens[i], MISSING) for i in entries]
    return statistics.fmean(v for v in aligned if v is not None), statistics.fmean(shifted)


def read_next_token(logprobs: TokenLogprobs, prompt: str) -> float | None:
    """The best log-probability among the first generated token's alternatives that continue
    ``prompt`` (the start of PROBE_TEXT) along PROBE_TEXT (" 6", or " " where spaces are
    tokens of their own)."""
    if not len(logprobs):
        return None
    top = dict(logprobs.tops[0])
    if logprobs.values[0] is not None:
        top.setdefault(logprobs.tokens[0], logprobs.values[0])
    fitting = [v for t, v in top.items() if t and PROBE_TEXT.startswith(prompt + t)]
    return max(fitting) if fitting else None


def probe_server(
    post: Post, url: str, model: str, *, prefix: str = "", template: str = ""
) -> ServerProbe:
    """Probes the ``/completions`` endpoint at ``url``; a transient failure propagates.

    ``prefix`` is what scoring's prompts start with (the chat template up to the assistant's
    turn): whether a server shifts can depend on it. llama-cpp-python's shift comes from
    dropping a leading BOS token that is not there: SmolLM2's BOS is <|im_start|>, so a prompt
    in its chat template comes back aligned, and plain text shifted."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    aligned = shifted = None
    body = {"model": model, "prompt": prefix + PROBE_TEXT, "max_tokens": 1, "temperature": 0}
    try:
        answer = post(url, {**body, "echo": True, "logprobs": TOP_LOGPROBS})
    except TransientBackendError:
        raise
    except BackendError as exc:  # echo refused: try generated tokens alone
        echo_note = f"echo refused ({exc})"
    else:
        logprobs = parse_logprobs(answer)
        sent = prefix + PROBE_TEXT
        generated = generated_entries(answer, logprobs, sent, PROBE_TEXT) if logprobs else 0
        read = read_echo(logprobs, generated) if logprobs else None
        echo_note = "echo gave no prompt log-probabilities"
        if read is not None:
            aligned, shifted = read
            numbers = f"digits at their own entries {aligned:.2f}, one entry earlier {shifted:.2f}"
            echo_note = f"echo: {numbers}"
            if aligned >= PREDICTABLE and aligned >= shifted:
                return ServerProbe(
                    ScoringMode.ECHO, echo_note, aligned, shifted, None, template, now
                )
            if shifted >= PREDICTABLE:
                return ServerProbe(
                    ScoringMode.ECHO_SHIFTED, echo_note, aligned, shifted, None, template, now
                )
    prompt = PROBE_TEXT[: PROBE_TEXT.rindex(" ")]
    try:
        answer = post(url, {**body, "prompt": prefix + prompt, "logprobs": TOP_LOGPROBS})
    except TransientBackendError:
        raise
    except BackendError as exc:
        detail = f"{echo_note}; logprobs refused ({exc})"
        return ServerProbe(ScoringMode.UNSUPPORTED, detail, aligned, shifted, None, template, now)
    logprobs = parse_logprobs(answer)
    value = read_next_token(logprobs, prompt) if logprobs else None
    if value is not None and value >= PREDICTABLE:
        detail = f"{echo_note}; next token after '{prompt}': {value:.2f}"
        return ServerProbe(ScoringMode.NEXT_TOKEN, detail, aligned, shifted, value, template, now)
    found = "no log-probabilities" if logprobs is None else f"next token {value}"
    detail = f"{echo_note}; {found} for '{prompt}'"
    return ServerProbe(ScoringMode.UNSUPPORTED, detail, aligned, shifted, value, template, now)
