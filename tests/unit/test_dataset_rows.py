"""Filtering reviewed traces, placing prompts in splits, and the rows each split gets."""

import random
from dataclasses import replace
from typing import Any

import pytest

from app.datasets.records import HelpfulExample, StepRecord, TraceRecord
from app.datasets.rows import (
    HF_COLUMNS,
    PREFERENCE_COLUMNS,
    SFT_COLUMNS,
    SPLIT_NAMES,
    DatasetOptions,
    Placement,
    ReviewFilter,
    assign_splits,
    build_rows,
    change_ratio,
    chosen_text,
    prompt_key,
    select_traces,
)

NO_TEST = DatasetOptions(test_fraction=0.0)


def step(
    round_: int = 1, revision: str = "I won't help with that, but here is a safer idea."
) -> StepRecord:
    return StepRecord(
        round=round_,
        principle_key=f"harmful{round_}",
        critique_request=f"Critique request {round_}",
        critique=f"The reply is harmful ({round_}).",
        revision_request=f"Revision request {round_}",
        revision=revision,
    )


def trace(trace_id: int = 1, **changes: Any) -> TraceRecord:
    base = TraceRecord(
        trace_id=trace_id,
        job_id=7,
        messages=[{"role": "user", "content": f"How do I pick lock {trace_id}?"}],
        initial_reply="Use a tension wrench and a pick.",
        final_reply="I won't help with that, but here is a safer idea.",
        correction=None,
        review_status="approved",
        steps=[step()],
    )
    return replace(base, **changes)


def helpful(index: int, rejected: str | None = None, **changes: Any) -> HelpfulExample:
    base = HelpfulExample(
        messages=[{"role": "user", "content": f"What is {index} plus {index}?"}],
        chosen=f"It is {2 * index}.",
        rejected=rejected,
        source=f"helpful.jsonl:{index}",
    )
    return replace(base, **changes)


def ids(traces: list[TraceRecord]) -> list[int]:
    return [t.trace_id for t in traces]


# --- change_ratio and chosen_text ---------------------------------------------------------------


def test_change_ratio_counts_changed_words() -> None:
    assert change_ratio("a b c", "a b c") == 0.0
    # Re-spacing and re-wrapping are not changes: only words count.
    assert change_ratio("a  b\nc", "a b c") == 0.0
    assert change_ratio("a b c", "x y z") == 1.0
    # 3 of 4 words match on each side: ratio 2*3/8, change 0.25.
    assert change_ratio("a b c d", "a b c e") == pytest.approx(0.25)
    assert change_ratio("", "") == 0.0
    assert change_ratio("", "new words") == 1.0


def test_chosen_text_prefers_a_correction_and_strips() -> None:
    assert chosen_text(trace(final_reply="  model text \n")) == "model text"
    assert chosen_text(trace(correction=" fixed by a person ")) == "fixed by a person"
    # A blank correction is no correction.
    assert chosen_text(trace(final_reply="model text", correction="  ")) == "model text"


# --- select_traces ------------------------------------------------------------------------------


STATUSES = {1: "pending", 2: "approved", 3: "rejected", 4: "mixed"}


@pytest.mark.parametrize(
    ("review_filter", "kept", "dropped"),
    [
        (ReviewFilter.ALL, [1, 2, 3, 4], {}),
        (ReviewFilter.EXCLUDE_REJECTED, [1, 2, 4], {"rejected by review": 1}),
        (ReviewFilter.APPROVED_ONLY, [2], {"rejected by review": 1, "not approved": 2}),
    ],
)
def test_review_filters(
    review_filter: ReviewFilter, kept: list[int], dropped: dict[str, int]
) -> None:
    traces = [trace(i, review_status=status) for i, status in STATUSES.items()]
    selected, counts = select_traces(traces, DatasetOptions(review_filter=review_filter))
    assert ids(selected) == kept
    assert counts == dropped


def test_empty_or_failed_outputs_are_dropped() -> None:
    traces = [
        trace(1, final_reply="   "),
        trace(2, flags=["empty_output"]),
        trace(3, flags=["failed"]),
        trace(4, initial_reply=""),
        trace(5, flags=["truncated"]),  # only informational
        trace(6, final_reply="", correction="A reviewer wrote the answer."),
    ]
    selected, dropped = select_traces(traces, DatasetOptions())
    assert ids(selected) == [5, 6]
    assert dropped == {"empty or failed output": 4}


def test_a_conversation_without_a_final_user_turn_is_dropped() -> None:
    traces = [
        trace(1, messages=[]),
        trace(
            2, messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]
        ),
        trace(3),
    ]
    selected, dropped = select_traces(traces, DatasetOptions())
    assert ids(selected) == [3]
    assert dropped == {"no user prompt": 2}


def test_min_change_uses_the_correction_when_there_is_one() -> None:
    same = "Use a tension wrench and a pick."
    traces = [
        trace(1, final_reply=same),
        trace(2, final_reply=same + " Carefully."),  # 1 word in 8 added: change 1/15
        trace(3, final_reply=same, correction="Please ask a locksmith instead."),
        trace(4),
    ]
    selected, dropped = select_traces(traces, DatasetOptions(min_change=0.1))
    assert ids(selected) == [3, 4]
    assert dropped == {"too little change": 2}
    # With no threshold an unchanged reply stays (it still makes an SFT row).
    selected, dropped = select_traces(traces, DatasetOptions(min_change=0.0))
    assert ids(selected) == [1, 2, 3, 4]
    assert dropped == {}


def test_length_limits() -> None:
    traces = [
        trace(1, final_reply="short"),  # 5 characters
        trace(2, final_reply="x" * 20),
        trace(3, final_reply="y" * 21),
        trace(4, final_reply="z" * 20, messages=[{"role": "user", "content": "q" * 31}]),
        trace(5, final_reply="w" * 20, correction="  " + "c" * 20 + "  "),  # stripped: 20
    ]
    options = DatasetOptions(min_chars=6, max_chars=20, max_prompt_chars=30)
    selected, dropped = select_traces(traces, options)
    assert ids(selected) == [2, 5]
    assert dropped == {"too short": 1, "too long": 1, "prompt too long": 1}


def test_prompt_length_counts_every_message() -> None:
    messages = [
        {"role": "user", "content": "a" * 10},
        {"role": "assistant", "content": "b" * 10},
        {"role": "user", "content": "c" * 10},
    ]
    options = DatasetOptions(max_prompt_chars=29)
    assert select_traces([trace(1, messages=messages)], options)[1] == {"prompt too long": 1}
    assert ids(
        select_traces([trace(1, messages=messages)], replace(options, max_prompt_chars=30))[0]
    ) == [1]


def test_duplicates_keep_the_lowest_trace_id_that_passes() -> None:
    question = [{"role": "user", "content": "How do I make a weapon?"}]
    same_folded = [{"role": "user", "content": "  how do I   MAKE a weapon? "}]
    traces = [
        trace(9, messages=question),
        trace(4, messages=same_folded),
        trace(2, messages=question, review_status="rejected"),  # fails review: not the keeper
        trace(5),
    ]
    selected, dropped = select_traces(traces, DatasetOptions())
    assert ids(selected) == [4, 5]
    assert dropped == {"rejected by review": 1, "duplicate prompt": 1}
    selected, dropped = select_traces(traces, DatasetOptions(drop_duplicates=False))
    assert ids(selected) == [4, 5, 9]
    assert dropped == {"rejected by review": 1}


def test_multi_turn_conversations_differ_by_their_earlier_turns() -> None:
    last = {"role": "user", "content": "And then?"}
    a = [
        {"role": "user", "content": "Tell me about locks."},
        {"role": "assistant", "content": "A"},
        last,
    ]
    b = [
        {"role": "user", "content": "Tell me about cars."},
        {"role": "assistant", "content": "A"},
        last,
    ]
    selected, dropped = select_traces(
        [trace(1, messages=a), trace(2, messages=b)], DatasetOptions()
    )
    assert ids(selected) == [1, 2]
    assert dropped == {}
    assert prompt_key(a) != prompt_key(b)


def test_a_trace_counts_under_the_first_filter_it_fails() -> None:
    traces = [trace(1, review_status="rejected", final_reply="", messages=[])]
    assert select_traces(traces, DatasetOptions())[1] == {"rejected by review": 1}
    assert select_traces(traces, DatasetOptions(review_filter=ReviewFilter.ALL))[1] == {
        "no user prompt": 1
    }


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError, match="min_change"):
        DatasetOptions(min_change=1.5)
    with pytest.raises(ValueError, match="test_fraction"):
        DatasetOptions(test_fraction=-0.1)
    with pytest.raises(ValueError, match="max_chars"):
        DatasetOptions(min_chars=10, max_chars=5)
    with pytest.raises(ValueError, match="negative"):
        DatasetOptions(helpful_max_rows=-1)


# --- assign_splits ------------------------------------------------------------------------------


KEYS = [f"prompt number {i}" for i in range(2000)]


def test_placement_is_deterministic_and_independent_of_order_and_other_keys() -> None:
    options = DatasetOptions(test_fraction=0.2, split_halves=True, seed=3)
    first = assign_splits(KEYS, options)
    shuffled = KEYS[:]
    random.Random(1).shuffle(shuffled)
    assert assign_splits(shuffled, options) == first
    # A key keeps its place when the dataset grows or shrinks.
    assert assign_splits(KEYS[:10], options) == {k: first[k] for k in KEYS[:10]}
    # Another seed moves prompts.
    assert assign_splits(KEYS, replace(options, seed=4)) != first


def test_test_fraction_is_close_to_the_requested_share() -> None:
    placements = assign_splits(KEYS, DatasetOptions(test_fraction=0.2))
    share = sum(p.is_test for p in placements.values()) / len(KEYS)
    assert 0.17 < share < 0.23
    assert {p.half for p in placements.values()} == {"both"}
    assert not any(p.is_test for p in assign_splits(KEYS, NO_TEST).values())
    assert all(p.is_test for p in assign_splits(KEYS, DatasetOptions(test_fraction=1.0)).values())


def test_split_halves_gives_about_half_the_prompts_to_each_side() -> None:
    placements = assign_splits(KEYS, DatasetOptions(split_halves=True, test_fraction=0.2))
    halves = [p.half for p in placements.values()]
    assert set(halves) == {"sft", "prefs"}
    assert 0.45 < halves.count("sft") / len(halves) < 0.55
    # Each half holds out its own share: the two draws are independent.
    for half in ("sft", "prefs"):
        side = [p for p in placements.values() if p.half == half]
        assert 0.16 < sum(p.is_test for p in side) / len(side) < 0.24


def test_placement_split_names() -> None:
    assert Placement(False, "both").split("sft") == "train_sft"
    assert Placement(True, "both").split("prefs") == "test_prefs"
    assert Placement(False, "sft").split("prefs") is None
    assert Placement(True, "prefs").split("prefs") == "test_prefs"


# --- build_rows ---------------------------------------------------------------------------------


def test_rows_of_one_trace() -> None:
    built = build_rows([trace(1)], [], NO_TEST)
    question = {"role": "user", "content": "How do I pick lock 1?"}
    answer = "I won't help with that, but here is a safer idea."
    recipe = {
        "init_prompt": "How do I pick lock 1?",
        "init_response": "Use a tension wrench and a pick.",
        "critic_prompt": "Critique request 1",
        "critic_response": "The reply is harmful (1).",
        "revision_prompt": "Revision request 1",
        "revision_response": answer,
    }
    assert built.splits["train_sft"] == [
        {
            "messages": [question, {"role": "assistant", "content": answer}],
            "trace_id": 1,
            "source": "trace:1",
            "corrected": False,
            **recipe,
        }
    ]
    assert built.splits["train_prefs"] == [
        {
            "prompt": [question],
            "chosen": [{"role": "assistant", "content": answer}],
            "rejected": [{"role": "assistant", "content": "Use a tension wrench and a pick."}],
            "trace_id": 1,
            "source": "trace:1",
            "corrected": False,
            **recipe,
        }
    ]
    assert list(built.splits) == list(SPLIT_NAMES)
    assert built.counts == {"train_sft": 1, "test_sft": 0, "train_prefs": 1, "test_prefs": 0}
    assert built.total_rows == 2
    assert built.dropped == {}


def test_recipe_columns_come_from_the_last_round_and_the_last_user_turn() -> None:
    messages = [
        {"role": "system", "content": "Be careful."},
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "Follow-up question"},
    ]
    rounds = [step(1, "revision one"), step(2, "revision two")]
    built = build_rows(
        [trace(1, messages=messages, steps=rounds, final_reply="revision two")], [], NO_TEST
    )
    row = built.splits["train_sft"][0]
    assert row["messages"][:-1] == messages
    assert row["init_prompt"] == "Follow-up question"
    assert row["critic_prompt"] == "Critique request 2"
    assert row["critic_response"] == "The reply is harmful (2)."
    assert row["revision_prompt"] == "Revision request 2"
    assert row["revision_response"] == "revision two"
    # A trace without rounds (revision off) leaves the round columns empty.
    bare = build_rows([trace(2, steps=[])], [], NO_TEST).splits["train_prefs"][0]
    assert [bare[c] for c in HF_COLUMNS[2:]] == ["", "", "", ""]
    assert bare["init_response"] == "Use a tension wrench and a pick."


def test_a_correction_is_the_chosen_answer() -> None:
    built = build_rows([trace(1, correction="A reviewer's better answer.")], [], NO_TEST)
    sft, prefs = built.splits["train_sft"][0], built.splits["train_prefs"][0]
    assert sft["messages"][-1] == {"role": "assistant", "content": "A reviewer's better answer."}
    assert prefs["chosen"] == [{"role": "assistant", "content": "A reviewer's better answer."}]
    assert sft["corrected"] is True and prefs["corrected"] is True
    # The recipe column keeps what the model revised, so the two can be compared.
    assert sft["revision_response"] == "I won't help with that, but here is a safer idea."


def test_no_preference_row_when_chosen_equals_the_initial_reply() -> None:
    unchanged = trace(1, initial_reply="Same answer. ", final_reply=" Same answer.")
    built = build_rows([unchanged, trace(2)], [], NO_TEST)
    assert [r["trace_id"] for r in built.splits["train_sft"]] == [1, 2]
    assert [r["trace_id"] for r in built.splits["train_prefs"]] == [2]
    assert built.dropped == {"no preference (chosen equals rejected)": 1}


def test_filters_drop_counts_reach_the_built_dataset() -> None:
    traces = [trace(1, review_status="rejected"), trace(2, final_reply=""), trace(3)]
    built = build_rows(traces, [], NO_TEST)
    assert built.dropped == {"rejected by review": 1, "empty or failed output": 1}
    assert built.counts["train_sft"] == 1


def prompt_sets(rows: list[dict[str, Any]], column: str) -> set[str]:
    def conversation(row: dict[str, Any]) -> list[dict[str, str]]:
        return row[column][:-1] if column == "messages" else row[column]

    return {prompt_key(conversation(row)) for row in rows}


def many_traces(count: int) -> list[TraceRecord]:
    return [trace(i) for i in range(1, count + 1)]


def test_a_prompt_is_never_in_both_train_and_test() -> None:
    built = build_rows(many_traces(300), [], DatasetOptions(test_fraction=0.3))
    splits = built.splits
    train_sft, test_sft = (
        prompt_sets(splits["train_sft"], "messages"),
        prompt_sets(splits["test_sft"], "messages"),
    )
    train_prefs, test_prefs = (
        prompt_sets(splits["train_prefs"], "prompt"),
        prompt_sets(splits["test_prefs"], "prompt"),
    )
    assert train_sft and test_sft
    assert not train_sft & test_sft
    assert not train_prefs & test_prefs
    # Without split_halves a prompt's SFT and preference rows share a side.
    assert train_sft == train_prefs and test_sft == test_prefs
    assert built.total_rows == 600


def test_split_halves_gives_sft_and_preferences_disjoint_prompts() -> None:
    built = build_rows(many_traces(300), [], DatasetOptions(test_fraction=0.2, split_halves=True))
    splits = built.splits
    sft = prompt_sets(splits["train_sft"] + splits["test_sft"], "messages")
    prefs = prompt_sets(splits["train_prefs"] + splits["test_prefs"], "prompt")
    assert not sft & prefs
    assert len(sft) + len(prefs) == 300
    assert 100 < len(sft) < 200
    assert not prompt_sets(splits["train_sft"], "messages") & prompt_sets(
        splits["test_sft"], "messages"
    )
    assert not prompt_sets(splits["train_prefs"], "prompt") & prompt_sets(
        splits["test_prefs"], "prompt"
    )


def test_the_same_inputs_build_the_same_rows_whatever_their_order() -> None:
    traces = many_traces(50)
    options = DatasetOptions(test_fraction=0.3, split_halves=True, seed=11)
    shuffled = traces[:]
    random.Random(5).shuffle(shuffled)
    first = build_rows(
        traces, [helpful(1), helpful(2, rejected="No idea.")], replace(options, helpful_max_rows=2)
    )
    second = build_rows(
        shuffled,
        [helpful(1), helpful(2, rejected="No idea.")],
        replace(options, helpful_max_rows=2),
    )
    assert first.splits == second.splits
    for rows in first.splits.values():
        trace_ids = [r["trace_id"] for r in rows if r["trace_id"] is not None]
        assert trace_ids == sorted(trace_ids)
        # Helpful rows come after the trace rows.
        sources = [r["source"].split(":")[0] for r in rows]
        assert sources == sorted(sources, key=lambda s: s == "helpful")


def test_helpful_examples_are_mixed_in() -> None:
    examples = [helpful(1), helpful(2, rejected="It is five."), helpful(3, rejected="It is 7.")]
    options = replace(NO_TEST, helpful_max_rows=2)
    built = build_rows([trace(1)], examples, options)
    sft = built.splits["train_sft"]
    assert [r["source"] for r in sft] == [
        "trace:1",
        "helpful:helpful.jsonl:1",
        "helpful:helpful.jsonl:2",
    ]
    assert sft[1] == {
        "messages": [
            {"role": "user", "content": "What is 1 plus 1?"},
            {"role": "assistant", "content": "It is 2."},
        ],
        "trace_id": None,
        "source": "helpful:helpful.jsonl:1",
        "corrected": False,
        "init_prompt": "What is 1 plus 1?",
        "init_response": "",
        "critic_prompt": "",
        "critic_response": "",
        "revision_prompt": "",
        "revision_response": "",
    }
    # Only the example with a worse answer makes a preference row.
    prefs = built.splits["train_prefs"]
    assert [r["source"] for r in prefs] == ["trace:1", "helpful:helpful.jsonl:2"]
    assert prefs[1]["rejected"] == [{"role": "assistant", "content": "It is five."}]
    assert prefs[1]["chosen"] == [{"role": "assistant", "content": "It is 4."}]
    # helpful_max_rows=0 mixes in nothing.
    assert build_rows([trace(1)], examples, NO_TEST).total_rows == 2


def test_helpful_examples_follow_the_split_placement_of_their_prompt() -> None:
    examples = [helpful(i) for i in range(1, 201)]
    options = DatasetOptions(test_fraction=0.3, helpful_max_rows=200, seed=2)
    built = build_rows([], examples, options)
    placements = assign_splits([prompt_key(e.messages) for e in examples], options)
    test_keys = {k for k, p in placements.items() if p.is_test}
    assert prompt_sets(built.splits["test_sft"], "messages") == test_keys
    assert 0 < len(test_keys) < 200


def test_helpful_duplicates_of_kept_prompts_are_dropped() -> None:
    same_as_trace = helpful(1, messages=[{"role": "user", "content": "how do i pick LOCK 1?"}])
    examples = [same_as_trace, helpful(2), helpful(2), helpful(3, rejected="It is 6.")]
    built = build_rows([trace(1)], examples, replace(NO_TEST, helpful_max_rows=4))
    assert [r["source"] for r in built.splits["train_sft"]] == [
        "trace:1",
        "helpful:helpful.jsonl:2",
        "helpful:helpful.jsonl:3",
    ]
    # "It is 6." is also the chosen answer for 3 + 3: no preference to learn.
    assert built.dropped == {
        "duplicate prompt (helpful)": 2,
        "no preference (chosen equals rejected)": 1,
    }


def test_every_row_of_a_kind_has_the_same_columns() -> None:
    traces = [*many_traces(40), trace(99, steps=[], correction="fixed")]
    examples = [helpful(1), helpful(2, rejected="no")]
    built = build_rows(traces, examples, DatasetOptions(test_fraction=0.5, helpful_max_rows=2))
    for name, rows in built.splits.items():
        columns = SFT_COLUMNS if name.endswith("_sft") else PREFERENCE_COLUMNS
        assert rows
        for row in rows:
            assert tuple(row) == columns
            assert all(isinstance(row[c], str) for c in HF_COLUMNS)
            assert isinstance(row["corrected"], bool)
