"""The Goodhart watch (app/recipe/goodhart.py) and the prompt mix (app/recipe/prompt_mix.py)."""

from collections import Counter

import pytest

from app.recipe.goodhart import goodhart_point, goodhart_warning, ngrams
from app.recipe.prompt_mix import mix_prompts

BOILER = "you are valid, valued, and cared for"


def test_the_share_counts_completions_with_the_runs_most_repeated_four_grams() -> None:
    completions = [
        f"I hear you. {BOILER}.",
        f"That sounds hard; {BOILER}!",
        "Paris is the capital of France.",
        "You Are Valid, valued and cared for, always.",  # case and punctuation do not matter
    ]
    point = goodhart_point(completions, top=1)
    # Four 4-grams of the phrase are in three replies each; the tie goes to the first by text.
    assert point.top == ("are valid valued and",)
    assert point.share == pytest.approx(3 / 4)
    assert point.mean_words == pytest.approx(sum(len(c.split()) for c in completions) / 4)


def test_no_repeats_is_no_share_and_one_completion_alone_is_not_a_repeat() -> None:
    assert goodhart_point(["a b c d e", "f g h i j"]).share == 0.0
    assert goodhart_point(["a b c d a b c d"]).share == 0.0  # repeated inside one reply only
    assert goodhart_point([]).share == 0.0


def test_the_run_counts_carry_over_so_a_phrase_seen_before_counts() -> None:
    first = goodhart_point([f"one {BOILER}", f"two {BOILER}"])
    assert first.share == 1.0
    later = goodhart_point([f"three {BOILER}", "something else entirely here"], first.run_counts)
    assert later.share == pytest.approx(0.5)
    assert first.run_counts == later.run_counts - Counter(
        {g: 1 for g in ngrams(f"three {BOILER}") | ngrams("something else entirely here")}
    )


def test_the_warning_needs_the_share_and_the_reward_to_rise_over_the_last_three_points() -> None:
    assert goodhart_warning([0.1, 0.3, 0.6], [0.2, 0.4, 0.9])
    assert not goodhart_warning([0.1, 0.3, 0.6], [0.9, 0.4, 0.2])  # reward fell
    assert not goodhart_warning([0.1, 0.5, 0.4], [0.2, 0.4, 0.9])  # share fell on the way
    assert not goodhart_warning([0.30, 0.32, 0.35], [0.2, 0.4, 0.9])  # share barely moved
    assert not goodhart_warning([0.1, 0.6], [0.2, 0.9])  # too few points
    # Only the last three count: an early rise that has stopped does not warn.
    assert not goodhart_warning([0.0, 0.5, 0.9, 0.9, 0.9], [0, 1, 2, 3, 4])
    assert goodhart_warning([0.9, 0.1, 0.2, 0.4], [5, 1, 2, 3])


def test_prompts_mix_by_weight_seeded_and_cycle_through_a_small_set() -> None:
    sets = {1: [f"red {i}" for i in range(50)], 2: ["helpful a", "helpful b"]}
    drawn = mix_prompts(sets, {1: 3.0, 2: 1.0}, 400, seed=7)
    assert drawn == mix_prompts(sets, {1: 3.0, 2: 1.0}, 400, seed=7)
    assert drawn != mix_prompts(sets, {1: 3.0, 2: 1.0}, 400, seed=8)
    share_red = sum(1 for set_id, _ in drawn if set_id == 1) / len(drawn)
    assert 0.68 < share_red < 0.82
    helpful = [text for set_id, text in drawn if set_id == 2]
    # A used-up set starts again: both of its prompts come up equally often.
    assert abs(helpful.count("helpful a") - helpful.count("helpful b")) <= 1
    assert set(text for set_id, text in drawn[:40] if set_id == 1) <= set(sets[1])
    assert {set_id for set_id, _ in mix_prompts(sets, {2: 1.0}, 5, seed=0)} == {2}
    assert mix_prompts({1: []}, {1: 1.0}, 5, seed=0) == []
