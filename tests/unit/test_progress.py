"""The step message a running job shows, and the rate and time-left arithmetic behind it."""

import pytest

from app.timeutil import format_duration
from worker.backends.base import GenerationParams
from worker.backends.fake import FakeBackend
from worker.progress import (
    MeteredBackend,
    StepProgress,
    run_summary,
    seconds_left,
    tokens_per_second,
)


def progress(**overrides: object) -> StepProgress:
    values: dict[str, object] = {
        "chunk_number": 2,
        "chunks": 5,
        "step": "round 1 critiques",
        "items": 16,
        "unit": "prompts",
        "steps_done": 1,
        "steps_total": 3,
        "tokens": 920,
        "seconds": 40.0,
        "job_remaining": 64,
    }
    values.update(overrides)
    return StepProgress(**values)  # type: ignore[arg-type]


def test_the_message_reads_like_the_issue_asks() -> None:
    # 920 tokens in 40 s; a third of 16 prompts in 40 s is 0.1333 prompts/s, and 64 - 5.33
    # prompts are left: 440 s, about 7 min.
    step = progress()
    assert step.tokens_per_second == pytest.approx(23.0)
    assert step.items_done == pytest.approx(16 / 3)
    assert step.seconds_left == pytest.approx((64 - 16 / 3) / (16 / 3 / 40))
    assert step.message == (
        "chunk 2 of 5 · round 1 critiques · 16 prompts · 23 tok/s · about 7 min left"
    )


def test_a_first_step_has_no_rate_until_past_chunks_give_one() -> None:
    first = progress(steps_done=0, tokens=0, seconds=0.0, step="initial replies")
    assert first.tokens_per_second is None and first.seconds_left is None
    assert first.message == "chunk 2 of 5 · initial replies · 16 prompts"
    # Earlier chunks took 3 s a prompt: 64 prompts left, about 3 min.
    paced = progress(steps_done=0, tokens=0, seconds=0.0, past_seconds_per_item=3.0)
    assert paced.seconds_left == pytest.approx(192.0)
    assert paced.message.endswith("16 prompts · about 3 min left")


def test_chunks_running_side_by_side_shorten_the_time_left() -> None:
    alone, four = progress(), progress(running=4)
    assert alone.seconds_left is not None and four.seconds_left is not None
    assert four.seconds_left == pytest.approx(alone.seconds_left / 4)


def test_a_chunk_numbered_past_the_count_never_reads_3_of_2() -> None:
    assert progress(chunk_number=3, chunks=2).message.startswith("chunk 3 of 3 ·")


def test_rates_and_time_left_refuse_to_divide_by_nothing() -> None:
    assert tokens_per_second(0, 5.0) is None and tokens_per_second(10, 0.0) is None
    assert tokens_per_second(50, 2.0) == 25.0
    assert seconds_left(10, None) is None and seconds_left(10, 0.0) is None
    assert seconds_left(10, 2.0) == 5.0 and seconds_left(-3, 2.0) == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "1 s"),
        (7.2, "8 s"),
        (44, "40 s"),
        (54, "50 s"),
        (59, "1 min"),
        (61, "1 min"),
        (170, "3 min"),
        (3599, "1 h"),
        (3600, "1 h"),
        (4500, "1 h 15 min"),
    ],
)
def test_durations_are_rounded_as_a_person_says_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_small_rates_keep_a_decimal() -> None:
    assert "· 2.5 tok/s ·" in progress(tokens=100).message


def test_the_metered_backend_counts_completion_tokens_and_passes_the_rest_through() -> None:
    inner = FakeBackend()
    metered = MeteredBackend(inner)
    conversation = [{"role": "user", "content": "hello there"}]
    out = metered.generate([conversation, conversation], GenerationParams(max_new_tokens=3))
    assert metered.tokens == sum(g.completion_tokens for g in out) == 6
    assert metered.seconds > 0 and metered.name == "fake" and metered.context_length == 4096
    assert metered.score([conversation], ["a b"]) == inner.score([conversation], ["a b"])
    assert metered.replies == inner.replies  # a backend's own attributes pass through


def test_the_run_summary() -> None:
    assert (
        run_summary(items=8, unit="prompts", tokens=2304, seconds=74.0, where="out.jsonl")
        == "8 prompts · 2,304 tokens in 1 min (31 tok/s) → out.jsonl"
    )
    assert run_summary(items=0, unit="prompts", tokens=0, seconds=0.5) == (
        "0 prompts · 0 tokens in 1 s"
    )
