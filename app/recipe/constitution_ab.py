"""Constitution A/B: win rates from soft pairwise outcomes, with Wilson intervals, per group
(a principle, or "all").

An outcome is the judge's P(the second reply is better) for one comparison: B's final revision
over A's, or a revision over its own initial reply. A comparison counts as a win for the second
reply when that is above 0.5 and a loss when below; an exact 0.5 is a tie, counted apart and left
out of the rate (a Wilson interval needs whole successes), and a skipped comparison (None) too.
The mean probability over the judged comparisons is kept beside the rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from app.recipe.intervals import Rate, rate

ALL = "all"


@dataclass(frozen=True)
class WinRate:
    group: str
    rate: Rate  # wins of the second reply among the decided comparisons
    ties: int
    skipped: int
    mean_prob: float | None  # mean P(second better) over the judged comparisons

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "wins": self.rate.successes,
            "decided": self.rate.trials,
            "value": self.rate.value,
            "low": self.rate.low,
            "high": self.rate.high,
            "ties": self.ties,
            "skipped": self.skipped,
            "mean_prob": self.mean_prob,
        }


def win_rates(
    outcomes: Iterable[tuple[Iterable[str], float | None]], confidence: float = 0.95
) -> list[WinRate]:
    """One WinRate per group, "all" first, then the groups by name. Each outcome is (its
    groups, P(second better)); an outcome with several groups counts once in "all" and once in
    each of its groups."""
    seen: dict[str, list[float | None]] = {ALL: []}
    for groups, prob in outcomes:
        if prob is not None and not 0.0 <= prob <= 1.0:
            raise ValueError(f"a probability must be in [0, 1], not {prob}")
        seen[ALL].append(prob)
        for group in dict.fromkeys(groups):  # a group named twice counts once
            seen.setdefault(group, []).append(prob)
    out = []
    for group in [ALL, *sorted(set(seen) - {ALL})]:
        probs = seen[group]
        judged = [p for p in probs if p is not None]
        wins = sum(p > 0.5 for p in judged)
        ties = sum(p == 0.5 for p in judged)
        out.append(
            WinRate(
                group=group,
                rate=rate(wins, len(judged) - ties, confidence),
                ties=ties,
                skipped=len(probs) - len(judged),
                mean_prob=math.fsum(judged) / len(judged) if judged else None,
            )
        )
    return out
