"""Constitution A/B: two generation runs over the same prompts (say, two constitution
versions), judged pairwise by the labelling engine (`label_pairs`, both orders averaged).

- **B over A**: each prompt's final revision under B against A's, under a principle of the
  judging constitution sampled per prompt; win rates of B, overall and per judging principle.
- **Revision over initial**: in each run, each prompt's final revision against its own initial
  reply; win rates of the revision overall and per critique principle the trace used — which
  principles' revisions actually help.

Every comparison of a call goes to the judge in one `label_pairs` call; the rates and their
Wilson intervals are app.recipe.constitution_ab.
"""

import zlib
from collections.abc import Sequence
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


@dataclass(frozen=True)
class ABItem:
    prompt_id: int
    conversation: Conversation  # up to the user's last turn
    a: RunReply
    b: RunReply


def _key(kind: str, prompt_id: int) -> int:
    """A stable pair id: it seeds the principle's sampling, the same on every call."""
    return zlib.crc32(f"ab:{kind}:{prompt_id}".encode())


def compare_runs(
    items: Sequence[ABItem], judge_constitution: ConstitutionDoc, backend: Backend, *, seed: int = 0
) -> dict[str, Any]:
    """The A/B report as plain JSON: "b_over_a" (win rates of B's final revision, "all" then
    per judging principle), "revision_over_initial" ({"a": ..., "b": ...}, per critique
    principle) and "prompts"."""
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

    def second_wins(pair_id: int) -> float | None:
        comparison = by_pair[pair_id]
        return None if comparison.prob_a is None else 1.0 - comparison.prob_a

    ab = [
        (by_pair[_key("ab", i.prompt_id)].principle_keys, second_wins(_key("ab", i.prompt_id)))
        for i in items
    ]
    revisions = {
        side: [(getattr(i, side).principles, second_wins(_key(side, i.prompt_id))) for i in items]
        for side in ("a", "b")
    }
    return {
        "prompts": len(items),
        "b_over_a": [w.to_json() for w in win_rates(ab)],
        "revision_over_initial": {
            side: [w.to_json() for w in win_rates(outcomes)] for side, outcomes in revisions.items()
        },
    }
