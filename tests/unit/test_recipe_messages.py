"""Unit tests for app.recipe.messages: the exact chat turns the recipe sends to the model."""

from __future__ import annotations

from itertools import pairwise

from app.recipe.documents import FewShotDoc, PrincipleDoc
from app.recipe.messages import (
    SAMPLE_CONVERSATION,
    SAMPLE_CRITIQUE,
    Turn,
    base_messages,
    critique_messages,
    revision_messages,
)

PRINCIPLE = PrincipleDoc(
    key="violence",
    critique_request="Find the violent parts of your last reply.",
    revision_request="Rewrite it without them.",
    comparison_instruction="Which is less violent? Options:",
)
SHOT_ONE = FewShotDoc(
    kind="critique-revision",
    title="one",
    messages=[
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "c1"},
        {"role": "assistant", "content": "k1"},
        {"role": "user", "content": "r1"},
        {"role": "assistant", "content": "v1"},
    ],
)
COMPARISON = FewShotDoc(
    kind="comparison",
    title="a comparison example",
    messages=[{"role": "user", "content": "pick (A) or (B)"}],
)
SHOT_TWO = FewShotDoc(
    kind="critique-revision",
    messages=[{"role": "user", "content": "u2"}, {"role": "assistant", "content": "a2"}],
)
CONVERSATION = [
    {"role": "user", "content": "earlier question"},
    {"role": "assistant", "content": "earlier answer"},
    {"role": "user", "content": "the red-team prompt"},
    {"role": "assistant", "content": "the initial reply"},
]


def summary(turns: list[Turn]) -> list[tuple[str, str, str]]:
    return [(turn.role, turn.content, turn.part) for turn in turns]


def test_base_messages_order_roles_and_parts() -> None:
    turns = base_messages("Be helpful.", [SHOT_ONE, COMPARISON, SHOT_TWO], CONVERSATION)
    assert summary(turns) == [
        ("system", "Be helpful.", "system prompt"),
        ("user", "u1", "few-shot 1"),
        ("assistant", "a1", "few-shot 1"),
        ("user", "c1", "few-shot 1"),
        ("assistant", "k1", "few-shot 1"),
        ("user", "r1", "few-shot 1"),
        ("assistant", "v1", "few-shot 1"),
        ("user", "u2", "few-shot 2"),
        ("assistant", "a2", "few-shot 2"),
        ("user", "earlier question", "context"),
        ("assistant", "earlier answer", "context"),
        ("user", "the red-team prompt", "prompt"),
        ("assistant", "the initial reply", "initial reply"),
    ]


def test_comparison_few_shots_are_left_out() -> None:
    turns = base_messages("", [COMPARISON], CONVERSATION[2:])
    assert all("(A)" not in turn.content for turn in turns)
    assert [turn.part for turn in turns] == ["prompt", "initial reply"]


def test_empty_system_prompt_is_omitted() -> None:
    turns = base_messages("", [], [{"role": "user", "content": "hello"}])
    assert summary(turns) == [("user", "hello", "prompt")]


def test_conversation_without_a_reply_ends_with_the_prompt() -> None:
    turns = base_messages("S", [], CONVERSATION[:3])
    assert [turn.part for turn in turns] == ["system prompt", "context", "context", "prompt"]


def test_critique_messages_append_the_critique_request() -> None:
    turns = critique_messages("S", [SHOT_TWO], CONVERSATION, PRINCIPLE)
    assert turns[:-1] == base_messages("S", [SHOT_TWO], CONVERSATION)
    assert turns[-1] == Turn("user", PRINCIPLE.critique_request, "critique request")


def test_revision_messages_append_critique_and_revision_request() -> None:
    turns = revision_messages("S", [SHOT_ONE], CONVERSATION, PRINCIPLE, "It was violent.")
    assert turns[:-2] == critique_messages("S", [SHOT_ONE], CONVERSATION, PRINCIPLE)
    assert summary(turns[-2:]) == [
        ("assistant", "It was violent.", "critique"),
        ("user", PRINCIPLE.revision_request, "revision request"),
    ]
    roles = [turn.role for turn in turns[1:]]
    assert all(a != b for a, b in pairwise(roles))


def test_inputs_are_not_modified() -> None:
    conversation = [dict(message) for message in CONVERSATION]
    messages_before = [dict(message) for message in SHOT_ONE.messages]
    revision_messages("S", [SHOT_ONE], conversation, PRINCIPLE, "critique")
    assert conversation == CONVERSATION
    assert SHOT_ONE.messages == messages_before


def test_as_message() -> None:
    assert Turn("user", "hi", "prompt").as_message() == {"role": "user", "content": "hi"}


def test_sample_conversation_previews_a_full_revision() -> None:
    assert [message["role"] for message in SAMPLE_CONVERSATION] == ["user", "assistant"]
    assert all(message["content"].strip() for message in SAMPLE_CONVERSATION)
    assert SAMPLE_CRITIQUE.strip()
    turns = revision_messages("S", [], SAMPLE_CONVERSATION, PRINCIPLE, SAMPLE_CRITIQUE)
    assert [turn.part for turn in turns] == [
        "system prompt",
        "prompt",
        "initial reply",
        "critique request",
        "critique",
        "revision request",
    ]
