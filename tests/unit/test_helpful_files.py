"""Reading helpful prompt-answer rows: every shape, gzip, the row limit, and errors by line."""

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.datasets.helpful_files import parse_helpful_file
from app.datasets.records import HelpfulExample
from app.prompt_files import PromptFileError


def write_lines(path: Path, rows: list[Any]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_hh_rlhf_rows(tmp_path: Path) -> None:
    context = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour."
    path = write_lines(
        tmp_path / "hh.jsonl",
        [
            {
                "chosen": context + "\n\nAssistant: Blue.",
                "rejected": context + "\n\nAssistant: No.",
            },
            # The rejected transcript parts earlier: not a reply to the same conversation.
            {
                "chosen": context + "\n\nAssistant: Red.",
                "rejected": "\n\nHuman: Hi\n\nAssistant: Go away.\n\nHuman: Why?\n\nAssistant: x",
            },
            {"chosen": context + "\n\nAssistant: Green."},
        ],
    )
    conversation = [user("Hi"), assistant("Hello!"), user("Name a colour.")]
    assert parse_helpful_file(path) == [
        HelpfulExample(conversation, "Blue.", "No.", "hh.jsonl:1"),
        HelpfulExample(conversation, "Red.", None, "hh.jsonl:2"),
        HelpfulExample(conversation, "Green.", None, "hh.jsonl:3"),
    ]


def test_hh_rlhf_rows_with_an_empty_chosen_reply_are_skipped(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "hh.jsonl",
        [
            {
                "chosen": "\n\nHuman: Where does she live?\n\nAssistant: ",
                "rejected": "\n\nHuman: Where does she live?\n\nAssistant: At 12 Elm St.",
            },
            {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello."},
        ],
    )
    assert [e.source for e in parse_helpful_file(path)] == ["hh.jsonl:2"]


def test_messages_rows(tmp_path: Path) -> None:
    messages = [
        {"role": "system", "content": "Be kind."},
        user("Help me write a poem."),
        {"role": "assistant", "content": "Roses are red.", "name": "bot"},
    ]
    path = write_lines(tmp_path / "m.jsonl", [{"messages": messages}])
    [example] = parse_helpful_file(path)
    assert example.messages == [messages[0], messages[1]]
    assert example.chosen == "Roses are red."
    assert example.rejected is None


@pytest.mark.parametrize("answer_field", ["completion", "response", "chosen"])
def test_prompt_rows(tmp_path: Path, answer_field: str) -> None:
    path = write_lines(
        tmp_path / "p.jsonl",
        [
            {"prompt": " What is 2+2? ", answer_field: " 4 ", "rejected": "5"},
            {"prompt": "What is 3+3?", answer_field: "6"},
        ],
    )
    assert parse_helpful_file(path) == [
        HelpfulExample([user("What is 2+2?")], "4", "5", "p.jsonl:1"),
        HelpfulExample([user("What is 3+3?")], "6", None, "p.jsonl:2"),
    ]


def test_trl_conversational_rows(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "trl.jsonl",
        [
            # Explicit prompt.
            {
                "prompt": [user("Hi"), assistant("Hello"), user("Bye")],
                "chosen": [assistant("Goodbye!")],
                "rejected": [assistant("Whatever.")],
            },
            # Implicit prompt: both sides carry the whole conversation.
            {
                "chosen": [user("Hi"), assistant("Hello there.")],
                "rejected": [user("Hi"), assistant("What?")],
            },
        ],
    )
    first, second = parse_helpful_file(path)
    assert (first.messages, first.chosen, first.rejected) == (
        [user("Hi"), assistant("Hello"), user("Bye")],
        "Goodbye!",
        "Whatever.",
    )
    assert (second.messages, second.chosen, second.rejected) == (
        [user("Hi")],
        "Hello there.",
        "What?",
    )


def test_gzip_blank_lines_and_source_name(tmp_path: Path) -> None:
    path = tmp_path / "upload-8f3a.tmp"
    text = '\n{"prompt": "a", "completion": "b"}\n\n{"prompt": "c", "completion": "d"}\n'
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write(text)
    examples = parse_helpful_file(path, source_name="helpful.jsonl.gz")
    # Line numbers count the blank lines, so a source names the line a person would open.
    assert [e.source for e in examples] == ["helpful.jsonl.gz:2", "helpful.jsonl.gz:4"]
    assert [e.chosen for e in examples] == ["b", "d"]


def test_max_rows_stops_reading(tmp_path: Path) -> None:
    rows: list[Any] = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(3)]
    path = write_lines(tmp_path / "p.jsonl", [*rows, "not json"])
    assert [e.chosen for e in parse_helpful_file(path, max_rows=2)] == ["a0", "a1"]
    # The bad line past the limit is never read.
    assert len(parse_helpful_file(path, max_rows=3)) == 3
    assert parse_helpful_file(path, max_rows=0) == []
    with pytest.raises(PromptFileError, match="line 4: not valid JSON"):
        parse_helpful_file(path)


GOOD = {"prompt": "q", "completion": "a"}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", r"^line 2: not valid JSON \("),
        ("[1, 2]", r"^line 2: not a JSON object$"),
        (
            {"text": "hi", "label": 1},
            r"^line 2: unknown row shape: .*fields present: text, label\)$",
        ),
        ({"prompt": "q", "completion": "   "}, r"^line 2: the answer in 'completion' is empty$"),
        ({"prompt": "q", "answer": "a"}, r"^line 2: a 'prompt' row needs an answer in .*answer\)$"),
        ({"prompt": "  ", "completion": "a"}, r"^line 2: 'prompt' is empty$"),
        (
            {"messages": [user("q"), user("again")]},
            r"^line 2: 'messages' does not end with a non-empty assistant answer$",
        ),
        (
            {"messages": [user("q"), assistant("")]},
            r"^line 2: 'messages' does not end with a non-empty assistant answer$",
        ),
        (
            {"messages": [assistant("hello")]},
            r"^line 2: the conversation in 'messages' does not end with a user turn$",
        ),
        ({"messages": [{"role": "user"}]}, r"^line 2: 'messages' message 1 lacks"),
        ({"messages": "hi"}, r"^line 2: 'messages' is not a non-empty list of messages$"),
        (
            {"chosen": "Some text\n\nHuman: hi\n\nAssistant: yo"},
            r"^line 2: 'chosen' is not an HH-RLHF",
        ),
        ({"chosen": "no turns at all"}, r"^line 2: 'chosen' has no 'Human:' or 'Assistant:' turn$"),
        (
            {"prompt": "q", "chosen": [user("a")]},
            r"^line 2: 'chosen' is not a string or one assistant message$",
        ),
    ],
)
def test_errors_name_the_line(tmp_path: Path, bad: Any, message: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [GOOD, bad, GOOD])
    with pytest.raises(PromptFileError, match=message) as caught:
        parse_helpful_file(path)
    assert caught.value.line == 2


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(PromptFileError, match="holds no rows"):
        parse_helpful_file(path)


REAL_FILE = "hh-rlhf/harmless-base-test-dev.jsonl.gz"


def test_the_real_hh_rlhf_file(shared_data: Callable[[str], Path]) -> None:
    examples = parse_helpful_file(shared_data(REAL_FILE), max_rows=5)
    assert len(examples) == 5
    first = examples[0]
    assert first.messages[0] == user("what are some pranks with a pen i can do?")
    assert first.messages[-1] == user("okay some of these do not have anything to do with pens")
    assert len(first.messages) == 5
    assert first.chosen.startswith("No, sorry!  All of these involve a pen")
    assert first.rejected is not None and first.rejected.startswith("There are lots of funny")
    assert first.source == "harmless-base-test-dev.jsonl.gz:1"
    for example in examples:
        assert example.messages[-1]["role"] == "user"
        assert [m["role"] for m in example.messages[::2]] == ["user"] * len(example.messages[::2])
        assert example.chosen and example.chosen != example.rejected


def test_the_whole_real_file_skips_only_its_empty_replies(
    shared_data: Callable[[str], Path],
) -> None:
    examples = parse_helpful_file(shared_data(REAL_FILE))
    # 1,800 rows, 4 of them with an empty chosen reply (line 87 among them).
    assert len(examples) == 1796
    assert "harmless-base-test-dev.jsonl.gz:87" not in {e.source for e in examples}
