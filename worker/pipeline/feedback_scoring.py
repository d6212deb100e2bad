"""Asking the backend: which questions fit its context, the reasoning with chain of thought
(one `generate` call), the options' log-probabilities (one `score_options` call), and their
normalisation into probabilities."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from app.recipe.comparison_text import COT_ANSWER_CUE, COT_OPENING, LETTERS
from worker.backends.base import (
    Backend,
    BackendError,
    Conversation,
    GenerationParams,
    TransientBackendError,
    options_scores,
)
from worker.pipeline.critique_revision import clean_output
from worker.pipeline.feedback_questions import answer_continuation

# Where reasoning stops: the model's own answer is dropped, because the answer is scored.
COT_STOP = (COT_ANSWER_CUE, "\n\nHuman:")
# Added to a question's length for the answer's own tokens when checking it fits the context.
_ANSWER_TOKENS_MARGIN = 4

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class OptionScores:
    """The labeller's answer to one multiple-choice question, by the option's shown letter."""

    logprob_a: float
    logprob_b: float
    prob_a: float  # normalised, before any clamping
    prob_b: float
    reasoning: str = ""


@dataclass(frozen=True)
class Unscored:
    """A question that was not scored: "too_long" for the context, or "score_failed"."""

    reason: str


def clean_reasoning(text: str) -> str:
    """Generated reasoning without the opening the model may repeat or the answer it may give."""
    text = clean_output(text, COT_STOP)
    if text.lower().startswith(COT_OPENING.lower()):
        text = text[len(COT_OPENING) :]
    return text.strip()


def option_probabilities(logprob_a: float, logprob_b: float) -> tuple[float, float]:
    """Softmax over the two options' log-probabilities, stable for any magnitude.

    The smaller probability is computed directly and the larger as one minus it, so the pair
    sums to 1 and swapping the inputs swaps the outputs exactly."""
    if math.isnan(logprob_a) or math.isnan(logprob_b):
        raise ValueError("an option's log-probability is NaN")
    if logprob_a == logprob_b:  # also two equal infinities, whose difference is NaN
        return 0.5, 0.5
    if logprob_a > logprob_b:
        low = math.exp(logprob_b - logprob_a)
        p_b = low / (1.0 + low)
        return 1.0 - p_b, p_b
    low = math.exp(logprob_a - logprob_b)
    p_a = low / (1.0 + low)
    return p_a, 1.0 - p_a


def clamp(p_a: float, low: float, high: float) -> tuple[float, float]:
    """P(A) held within [low, high], with P(B) its complement."""
    held = min(max(p_a, low), high)
    return held, 1.0 - held


def count_tokens(backend: Backend, messages: Conversation, continuation: str = "") -> int:
    """The prompt's length in tokens as the backend will see it, plus the continuation's.

    A backend's own `count_tokens(messages)` measures the prompt where it has one; a local
    backend's tokenizer and chat template (the transformers backend exposes `tokenizer`) measure
    both otherwise; anything else is estimated at four characters a token. The estimate only
    decides what to skip: the transformers backend would silently cut a long prompt's start."""
    counter = getattr(backend, "count_tokens", None)
    tokenizer = getattr(backend, "tokenizer", None)
    if callable(counter):
        return int(counter(messages)) + math.ceil(len(continuation) / 4)
    if tokenizer is not None and hasattr(tokenizer, "apply_chat_template"):
        text = str(
            tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        )
        ids = tokenizer(text + continuation, add_special_tokens=False)["input_ids"]
        return len(ids)
    characters = sum(len(m["content"]) + len(m["role"]) + 8 for m in messages) + len(continuation)
    return math.ceil(characters / 4)


def _in_groups(
    groups: Sequence[Sequence[T]], call: Callable[[list[T]], list[R]]
) -> list[list[R] | BackendError]:
    """`call` once over every group's items; if that fails, once per group, so one group the
    backend refuses (too long for a server's context) costs only itself. A transient error is
    left to the caller's retry, and if every group fails the first error is raised."""
    flat = [item for group in groups for item in group]
    if not flat:
        return [[] for _ in groups]
    try:
        results = call(flat)
    except TransientBackendError:
        raise
    except BackendError:
        pass
    else:
        out: list[list[R] | BackendError] = []
        start = 0
        for group in groups:
            out.append(results[start : start + len(group)])
            start += len(group)
        return out
    each: list[list[R] | BackendError] = []
    for group in groups:
        try:
            each.append(call(list(group)) if group else [])
        except TransientBackendError:
            raise
        except BackendError as exc:
            each.append(exc)
    failures = [r for r in each if isinstance(r, BackendError)]
    if len(failures) == len(groups):
        raise failures[0]
    return each


def score_options(
    questions: Sequence[Conversation],
    backend: Backend,
    *,
    chain_of_thought: bool = False,
    cot_max_new_tokens: int = 128,
    seed: int = 0,
) -> list[OptionScores | Unscored]:
    """Answers multiple-choice questions (each ending in the user's question turn) by scoring
    the options (A) and (B): one `generate` call for all reasoning with chain of thought, then
    one `score_options` call for every question. A question that does not fit the backend's
    context is "too_long" and skipped; the others are scored regardless."""
    results: list[OptionScores | Unscored | None] = [None] * len(questions)
    # Room the reply needs: the answer, and with chain of thought the longest reasoning.
    fixed = answer_continuation("A", "" if chain_of_thought else None)
    reserve = (cot_max_new_tokens if chain_of_thought else 0) + _ANSWER_TOKENS_MARGIN
    fitting: list[int] = []
    for i, question in enumerate(questions):
        if count_tokens(backend, question, fixed) + reserve > backend.context_length:
            results[i] = Unscored("too_long")
        else:
            fitting.append(i)

    reasoning: dict[int, str] = {}
    if chain_of_thought and fitting:
        params = GenerationParams(
            max_new_tokens=cot_max_new_tokens, temperature=0.0, stop=COT_STOP, seed=seed
        )
        generated = _in_groups(
            [[questions[i]] for i in fitting], lambda batch: backend.generate(batch, params)
        )
        still: list[int] = []
        for i, generation in zip(fitting, generated, strict=True):
            if isinstance(generation, BackendError):
                results[i] = Unscored("score_failed")
            elif generation[0].truncated:
                results[i] = Unscored("too_long")
            else:
                reasoning[i] = clean_reasoning(generation[0].text)
                still.append(i)
        fitting = still

    def asked(i: int) -> list[tuple[Conversation, list[str]]]:
        thought = reasoning.get(i) if chain_of_thought else None
        return [(questions[i], [answer_continuation(letter, thought) for letter in LETTERS])]

    # Both options of a question in one item: a backend that can reads the question once.
    scored = _in_groups([asked(i) for i in fitting], lambda batch: options_scores(backend, batch))
    for i, outcome in zip(fitting, scored, strict=True):
        if isinstance(outcome, BackendError):
            results[i] = Unscored("score_failed")
            continue
        logprob_a, logprob_b = outcome[0]
        p_a, p_b = option_probabilities(logprob_a, logprob_b)
        results[i] = OptionScores(logprob_a, logprob_b, p_a, p_b, reasoning.get(i, ""))
    return [r if r is not None else Unscored("score_failed") for r in results]
