"""Wilson score intervals, against published values."""

import pytest

from app.recipe.intervals import rate, wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Computed by hand from Wilson's formula with z = 1.959964; the same as
        # statsmodels' proportion_confint(method="wilson") and Newcombe (1998), table I.
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (8, 10, 0.4902, 0.9433),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_wilson_matches_known_values(successes: int, trials: int, low: float, high: float) -> None:
    got_low, got_high = wilson_interval(successes, trials)
    assert got_low == pytest.approx(low, abs=1e-4)
    assert got_high == pytest.approx(high, abs=1e-4)


def test_a_higher_confidence_gives_a_wider_interval_inside_zero_and_one() -> None:
    narrow, wide = wilson_interval(3, 12, 0.8), wilson_interval(3, 12, 0.99)
    assert 0 < wide[0] < narrow[0] < 0.25 < narrow[1] < wide[1] < 1


def test_no_trials_is_the_whole_range_and_the_rate_has_no_value() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert rate(0, 0).value is None
    assert rate(3, 4).value == 0.75


@pytest.mark.parametrize(("successes", "trials"), [(5, 4), (-1, 3), (0, -1)])
def test_counts_that_are_not_a_rate_are_refused(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match="not a rate"):
        wilson_interval(successes, trials)


def test_a_confidence_outside_zero_and_one_is_refused() -> None:
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, 1.0)
