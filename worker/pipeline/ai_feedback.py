"""RL-CAI's AI feedback: a feedback model picks the better of two replies under a principle.

Each comparison is asked as the paper's multiple-choice question, as one user turn:

    Consider the following conversation between a human and an assistant:

    Human: ...

    Assistant: ...

    {comparison instruction} Options:
     (A) [[[reply A]]]
     (B) [[[reply B]]]

and the labeller's answer is scored, not generated: the assistant reply "The answer is: (A)"
against "The answer is: (B)". This is the layout of the HHH evaluation file (whose prompts end
in "The answer is:" and whose answers are " (A)" / " (B)"), moved into a chat turn, so the
labeller is benchmarked on exactly the prompt it labels with. The shared "The answer is:"
costs both options the same log-probability, so it cancels when the two are normalised.

An option is scored as a whole continuation: `Backend.score` sums the log-probabilities of all
its tokens, and " (A)" is three tokens with most tokenizers (" (", "A", ")"). Nothing here
assumes one token per option; both options have the same shape, so neither is favoured by its
length.

With chain of thought the labeller first writes its reasoning (one greedy `generate` call for
every question), then "Let's think step by step: {reasoning}\\n\\nSo the answer is: (A)" is
scored; the reasoning is common to both options and cancels as the cue does. Chain-of-thought
probabilities are clamped (to 40-60% by default), as in the paper: without clamping they are
near 0 or 1 and the policy learns extreme replies.

All prompts are built first and sent in as few backend calls as possible: one `generate` call
for all reasoning, one `score` call for every (question, option) row. The question is built in
worker.pipeline.feedback_questions, asked and scored in worker.pipeline.feedback_scoring; this
module samples the principles, asks every question of a batch at once and averages the answers.
"""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.recipe.comparison_text import COT_REQUEST, LETTERS
from app.recipe.documents import ConstitutionDoc, PrincipleDoc
from worker.backends.base import Backend, Conversation
from worker.pipeline.feedback_questions import (
    answer_continuation,
    comparison_few_shots,
    comparison_prompt,
    question_text,
    render_conversation,
)
from worker.pipeline.feedback_scoring import (
    COT_STOP,
    OptionScores,
    Unscored,
    clamp,
    clean_reasoning,
    count_tokens,
    option_probabilities,
    score_options,
)

# The question and the scoring live beside this module; what callers use is importable here.
__all__ = [
    "COT_REQUEST",
    "COT_STOP",
    "LETTERS",
    "Comparison",
    "LabelConfig",
    "OptionScores",
    "PairInput",
    "Unscored",
    "answer_continuation",
    "clamp",
    "clean_reasoning",
    "comparison_few_shots",
    "comparison_prompt",
    "count_tokens",
    "label_pairs",
    "option_probabilities",
    "question_text",
    "render_conversation",
    "sample_comparison_principles",
    "score_options",
]


@dataclass(frozen=True)
class LabelConfig:
    """How a batch of pairs is labelled; stored with the run so it can be reproduced."""

    order_average: bool = True  # score both orders (A,B) and (B,A) and average: no position bias
    ensemble: int = 1  # principles sampled per comparison; their probabilities are averaged
    chain_of_thought: bool = False  # reason first, then score the answer; clamp the result
    clamp_low: float = 0.4  # chain-of-thought probabilities are clamped to [clamp_low, clamp_high]
    clamp_high: float = 0.6
    few_shot: bool = False  # prepend the version's comparison few-shot examples
    seed: int = 0  # seeds the principle sampling (per pair) and the reasoning's generation
    cot_max_new_tokens: int = 128

    def __post_init__(self) -> None:
        if self.ensemble < 1:
            raise ValueError(f"ensemble must be at least 1, not {self.ensemble}")
        if not 0.0 <= self.clamp_low <= 0.5 <= self.clamp_high <= 1.0:
            raise ValueError(
                f"the clamp must hold 0.5 within [0, 1], not [{self.clamp_low}, {self.clamp_high}]"
            )
        if self.cot_max_new_tokens < 1:
            raise ValueError("cot_max_new_tokens must be at least 1")


@dataclass(frozen=True)
class PairInput:
    """One comparison to label."""

    pair_id: int
    conversation: Conversation  # the conversation up to the user's last turn
    reply_a: str
    reply_b: str


@dataclass
class Comparison:
    pair_id: int
    principle_keys: list[str]
    # Normalised, summing to 1 (after clamping with chain of thought); None when skipped.
    prob_a: float | None
    prob_b: float | None
    # One entry per principle and order: {"principle", "order" ("AB" or "BA": which reply was
    # shown first), "logprob_a", "logprob_b" (of reply A and reply B, wherever shown),
    # "prob_a" (normalised P(reply A), clamped with chain of thought), "reasoning"}.
    per_principle: list[dict[str, Any]]
    reasoning: str  # the first question's reasoning with chain of thought, else ""
    label: str  # "A", "B", "tie" (exactly 0.5) or "skipped"
    flags: list[str] = field(default_factory=list)  # "too_long", "score_failed"


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def sample_comparison_principles(
    principles: Sequence[PrincipleDoc], k: int, seed: int, pair_id: int
) -> list[PrincipleDoc]:
    """`k` enabled principles with a comparison instruction, from a generator seeded by the run
    and the pair, so a pair gets the same principles whatever its batch or on resume. Without
    replacement while `k` allows; beyond that, each further round draws all of them again."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    usable = [p for p in principles if p.enabled and p.comparison_instruction.strip()]
    if not usable:
        raise ValueError("the constitution version has no enabled principle with a comparison")
    rng = random.Random(f"comparison:{seed}:{pair_id}")
    chosen: list[PrincipleDoc] = []
    while len(chosen) < k:
        chosen.extend(rng.sample(usable, len(usable)))
    return chosen[:k]


@dataclass(frozen=True)
class _Question:
    pair: int  # index into the batch
    principle: PrincipleDoc
    order: str  # "AB": reply A shown as (A); "BA": reply A shown as (B)


def label_pairs(
    pairs: Sequence[PairInput],
    constitution: ConstitutionDoc,
    backend: Backend,
    config: LabelConfig,
) -> list[Comparison]:
    """Soft labels for a batch of pairs, one comparison per pair, in order.

    P(A) is the mean over the sampled principles and, with order averaging, over both orders
    (in the swapped order reply A is option (B)), which cancels a pure preference for a
    position. A pair that does not fit the context is skipped and flagged, never the batch."""
    orders = ("AB", "BA") if config.order_average else ("AB",)
    cot = config.chain_of_thought
    plan: list[_Question] = []
    prompts: list[Conversation] = []
    chosen: list[list[PrincipleDoc]] = []
    for index, pair in enumerate(pairs):
        principles = sample_comparison_principles(
            constitution.principles, config.ensemble, config.seed, pair.pair_id
        )
        chosen.append(principles)
        for principle in principles:
            shots = (
                comparison_few_shots(constitution.few_shots, principle.comparison_instruction)
                if config.few_shot
                else []
            )
            for order in orders:
                first, second = (
                    (pair.reply_a, pair.reply_b) if order == "AB" else (pair.reply_b, pair.reply_a)
                )
                asked = comparison_prompt(
                    pair.conversation, principle.comparison_instruction, first, second, cot=cot
                )
                plan.append(_Question(index, principle, order))
                prompts.append([*shots, *asked])

    answers = score_options(
        prompts,
        backend,
        chain_of_thought=cot,
        cot_max_new_tokens=config.cot_max_new_tokens,
        seed=config.seed,
    )
    by_pair: list[list[tuple[_Question, OptionScores | Unscored]]] = [[] for _ in pairs]
    for question, answer in zip(plan, answers, strict=True):
        by_pair[question.pair].append((question, answer))

    comparisons: list[Comparison] = []
    for pair, principles, answered in zip(pairs, chosen, by_pair, strict=True):
        keys = [p.key for p in principles]
        failed = sorted({a.reason for _, a in answered if isinstance(a, Unscored)})
        if failed:
            comparisons.append(
                Comparison(pair.pair_id, keys, None, None, [], "", "skipped", failed)
            )
            continue
        entries: list[dict[str, Any]] = []
        for question, answer in answered:
            assert isinstance(answer, OptionScores)
            if question.order == "AB":
                logprob_a, logprob_b, p_a = answer.logprob_a, answer.logprob_b, answer.prob_a
            else:
                logprob_a, logprob_b, p_a = answer.logprob_b, answer.logprob_a, answer.prob_b
            entries.append(
                {
                    "principle": question.principle.key,
                    "order": question.order,
                    "logprob_a": logprob_a,
                    "logprob_b": logprob_b,
                    "prob_a": p_a,
                    "reasoning": answer.reasoning,
                }
            )
        prob_a = _mean([e["prob_a"] for e in entries])
        if cot:
            # Clamped after averaging: clamping each order first would turn a model that favours
            # whichever reply comes first (0.6 and 0.4 once clamped) into an exact tie.
            prob_a, _ = clamp(prob_a, config.clamp_low, config.clamp_high)
        label = "A" if prob_a > 0.5 else "B" if prob_a < 0.5 else "tie"
        comparisons.append(
            Comparison(
                pair_id=pair.pair_id,
                principle_keys=keys,
                prob_a=prob_a,
                prob_b=1.0 - prob_a,
                per_principle=entries,
                reasoning=entries[0]["reasoning"] if cot else "",
                label=label,
                flags=[],
            )
        )
    return comparisons
