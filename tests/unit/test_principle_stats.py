"""Unit tests for app.recipe.principle_stats: change sizes and per-principle statistics."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.recipe.principle_stats import PrincipleStats, StepRecord, change_size, principle_stats

# --- change_size ---


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("", "", 0.0),
        ("same words here", "same words here", 0.0),
        ("one two three", "one three", 1 / 5),  # one deleted word of five
        ("one three", "one two three", 1 / 5),  # one inserted word of five
        ("the cat sat", "the dog sat", 2 / 6),  # a replacement deletes and inserts
        ("old words", "brand new text", 1.0),  # nothing kept
        ("", "hello world", 1.0),
        ("hello world", "", 1.0),
        ("a  b\tc\n", "a b c", 0.0),  # whitespace is not words
    ],
)
def test_change_size(old: str, new: str, expected: float) -> None:
    assert change_size(old, new) == pytest.approx(expected)


# --- principle_stats ---


def step(key: str, trace: int, initial: str, revision: str, *flags: str) -> StepRecord:
    return StepRecord(key, trace, initial, revision, flags)


def test_no_steps_no_stats() -> None:
    assert principle_stats([], {1: ["reject"]}) == []


def test_principle_stats_by_hand() -> None:
    steps = [
        # harm: 3 rounds over traces 1, 1, 2.
        step("harm", 1, "a b c d", "a b c d"),  # change 0
        step("harm", 1, "a b c d", "a b x d", "truncated"),  # change 2/8
        step("harm", 2, "p q", "", "empty_revision"),  # change 2/2
        # honesty: 3 rounds over traces 2, 3, 4.
        step("honesty", 2, "p q", "p q r", "empty_critique", "empty_revision"),  # 1/5
        step("honesty", 3, "x", "x"),  # 0
        step("honesty", 4, "x", "y", "failed"),  # 2/2
        # privacy: 1 round, trace 5, never reviewed.
        step("privacy", 5, "m n", "m n o p"),  # 2/6
    ]
    verdicts = {
        1: ["approve", "reject"],
        2: ["approve"],
        3: ["reject"],
        4: [],  # a trace with no verdicts is unreviewed
    }
    stats = principle_stats(steps, verdicts)
    # Means of floats: compared apart, with a tolerance, then blanked for the exact comparison.
    assert [s.mean_change for s in stats] == pytest.approx(
        [(0 + 2 / 8 + 1) / 3, (1 / 5 + 0 + 1) / 3, 2 / 6]
    )
    assert [replace(s, mean_change=None) for s in stats] == [
        PrincipleStats(
            key="harm",
            uses=3,
            traces=2,
            reviewed=2,
            rejected=1,
            reject_rate=0.5,
            mean_change=None,
            empty_or_failed=1,
        ),
        PrincipleStats(
            key="honesty",
            uses=3,
            traces=3,
            reviewed=2,
            rejected=1,
            reject_rate=0.5,
            mean_change=None,
            empty_or_failed=2,
        ),
        PrincipleStats(
            key="privacy",
            uses=1,
            traces=1,
            reviewed=0,
            rejected=0,
            reject_rate=None,
            mean_change=None,
            empty_or_failed=0,
        ),
    ]


def test_a_rejected_trace_counts_once_per_principle() -> None:
    steps = [step("harm", 7, "a", "b")] * 3
    [stats] = principle_stats(steps, {7: ["reject", "reject"]})
    assert (stats.uses, stats.traces, stats.reviewed, stats.rejected) == (3, 1, 1, 1)
    assert stats.reject_rate == 1.0


def test_sorted_by_uses_then_key() -> None:
    steps = [
        step("zeta", 1, "a", "a"),
        step("beta", 1, "a", "a"),
        step("alpha", 2, "a", "a"),
        step("zeta", 2, "a", "a"),
        step("mid", 3, "a", "a"),
        step("mid", 3, "a", "a"),
        step("mid", 3, "a", "a"),
    ]
    keys = [stats.key for stats in principle_stats(iter(steps), {})]
    assert keys == ["mid", "zeta", "alpha", "beta"]


def test_flags_that_count_as_empty_or_failed() -> None:
    steps = [
        step("p", 1, "a", "a", "empty_critique"),
        step("p", 1, "a", "a", "empty_whatever"),
        step("p", 1, "a", "a", "failed"),
        step("p", 1, "a", "a", "truncated"),
        step("p", 1, "a", "a", "failed_partly", "not_empty_"),
        step("p", 1, "a", "a"),
    ]
    [stats] = principle_stats(steps, {})
    assert stats.empty_or_failed == 3
