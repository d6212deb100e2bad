"""Specs and small file builders shared by the tests of app.prompt_files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.prompt_files import ImportSpec, PromptFileError, PromptFormat, parse_prompt_file

HH = ImportSpec(PromptFormat.HH_RLHF)
JSONL = ImportSpec(PromptFormat.JSONL, field="prompt")
CSV = ImportSpec(PromptFormat.CSV, column="prompt")
TEXT = ImportSpec(PromptFormat.TEXT)


def write(tmp_path: Path, content: str | bytes, name: str = "upload") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def jsonl(*objects: object) -> str:
    return "".join(json.dumps(obj) + "\n" for obj in objects)


def hh(*turns: tuple[str, str]) -> str:
    return "".join(f"\n\n{speaker}: {text}" for speaker, text in turns)


def error_of(path: Path, spec: ImportSpec) -> PromptFileError:
    with pytest.raises(PromptFileError) as caught:
        parse_prompt_file(path, spec)
    return caught.value
