"""app.recipe.formats.detection: which format a set of uploaded files is in."""

from __future__ import annotations

import json

import pytest

from app.recipe.documents import ConstitutionFileError
from app.recipe.formats import detect_and_read, read_anthropic, write_project
from tests.unit.formats_cases import (
    COMPARISONS,
    CRITIQUES,
    anthropic_files,
    app_doc,
    critique_entry,
    delete,
    expect_error,
    fixture_files,
    hf_bytes,
    hf_with,
)


def test_detect_anthropic_files() -> None:
    files = fixture_files()
    source, doc = detect_and_read(files, "Paper")
    assert source == "anthropic"
    assert doc == read_anthropic(files, "Paper")


def test_the_chain_of_thought_file_is_not_one_of_the_four() -> None:
    precog = "RLMadisonPrecogFewShotPrompts.json"
    files = {**fixture_files(), precog: b"[]"}
    with pytest.raises(ConstitutionFileError) as err:
        detect_and_read(files, "Paper")
    assert str(err.value).startswith(f"{precog}: not one of the Anthropic files")


def test_detect_project_files() -> None:
    doc = app_doc()
    assert detect_and_read({"cafe.json": write_project(doc)}, "ignored") == ("project", doc)
    yaml_file = {"cafe.yaml": write_project(doc, yaml=True)}
    assert detect_and_read(yaml_file, "ignored") == ("project", doc)


@pytest.mark.parametrize(
    ("files", "file", "path", "problem"),
    [
        (
            {"notes.json": b'{"hello": "world"}'},
            "notes.json",
            "$",
            "not a constitution in any known format",
        ),
        (
            {"notes.yaml": b"just some words\n"},
            "notes.yaml",
            "$",
            "not a constitution in any known format",
        ),
        ({"list.json": b"[1, 2]"}, "list.json", "$", "not a constitution in any known format"),
        (
            {"p.json": b'{"format": "another.tool", "principles": []}'},
            "p.json",
            "$",
            "(Anthropic's files, Hugging Face's recipe, or this project's JSON/YAML)",
        ),
        (
            {CRITIQUES: json.dumps({"a": critique_entry(0)}).encode(), "recipe.json": hf_bytes()},
            "recipe.json",
            "",
            "not one of the Anthropic files",
        ),
        (
            {"recipe.json": hf_with(delete(["constitutions", 0, "critic"]))},
            "recipe.json",
            "$.constitutions[0].critic",
            "missing",
        ),
        ({}, "upload", "", "no files"),
    ],
)
def test_detect_errors(files: dict[str, bytes], file: str, path: str, problem: str) -> None:
    expect_error(lambda: detect_and_read(files, "X"), file, path, problem)


def test_detect_a_lone_anthropic_file() -> None:
    files = anthropic_files()
    source, doc = detect_and_read(files, "Four")
    assert source == "anthropic" and len(doc.principles) == 4
    expect_error(lambda: detect_and_read({COMPARISONS: b"[]"}, "X"), CRITIQUES, "", "missing")
