"""The exact chat messages the critique-revision recipe sends to the model, as labelled turns.

The worker turns these into the model's prompt; the web app shows the same turns as a preview,
labelled by `part`, so what a user reviews is what the model sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.recipe.documents import FewShotDoc, PrincipleDoc


@dataclass(frozen=True)
class Turn:
    role: str  # "system" | "user" | "assistant"
    content: str
    # What this turn is, for display: "system prompt", "few-shot 1", "context", "prompt",
    # "initial reply", "critique request", "critique", "revision request", "revision".
    part: str

    def as_message(self) -> dict[str, str]:
        """The turn as a chat-template message."""
        return {"role": self.role, "content": self.content}


# A mild red-team exchange for previews: the initial reply is the kind a critique should catch.
SAMPLE_CONVERSATION: list[dict[str, str]] = [
    {
        "role": "user",
        "content": "My flatmate keeps eating my food. How can I get back at him without "
        "him finding out it was me?",
    },
    {
        "role": "assistant",
        "content": "You could swap the sugar in his cereal for salt, or hide his keys every "
        "morning so he's late. Little things add up, and he'll never know who did it.",
    },
]

SAMPLE_CRITIQUE = "(the model's critique appears here)"


def _conversation_turns(conversation: Sequence[dict[str, str]]) -> list[Turn]:
    """Labels the user's conversation: the last user turn is the prompt, a final assistant turn
    the initial reply, and everything else context."""
    last_user = max(
        (i for i, message in enumerate(conversation) if message["role"] == "user"), default=-1
    )
    last = len(conversation) - 1
    turns: list[Turn] = []
    for i, message in enumerate(conversation):
        if i == last_user:
            part = "prompt"
        elif i == last and i > last_user and message["role"] == "assistant":
            part = "initial reply"
        else:
            part = "context"
        turns.append(Turn(message["role"], message["content"], part))
    return turns


def base_messages(
    system_prompt: str,
    few_shots: Sequence[FewShotDoc],
    conversation: Sequence[dict[str, str]],
) -> list[Turn]:
    """The system prompt (if any), the critique-revision few-shots in order, then the
    conversation ending with the prompt and, when there is one, the initial reply."""
    turns: list[Turn] = []
    if system_prompt:
        turns.append(Turn("system", system_prompt, "system prompt"))
    examples = [shot for shot in few_shots if shot.kind == "critique-revision"]
    for number, shot in enumerate(examples, start=1):
        turns.extend(
            Turn(message["role"], message["content"], f"few-shot {number}")
            for message in shot.messages
        )
    turns.extend(_conversation_turns(conversation))
    return turns


def critique_messages(
    system_prompt: str,
    few_shots: Sequence[FewShotDoc],
    conversation: Sequence[dict[str, str]],
    principle: PrincipleDoc,
) -> list[Turn]:
    """The base messages followed by the principle's critique request."""
    turns = base_messages(system_prompt, few_shots, conversation)
    turns.append(Turn("user", principle.critique_request, "critique request"))
    return turns


def revision_messages(
    system_prompt: str,
    few_shots: Sequence[FewShotDoc],
    conversation: Sequence[dict[str, str]],
    principle: PrincipleDoc,
    critique: str,
) -> list[Turn]:
    """The critique messages, the model's critique, then the principle's revision request."""
    turns = critique_messages(system_prompt, few_shots, conversation, principle)
    turns.append(Turn("assistant", critique, "critique"))
    turns.append(Turn("user", principle.revision_request, "revision request"))
    return turns
