"""JSON lines: one bounded JSON value per line, and the JSONL format with the prompt in a
named (possibly dotted) field and an optional chat "context"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.prompt_files.base import ParsedPrompt, PromptFileError, scalar_metadata
from app.prompt_files.lines import read_text_lines
from app.safe_parse import ParseLimitError, load_json

_ROLES = ("user", "assistant")


def json_type(value: object) -> str:
    # Name types as the user's JSON has them, not as Python does.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def load_json_line(text: str, line: int) -> Any:
    """One JSON line within the limits of `app.safe_parse`; `PromptFileError` naming the line."""
    try:
        # load_json refuses NaN and Infinity: they are not JSON, and PostgreSQL's jsonb (where
        # metadata ends up) refuses them.
        return load_json(text)
    except ParseLimitError as err:
        column = f" at column {err.column}" if err.column is not None else ""
        raise PromptFileError(f"{err.problem}{column}", line) from None
    except ValueError as err:  # json.JSONDecodeError is one too
        message = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
        raise PromptFileError(f"not valid JSON ({message})", line) from None


def load_object(text: str, line: int) -> dict[str, Any]:
    value = load_json_line(text, line)
    if not isinstance(value, dict):
        raise PromptFileError(f"not a JSON object (found {json_type(value)})", line)
    return value


def field_names(obj: dict[str, Any]) -> str:
    return ", ".join(obj) if obj else "none"


def _lookup(obj: dict[str, Any], path: str, line: int) -> object:
    # A literal key wins over a dotted path, so a field really named "a.b" is still reachable.
    if path in obj:
        return obj[path]
    current: dict[str, Any] = obj
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if part not in current:
            where = ".".join(parts[:depth])
            present = f"fields present in '{where}'" if where else "fields present"
            raise PromptFileError(f"no field '{path}' ({present}: {field_names(current)})", line)
        value = current[part]
        if depth == len(parts) - 1:
            return value
        if not isinstance(value, dict):
            raise PromptFileError(
                f"no field '{path}' ('{'.'.join(parts[: depth + 1])}' is "
                f"{json_type(value)}, not an object)",
                line,
            )
        current = value
    raise AssertionError("unreachable")  # pragma: no cover


def _prompt_string(value: object, name: str, line: int) -> str:
    if not isinstance(value, str):
        raise PromptFileError(f"field '{name}' is not a string (found {json_type(value)})", line)
    text = value.strip()
    if not text:
        raise PromptFileError(f"field '{name}' is empty", line)
    return text


def _json_context(value: list[Any], line: int) -> list[dict[str, str]] | None:
    """Validate a JSONL line's "context": chat messages ending with the user turn."""
    messages: list[dict[str, str]] = []
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise PromptFileError(
                f"'context' item {index} is not an object (found {json_type(item)})", line
            )
        role, content = item.get("role"), item.get("content")
        if role not in _ROLES:
            raise PromptFileError(
                f"'context' item {index} has role {role!r}; expected 'user' or 'assistant'", line
            )
        if not isinstance(content, str):
            raise PromptFileError(f"'context' item {index} has no string 'content'", line)
        messages.append({"role": str(role), "content": content.strip()})
    if not messages:
        return None
    # The model is asked to answer the context, so it must end on what the user said.
    if messages[-1]["role"] != "user":
        raise PromptFileError("'context' must end with a user turn", line)
    # A lone user turn is single-turn, the same as no context, as for HH-RLHF.
    return messages if len(messages) > 1 else None


def parse_jsonl(path: Path, field_path: str, max_bytes: int | None) -> Iterator[ParsedPrompt]:
    top_key = field_path if "." not in field_path else None
    for line, raw in read_text_lines(path, max_bytes=max_bytes):
        if not raw.strip():
            continue
        obj = load_object(raw, line)
        text = _prompt_string(_lookup(obj, field_path, line), field_path, line)
        context = None
        raw_context = obj.get("context") if field_path != "context" else None
        # Only a list is taken as chat messages; a string "context" is some other data set's
        # field, kept as metadata rather than refused.
        if isinstance(raw_context, list):
            context = _json_context(raw_context, line)
        skip = {top_key, "context"} if isinstance(raw_context, list) else {top_key}
        metadata = scalar_metadata((k, v) for k, v in obj.items() if k not in skip)
        yield ParsedPrompt(text, context, line, metadata)
