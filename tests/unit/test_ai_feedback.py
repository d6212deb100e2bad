"""AI feedback's pure core: prompts, normalisation, order averaging, ensembles, CoT, skipping."""

import math
import os

# Nothing here may reach a model hub; set before transformers reads its settings.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from app.recipe.documents import ConstitutionDoc, FewShotDoc, PrincipleDoc
from worker.backends.base import (
    BackendError,
    Conversation,
    Generation,
    GenerationParams,
    TransientBackendError,
)
from worker.pipeline.ai_feedback import (
    COT_REQUEST,
    LabelConfig,
    PairInput,
    answer_continuation,
    clamp,
    comparison_few_shots,
    comparison_prompt,
    label_pairs,
    option_probabilities,
    sample_comparison_principles,
)

PRINCIPLES = [
    PrincipleDoc(
        key=f"p{i}",
        critique_request=f"Critique under p{i}.",
        revision_request=f"Revise under p{i}.",
        comparison_instruction=f"Please choose the response that is best under rule {i}.",
    )
    for i in range(5)
]
DOC = ConstitutionDoc(
    name="t",
    principles=[
        *PRINCIPLES,
        PrincipleDoc(key="none", critique_request="c", revision_request="r"),
        PrincipleDoc(
            key="off",
            critique_request="c",
            revision_request="r",
            comparison_instruction="Off.",
            enabled=False,
        ),
    ],
)
_OPTIONS = re.compile(r" \(A\) \[\[\[(?P<a>.*?)\]\]\]\n \(B\) \[\[\[(?P<b>.*?)\]\]\]", re.DOTALL)
_RULE = re.compile(r"under rule (\d)")


def shown(context: Conversation) -> dict[str, str]:
    """The replies shown as (A) and (B) in the last question of a context."""
    matches = list(_OPTIONS.finditer(context[-1]["content"]))
    return {"A": matches[-1]["a"], "B": matches[-1]["b"]}


def letter_of(continuation: str) -> str:
    match = re.search(r"\(([AB])\)$", continuation)
    assert match, continuation
    return match.group(1)


Scorer = Callable[[Conversation, str], float]


class FakeScorer:
    """A Backend whose score is a function of (context, continuation), with scripted reasoning."""

    name = "fake-scorer"

    def __init__(
        self,
        scorer: Scorer,
        *,
        context_length: int = 100_000,
        reasoning: str = "",
        fail: Callable[[Sequence[Conversation]], Exception | None] = lambda contexts: None,
    ) -> None:
        self.scorer = scorer
        self.context_length = context_length
        self.reasoning = reasoning
        self.fail = fail
        self.score_calls: list[tuple[list[Conversation], list[str]]] = []
        self.generate_calls: list[list[Conversation]] = []

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        self.generate_calls.append(list(conversations))
        return [Generation(self.reasoning, 10, 10, "stop") for _ in conversations]

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        self.score_calls.append((list(contexts), list(continuations)))
        error = self.fail(contexts)
        if error:
            raise error
        return [self.scorer(c, t) for c, t in zip(contexts, continuations, strict=True)]

    def close(self) -> None:
        pass


def prefers(word: str, strength: float = 5.0) -> Scorer:
    """Log-probability 0 for the option that shows a reply holding `word`, -strength else."""

    def score(context: Conversation, continuation: str) -> float:
        return 0.0 if word in shown(context)[letter_of(continuation)] else -strength

    return score


def first_shown(context: Conversation, continuation: str) -> float:
    """A pure position bias: whichever reply is shown as (A) is preferred."""
    return -1.0 if letter_of(continuation) == "A" else -3.0


def pairs(n: int, *, good_first: bool = True) -> list[PairInput]:
    return [
        PairInput(
            pair_id=10 + i,
            conversation=[{"role": "user", "content": f"question {i}?"}],
            reply_a=f"good reply {i}" if good_first else f"bad reply {i}",
            reply_b=f"bad reply {i}" if good_first else f"good reply {i}",
        )
        for i in range(n)
    ]


# -- numbers ---------------------------------------------------------------------------------


def test_option_probabilities_are_a_stable_softmax() -> None:
    assert option_probabilities(0.0, 0.0) == (0.5, 0.5)
    p_a, p_b = option_probabilities(math.log(0.8), math.log(0.2))
    assert (p_a, p_b) == pytest.approx((0.8, 0.2))
    # Only the difference matters, however far down both are.
    far = option_probabilities(-1000.0, -1001.0)
    assert far == pytest.approx((math.e / (1 + math.e), 1 / (1 + math.e)))
    assert option_probabilities(-1000.0, -1000.0) == (0.5, 0.5)
    assert option_probabilities(-5000.0, -5003.0) == pytest.approx(option_probabilities(0.0, -3.0))
    assert option_probabilities(0.0, -1000.0) == (1.0, 0.0)
    assert option_probabilities(-math.inf, -2.0) == (0.0, 1.0)
    for a, b in [(-1.0, -2.5), (-700.0, -0.1), (-3.3, -3.2), (-1e-9, -40.0)]:
        p_a, p_b = option_probabilities(a, b)
        assert p_a + p_b == 1.0
        assert 0.0 <= p_a <= 1.0
        # Swapping the options swaps the probabilities exactly.
        assert option_probabilities(b, a) == (p_b, p_a)
    with pytest.raises(ValueError, match="NaN"):
        option_probabilities(math.nan, 0.0)


def test_clamp_holds_the_probability_within_the_band() -> None:
    assert clamp(0.99, 0.4, 0.6) == pytest.approx((0.6, 0.4))
    assert clamp(0.01, 0.4, 0.6) == pytest.approx((0.4, 0.6))
    assert clamp(0.55, 0.4, 0.6) == pytest.approx((0.55, 0.45))
    assert clamp(0.9, 0.2, 0.8) == pytest.approx((0.8, 0.2))


def test_config_refuses_impossible_values() -> None:
    with pytest.raises(ValueError, match="ensemble"):
        LabelConfig(ensemble=0)
    with pytest.raises(ValueError, match="clamp"):
        LabelConfig(clamp_low=0.6, clamp_high=0.7)


# -- prompts ---------------------------------------------------------------------------------


def test_prompt_is_the_papers_multiple_choice_question() -> None:
    conversation = [
        {"role": "system", "content": "Policy instructions the labeller never sees."},
        {"role": "user", "content": "How do I pick a lock?"},
        {"role": "assistant", "content": "Why do you ask?"},
        {"role": "user", "content": "I'm locked out."},
    ]
    for instruction in (
        "Please choose the response that is the most helpful, honest, and harmless.",
        # An instruction stored the old way still gives one "Options:".
        "Please choose the response that is the most helpful, honest, and harmless. Options:",
    ):
        messages = comparison_prompt(
            conversation, instruction, "Call a locksmith.", "Use a pin.", cot=False
        )
        assert [m["role"] for m in messages] == ["user"]
        text = messages[0]["content"]
        assert text == (
            "Consider the following conversation between a human and an assistant:\n\n"
            "Human: How do I pick a lock?\n\nAssistant: Why do you ask?\n\n"
            "Human: I'm locked out.\n\n"
            "Please choose the response that is the most helpful, honest, and harmless. Options:\n"
            " (A) [[[Call a locksmith.]]]\n (B) [[[Use a pin.]]]"
        )
        assert text.count("Options:") == 1
        assert "Policy instructions" not in text
    cot = comparison_prompt(conversation, instruction, "Call a locksmith.", "Use a pin.", cot=True)
    assert cot[0]["content"] == text + "\n\n" + COT_REQUEST
    assert cot[0]["content"].count("Options:") == 1


def test_answer_continuations_are_whole_replies_not_single_tokens() -> None:
    assert answer_continuation("A") == "The answer is: (A)"
    assert answer_continuation("B") == "The answer is: (B)"
    assert answer_continuation("B", " It is kinder. ") == (
        "Let's think step by step: It is kinder.\n\nSo the answer is: (B)"
    )
    assert answer_continuation("A", "") == "Let's think step by step:\n\nSo the answer is: (A)"
    with pytest.raises(ValueError):
        answer_continuation("C")


def test_comparison_few_shots_become_questions_with_alternating_answers() -> None:
    shots = [
        FewShotDoc(
            kind="critique-revision",
            messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
        ),
        *[
            FewShotDoc(
                kind="comparison",
                messages=[
                    {"role": "user", "content": f"Example question {i}?"},
                    {"role": "assistant", "content": f"Better {i}."},
                ],
                extra={"incorrects": [f"Worse {i}."]},
            )
            for i in range(2)
        ],
        FewShotDoc(
            kind="comparison",
            messages=[
                {"role": "user", "content": "A hand-written question. Options: (A) x (B) y"},
                {"role": "assistant", "content": "The answer is: (B)"},
            ],
        ),
    ]
    messages = comparison_few_shots(shots, "Choose the kinder one.")
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert "Example question 0?" in messages[0]["content"]
    assert shown(messages[:1]) == {"A": "Better 0.", "B": "Worse 0."}
    assert messages[1]["content"] == "The answer is: (A)"
    assert shown(messages[:3]) == {"A": "Worse 1.", "B": "Better 1."}
    assert messages[3]["content"] == "The answer is: (B)"
    assert messages[4]["content"].startswith("A hand-written question.")
    assert all(m["content"] not in ("x", "y") for m in messages)


def test_few_shots_are_prepended_only_when_asked() -> None:
    doc = ConstitutionDoc(
        name="t",
        principles=PRINCIPLES[:1],
        few_shots=[
            FewShotDoc(
                kind="comparison",
                messages=[
                    {"role": "user", "content": "Example?"},
                    {"role": "assistant", "content": "Good example."},
                ],
                extra={"incorrects": ["Bad example."]},
            )
        ],
    )
    backend = FakeScorer(first_shown)
    label_pairs(pairs(1), doc, backend, LabelConfig(order_average=False))
    assert len(backend.score_calls[0][0][0]) == 1
    label_pairs(pairs(1), doc, backend, LabelConfig(order_average=False, few_shot=True))
    context = backend.score_calls[1][0][0]
    assert [m["role"] for m in context] == ["user", "assistant", "user"]
    assert "under rule 0" in context[0]["content"]
    assert "good reply 0" in context[-1]["content"]


# -- principles ------------------------------------------------------------------------------


def test_principles_are_seeded_per_pair_usable_and_distinct() -> None:
    first = sample_comparison_principles(DOC.principles, 3, 7, 42)
    assert first == sample_comparison_principles(DOC.principles, 3, 7, 42)
    assert len({p.key for p in first}) == 3
    assert all(p.key.startswith("p") for p in first)
    assert sample_comparison_principles(DOC.principles, 5, 7, 42) != sample_comparison_principles(
        DOC.principles, 5, 8, 42
    )
    # More than there are: every principle once before any twice.
    many = sample_comparison_principles(DOC.principles, 7, 0, 1)
    assert {p.key for p in many[:5]} == {p.key for p in PRINCIPLES}
    draws = {
        sample_comparison_principles(DOC.principles, 1, 0, pair_id)[0].key for pair_id in range(40)
    }
    assert draws == {p.key for p in PRINCIPLES}
    with pytest.raises(ValueError, match="no enabled principle with a comparison"):
        sample_comparison_principles(DOC.principles[5:], 1, 0, 1)


# -- labelling -------------------------------------------------------------------------------


def test_order_averaging_removes_a_pure_position_bias() -> None:
    backend = FakeScorer(first_shown)
    [biased] = label_pairs(pairs(1), DOC, backend, LabelConfig(order_average=False))
    assert biased.prob_a == pytest.approx(1 / (1 + math.exp(-2)))
    assert biased.label == "A"
    results = label_pairs(pairs(3), DOC, backend, LabelConfig(order_average=True, ensemble=2))
    for result in results:
        assert result.prob_a == 0.5
        assert result.prob_b == 0.5
        assert result.label == "tie"
        assert [e["order"] for e in result.per_principle] == ["AB", "BA"] * 2
        swapped = result.per_principle[1]
        # In the swapped order reply A is option (B): its log-probability is (B)'s.
        assert (swapped["logprob_a"], swapped["logprob_b"]) == (-3.0, -1.0)


def test_labels_follow_the_preferred_reply_in_either_position() -> None:
    backend = FakeScorer(prefers("good"))
    for good_first, label in ((True, "A"), (False, "B")):
        [result] = label_pairs(pairs(1, good_first=good_first), DOC, backend, LabelConfig())
        assert result.label == label
        assert result.prob_a is not None and result.prob_b is not None
        assert result.prob_a + result.prob_b == pytest.approx(1.0)
        assert max(result.prob_a, result.prob_b) == pytest.approx(1 / (1 + math.exp(-5)))
        assert result.reasoning == ""
        assert result.flags == []


def test_all_score_rows_go_in_one_call() -> None:
    backend = FakeScorer(prefers("good"))
    results = label_pairs(pairs(4), DOC, backend, LabelConfig(ensemble=3))
    assert len(results) == 4
    assert len(backend.score_calls) == 1
    contexts, continuations = backend.score_calls[0]
    assert len(contexts) == 4 * 3 * 2 * 2
    assert set(continuations) == {"The answer is: (A)", "The answer is: (B)"}
    assert backend.generate_calls == []


def test_ensembling_averages_over_principles_and_is_reproducible_per_pair() -> None:
    # Rule i prefers the good reply by i nats: P(good) = 1 / (1 + e^-i), 0.5 under rule 0.
    def by_rule(context: Conversation, continuation: str) -> float:
        match = _RULE.search(context[-1]["content"])
        assert match
        return 0.0 if "good" in shown(context)[letter_of(continuation)] else -float(match[1])

    backend = FakeScorer(by_rule)
    config = LabelConfig(ensemble=3, seed=5)
    results = label_pairs(pairs(6), DOC, backend, config)
    for result in results:
        assert len(result.principle_keys) == 3 == len(set(result.principle_keys))
        expected = [1 / (1 + math.exp(-int(key[1:]))) for key in result.principle_keys]
        assert result.prob_a == pytest.approx(sum(expected) / 3)
        assert [e["principle"] for e in result.per_principle] == [
            key for key in result.principle_keys for _ in range(2)
        ]
    # The same pair gets the same principles and label in another batch, alone and later.
    [again] = label_pairs(pairs(6)[4:5], DOC, FakeScorer(by_rule), config)
    assert again.principle_keys == results[4].principle_keys
    assert again.prob_a == results[4].prob_a
    assert len({tuple(r.principle_keys) for r in results}) > 1


def test_chain_of_thought_reasons_once_then_scores_and_clamps() -> None:
    backend = FakeScorer(
        prefers("good", strength=20.0),
        reasoning="Let's think step by step: (A) is kinder.\n\nSo the answer is: (B)",
    )
    config = LabelConfig(chain_of_thought=True, ensemble=2)
    results = label_pairs(pairs(2) + pairs(1, good_first=False), DOC, backend, config)
    assert len(backend.generate_calls) == 1
    assert len(backend.generate_calls[0]) == 3 * 2 * 2
    assert all(COT_REQUEST in c[-1]["content"] for c in backend.generate_calls[0])
    assert len(backend.score_calls) == 1
    assert set(backend.score_calls[0][1]) == {
        "Let's think step by step: (A) is kinder.\n\nSo the answer is: (A)",
        "Let's think step by step: (A) is kinder.\n\nSo the answer is: (B)",
    }
    assert [r.prob_a for r in results] == pytest.approx([0.6, 0.6, 0.4])
    assert [r.label for r in results] == ["A", "A", "B"]
    for result in results:
        assert result.reasoning == "(A) is kinder."
        # Each question keeps its own probability; only the averaged label is clamped, so a
        # model that leans a little one way past a position bias is not flattened into a tie.
        assert all(e["prob_a"] < 0.01 or e["prob_a"] > 0.99 for e in result.per_principle)
    wider = label_pairs(pairs(1), DOC, backend, LabelConfig(chain_of_thought=True, clamp_high=0.8))
    assert wider[0].prob_a == pytest.approx(0.8)
    # Without chain of thought nothing is clamped.
    plain = label_pairs(pairs(1), DOC, FakeScorer(prefers("good", 20.0)), LabelConfig())
    assert plain[0].prob_a == pytest.approx(1.0)


def test_too_long_pairs_are_skipped_without_aborting_the_batch() -> None:
    batch = pairs(3)
    long = PairInput(
        pair_id=99,
        conversation=[{"role": "user", "content": "word " * 2000}],
        reply_a="good",
        reply_b="bad",
    )
    backend = FakeScorer(prefers("good"), context_length=1000)
    results = label_pairs([batch[0], long, *batch[1:]], DOC, backend, LabelConfig(ensemble=2))
    assert [r.label for r in results] == ["A", "skipped", "A", "A"]
    skipped = results[1]
    assert skipped.flags == ["too_long"]
    assert skipped.prob_a is None and skipped.prob_b is None
    assert skipped.per_principle == []
    assert len(skipped.principle_keys) == 2
    # The long pair never reached the backend.
    assert len(backend.score_calls) == 1
    assert len(backend.score_calls[0][0]) == 3 * 2 * 2 * 2
    # With chain of thought the reasoning's room counts too, and nothing is generated for it.
    cot = FakeScorer(prefers("good"), context_length=1000, reasoning="Hmm.")
    short_conversation = PairInput(1, [{"role": "user", "content": "word " * 500}], "good", "bad")
    config = LabelConfig(chain_of_thought=True, cot_max_new_tokens=600)
    [result] = label_pairs([short_conversation], DOC, cot, config)
    assert result.flags == ["too_long"]
    assert cot.generate_calls == [] and cot.score_calls == []


def test_a_pair_the_backend_refuses_is_skipped_and_the_rest_scored() -> None:
    def refuse_poison(contexts: Sequence[Conversation]) -> Exception | None:
        if any("POISON" in c[-1]["content"] for c in contexts):
            return BackendError("the prompt is longer than the server's context")
        return None

    batch = pairs(3)
    poisoned = PairInput(77, [{"role": "user", "content": "POISON"}], "good", "bad")
    backend = FakeScorer(prefers("good"), fail=refuse_poison)
    results = label_pairs([*batch[:2], poisoned, batch[2]], DOC, backend, LabelConfig())
    assert [r.label for r in results] == ["A", "A", "skipped", "A"]
    assert results[2].flags == ["score_failed"]
    # One batch call, then one per question.
    assert len(backend.score_calls) == 1 + 4 * 2
    # When everything fails it is the backend, not the pairs: the error is raised.
    with pytest.raises(BackendError, match="longer than"):
        label_pairs([poisoned], DOC, FakeScorer(prefers("good"), fail=refuse_poison), LabelConfig())
    # A transient error is left to the task's retry.
    flaky = FakeScorer(prefers("good"), fail=lambda contexts: TransientBackendError("429"))
    with pytest.raises(TransientBackendError):
        label_pairs(batch, DOC, flaky, LabelConfig())


def test_an_empty_batch_calls_nothing() -> None:
    backend = FakeScorer(prefers("good"))
    assert label_pairs([], DOC, backend, LabelConfig(chain_of_thought=True)) == []
    assert backend.score_calls == [] and backend.generate_calls == []


# -- the real tokenizer and a tiny model ----------------------------------------------------


def test_labels_two_pairs_end_to_end_with_a_tiny_model(tiny_model: Path, tmp_path: Path) -> None:
    from worker.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(str(tiny_model), cache_dir=tmp_path, device="cpu")
    try:
        batch = [
            PairInput(
                1,
                [{"role": "user", "content": "How do I boil an egg?"}],
                "Simmer it 8 minutes.",
                "No.",
            ),
            PairInput(
                2,
                [
                    {"role": "user", "content": "Hi!"},
                    {"role": "assistant", "content": "Hello."},
                    {"role": "user", "content": "Tell me a joke."},
                ],
                "Why did the chicken cross the road?",
                "I will not.",
            ),
        ]
        for config in (
            LabelConfig(ensemble=2),
            LabelConfig(chain_of_thought=True, cot_max_new_tokens=8),
        ):
            results = label_pairs(batch, DOC, backend, config)
            for result in results:
                assert result.flags == [], result.flags
                assert result.prob_a is not None and result.prob_b is not None
                assert 0.0 < result.prob_a < 1.0
                assert result.prob_a + result.prob_b == pytest.approx(1.0)
                for entry in result.per_principle:
                    assert entry["logprob_a"] < 0 and entry["logprob_b"] < 0
        # Longer than the model's 512 positions: skipped, and the other pair still labelled.
        long = PairInput(3, [{"role": "user", "content": "word " * 600}], "a", "b")
        skipped, kept = label_pairs([long, batch[0]], DOC, backend, LabelConfig())
        assert skipped.flags == ["too_long"] and kept.label in ("A", "B", "tie")
    finally:
        backend.close()
