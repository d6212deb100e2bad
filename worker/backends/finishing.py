"""A decoded row of tokens as a `Generation`: cut at its end-of-turn token or at the first stop
sequence, with the completion tokens it took, for the backends that run their own decoding."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from worker.backends.base import Generation

Detokenize = Callable[[Sequence[int]], str]


def end_of_turn_ids(tokenizer: Any, more: Iterable[int | Sequence[int] | None] = ()) -> list[int]:
    """The tokens that end a reply: the tokenizer's end of text, ChatML's `<|im_end|>` where
    the vocabulary has it, and any the model's generation config adds."""
    ids: set[int] = set()
    for source in (tokenizer.eos_token_id, *more):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(source)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        ids.add(end_of_turn)
    return sorted(ids)


def finish(
    tokens: list[int],
    *,
    end_ids: Sequence[int],
    stop: Sequence[str],
    prompt_tokens: int,
    detokenize: Detokenize,
) -> Generation:
    end = next((i for i, t in enumerate(tokens) if t in end_ids), None)
    produced = tokens if end is None else tokens[:end]
    text = detokenize(produced)
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    if cut >= 0:
        count = tokens_until_stop(produced, stop, detokenize)
        return Generation(text[:cut], prompt_tokens, count, "stop")
    if end is not None:
        # The end-of-turn token was generated, so it counts as a completion token.
        return Generation(text, prompt_tokens, end + 1, "stop")
    return Generation(text, prompt_tokens, len(tokens), "length")


def tokens_until_stop(tokens: list[int], stop: Sequence[str], detokenize: Detokenize) -> int:
    """How many tokens it took to produce the text up to and including a stop sequence."""

    def reached(count: int) -> bool:
        text = detokenize(tokens[:count])
        return any(s in text for s in stop if s)

    # Decoded prefixes only grow, so the first prefix holding the stop is found by bisection.
    low, high = 1, len(tokens)
    while low < high:
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle + 1
    return high
