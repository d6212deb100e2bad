"""Unit tests for app.recipe.agreement: Cohen's and Fleiss' kappa, choosing between them from
review rows, and the Landis & Koch words."""

from __future__ import annotations

from fractions import Fraction

import pytest

from app.recipe.agreement import (
    COHEN,
    FLEISS,
    Agreement,
    _kappa,
    agreement,
    cohens_kappa,
    fleiss_kappa,
    interpret,
)

# The classic 2x2 example: 50 items, 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
CLASSIC = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15

# Wikipedia's worked example of Fleiss' kappa: 10 subjects, 14 raters, 5 categories; each row
# counts the raters who put the subject in each category.
WIKIPEDIA_COUNTS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]
CATEGORIES = "12345"


def wikipedia_ratings() -> list[list[str]]:
    return [
        [category for category, count in zip(CATEGORIES, row, strict=True) for _ in range(count)]
        for row in WIKIPEDIA_COUNTS
    ]


def as_reviews(ratings: list[list[str]]) -> list[tuple[int, int, str]]:
    """Item i's j-th label becomes reviewer j's verdict on item i."""
    return [
        (item, reviewer, label)
        for item, labels in enumerate(ratings)
        for reviewer, label in enumerate(labels)
    ]


# --- Cohen's kappa ---


def test_cohen_classic_example_is_0_4() -> None:
    assert cohens_kappa(CLASSIC) == 0.4


def test_cohen_is_symmetric_in_the_raters() -> None:
    swapped = [(second, first) for first, second in CLASSIC]
    assert cohens_kappa(swapped) == cohens_kappa(CLASSIC)


def test_cohen_three_categories_by_hand() -> None:
    # observed 3/4; marginals a 2/1, b 1/2, c 1/1 -> expected 5/16; kappa (12-5)/(16-5) = 7/11.
    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("c", "c")]
    assert cohens_kappa(pairs) == float(Fraction(7, 11))


def test_cohen_perfect_agreement_is_1() -> None:
    assert cohens_kappa([("approve", "approve"), ("reject", "reject")] * 3) == 1.0


def test_cohen_complete_disagreement_is_minus_1() -> None:
    assert cohens_kappa([("approve", "reject"), ("reject", "approve")]) == -1.0


def test_cohen_agreement_at_chance_is_0() -> None:
    pairs = [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")]
    assert cohens_kappa(pairs) == 0.0


def test_cohen_no_items_is_none() -> None:
    assert cohens_kappa([]) is None


def test_cohen_one_shared_category_is_1_by_convention() -> None:
    # Expected agreement is 1, so the formula is 0 / 0.
    assert cohens_kappa([("approve", "approve")] * 4) == 1.0
    assert cohens_kappa([("approve", "approve")]) == 1.0


def test_degenerate_convention() -> None:
    assert _kappa(Fraction(1), Fraction(1)) == 1.0
    assert _kappa(Fraction(1, 2), Fraction(1)) == 0.0


# --- Fleiss' kappa ---


def test_fleiss_wikipedia_example() -> None:
    kappa = fleiss_kappa(wikipedia_ratings())
    assert kappa is not None
    assert round(kappa, 3) == 0.210
    assert kappa == pytest.approx(0.2099307, abs=1e-7)


def test_fleiss_with_two_raters_is_scotts_pi() -> None:
    # Fleiss pools the marginals: yes 55/100, no 45/100 -> expected 0.505; (0.7-0.505)/0.495.
    ratings = [[first, second] for first, second in CLASSIC]
    assert fleiss_kappa(ratings) == float(Fraction(13, 33))


def test_fleiss_perfect_agreement_is_1() -> None:
    assert fleiss_kappa([["a", "a", "a"], ["b", "b", "b"], ["c", "c", "c"]]) == 1.0


def test_fleiss_one_category_everywhere_is_1_by_convention() -> None:
    assert fleiss_kappa([["a", "a", "a"], ["a", "a", "a"]]) == 1.0


def test_fleiss_no_qualifying_item_is_none() -> None:
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([["a"], [], ["b"]]) is None


def test_fleiss_uses_the_items_with_the_most_common_number_of_ratings() -> None:
    modal = [["a", "a", "b"], ["b", "b", "b"], ["a", "b", "b"]]
    others = [["a", "b"], ["a", "b", "a", "b"], ["a"]]
    assert fleiss_kappa(modal + others) == fleiss_kappa(modal)
    assert fleiss_kappa(others + modal) == fleiss_kappa(modal)


def test_fleiss_size_tie_goes_to_more_ratings() -> None:
    pairs = [["a", "b"], ["b", "a"]]
    triples = [["a", "a", "a"], ["b", "b", "b"]]
    assert fleiss_kappa(pairs + triples) == fleiss_kappa(triples) == 1.0


# --- agreement() ---


def test_agreement_none_without_an_item_reviewed_twice() -> None:
    assert agreement([]) is None
    assert agreement([(1, 10, "approve"), (2, 11, "reject"), (3, 10, "reject")]) is None


def test_agreement_two_reviewers_uses_cohen() -> None:
    reviews = [
        row
        for item, (first, second) in enumerate(CLASSIC)
        for row in ((item, 7, first), (item, 9, second))
    ]
    assert agreement(reviews) == Agreement(COHEN, 0.4, 50, 2, 0.7)


def test_agreement_ignores_items_with_one_review() -> None:
    reviews = [
        (1, 10, "approve"),
        (1, 11, "approve"),
        (2, 10, "reject"),
        (2, 11, "approve"),
        # Single reviews, including from a third reviewer, do not count.
        (3, 10, "reject"),
        (4, 12, "reject"),
        (5, 12, "approve"),
    ]
    result = agreement(reviews)
    assert result is not None
    assert (result.method, result.items, result.raters) == (COHEN, 2, 2)
    assert result.percent_agreement == 0.5
    assert result.value == cohens_kappa([("approve", "approve"), ("reject", "approve")])


def test_agreement_a_reviewers_later_row_replaces_the_earlier() -> None:
    reviews = [
        (1, 10, "approve"),
        (1, 11, "reject"),
        (1, 11, "approve"),
        (2, 10, "reject"),
        (2, 11, "reject"),
    ]
    assert agreement(reviews) == Agreement(COHEN, 1.0, 2, 2, 1.0)


def test_agreement_three_reviewers_uses_fleiss() -> None:
    result = agreement(as_reviews(wikipedia_ratings()))
    assert result is not None
    assert result.method == FLEISS
    assert (result.items, result.raters) == (10, 14)
    assert result.value == fleiss_kappa(wikipedia_ratings())
    # Mean share of agreeing rating pairs, P-bar = 0.378 in the worked example.
    assert result.percent_agreement == float(Fraction(172, 455))
    assert round(result.percent_agreement, 3) == 0.378


def test_agreement_fleiss_over_the_modal_number_of_reviews() -> None:
    reviews = [
        # Three items with three reviews each: these enter.
        (1, 1, "approve"),
        (1, 2, "approve"),
        (1, 3, "reject"),
        (2, 1, "reject"),
        (2, 2, "reject"),
        (2, 4, "reject"),
        (3, 2, "approve"),
        (3, 3, "approve"),
        (3, 4, "approve"),
        # One item with two reviews, one with a single review: left out.
        (4, 5, "approve"),
        (4, 1, "reject"),
        (5, 6, "reject"),
    ]
    result = agreement(reviews)
    assert result is not None
    assert result.method == FLEISS
    assert (result.items, result.raters) == (3, 4)
    ratings = [["approve", "approve", "reject"], ["reject"] * 3, ["approve"] * 3]
    assert result.value == fleiss_kappa(ratings)
    # Pairs agreeing: item 1 one of three, items 2 and 3 all three -> (1/3 + 1 + 1) / 3 = 7/9.
    assert result.percent_agreement == float(Fraction(7, 9))


def test_agreement_any_category_set() -> None:
    reviews = [(1, 1, "good"), (1, 2, "good"), (2, 1, "bad"), (2, 2, "meh")]
    result = agreement(reviews)
    assert result is not None
    assert result.value == cohens_kappa([("good", "good"), ("bad", "meh")])


# --- interpret() ---


@pytest.mark.parametrize(
    ("kappa", "word"),
    [
        (None, ""),
        (-1.0, "poor"),
        (-0.01, "poor"),
        (0.0, "slight"),
        (0.2, "slight"),
        (0.21, "fair"),
        (0.4, "fair"),
        (0.41, "moderate"),
        (0.6, "moderate"),
        (0.61, "substantial"),
        (0.8, "substantial"),
        (0.81, "almost perfect"),
        (1.0, "almost perfect"),
    ],
)
def test_interpret(kappa: float | None, word: str) -> None:
    assert interpret(kappa) == word


def test_interpret_classic_example_is_fair() -> None:
    assert interpret(cohens_kappa(CLASSIC)) == "fair"
