"""Anthropic's HH-RLHF transcripts ("\\n\\nHuman: …\\n\\nAssistant: …"): the first Human turn
is the prompt, the turns before the final reply its context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from app.prompt_files.base import ParsedPrompt, PromptFileError
from app.prompt_files.json_lines import field_names, json_type, load_object
from app.prompt_files.lines import read_text_lines

_HUMAN = "\n\nHuman:"
_ASSISTANT = "\n\nAssistant:"


def split_hh_transcript(transcript: str) -> list[dict[str, str]]:
    """Split an HH-RLHF transcript into chat messages.

    "\\n\\nHuman: a\\n\\nAssistant: b" gives [{"role": "user", "content": "a"},
    {"role": "assistant", "content": "b"}]. Content is stripped; empty turns are dropped and
    consecutive turns of one role are joined with a blank line, so the roles always alternate.
    Raises ValueError when text other than whitespace precedes the first turn marker.
    """
    # Exports sometimes lose the leading blank line; accept a transcript starting "Human:".
    stripped = transcript.lstrip()
    starts_bare = stripped.startswith(("Human:", "Assistant:"))
    body = "\n\n" + stripped if starts_bare else transcript

    markers: list[tuple[int, str, int]] = []  # (start, role, content start)
    for marker, role in ((_HUMAN, "user"), (_ASSISTANT, "assistant")):
        start = body.find(marker)
        while start != -1:
            markers.append((start, role, start + len(marker)))
            start = body.find(marker, start + len(marker))
    markers.sort()
    if not markers:
        return []
    if body[: markers[0][0]].strip():
        raise ValueError("text before the first 'Human:' or 'Assistant:' turn")

    messages: list[dict[str, str]] = []
    for index, (_, role, content_start) in enumerate(markers):
        end = markers[index + 1][0] if index + 1 < len(markers) else len(body)
        content = body[content_start:end].strip()
        # Empty turns carry nothing, and chat templates reject two turns of one role in a row,
        # both of which occur in the real HH-RLHF data.
        if not content:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + content
        else:
            messages.append({"role": role, "content": content})
    return messages


def _hh_prompt(transcript: str, line: int) -> tuple[str, list[dict[str, str]] | None, int]:
    """The first Human turn, the context before the final Assistant reply, and the turn count."""
    try:
        messages = split_hh_transcript(transcript)
    except ValueError as err:
        raise PromptFileError(f"not an HH-RLHF transcript ({err})", line) from err
    first_user = next((m["content"] for m in messages if m["role"] == "user"), None)
    if first_user is None:
        raise PromptFileError("the transcript has no 'Human:' turn with text", line)
    # The last Assistant turn is the reply that chosen and rejected differ on, so it is not part
    # of what the model is prompted with.
    context = messages[:-1] if messages[-1]["role"] == "assistant" else messages
    if len(context) == 1:
        return first_user, None, len(messages)
    return first_user, context, len(messages)


def parse_hh(path: Path, max_bytes: int | None) -> Iterator[ParsedPrompt]:
    for line, raw in read_text_lines(path, max_bytes=max_bytes):
        if not raw.strip():
            continue
        obj = load_object(raw, line)
        if "chosen" in obj:
            source = "chosen"
        elif "rejected" in obj:
            source = "rejected"
        else:
            raise PromptFileError(
                f"no field 'chosen' or 'rejected' (fields present: {field_names(obj)})", line
            )
        transcript = obj[source]
        if not isinstance(transcript, str):
            raise PromptFileError(
                f"field '{source}' is not a string (found {json_type(transcript)})", line
            )
        if not transcript.strip():
            raise PromptFileError(f"field '{source}' is empty", line)
        text, context, turns = _hh_prompt(transcript, line)
        yield ParsedPrompt(text, context, line, {"turns": turns, "source": source})
