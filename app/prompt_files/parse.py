"""Reading a whole prompt file as its `ImportSpec` says: the format chosen, then every prompt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from app.prompt_files.base import ImportSpec, ParsedPrompt, PromptFileError, PromptFormat
from app.prompt_files.csv_rows import parse_csv
from app.prompt_files.hh_rlhf import parse_hh
from app.prompt_files.json_lines import parse_jsonl
from app.prompt_files.lines import read_text_lines
from app.prompt_files.xstest import parse_xstest_prompts


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
        return parse_hh(path, max_bytes)
    if fmt is PromptFormat.JSONL:
        if not spec.field:
            raise PromptFileError("the JSONL format needs the name of the prompt field")
        return parse_jsonl(path, spec.field, max_bytes)
    if fmt is PromptFormat.CSV:
        if not spec.column:
            raise PromptFileError("the CSV format needs the name of the prompt column")
        return parse_csv(path, spec.column, max_bytes)
    if fmt is PromptFormat.XSTEST:
        return parse_xstest_prompts(path, max_bytes)
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
