"""Rates with Wilson score intervals: refusal, over-refusal and evasiveness per model and suite.

Wilson's interval rather than the textbook p ± z sqrt(p(1-p)/n): that one collapses to a single
point at 0 or n successes (a model that refused nothing would show "0% ± 0%") and strays outside
[0, 1] for small n, both common here (a dozen over-refusal prompts, rates near 0 or 1). Wilson's
stays inside [0, 1], is never empty, and covers close to its nominal level even for small n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class Rate:
    successes: int
    trials: int
    low: float
    high: float
    confidence: float

    @property
    def value(self) -> float | None:
        """The observed share, None for no trials."""
        return self.successes / self.trials if self.trials else None


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a binomial share: (low, high) in [0, 1].

    With no trials nothing is known and the interval is (0, 1). ValueError for negative counts,
    more successes than trials, or a confidence outside (0, 1)."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"{successes} successes in {trials} trials is not a rate")
    if not 0.0 < confidence < 1.0:
        raise ValueError("the confidence must be between 0 and 1")
    if trials == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    # At 0 or n successes one end is exactly 0 or 1; rounding must not move it off.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def rate(successes: int, trials: int, confidence: float = 0.95) -> Rate:
    low, high = wilson_interval(successes, trials, confidence)
    return Rate(successes, trials, low, high, confidence)
