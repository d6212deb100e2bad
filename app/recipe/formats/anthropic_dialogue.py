"""Anthropic's dialogue strings ("\\n\\nHuman: …\\n\\nAssistant: …\\n\\nCritiqueRequest: …")
to chat messages and back."""

from __future__ import annotations

import re
from collections.abc import Callable

_TURN = re.compile(r"\n\n(Human|Assistant|CritiqueRequest|Critique|RevisionRequest|Revision):")
_ROLE_OF = {
    "Human": "user",
    "CritiqueRequest": "user",
    "RevisionRequest": "user",
    "Assistant": "assistant",
    "Critique": "assistant",
    "Revision": "assistant",
}
_CRITIQUE_ROUND = ("CritiqueRequest", "Critique", "RevisionRequest", "Revision")
# The open turn that ends a few-shot dialogue and hands over to the next example.
_OPEN_HUMAN = "\n\nHuman:"
OPEN_ASSISTANT = "\n\nAssistant:"


class BadDialogue(Exception):
    """A dialogue string that cannot be read; the caller adds the file and the JSON path."""


def _split_turns(text: str) -> list[tuple[str, str]]:
    parts = _TURN.split(text)
    lead, rest = parts[0], parts[1:]
    turns = [(rest[i], rest[i + 1].strip()) for i in range(0, len(rest), 2)]
    if not any(marker == "Human" for marker, _ in turns):
        raise BadDialogue('no "\\n\\nHuman:" turns')
    if lead.strip():
        raise BadDialogue('text before the first "\\n\\nHuman:" turn')
    if turns[0][0] != "Human":
        raise BadDialogue('must start with a "\\n\\nHuman:" turn')
    return turns


def _turn_messages(turns: list[tuple[str, str]]) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for number, (marker, content) in enumerate(turns, 1):
        if not content:
            raise BadDialogue(f'turn {number} ("{marker}:") is empty')
        role = _ROLE_OF[marker]
        # Chat templates need alternating turns, and so does the prompt built from them.
        if messages and messages[-1]["role"] == role:
            raise BadDialogue(
                f'turn {number} ("{marker}:") is a second {role} turn in a row; '
                "turns must alternate"
            )
        messages.append({"role": role, "content": content})
    return messages


def critique_shot_messages(text: str) -> list[dict[str, str]]:
    turns = _split_turns(text)
    if turns[-1] == ("Human", ""):
        turns.pop()
    if not turns:
        raise BadDialogue("no turns with text")
    return _turn_messages(turns)


def comparison_prompt_messages(prompt: str) -> list[dict[str, str]]:
    """The conversation before the answer; the prompt ends with the empty Assistant turn."""
    turns = _split_turns(prompt)
    if turns[-1] != ("Assistant", ""):
        raise BadDialogue('must end with an empty "\\n\\nAssistant:" turn for the answer')
    return _turn_messages(turns[:-1])


def render_turns(markers: list[str], messages: list[dict[str, str]]) -> str:
    return "".join(
        f"\n\n{marker}: {m['content']}" if m["content"] else f"\n\n{marker}:"
        for marker, m in zip(markers, messages, strict=True)
    )


def plain_markers(messages: list[dict[str, str]]) -> list[str]:
    return ["Human" if m["role"] == "user" else "Assistant" for m in messages]


def chat_turns(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    # Anthropic's dialogues have no system turn; a doc's system messages are left out there.
    return [m for m in messages if m.get("role") != "system"]


def render_critique_shot(messages: list[dict[str, str]]) -> str:
    chat = chat_turns(messages)
    markers = plain_markers(chat)
    # A conversation followed by one critique round: the last four turns are the round.
    if len(chat) >= 6 and [m["role"] for m in chat[-4:]] == ["user", "assistant"] * 2:
        markers[-4:] = _CRITIQUE_ROUND
    return render_turns(markers, chat) + _OPEN_HUMAN


def same_messages(
    parse: Callable[[str], list[dict[str, str]]], text: str, messages: list[dict[str, str]]
) -> bool:
    """Whether a stored original string still holds these messages (it may be stale)."""
    try:
        return parse(text) == messages
    except BadDialogue:
        return False
