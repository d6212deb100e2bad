"""app.recipe.formats.project: this project's own JSON/YAML, read and written."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from app.recipe.documents import ConstitutionDoc, PrincipleDoc
from app.recipe.formats import read_project, write_project
from tests.unit.formats_cases import app_doc, delete, expect_error, put


def test_project_json_round_trip() -> None:
    doc = app_doc()
    data = write_project(doc)
    assert read_project(data, "cafe.json") == doc
    loaded = json.loads(data)
    assert list(loaded) == [
        "format",
        "format_version",
        "name",
        "description",
        "version",
        "published_at",
        "note",
        "system_prompt",
        "principles",
        "few_shots",
        "extra",
    ]
    assert loaded["format"] == "cai-workbench.constitution" and loaded["format_version"] == 1
    assert "Café rules ✓" in data.decode("utf-8")  # not \u-escaped


def test_project_yaml_round_trip_is_readable() -> None:
    doc = app_doc()
    data = write_project(doc, yaml=True, version=3, published_at="2026-11-24T18:34:00Z")
    assert read_project(data, "cafe.yaml") == doc
    text = data.decode("utf-8")
    assert "Café rules ✓" in text and "🙂" in text
    assert "critique_request: |" in text  # multi-line strings as blocks
    assert "    List each place.\n" in text
    assert "version: 3\n" in text
    assert "{" not in text.split("extra:")[0]  # block style, not flow
    assert text.index("name:") < text.index("principles:") < text.index("few_shots:")
    assert text.index("key: kind") < text.index("critique_request:") < text.index("enabled:")


def test_project_yaml_keeps_awkward_strings_exactly() -> None:
    awkward = [
        "\n\nleading breaks",
        "trailing break\n",
        "two trailing breaks\n\n",
        "  indented first line\nsecond",
        "trailing space \nnext line",
        "tab\there\nand more",
        "yes",
        "2026-11-24",
        "# not a comment\n- not a list",
    ]
    doc = ConstitutionDoc(
        name="Awkward",
        principles=[
            PrincipleDoc(key=f"p{i}", critique_request=s, revision_request=s + "!")
            for i, s in enumerate(awkward)
        ],
        system_prompt="\n".join(awkward),
    )
    assert read_project(write_project(doc, yaml=True), "a.yaml") == doc
    assert read_project(write_project(doc), "a.json") == doc


def test_project_version_fields_are_checked_not_kept() -> None:
    doc = app_doc()
    data = json.loads(write_project(doc, version=7, published_at="2026-01-02"))
    assert data["version"] == 7 and data["published_at"] == "2026-01-02"
    assert read_project(json.dumps(data).encode(), "c.json") == doc


def project_with(change: Callable[[dict[str, Any]], None]) -> bytes:
    value = json.loads(write_project(app_doc()))
    value["principles"] += [
        {"key": f"extra-{i}", "critique_request": "Critique.", "revision_request": "Revise."}
        for i in range(2)
    ]
    change(value)
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("data", "path", "problem"),
    [
        (
            project_with(delete(["principles", 3, "revision_request"])),
            "$.principles[3].revision_request",
            "missing",
        ),
        (
            project_with(put(["principles", 3, "revision_request"], "  ")),
            "$.principles[3].revision_request",
            "empty",
        ),
        (
            project_with(delete(["principles", 0, "critique_request"])),
            "$.principles[0].critique_request",
            "missing",
        ),
        (project_with(delete(["principles", 2, "key"])), "$.principles[2].key", "missing"),
        (project_with(put(["principles", 2, "key"], "")), "$.principles[2].key", "empty"),
        (
            project_with(put(["principles", 2, "key"], "k" * 65)),
            "$.principles[2].key",
            "longer than 64",
        ),
        (
            project_with(put(["principles", 5, "key"], "kind")),
            "$.principles[5].key",
            "duplicate key 'kind'",
        ),
        (
            project_with(put(["principles", 1, "enabled"], "no")),
            "$.principles[1].enabled",
            "expected true or false",
        ),
        (
            project_with(put(["principles", 0, "tags", 1], 3)),
            "$.principles[0].tags[1]",
            "expected a string",
        ),
        (project_with(put(["principles", 0, "tag"], [])), "$.principles[0].tag", "unknown field"),
        (
            project_with(put(["principles", 0, "comparison_instruction"], "c" * 4001)),
            "$.principles[0].comparison_instruction",
            "longer than 4000 characters",
        ),
        (
            project_with(put(["principles", 1, "critique_request"], "c" * 4001)),
            "$.principles[1].critique_request",
            "longer than 4000 characters",
        ),
        (
            project_with(
                lambda v: v["principles"].extend(
                    {"key": f"k{i}", "critique_request": "c", "revision_request": "r"}
                    for i in range(495)
                )
            ),
            "$.principles",
            "more than 500 principles",
        ),
        (project_with(put(["principles"], {})), "$.principles", "expected a list of principles"),
        (project_with(delete(["principles"])), "$.principles", "missing"),
        (
            project_with(put(["few_shots", 0, "messages", 2, "role"], "human")),
            "$.few_shots[0].messages[2].role",
            "must be one of system, user, assistant",
        ),
        (
            project_with(put(["few_shots", 0, "messages", 2, "content"], 1)),
            "$.few_shots[0].messages[2].content",
            "expected a string",
        ),
        (
            project_with(put(["few_shots", 1, "kind"], "chat")),
            "$.few_shots[1].kind",
            "must be one of critique-revision, comparison",
        ),
        (
            project_with(put(["few_shots", 1, "extra"], [])),
            "$.few_shots[1].extra",
            "expected an object",
        ),
        (
            project_with(put(["format"], "something-else")),
            "$.format",
            "expected 'cai-workbench.constitution'",
        ),
        (project_with(put(["format_version"], 2)), "$.format_version", "reads version 1, found 2"),
        (project_with(put(["version"], "3")), "$.version", "expected a whole number or null"),
        (project_with(put(["name"], "")), "$.name", "empty"),
        (project_with(put(["note"], None)), "$.note", "expected a string, found null"),
        (project_with(put(["colour"], "red")), "$.colour", "unknown field"),
        (b"principles: [\n", "", "not valid YAML (line 2"),
        (b'{"format": ', "", "not valid JSON (line 1"),
        (b"- a\n- b\n", "$", "expected an object, found a list"),
        (b"a: &x [1]\nb: *x\n", "", "aliases (*name) are not allowed"),
        (b"name: a\nname: b\n", "", "duplicate key 'name'"),
    ],
)
def test_project_errors(data: bytes, path: str, problem: str) -> None:
    expect_error(lambda: read_project(data, "mine.yaml"), "mine.yaml", path, problem)


def test_project_yaml_dates_in_extra_are_refused() -> None:
    text = write_project(app_doc(), yaml=True).decode()
    text = text.replace("extra:\n  origin:", "extra:\n  when: 2026-01-01\n  origin:")
    expect_error(
        lambda: read_project(text.encode(), "c.yaml"), "c.yaml", "$.extra", "not plain JSON"
    )
