"""The labeller's multiple-choice question and the answers scored after it (the layout is in
worker.pipeline.ai_feedback's docstring), and the version's comparison few-shots as earlier
turns of the same shape."""

import re
from collections.abc import Sequence

from app.recipe.comparison_text import (
    ANSWER_CUE,
    CONVERSATION_INTRO,
    COT_ANSWER_CUE,
    COT_OPENING,
    COT_REQUEST,
    LETTERS,
)
from app.recipe.documents import FewShotDoc
from worker.backends.base import Conversation

_TRAILING_OPTIONS = re.compile(r"\s*Options:\s*$")


def render_conversation(conversation: Sequence[dict[str, str]]) -> str:
    """The conversation as the paper writes it: "Human: ...\\n\\nAssistant: ..."; system
    messages are the policy's instructions, not part of what is judged, and are left out."""
    return "\n\n".join(
        f"{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content'].strip()}"
        for m in conversation
        if m["role"] != "system"
    )


def question_text(
    conversation: Sequence[dict[str, str]], instruction: str, first: str, second: str
) -> str:
    """The multiple-choice question; "Options:" is written here, once, and never taken from
    the instruction (stored without it; an older one that still ends in it is trimmed)."""
    sentence = _TRAILING_OPTIONS.sub("", instruction.strip())
    return (
        f"{CONVERSATION_INTRO}\n\n{render_conversation(conversation)}\n\n{sentence} Options:\n"
        f" (A) [[[{first.strip()}]]]\n (B) [[[{second.strip()}]]]"
    )


def comparison_prompt(
    conversation: Sequence[dict[str, str]],
    instruction: str,
    reply_a: str,
    reply_b: str,
    *,
    cot: bool,
) -> Conversation:
    """The labeller's question as chat messages: one user turn. The answer to score after it
    is `answer_continuation(letter)`, or `answer_continuation(letter, reasoning)` with CoT."""
    text = question_text(conversation, instruction, reply_a, reply_b)
    if cot:
        text += f"\n\n{COT_REQUEST}"
    return [{"role": "user", "content": text}]


def answer_continuation(letter: str, reasoning: str | None = None) -> str:
    """The assistant reply whose log-probability scores an option: "The answer is: (A)", or
    with chain of thought "Let's think step by step: ...\\n\\nSo the answer is: (A)"."""
    if letter not in LETTERS:
        raise ValueError(f"an option is A or B, not {letter!r}")
    if reasoning is None:
        return f"{ANSWER_CUE} ({letter})"
    return f"{COT_OPENING} {reasoning.strip()}".rstrip() + f"\n\n{COT_ANSWER_CUE} ({letter})"


def comparison_few_shots(few_shots: Sequence[FewShotDoc], instruction: str) -> Conversation:
    """The version's comparison examples as earlier turns.

    An example imported from the paper is a conversation, its better reply as the last
    assistant turn, and worse replies in `extra["incorrects"]`: it becomes a question under
    `instruction` with the better reply as (A) in odd examples and (B) in even ones, so the
    examples teach no position, answered "The answer is: (X)". An example without incorrect
    replies is taken to be written as a question and answer already, and is used as it is.
    The examples carry no reasoning, so with chain of thought they show the answer alone.
    """
    messages: Conversation = []
    examples = [shot for shot in few_shots if shot.kind == "comparison"]
    for number, shot in enumerate(examples):
        turns = [dict(m) for m in shot.messages if m.get("role") != "system"]
        incorrects = [s for s in shot.extra.get("incorrects") or [] if isinstance(s, str) and s]
        if not (incorrects and len(turns) >= 2 and turns[-1]["role"] == "assistant"):
            messages.extend(turns)
            continue
        better, worse = turns[-1]["content"], incorrects[0]
        letter = LETTERS[number % 2]
        first, second = (better, worse) if letter == "A" else (worse, better)
        messages.extend(comparison_prompt(turns[:-1], instruction, first, second, cot=False))
        answer = answer_continuation(letter)
        messages.append({"role": "assistant", "content": answer})
    return messages
