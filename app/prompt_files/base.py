"""What a prompt file is read as: its format, how to read it, the prompts it gives, and the
error that names the line at fault."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

# Metadata is stored beside every prompt, so only small scalars are worth keeping there.
_METADATA_MAX_ITEMS = 50
_METADATA_MAX_CHARS = 1000


class PromptFormat(StrEnum):
    HH_RLHF = "hh-rlhf"  # JSON lines: {"chosen": "\n\nHuman: ...\n\nAssistant: ...", ...}
    JSONL = "jsonl"  # JSON lines, the prompt in `ImportSpec.field` (dotted paths allowed)
    CSV = "csv"  # CSV with a header row, the prompt in `ImportSpec.column`
    TEXT = "text"  # one prompt per line, blank lines skipped
    # XSTest's prompt CSV (id, prompt, type, label, ...): the label makes two suites
    XSTEST = "xstest"


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


def scalar_metadata(items: Iterable[tuple[str, object]]) -> dict[str, object]:
    metadata: dict[str, object] = {}
    for key, value in items:
        if len(metadata) >= _METADATA_MAX_ITEMS:
            break
        if isinstance(value, str) and len(value) > _METADATA_MAX_CHARS:
            continue
        if value is None or isinstance(value, str | int | float | bool):
            metadata[key] = value
    return metadata
