"""Constitution A/B: two generation runs over the same prompts (say, two constitution
versions), judged pairwise by the labelling engine (`label_pairs`, both orders averaged).

- **B over A**: each prompt's final revision under B against A's, under a principle of the
  judging constitution sampled per prompt; win rates of B, overall and per judging principle.
- **Revision over initial**: in each run, each prompt's final revision against its own initial
  reply; win rates of the revision overall and per critique principle the trace used — which
  principles' revisions actually help.

The comparisons go to the judge a step of items at a time (`label_pairs`, both orders averaged),
so a job can report progress, stop on cancel and store what it judged; the rates and their Wilson
intervals are app.recipe.constitution_ab.
"""

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.recipe.constitution_ab import win_rates
from app.recipe.documents import ConstitutionDoc
from worker.backends.base import Backend, Conversation
from worker.pipeline.ai_feedback import LabelConfig, PairInput, label_pairs


@dataclass(frozen=True)
class RunReply:
    """One run's trace of a prompt: its initial reply, final revision and critique principles."""

    initial: str
    final: str
    principles: tuple[str, ...]
    trace_id: int | None = None


@dataclass(frozen=True)
class ABItem:
    prompt_id: int
    conversation: Conversation  # up to the user's last turn
    a: RunReply
    b: RunReply


def _key(kind: str, prompt_id: int) -> int:
    """A stable pair id: it seeds the principle's sampling, the same on every call."""
    return zlib.crc32(f"ab:{kind}:{prompt_id}".encode())


KINDS = ("ab", "a", "b")  # B's final over A's; each run's revision over its initial reply


@dataclass(frozen=True)
class ABJudgement:
    """One comparison: of B's final revision over A's ("ab"), or of a run's revision over its
    own initial reply ("a", "b"); `groups` are the table rows it counts in (the judging
    principles for "ab", the trace's critique principles for a revision)."""

    prompt_id: int
    kind: str
    principle_keys: tuple[str, ...]  # the judge's principles
    groups: tuple[str, ...]
    prob_second: float | None  # P(the second reply is better); None: skipped
    flags: tuple[str, ...] = ()


def judge_items(
    items: Sequence[ABItem], judge_constitution: ConstitutionDoc, backend: Backend, *, seed: int = 0
) -> list[ABJudgement]:
    """The three comparisons of each item, in one judge call. A pair's principle is seeded by
    its prompt and kind, so judging items in steps, or again on resume, asks the same thing."""
    pairs: list[PairInput] = []
    for item in items:
        pairs.append(
            PairInput(_key("ab", item.prompt_id), item.conversation, item.a.final, item.b.final)
        )
        for side, reply in (("a", item.a), ("b", item.b)):
            pairs.append(
                PairInput(_key(side, item.prompt_id), item.conversation, reply.initial, reply.final)
            )
    config = LabelConfig(order_average=True, ensemble=1, seed=seed)
    judged = label_pairs(pairs, judge_constitution, backend, config) if pairs else []
    by_pair = {c.pair_id: c for c in judged}
    out: list[ABJudgement] = []
    for item in items:
        for kind in KINDS:
            comparison = by_pair[_key(kind, item.prompt_id)]
            keys = tuple(comparison.principle_keys)
            groups = keys if kind == "ab" else getattr(item, kind).principles
            prob = None if comparison.prob_a is None else 1.0 - comparison.prob_a
            out.append(
                ABJudgement(item.prompt_id, kind, keys, groups, prob, tuple(comparison.flags))
            )
    return out


def ab_report(judgements: Sequence[ABJudgement]) -> dict[str, Any]:
    """The A/B report as plain JSON: "b_over_a" (win rates of B's final revision, "all" then
    per judging principle), "revision_over_initial" ({"a": ..., "b": ...}, per critique
    principle) and "prompts"."""

    def rates(kind: str) -> list[dict[str, object]]:
        outcomes = [(j.groups, j.prob_second) for j in judgements if j.kind == kind]
        return [w.to_json() for w in win_rates(outcomes)]

    return {
        "prompts": len({j.prompt_id for j in judgements}),
        "b_over_a": rates("ab"),
        "revision_over_initial": {side: rates(side) for side in ("a", "b")},
    }


def compare_runs(
    items: Sequence[ABItem],
    judge_constitution: ConstitutionDoc,
    backend: Backend,
    *,
    seed: int = 0,
    step: int = 0,
    on_step: Callable[[Sequence[ABJudgement], int], None] | None = None,
) -> dict[str, Any]:
    """The A/B report (`ab_report`) of all items, judged `step` items at a time (0: in one
    call); `on_step(judged, items done)` after each step, to store and report progress (a
    raise there, a cancel, stops before the next step)."""
    size = step or max(len(items), 1)
    judged: list[ABJudgement] = []
    for start in range(0, len(items), size):
        chunk = judge_items(items[start : start + size], judge_constitution, backend, seed=seed)
        judged.extend(chunk)
        if on_step is not None:
            on_step(chunk, min(start + size, len(items)))
    return ab_report(judged)
