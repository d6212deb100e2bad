from collections.abc import Sequence

import pytest

from app.recipe.documents import ConstitutionDoc, FewShotDoc, PrincipleDoc
from app.recipe.messages import critique_messages, revision_messages
from worker.backends.base import Conversation, Generation, GenerationParams
from worker.backends.fake import FakeBackend
from worker.pipeline.critique_revision import (
    GenerationConfig,
    PromptInput,
    clean_output,
    critique_and_revise,
    sample_round_principles,
)

PRINCIPLES = [
    PrincipleDoc(
        key=f"p{i}",
        critique_request=f"Critique under p{i}.",
        revision_request=f"Revise under p{i}.",
    )
    for i in range(5)
]
DOC = ConstitutionDoc(
    name="t",
    principles=[
        *PRINCIPLES,
        PrincipleDoc(key="off", critique_request="x", revision_request="y", enabled=False),
    ],
    system_prompt="Be good.",
    few_shots=[
        FewShotDoc(
            kind="critique-revision",
            messages=[{"role": "user", "content": "ex"}, {"role": "assistant", "content": "ample"}],
        )
    ],
)


def prompts(n: int) -> list[PromptInput]:
    return [
        PromptInput(prompt_id=100 + i, messages=[{"role": "user", "content": f"question {i}?"}])
        for i in range(n)
    ]


def test_principles_are_seeded_per_prompt_and_only_enabled_ones() -> None:
    first = sample_round_principles(DOC.principles, seed=3, prompt_id=7, rounds=8)
    assert first == sample_round_principles(DOC.principles, seed=3, prompt_id=7, rounds=8)
    assert all(p.enabled for p in first)
    others = {
        tuple(p.key for p in sample_round_principles(DOC.principles, seed=3, prompt_id=i, rounds=8))
        for i in range(20)
    }
    assert len(others) > 10
    assert sample_round_principles(DOC.principles, seed=4, prompt_id=7, rounds=8) != first
    with pytest.raises(ValueError, match="no enabled principle"):
        sample_round_principles([DOC.principles[-1]], seed=0, prompt_id=1, rounds=1)


def test_round_one_sends_exactly_what_the_preview_shows() -> None:
    backend = FakeBackend()
    [trace] = critique_and_revise(prompts(1), DOC, backend, GenerationConfig(rounds=1, seed=1))
    principle = trace.rounds[0].principle
    conversation = [
        {"role": "user", "content": "question 0?"},
        {"role": "assistant", "content": trace.initial.text},
    ]
    expected_critique = [
        t.as_message()
        for t in critique_messages(DOC.system_prompt, DOC.few_shots, conversation, principle)
    ]
    expected_revision = [
        t.as_message()
        for t in revision_messages(
            DOC.system_prompt, DOC.few_shots, conversation, principle, trace.rounds[0].critique.text
        )
    ]
    assert backend.calls[1][0] == expected_critique
    assert backend.calls[2][0] == expected_revision
    assert backend.calls[0][0][0] == {"role": "system", "content": "Be good."}


def test_every_step_goes_to_the_backend_as_one_batch() -> None:
    backend = FakeBackend()
    traces = critique_and_revise(prompts(6), DOC, backend, GenerationConfig(rounds=3))
    assert [len(call) for call in backend.calls] == [6] * 7  # initial + 3 x (critique, revision)
    assert [t.prompt_id for t in traces] == [100 + i for i in range(6)]
    assert all(len(t.rounds) == 3 for t in traces)
    # Later rounds build on the earlier ones: the last call holds the whole exchange.
    assert len(backend.calls[-1][0]) == len(backend.calls[0][0]) + 3 * 4  # 4 turns a round
    assert traces[0].final_reply == traces[0].rounds[-1].revision.text


def test_resuming_a_prompt_gives_it_the_same_principles() -> None:
    alone = critique_and_revise(
        prompts(3)[2:], DOC, FakeBackend(), GenerationConfig(rounds=4, seed=9)
    )
    together = critique_and_revise(
        prompts(3), DOC, FakeBackend(), GenerationConfig(rounds=4, seed=9)
    )
    assert [r.principle.key for r in alone[0].rounds] == [
        r.principle.key for r in together[2].rounds
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Assistant: Sure, here it is.", "Sure, here it is."),
        ("  Revision: A kinder reply.\n", "A kinder reply."),
        ("A good answer.\nHuman: and now?\nAssistant: more", "A good answer."),
        ("Line one.\n\nLine two.###ignored", "Line one.\n\nLine two."),
        ("Critique:   ", ""),
    ],
)
def test_outputs_are_cleaned(raw: str, expected: str) -> None:
    assert clean_output(raw, stop=("###",)) == expected


class FlakyBackend(FakeBackend):
    """Returns an empty output for marked prompts, `empty_times` times."""

    def __init__(self, empty_times: int) -> None:
        super().__init__()
        self.empty_times = empty_times

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        results = super().generate(conversations, params)
        out = []
        for conversation, result in zip(conversations, results, strict=True):
            if "empty" in conversation[-1]["content"] and self.empty_times > 0:
                self.empty_times -= 1
                result = Generation(
                    text="Assistant:", prompt_tokens=1, completion_tokens=1, finish_reason="stop"
                )
            out.append(result)
        return out


def test_an_empty_output_is_retried_once_then_marked() -> None:
    batch = [
        PromptInput(prompt_id=1, messages=[{"role": "user", "content": "empty please"}]),
        *prompts(2),
    ]
    once = critique_and_revise(batch, DOC, FlakyBackend(empty_times=1), GenerationConfig())
    assert once[0].initial.text and once[0].flags == []
    twice = critique_and_revise(batch, DOC, FlakyBackend(empty_times=2), GenerationConfig())
    assert twice[0].initial.text == "" and "empty_initial" in twice[0].flags
    assert twice[1].flags == []


class TruncatingBackend(FakeBackend):
    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        results = super().generate(conversations, params)
        return [
            Generation(
                r.text,
                r.prompt_tokens,
                r.completion_tokens,
                r.finish_reason,
                truncated="long" in c[-1]["content"],
            )
            for c, r in zip(conversations, results, strict=True)
        ]


def test_a_truncated_prompt_is_marked_on_its_trace_only() -> None:
    batch = [
        PromptInput(prompt_id=1, messages=[{"role": "user", "content": "long " * 50}]),
        *prompts(1),
    ]
    traces = critique_and_revise(batch, DOC, TruncatingBackend(), GenerationConfig())
    assert "truncated" in traces[0].flags and traces[1].flags == []


def test_rounds_are_bounded() -> None:
    with pytest.raises(ValueError, match="between 1 and 8"):
        critique_and_revise(prompts(1), DOC, FakeBackend(), GenerationConfig(rounds=9))
