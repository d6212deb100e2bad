"""Read a file of helpful prompt-answer rows to mix into a dataset.

JSON lines, optionally gzip-compressed, with the shape detected per line:

- HH-RLHF: `{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": "..."}`; rows whose
  chosen reply is empty are skipped. The same with `chosen` and `rejected` as lists of chat
  messages (TRL's implicit-prompt form) works too.
- `{"messages": [...]}` ending with the assistant's answer.
- `{"prompt": ..., "completion" | "response" | "chosen": ..., "rejected": ...}`, each a string
  or a list of chat messages (TRL's explicit-prompt form); `rejected` is optional.

Every problem raises `PromptFileError` naming the line, as prompt uploads do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.datasets.records import HelpfulExample, Message
from app.prompt_files import (
    PromptFileError,
    load_json_line,
    read_text_lines,
    split_hh_transcript,
)

__all__ = ["parse_helpful_file"]

_ANSWER_FIELDS = ("completion", "response", "chosen")


def _load_object(raw: str, line: int) -> dict[str, Any]:
    value = load_json_line(raw, line)
    if not isinstance(value, dict):
        raise PromptFileError("not a JSON object", line)
    return value


def _messages(value: object, name: str, line: int) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise PromptFileError(f"'{name}' is not a non-empty list of messages", line)
    messages: list[Message] = []
    for index, item in enumerate(value):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("role"), str)
            and isinstance(item.get("content"), str)
        ):
            raise PromptFileError(
                f"'{name}' message {index + 1} lacks a string 'role' and 'content'", line
            )
        # Only role and content: other keys would differ between rows and split the schema.
        messages.append({"role": item["role"], "content": item["content"]})
    return messages


def _conversation(value: object, name: str, line: int) -> list[Message]:
    """A whole conversation from an HH-RLHF transcript string or a list of messages."""
    if isinstance(value, str):
        try:
            messages = split_hh_transcript(value)
        except ValueError as err:
            raise PromptFileError(f"'{name}' is not an HH-RLHF transcript ({err})", line) from err
        if not messages:
            raise PromptFileError(f"'{name}' has no 'Human:' or 'Assistant:' turn", line)
        return messages
    return _messages(value, name, line)


def _split_answer(messages: list[Message], name: str, line: int) -> tuple[list[Message], str]:
    """(the conversation before the final assistant turn, that turn's text)."""
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise PromptFileError(f"'{name}' does not end with a non-empty assistant answer", line)
    context = messages[:-1]
    _check_context(context, name, line)
    return context, messages[-1]["content"].strip()


def _check_context(context: list[Message], name: str, line: int) -> None:
    if not context or context[-1]["role"] != "user":
        raise PromptFileError(f"the conversation in '{name}' does not end with a user turn", line)


def _answer(value: object, name: str, line: int) -> str:
    if isinstance(value, str):
        return value.strip()
    messages = _messages(value, name, line)
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        raise PromptFileError(f"'{name}' is not a string or one assistant message", line)
    return messages[0]["content"].strip()


def _from_transcripts(
    obj: dict[str, Any], line: int
) -> tuple[list[Message], str, str | None] | None:
    messages = _conversation(obj["chosen"], "chosen", line)
    if isinstance(obj["chosen"], str) and messages[-1]["role"] == "user":
        # HH-RLHF itself has rows whose chosen reply is empty (4 of 1,800 in harmless-base's
        # test split): refusing the whole file over them would make the data set unusable.
        return None
    context, chosen = _split_answer(messages, "chosen", line)
    rejected = None
    if obj.get("rejected") is not None:
        other = _conversation(obj["rejected"], "rejected", line)
        # Only a reply to the same conversation is a preference pair; HH-RLHF rows whose
        # transcripts part earlier compare whole dialogues, not one answer.
        same_context = len(other) == len(context) + 1 and other[:-1] == context
        if same_context and other[-1]["role"] == "assistant" and other[-1]["content"].strip():
            rejected = other[-1]["content"].strip()
    return context, chosen, rejected


def _from_messages(obj: dict[str, Any], line: int) -> tuple[list[Message], str, None]:
    context, chosen = _split_answer(_messages(obj["messages"], "messages", line), "messages", line)
    return context, chosen, None


def _from_prompt(obj: dict[str, Any], line: int) -> tuple[list[Message], str, str | None]:
    prompt = obj["prompt"]
    if isinstance(prompt, str):
        if not prompt.strip():
            raise PromptFileError("'prompt' is empty", line)
        context: list[Message] = [{"role": "user", "content": prompt.strip()}]
    else:
        context = _messages(prompt, "prompt", line)
        _check_context(context, "prompt", line)
    name = next((field for field in _ANSWER_FIELDS if field in obj), None)
    if name is None:
        raise PromptFileError(
            "a 'prompt' row needs an answer in 'completion', 'response' or 'chosen' "
            f"(fields present: {', '.join(obj)})",
            line,
        )
    chosen = _answer(obj[name], name, line)
    if not chosen:
        raise PromptFileError(f"the answer in '{name}' is empty", line)
    rejected = _answer(obj["rejected"], "rejected", line) if obj.get("rejected") is not None else ""
    return context, chosen, rejected or None


def _parse_row(obj: dict[str, Any], line: int) -> tuple[list[Message], str, str | None] | None:
    """(conversation, chosen, rejected), or None for a row to skip."""
    # "prompt" first: {"prompt", "chosen", "rejected"} rows also have the HH-RLHF key "chosen".
    if "prompt" in obj:
        return _from_prompt(obj, line)
    if "messages" in obj:
        return _from_messages(obj, line)
    if "chosen" in obj:
        return _from_transcripts(obj, line)
    raise PromptFileError(
        "unknown row shape: expected 'chosen' (HH-RLHF), 'messages', or 'prompt' with an answer "
        f"(fields present: {', '.join(obj) or 'none'})",
        line,
    )


def parse_helpful_file(
    path: Path,
    max_rows: int | None = None,
    source_name: str | None = None,
    *,
    max_bytes: int | None = None,
) -> list[HelpfulExample]:
    """The helpful examples in `path`, in file order, at most `max_rows` of them.

    Reading stops after `max_rows` rows, so a huge file costs only what is used (and problems
    past that point go unnoticed). `source_name` names the file in each example's `source`
    ("<name>:<line>"); it defaults to the file name, which for an upload may be a temporary one.
    Blank lines are skipped, and so are HH-RLHF transcripts whose chosen reply is empty (the
    published data has some); every other empty answer is an error. Raises `PromptFileError`,
    naming the line, at the first bad row, when the file holds no rows at all, and when its
    text (decompressed) grows past `max_bytes` before `max_rows` rows are read.
    """
    if max_rows is not None and max_rows <= 0:
        return []
    name = source_name or path.name
    examples: list[HelpfulExample] = []
    for line, raw in read_text_lines(path, max_bytes=max_bytes):
        if not raw.strip():
            continue
        parsed = _parse_row(_load_object(raw, line), line)
        if parsed is None:
            continue
        messages, chosen, rejected = parsed
        examples.append(HelpfulExample(messages, chosen, rejected, f"{name}:{line}"))
        if max_rows is not None and len(examples) >= max_rows:
            break
    if not examples:
        raise PromptFileError("the file holds no rows")
    return examples
