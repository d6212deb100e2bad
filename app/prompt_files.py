"""Parse uploaded prompt files into prompts, pure and stdlib only.

Four formats are read: Anthropic HH-RLHF transcripts, JSON lines with the prompt in a named
field, CSV with the prompt in a named column, and plain text with one prompt per line. Any of
them may be gzip-compressed. Every problem in a file is raised as a `PromptFileError` that names
the line, so the web app can show the user exactly what to fix; nothing here touches the
database, the web framework or the task queue, so the same code serves uploads and the worker.
For an upload, `max_bytes` bounds what the file may expand to: it is counted while the file is
read, so a small gzip file that would expand to gigabytes stops at the limit.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.safe_parse import BoundedReader, ParseLimitError, load_json

__all__ = [
    "ImportSpec",
    "ParsedPrompt",
    "PromptFileError",
    "PromptFormat",
    "count_prompts",
    "drop_duplicates",
    "load_json_line",
    "normalise_prompt",
    "parse_prompt_file",
    "prompt_hash",
    "read_text_lines",
    "split_hh_transcript",
]

_GZIP_MAGIC = b"\x1f\x8b"
# A bound on one line keeps a binary file without newlines (or a hostile upload) from being
# read whole into memory; real prompt lines, even long HH-RLHF transcripts, are far smaller.
_MAX_LINE_BYTES = 8 * 1024 * 1024
# Metadata is stored beside every prompt, so only small scalars are worth keeping there.
_METADATA_MAX_ITEMS = 50
_METADATA_MAX_CHARS = 1000

_HUMAN = "\n\nHuman:"
_ASSISTANT = "\n\nAssistant:"
_ROLES = ("user", "assistant")


class PromptFormat(StrEnum):
    HH_RLHF = "hh-rlhf"  # JSON lines: {"chosen": "\n\nHuman: ...\n\nAssistant: ...", ...}
    JSONL = "jsonl"  # JSON lines, the prompt in `ImportSpec.field` (dotted paths allowed)
    CSV = "csv"  # CSV with a header row, the prompt in `ImportSpec.column`
    TEXT = "text"  # one prompt per line, blank lines skipped


@dataclass(frozen=True)
class ImportSpec:
    format: PromptFormat
    field: str | None = None  # required for JSONL
    column: str | None = None  # required for CSV


@dataclass(frozen=True)
class ParsedPrompt:
    text: str
    context: list[dict[str, str]] | None
    line: int
    metadata: dict[str, object]


class PromptFileError(ValueError):
    """A problem in an uploaded file, naming where.

    `str(err)` is "line 12: not valid JSON (Expecting value)" when the line is known, else just
    the message.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        # Both values go to ValueError so the exception pickles (Celery results) with its line.
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"line {self.line}: {self.message}"


# --- reading -----------------------------------------------------------------------------------


def _open_binary(path: Path, max_bytes: int | None) -> io.BufferedIOBase | BoundedReader:
    # Sniff the magic bytes rather than trust the extension: browsers and users rename files,
    # and a ".jsonl" that is really gzip should still work (and vice versa).
    with path.open("rb") as probe:
        magic = probe.read(2)
    # The caller closes the stream (read_text_lines' `with`).
    opener = gzip.open if magic == _GZIP_MAGIC else open
    stream: io.BufferedIOBase = opener(path, "rb")
    return stream if max_bytes is None else BoundedReader(stream, max_bytes)


def read_text_lines(path: Path, *, max_bytes: int | None = None) -> Iterator[tuple[int, str]]:
    """Yield `(line_number, line)` from a plain or gzip text file, without the line ending.

    Refuses binary: a NUL byte, bytes that are not UTF-8 or a line over 8 MiB raise a
    `PromptFileError` naming the line. A UTF-8 byte-order mark at the start is dropped. The file
    is streamed line by line; with `max_bytes`, reading stops with a `PromptFileError` as soon
    as the (decompressed) text exceeds it.
    """
    with _open_binary(path, max_bytes) as stream:
        number = 0
        while True:
            try:
                raw = stream.readline(_MAX_LINE_BYTES)
            except (gzip.BadGzipFile, EOFError, zlib.error) as err:
                # EOFError is how gzip reports a truncated file; zlib.error a damaged stream.
                raise PromptFileError(f"not a valid gzip file: {err}") from err
            except ParseLimitError as err:
                raise PromptFileError(err.problem, number + 1) from None
            if not raw:
                return
            number += 1
            if len(raw) >= _MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise PromptFileError(
                    f"line longer than {_MAX_LINE_BYTES // (1024 * 1024)} MiB "
                    "(is this a text file?)",
                    number,
                )
            # UTF-8 decodes NUL happily, yet no text format has one: it marks binary or UTF-16.
            if b"\x00" in raw:
                raise PromptFileError("not text (binary or not UTF-8)", number)
            try:
                # Decoding per line is safe: b"\n" never occurs inside a UTF-8 multibyte sequence.
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise PromptFileError("not text (binary or not UTF-8)", number) from err
            if number == 1:
                text = text.removeprefix("\ufeff")
            text = text.removesuffix("\n").removesuffix("\r")
            yield number, text


# --- normalising and de-duplicating ------------------------------------------------------------


def normalise_prompt(text: str) -> str:
    """Fold a prompt for comparison: NFKC, casefold, whitespace runs to one space, strip."""
    # NFKC again after casefold: casefolding can produce sequences NFKC would still change, and
    # the hash key must be idempotent (normalising twice gives the same string).
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    # str.split() with no separator splits on every Unicode whitespace run, not just spaces.
    return " ".join(folded.split())


def prompt_hash(text: str) -> str:
    """SHA-256 hex digest of `normalise_prompt(text)`: the key for spotting duplicate prompts."""
    return hashlib.sha256(normalise_prompt(text).encode("utf-8")).hexdigest()


def drop_duplicates(prompts: Iterable[ParsedPrompt]) -> tuple[list[ParsedPrompt], int]:
    """Keep the first prompt of each `prompt_hash(text)`; return `(kept, number_dropped)`.

    Only the prompt text is compared, not the context: two HH-RLHF conversations that open with
    the same Human turn count as duplicates.
    """
    seen: set[str] = set()
    kept: list[ParsedPrompt] = []
    dropped = 0
    for prompt in prompts:
        key = prompt_hash(prompt.text)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(prompt)
    return kept, dropped


# --- HH-RLHF transcripts -----------------------------------------------------------------------


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


# --- JSON helpers ------------------------------------------------------------------------------


def _json_type(value: object) -> str:
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


def _load_object(text: str, line: int) -> dict[str, Any]:
    value = load_json_line(text, line)
    if not isinstance(value, dict):
        raise PromptFileError(f"not a JSON object (found {_json_type(value)})", line)
    return value


def _field_names(obj: dict[str, Any]) -> str:
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
            raise PromptFileError(f"no field '{path}' ({present}: {_field_names(current)})", line)
        value = current[part]
        if depth == len(parts) - 1:
            return value
        if not isinstance(value, dict):
            raise PromptFileError(
                f"no field '{path}' ('{'.'.join(parts[: depth + 1])}' is "
                f"{_json_type(value)}, not an object)",
                line,
            )
        current = value
    raise AssertionError("unreachable")  # pragma: no cover


def _prompt_string(value: object, name: str, line: int) -> str:
    if not isinstance(value, str):
        raise PromptFileError(f"field '{name}' is not a string (found {_json_type(value)})", line)
    text = value.strip()
    if not text:
        raise PromptFileError(f"field '{name}' is empty", line)
    return text


def _scalar_metadata(items: Iterable[tuple[str, object]]) -> dict[str, object]:
    metadata: dict[str, object] = {}
    for key, value in items:
        if len(metadata) >= _METADATA_MAX_ITEMS:
            break
        if isinstance(value, str) and len(value) > _METADATA_MAX_CHARS:
            continue
        if value is None or isinstance(value, str | int | float | bool):
            metadata[key] = value
    return metadata


def _json_context(value: list[Any], line: int) -> list[dict[str, str]] | None:
    """Validate a JSONL line's "context": chat messages ending with the user turn."""
    messages: list[dict[str, str]] = []
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise PromptFileError(
                f"'context' item {index} is not an object (found {_json_type(item)})", line
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


# --- the formats -------------------------------------------------------------------------------


def _parse_hh(path: Path, max_bytes: int | None) -> Iterator[ParsedPrompt]:
    for line, raw in read_text_lines(path, max_bytes=max_bytes):
        if not raw.strip():
            continue
        obj = _load_object(raw, line)
        if "chosen" in obj:
            source = "chosen"
        elif "rejected" in obj:
            source = "rejected"
        else:
            raise PromptFileError(
                f"no field 'chosen' or 'rejected' (fields present: {_field_names(obj)})", line
            )
        transcript = obj[source]
        if not isinstance(transcript, str):
            raise PromptFileError(
                f"field '{source}' is not a string (found {_json_type(transcript)})", line
            )
        if not transcript.strip():
            raise PromptFileError(f"field '{source}' is empty", line)
        text, context, turns = _hh_prompt(transcript, line)
        yield ParsedPrompt(text, context, line, {"turns": turns, "source": source})


def _parse_jsonl(path: Path, field_path: str, max_bytes: int | None) -> Iterator[ParsedPrompt]:
    top_key = field_path if "." not in field_path else None
    for line, raw in read_text_lines(path, max_bytes=max_bytes):
        if not raw.strip():
            continue
        obj = _load_object(raw, line)
        text = _prompt_string(_lookup(obj, field_path, line), field_path, line)
        context = None
        raw_context = obj.get("context") if field_path != "context" else None
        # Only a list is taken as chat messages; a string "context" is some other data set's
        # field, kept as metadata rather than refused.
        if isinstance(raw_context, list):
            context = _json_context(raw_context, line)
        skip = {top_key, "context"} if isinstance(raw_context, list) else {top_key}
        metadata = _scalar_metadata((k, v) for k, v in obj.items() if k not in skip)
        yield ParsedPrompt(text, context, line, metadata)


def _find_column(header: list[str], column: str) -> int | None:
    if column in header:
        return header.index(column)
    # Spreadsheets pad and recase headers; accept a match that is unambiguous once folded.
    wanted = column.strip().casefold()
    matches = [i for i, name in enumerate(header) if name.strip().casefold() == wanted]
    return matches[0] if len(matches) == 1 else None


def _sniff_delimiter(header_line: str) -> str:
    # Only an obvious case: a header with no comma but tabs or semicolons (TSV, or a CSV saved
    # in a locale where the comma is the decimal mark). csv.Sniffer guesses wrong too often.
    if "," not in header_line:
        for delimiter in ("\t", ";"):
            if delimiter in header_line:
                return delimiter
    return ","


def _parse_csv(path: Path, column: str, max_bytes: int | None) -> Iterator[ParsedPrompt]:
    lines = read_text_lines(path, max_bytes=max_bytes)
    first: list[tuple[int, str]] = []
    for number, text in lines:
        first.append((number, text))
        if text.strip():
            break
    if not first or not first[-1][1].strip():
        return
    delimiter = _sniff_delimiter(first[-1][1])

    def feed() -> Iterator[str]:
        # csv needs the newlines back to read quoted fields that span lines.
        for _, text in first:
            yield text + "\n"
        for _, text in lines:
            yield text + "\n"

    # strict: an unclosed quote is an error rather than the rest of the file as one prompt.
    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    index = 0
    consumed = 0
    while True:
        start = consumed + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise PromptFileError(f"not valid CSV ({err})", start) from err
        consumed = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = row
            found = _find_column(header, column)
            if found is None:
                names = ", ".join(header)
                raise PromptFileError(f"no column '{column}' in the header (columns: {names})")
            index = found
            continue
        value = row[index].strip() if index < len(row) else ""
        if not value:
            raise PromptFileError(f"the '{header[index]}' column is empty", start)
        metadata = _scalar_metadata(
            (name, row[i]) for i, name in enumerate(header) if i != index and i < len(row)
        )
        yield ParsedPrompt(value, None, start, metadata)


def _parse_text(path: Path, max_bytes: int | None) -> Iterator[ParsedPrompt]:
    for line, raw in read_text_lines(path, max_bytes=max_bytes):
        text = raw.strip()
        if text:
            yield ParsedPrompt(text, None, line, {})


def _prompts(path: Path, spec: ImportSpec, max_bytes: int | None) -> Iterator[ParsedPrompt]:
    try:
        fmt = PromptFormat(spec.format)
    except ValueError as err:
        raise PromptFileError(f"unknown format '{spec.format}'") from err
    if fmt is PromptFormat.HH_RLHF:
        return _parse_hh(path, max_bytes)
    if fmt is PromptFormat.JSONL:
        if not spec.field:
            raise PromptFileError("the JSONL format needs the name of the prompt field")
        return _parse_jsonl(path, spec.field, max_bytes)
    if fmt is PromptFormat.CSV:
        if not spec.column:
            raise PromptFileError("the CSV format needs the name of the prompt column")
        return _parse_csv(path, spec.column, max_bytes)
    return _parse_text(path, max_bytes)


def parse_prompt_file(
    path: Path, spec: ImportSpec, *, max_bytes: int | None = None
) -> list[ParsedPrompt]:
    """Read every prompt in `path` as `spec` describes.

    Raises `PromptFileError` at the first problem, naming its line where there is one, and when
    the file holds no prompts at all. Duplicates are kept: see `drop_duplicates`. `max_bytes`
    bounds the file's text once decompressed (None: no bound, for the operator's own files).
    """
    result = list(_prompts(path, spec, max_bytes))
    if not result:
        raise PromptFileError("the file holds no prompts")
    return result


def count_prompts(path: Path, spec: ImportSpec, *, max_bytes: int | None = None) -> int:
    """How many prompts `parse_prompt_file` would return, checking the file the same way but
    keeping none of them: the web app's check of an upload costs one line of memory."""
    count = sum(1 for _ in _prompts(path, spec, max_bytes))
    if not count:
        raise PromptFileError("the file holds no prompts")
    return count
