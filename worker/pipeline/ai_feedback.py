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

All prompts are built here and sent in as few backend calls as possible: one `generate` call
for all reasoning, one `score` call for every (question, option) row.
"""

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.recipe.comparison_text import (
    ANSWER_CUE,
    CONVERSATION_INTRO,
    COT_ANSWER_CUE,
    COT_OPENING,
    COT_REQUEST,
    LETTERS,
)
from app.recipe.documents import ConstitutionDoc, FewShotDoc, PrincipleDoc
from worker.backends.base import (
    Backend,
    BackendError,
    Conversation,
    GenerationParams,
    TransientBackendError,
)
from worker.pipeline.critique_revision import clean_output

# Where reasoning stops: the model's own answer is dropped, because the answer is scored.
COT_STOP = (COT_ANSWER_CUE, "\n\nHuman:")
# Added to a question's length for the answer's own tokens when checking it fits the context.
_ANSWER_TOKENS_MARGIN = 4
_TRAILING_OPTIONS = re.compile(r"\s*Options:\s*$")

T = TypeVar("T")
R = TypeVar("R")


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


# -- prompts ------------------------------------------------------------------------------------


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


def clean_reasoning(text: str) -> str:
    """Generated reasoning without the opening the model may repeat or the answer it may give."""
    text = clean_output(text, COT_STOP)
    if text.lower().startswith(COT_OPENING.lower()):
        text = text[len(COT_OPENING) :]
    return text.strip()


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


# -- numbers ------------------------------------------------------------------------------------


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


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def sample_principles(
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


# -- scoring ------------------------------------------------------------------------------------


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
    one `score` call for every row. A question that does not fit the backend's context is
    "too_long" and skipped; the others are scored regardless."""
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

    def rows(i: int) -> list[tuple[Conversation, str]]:
        thought = reasoning.get(i) if chain_of_thought else None
        return [(questions[i], answer_continuation(letter, thought)) for letter in LETTERS]

    scored = _in_groups(
        [rows(i) for i in fitting],
        lambda batch: backend.score([c for c, _ in batch], [t for _, t in batch]),
    )
    for i, outcome in zip(fitting, scored, strict=True):
        if isinstance(outcome, BackendError):
            results[i] = Unscored("score_failed")
            continue
        logprob_a, logprob_b = outcome
        p_a, p_b = option_probabilities(logprob_a, logprob_b)
        results[i] = OptionScores(logprob_a, logprob_b, p_a, p_b, reasoning.get(i, ""))
    return [r if r is not None else Unscored("score_failed") for r in results]


# -- labelling ----------------------------------------------------------------------------------


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
        principles = sample_principles(
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
