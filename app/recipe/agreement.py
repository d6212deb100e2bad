"""Inter-rater agreement on review verdicts: Cohen's kappa for two reviewers, Fleiss' kappa for
three or more, and the Landis & Koch words for reading a kappa.

Pure standard library. The sums are done with exact fractions and only the result is turned into
a float, so textbook values come out exactly (a kappa of 2/5 is the float 0.4, not 0.4000000001)
and a kappa on a Landis & Koch boundary is not pushed into the next band by rounding error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

COHEN = "Cohen's kappa"
FLEISS = "Fleiss' kappa"


def _kappa(observed: Fraction, expected: Fraction) -> float:
    """(observed - expected) / (1 - expected), with the degenerate case settled by convention.

    When expected agreement is 1 every label was one and the same category, chance alone
    explains everything and the formula is 0 / 0. We return 1.0 when observed agreement is also
    1 (the raters did agree, perfectly) and 0.0 otherwise (no agreement beyond chance), so callers
    always get a number to show rather than a NaN. (For both kappas an expected agreement of 1
    implies an observed one of 1, so the 0.0 branch only guards the convention.)"""
    if expected == 1:
        return 1.0 if observed == 1 else 0.0
    return float((observed - expected) / (1 - expected))


def _cohen(pairs: Sequence[tuple[str, str]]) -> tuple[Fraction, float] | None:
    """(observed agreement, kappa) for two raters' labels on the same items."""
    n = len(pairs)
    if n == 0:
        return None
    observed = Fraction(sum(1 for first, second in pairs if first == second), n)
    first_counts = Counter(first for first, _ in pairs)
    second_counts = Counter(second for _, second in pairs)
    # Chance agreement: both raters pick category c independently, at their own marginal rates.
    expected = Fraction(
        sum(count * second_counts[category] for category, count in first_counts.items()), n * n
    )
    return observed, _kappa(observed, expected)


def cohens_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters, one (first rater's label, second rater's label) pair per item.

    None when there are no items. When both raters always used one and the same category the
    expected agreement is 1 and the formula is 0 / 0: the result is then 1.0 if the observed
    agreement is 1 and 0.0 otherwise (see `_kappa`)."""
    result = _cohen(pairs)
    return None if result is None else result[1]


def _modal_size(ratings: Sequence[Sequence[str]]) -> int | None:
    """The most common number n >= 2 of ratings per item; ties go to the larger n, since those
    items carry more ratings. None when no item has two ratings."""
    sizes = Counter(len(labels) for labels in ratings if len(labels) >= 2)
    if not sizes:
        return None
    return max(sizes, key=lambda size: (sizes[size], size))


def _fleiss(ratings: Sequence[Sequence[str]]) -> tuple[Fraction, float, int] | None:
    """(mean observed agreement P-bar, kappa, items used) over the items with the modal n."""
    size = _modal_size(ratings)
    if size is None:
        return None
    used = [labels for labels in ratings if len(labels) == size]
    totals: Counter[str] = Counter()
    agreeing_pairs = 0
    for labels in used:
        counts = Counter(labels)
        totals.update(counts)
        # Ordered pairs of distinct ratings on this item that gave the same category.
        agreeing_pairs += sum(count * (count - 1) for count in counts.values())
    all_ratings = len(used) * size
    observed = Fraction(agreeing_pairs, len(used) * size * (size - 1))
    expected = Fraction(sum(count * count for count in totals.values()), all_ratings * all_ratings)
    return observed, _kappa(observed, expected), len(used)


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa, one entry per item holding the labels that item received.

    Fleiss' formula needs the same number n >= 2 of ratings on every item, so only the items with
    the most common such n enter it (ties go to the larger n); the others are left out. None when
    no item has two ratings. When every rating is one and the same category the result is 1.0, by
    the same convention as `cohens_kappa`."""
    result = _fleiss(ratings)
    return None if result is None else result[1]


@dataclass(frozen=True)
class Agreement:
    method: str  # COHEN or FLEISS
    value: float | None
    items: int  # items that entered the computation
    raters: int  # distinct reviewers whose verdicts entered the computation
    # Share (0 to 1, not 0 to 100) of agreeing judgements: for Cohen the share of items both
    # reviewers labelled alike; for Fleiss the mean, over items, of the share of agreeing pairs of
    # ratings (P-bar), which is the same number when every item has two ratings.
    percent_agreement: float | None


def agreement(reviews: Sequence[tuple[int, int, str]]) -> Agreement | None:
    """Agreement among reviewers from (item_id, reviewer_id, verdict) rows.

    Only items reviewed by at least two reviewers count. If exactly two reviewers appear on those
    items, Cohen's kappa over the items both reviewed; with three or more, Fleiss' kappa over the
    items with the most common number of reviews (see `fleiss_kappa`). None when no item has two
    reviews. A reviewer who reviewed an item more than once counts once, with the last row's
    verdict, so a changed mind replaces the earlier verdict instead of adding a rating."""
    by_item: dict[int, dict[int, str]] = {}
    for item_id, reviewer_id, verdict in reviews:
        by_item.setdefault(item_id, {})[reviewer_id] = verdict
    shared = {item: verdicts for item, verdicts in by_item.items() if len(verdicts) >= 2}
    if not shared:
        return None

    reviewers = sorted({reviewer for verdicts in shared.values() for reviewer in verdicts})
    if len(reviewers) == 2:
        first, second = reviewers
        # With only two reviewers on the shared items, every shared item has both of them.
        pairs = [(verdicts[first], verdicts[second]) for verdicts in shared.values()]
        cohen = _cohen(pairs)
        assert cohen is not None  # shared is not empty
        observed, kappa = cohen
        return Agreement(COHEN, kappa, len(pairs), 2, float(observed))

    ratings = [list(verdicts.values()) for verdicts in shared.values()]
    fleiss = _fleiss(ratings)
    assert fleiss is not None  # every shared item has at least two reviews
    observed, kappa, items = fleiss
    size = _modal_size(ratings)
    raters = len(
        {reviewer for verdicts in shared.values() if len(verdicts) == size for reviewer in verdicts}
    )
    return Agreement(FLEISS, kappa, items, raters, float(observed))


# Upper bounds (inclusive) of the Landis & Koch (1977) bands above "poor". The kappa functions
# return the float nearest the exact value, so an exact 2/5 arrives as 0.4 and lands in "fair".
_BANDS = ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial"))


def interpret(kappa: float | None) -> str:
    """Landis & Koch's word for a kappa: "poor" below 0, then "slight" up to 0.20, "fair" up to
    0.40, "moderate" up to 0.60, "substantial" up to 0.80 and "almost perfect" above; "" for None.
    Upper bounds are inclusive: 0.4 is "fair", 0.8 is "substantial"."""
    if kappa is None:
        return ""
    if kappa < 0:
        return "poor"
    for bound, word in _BANDS:
        if kappa <= bound:
            return word
    return "almost perfect"
