"""How far an ensemble's principles disagree about a comparison, and the queue order it gives."""

import pytest

from app.recipe.principle_disagreement import disagreement, principle_probs, queue_key


def entry(principle: str, p: float, order: str = "AB") -> dict[str, object]:
    return {"principle": principle, "order": order, "prob_a": p, "reasoning": ""}


def test_each_principles_p_is_the_mean_of_its_orders() -> None:
    details = [entry("harm", 0.8), entry("harm", 0.6, "BA"), entry("help", 0.2)]
    assert principle_probs(details) == pytest.approx({"harm": 0.7, "help": 0.2})
    # Entries without a number are left out, not read as 0.
    assert principle_probs([entry("harm", 0.8), {"principle": "x", "prob_a": None}]) == {
        "harm": 0.8
    }


def test_principles_pulling_opposite_ways_disagree_and_leaning_alike_only_spread() -> None:
    opposed = disagreement([entry("a", 0.9), entry("b", 0.2)])
    assert opposed.opposition == pytest.approx(0.3) and opposed.spread == pytest.approx(0.7)
    alike = disagreement([entry("a", 0.9), entry("b", 0.6)])
    assert alike.opposition == 0.0 and alike.spread == pytest.approx(0.3)
    # One principle (in both orders) cannot disagree with itself.
    single = disagreement([entry("a", 0.9), entry("a", 0.1, "BA")])
    assert (single.opposition, single.spread) == (0.0, 0.0)
    assert disagreement([]) == disagreement([entry("a", 0.3)])


def test_the_queue_serves_most_opposed_then_widest_spread_then_by_id() -> None:
    comparisons = {
        1: [entry("a", 0.6)],  # one principle
        2: [entry("a", 0.9), entry("b", 0.6)],  # alike, spread 0.3
        3: [entry("a", 0.55), entry("b", 0.45)],  # opposed 0.05
        4: [entry("a", 0.9), entry("b", 0.1)],  # opposed 0.4
        5: [entry("a", 0.45), entry("b", 0.55)],  # as 3, later id
        6: [entry("a", 0.7), entry("b", 0.8)],  # alike, spread 0.1
    }
    ordered = sorted(comparisons, key=lambda i: queue_key(i, comparisons[i]))
    assert ordered == [4, 3, 5, 2, 6, 1]
