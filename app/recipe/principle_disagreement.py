"""How far the principles of an ensemble disagree about one comparison: the people's label
queue serves the comparisons they disagree on most first (issue 16: "serve comparisons in order
of uncertainty (P near 0.5, or the ensemble's principles disagreeing)").

A comparison's `details` hold one entry per principle and order, each with its P(reply A)
(worker.pipeline.ai_feedback). Each principle's P is the mean over its orders; then
- `opposition`: how strongly the principles pull opposite ways, min(max P - 0.5, 0.5 - min P),
  0 when they all lean the same way (0.9 and 0.6 agree on A; 0.55 and 0.45 do not);
- `spread`: max P - min P, which orders comparisons whose principles lean the same way.
A comparison judged under one principle has neither: its principles cannot disagree.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Disagreement:
    opposition: float
    spread: float


NONE = Disagreement(0.0, 0.0)


def principle_probs(details: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each principle's P(reply A), the mean over its orders; entries without one are left out."""
    found: dict[str, list[float]] = defaultdict(list)
    for entry in details:
        p = entry.get("prob_a") if isinstance(entry, dict) else None
        if isinstance(p, int | float) and not isinstance(p, bool):
            found[str(entry.get("principle", ""))].append(float(p))
    return {key: sum(ps) / len(ps) for key, ps in found.items()}


def disagreement(details: Sequence[dict[str, Any]]) -> Disagreement:
    probs = list(principle_probs(details).values())
    if len(probs) < 2:
        return NONE
    high, low = max(probs), min(probs)
    return Disagreement(max(0.0, min(high - 0.5, 0.5 - low)), high - low)


def queue_key(comparison_id: int, details: Sequence[dict[str, Any]]) -> tuple[float, float, int]:
    """Sorts ascending into the queue's order: most opposed first, then widest spread, then id
    (rounded, so that the same numbers summed in another order still tie)."""
    found = disagreement(details)
    return (-round(found.opposition, 9), -round(found.spread, 9), comparison_id)
