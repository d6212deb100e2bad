"""app.prompt_files: Anthropic's HH-RLHF transcripts."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from app.prompt_files import ParsedPrompt, parse_prompt_file, split_hh_transcript
from tests.unit.prompt_file_cases import HH, error_of, hh, jsonl, write

# Five conversations in HH-RLHF's layout, written for this project (tests/fixtures/README.md).
HH_SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "hh-rlhf" / "sample.jsonl"


# --- HH-RLHF -----------------------------------------------------------------------------------


def test_split_hh_transcript_basic() -> None:
    assert split_hh_transcript("\n\nHuman: a\n\nAssistant: b") == [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]


def test_split_hh_transcript_strips_merges_and_drops_empty_turns() -> None:
    transcript = hh(
        ("Human", "  first  "),
        ("Assistant", "one"),
        ("Assistant", "two"),
        ("Human", ""),
        ("Human", "line\nbreak"),
        ("Assistant", ""),
    )
    assert split_hh_transcript(transcript) == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one\n\ntwo"},
        {"role": "user", "content": "line\nbreak"},
    ]


def test_split_hh_transcript_accepts_missing_leading_blank_line() -> None:
    assert split_hh_transcript("Human: hi\n\nAssistant: yo") == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
    ]


def test_split_hh_transcript_marker_must_follow_blank_line() -> None:
    # "Human:" inside a turn, not after a blank line, is just text.
    assert split_hh_transcript("\n\nHuman: say Human: twice\n\nAssistant: ok") == [
        {"role": "user", "content": "say Human: twice"},
        {"role": "assistant", "content": "ok"},
    ]


def test_split_hh_transcript_refuses_preamble() -> None:
    with pytest.raises(ValueError, match="before the first"):
        split_hh_transcript("Some title\n\nHuman: hi\n\nAssistant: yo")


def test_split_hh_transcript_without_markers() -> None:
    assert split_hh_transcript("just words") == []


def test_hh_single_turn_has_no_context(tmp_path: Path) -> None:
    line = {
        "chosen": hh(("Human", "Can you teach me to juggle?"), ("Assistant", "Sure, start.")),
        "rejected": hh(("Human", "Can you teach me to juggle?"), ("Assistant", "No.")),
    }
    prompts = parse_prompt_file(write(tmp_path, jsonl(line)), HH)
    assert prompts == [
        ParsedPrompt("Can you teach me to juggle?", None, 1, {"turns": 2, "source": "chosen"})
    ]


def test_hh_multi_turn_prompt_is_first_human_turn_and_context_ends_with_user(
    tmp_path: Path,
) -> None:
    transcript = hh(
        ("Human", "What's a good houseplant?"),
        ("Assistant", "A snake plant is hardy."),
        ("Human", "Does it need much light?"),
        ("Assistant", "Very little."),
    )
    path = write(tmp_path, jsonl({"chosen": transcript, "rejected": transcript}))
    [prompt] = parse_prompt_file(path, HH)
    assert prompt.text == "What's a good houseplant?"
    assert prompt.context == [
        {"role": "user", "content": "What's a good houseplant?"},
        {"role": "assistant", "content": "A snake plant is hardy."},
        {"role": "user", "content": "Does it need much light?"},
    ]
    assert prompt.metadata == {"turns": 4, "source": "chosen"}


def test_hh_transcript_ending_on_human_keeps_all_turns(tmp_path: Path) -> None:
    transcript = hh(("Human", "a"), ("Assistant", "b"), ("Human", "c"))
    [prompt] = parse_prompt_file(write(tmp_path, jsonl({"chosen": transcript})), HH)
    assert prompt.context is not None
    assert [m["content"] for m in prompt.context] == ["a", "b", "c"]


def test_hh_empty_final_reply_is_single_turn(tmp_path: Path) -> None:
    transcript = hh(("Human", "Only question"), ("Assistant", ""))
    [prompt] = parse_prompt_file(write(tmp_path, jsonl({"chosen": transcript})), HH)
    assert (prompt.text, prompt.context) == ("Only question", None)


def test_hh_falls_back_to_rejected(tmp_path: Path) -> None:
    line = {"rejected": hh(("Human", "From rejected"), ("Assistant", "x"))}
    [prompt] = parse_prompt_file(write(tmp_path, jsonl(line)), HH)
    assert prompt.text == "From rejected"
    assert prompt.metadata["source"] == "rejected"


def test_hh_gzip_and_blank_lines(tmp_path: Path) -> None:
    body = (
        "\n"
        + jsonl({"chosen": hh(("Human", "one"), ("Assistant", "r"))})
        + "\n"
        + jsonl({"chosen": hh(("Human", "two"), ("Assistant", "r"))})
    )
    path = write(tmp_path, gzip.compress(body.encode()), name="hh.jsonl.gz")
    assert [(p.text, p.line) for p in parse_prompt_file(path, HH)] == [("one", 2), ("two", 4)]


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"id": 1, "text": "t"},
            "line 2: no field 'chosen' or 'rejected' (fields present: id, text)",
        ),
        ({"chosen": ["x"]}, "line 2: field 'chosen' is not a string (found array)"),
        ({"chosen": "  "}, "line 2: field 'chosen' is empty"),
        (
            {"chosen": "\n\nAssistant: I talk alone"},
            "line 2: the transcript has no 'Human:' turn with text",
        ),
        ({"chosen": "no markers at all"}, "line 2: the transcript has no 'Human:' turn with text"),
        (
            {"chosen": "\n\nHuman:   \n\nAssistant: hm"},
            "line 2: the transcript has no 'Human:' turn with text",
        ),
        (
            {"chosen": "Title\n\nHuman: a\n\nAssistant: b"},
            "line 2: not an HH-RLHF transcript "
            "(text before the first 'Human:' or 'Assistant:' turn)",
        ),
    ],
)
def test_hh_errors(tmp_path: Path, obj: dict[str, object], message: str) -> None:
    good = {"chosen": hh(("Human", "fine"), ("Assistant", "ok"))}
    path = write(tmp_path, jsonl(good, obj))
    err = error_of(path, HH)
    assert str(err) == message
    assert err.line == 2


def test_hh_not_json(tmp_path: Path) -> None:
    path = write(tmp_path, "chosen: nope\n")
    assert str(error_of(path, HH)) == "line 1: not valid JSON (Expecting value)"


def test_hh_line_not_an_object(tmp_path: Path) -> None:
    assert str(error_of(write(tmp_path, "[]\n"), HH)) == "line 1: not a JSON object (found array)"


def test_real_hh_rlhf_file_parses(shared_data: Callable[[str], Path]) -> None:
    prompts = parse_prompt_file(shared_data("hh-rlhf/harmless-base-test-dev.jsonl.gz"), HH)
    assert len(prompts) == 1800
    assert [p.line for p in prompts] == list(range(1, 1801))
    assert all(p.text and p.text == p.text.strip() for p in prompts)
    multi = [p for p in prompts if p.context is not None]
    assert multi, "the file has multi-turn conversations"
    for prompt in multi:
        assert prompt.context is not None
        assert len(prompt.context) >= 3
        assert prompt.context[0] == {"role": "user", "content": prompt.text}
        assert prompt.context[-1]["role"] == "user"
        roles = [m["role"] for m in prompt.context]
        assert all(a != b for a, b in itertools.pairwise(roles))
    assert all(set(p.metadata) == {"turns", "source"} for p in prompts)


def test_hh_rlhf_sample_file_parses() -> None:
    # The same file shape as the real data set, in a clone alone.
    prompts = parse_prompt_file(HH_SAMPLE, HH)
    assert [p.line for p in prompts] == [1, 2, 3, 4, 5]
    assert all(p.text and p.text == p.text.strip() for p in prompts)
    multi = [p for p in prompts if p.context is not None]
    assert [p.line for p in multi] == [2, 3, 5]
    for prompt in multi:
        assert prompt.context is not None
        assert len(prompt.context) == 3
        assert prompt.context[0] == {"role": "user", "content": prompt.text}
        assert prompt.context[-1]["role"] == "user"
        roles = [m["role"] for m in prompt.context]
        assert all(a != b for a, b in itertools.pairwise(roles))
    assert [p.metadata["turns"] for p in prompts] == [2, 4, 4, 2, 4]
    assert all(p.metadata["source"] == "chosen" for p in prompts)
