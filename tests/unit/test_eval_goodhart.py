"""The evaluation's Goodhart watch: per model (and suite), the share of replies with the run's
most repeated n-grams, all models pooled, and the mean reply length."""

import json

import pytest

from app.recipe.eval_goodhart import Reply, reply_watch, watch_from_json, watch_json

BOILERPLATE = "you are valid, valued, and cared for"
BASE, RL = 1, 2
SAFE, RED = 10, 20


def test_a_policy_that_learnt_boilerplate_shows_a_higher_share_than_its_start() -> None:
    replies = [
        Reply(BASE, SAFE, "Paris is the capital of France."),
        Reply(BASE, SAFE, "Water boils at a hundred degrees."),
        Reply(RL, SAFE, f"Paris is the capital. {BOILERPLATE}"),
        Reply(RL, SAFE, f"It boils at a hundred. {BOILERPLATE}"),
        Reply(RL, SAFE, f"Hello! {BOILERPLATE}"),
    ]
    watch = reply_watch(replies, [BASE, RL], [SAFE])
    # The boilerplate's n-grams are in three replies, the facts' in two: the top three are
    # the boilerplate's, ties broken alphabetically.
    assert watch.top == ("are valid valued and", "valid valued and cared", "valued and cared for")
    shares = {row.model_id: row.share for row in watch.rows}
    assert shares == {BASE: 0.0, RL: 1.0}
    assert [row.suite_id for row in watch.rows] == [None, None]  # one suite: no per-suite rows
    base, rl = watch.rows
    assert (base.replies, base.with_top, rl.replies, rl.with_top) == (2, 0, 3, 3)
    assert base.mean_words == pytest.approx(6.0)
    assert rl.mean_words == pytest.approx((11 + 12 + 8) / 3)


def test_the_top_ngrams_are_the_evaluations_so_every_model_is_measured_against_them() -> None:
    # The base model says one phrase often, the RL policy another a little: the pooled top
    # (one n-gram) is the base's, and the RL policy's share is 0 against it.
    base_phrase = "as an ai language model"
    replies = [Reply(BASE, SAFE, f"{base_phrase} {i}") for i in range(3)] + [
        Reply(RL, SAFE, "i hope this helps you today"),
        Reply(RL, SAFE, "i hope this helps you today"),
    ]
    watch = reply_watch(replies, [BASE, RL], [SAFE], top=1)
    assert watch.top[0] in base_phrase
    assert {row.model_id: row.share for row in watch.rows} == {BASE: 1.0, RL: 0.0}


def test_per_suite_rows_follow_the_pooled_rows_when_the_run_has_several_suites() -> None:
    replies = [
        Reply(RL, SAFE, f"one {BOILERPLATE}"),
        Reply(RL, RED, f"two {BOILERPLATE}"),
        Reply(RL, RED, "no phrase here at all"),
        Reply(BASE, RED, "nothing repeated"),
    ]
    watch = reply_watch(replies, [BASE, RL], [SAFE, RED])
    rows = {(row.suite_id, row.model_id): row for row in watch.rows}
    assert list(rows) == [
        (None, BASE),
        (None, RL),
        (SAFE, BASE),
        (SAFE, RL),
        (RED, BASE),
        (RED, RL),
    ]
    assert rows[None, RL].share == pytest.approx(2 / 3)
    assert rows[SAFE, RL].share == 1.0 and rows[RED, RL].share == 0.5
    # A model with no reply on a suite: no share, no length, no division by zero.
    assert (rows[SAFE, BASE].replies, rows[SAFE, BASE].share) == (0, 0.0)
    assert rows[SAFE, BASE].mean_words == 0.0


def test_a_phrase_repeated_within_one_reply_only_is_not_a_repeated_ngram() -> None:
    replies = [
        Reply(RL, SAFE, f"{BOILERPLATE} {BOILERPLATE}"),
        Reply(BASE, SAFE, "something else entirely here"),
    ]
    watch = reply_watch(replies, [BASE, RL], [SAFE])
    assert watch.top == ()
    assert all(row.share == 0.0 for row in watch.rows)
    empty = reply_watch([], [BASE], [SAFE])
    assert empty.top == () and empty.rows[0].replies == 0


def test_the_watch_survives_a_trip_through_a_runs_stored_json() -> None:
    replies = [
        Reply(BASE, SAFE, f"Hello there. {BOILERPLATE}"),
        Reply(RL, SAFE, f"Hi. {BOILERPLATE}"),
        Reply(RL, RED, "No."),
    ]
    watch = reply_watch(replies, [BASE, RL], [SAFE, RED])
    stored = json.loads(json.dumps(watch_json(watch)))
    assert watch_from_json(stored) == watch
