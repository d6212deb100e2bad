"""CSV with a header row and the prompt in a named column (tabs or semicolons where the
header has no comma)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from app.prompt_files.base import ParsedPrompt, PromptFileError, scalar_metadata
from app.prompt_files.lines import read_text_lines


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


def read_csv_rows(path: Path, max_bytes: int | None) -> Iterator[tuple[int, list[str]]]:
    """Every non-blank row, the header first, with the line it starts on (a quoted field may
    span lines). The delimiter is sniffed from the header; a broken quote names its line."""
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
        if any(cell.strip() for cell in row):
            yield start, row


def parse_csv(path: Path, column: str, max_bytes: int | None) -> Iterator[ParsedPrompt]:
    header: list[str] | None = None
    index = 0
    for start, row in read_csv_rows(path, max_bytes):
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
        metadata = scalar_metadata(
            (name, row[i]) for i, name in enumerate(header) if i != index and i < len(row)
        )
        yield ParsedPrompt(value, None, start, metadata)
