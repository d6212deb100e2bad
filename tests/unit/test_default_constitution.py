"""Checks on app/defaults/constitution.yaml, the constitution a new workbench starts with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

FILE = Path(__file__).resolve().parents[2] / "app" / "defaults" / "constitution.yaml"
TEXT_FIELDS = ("critique_request", "revision_request", "comparison_instruction")
HARM_AREAS = (
    "violence",
    "crime",
    "self-harm",
    "hate",
    "sexual",
    "minors",
    "privacy",
    "misinformation",
    "manipulation",
)
MAX_TEXT = 600


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    with FILE.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    assert isinstance(loaded, dict)
    return loaded


def test_header(doc: dict[str, Any]) -> None:
    assert doc["format"] == "cai-workbench.constitution"
    assert doc["format_version"] == 1
    assert doc["name"] == "Default constitution"
    assert doc["version"] is None and doc["published_at"] is None
    for field in ("description", "note", "system_prompt"):
        assert isinstance(doc[field], str) and doc[field].strip(), field
        assert len(doc[field]) < MAX_TEXT, field
    assert doc["extra"] == {}


def test_principles_are_many_with_unique_slug_keys(doc: dict[str, Any]) -> None:
    keys = [principle["key"] for principle in doc["principles"]]
    assert len(keys) >= 14
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", key), key


def test_principle_texts(doc: dict[str, Any]) -> None:
    for principle in doc["principles"]:
        for field in TEXT_FIELDS:
            text = principle[field]
            assert isinstance(text, str) and text.strip(), (principle["key"], field)
            assert len(text) < MAX_TEXT, (principle["key"], field)
            assert "\n" not in text, (principle["key"], field)
        # A question; the AI-feedback stage adds "Options:" and the options, as for imported files.
        comparison = principle["comparison_instruction"]
        assert comparison.endswith("?") and "Options:" not in comparison, principle["key"]
        assert principle["enabled"] is True
        assert principle["tags"] and all(isinstance(tag, str) for tag in principle["tags"])


def test_required_harm_areas_are_covered(doc: dict[str, Any]) -> None:
    labels = set()
    for principle in doc["principles"]:
        labels.add(principle["key"])
        labels.update(principle["tags"])
    missing = [area for area in HARM_AREAS if area not in labels]
    assert not missing


def test_two_critique_revision_few_shots(doc: dict[str, Any]) -> None:
    shots = doc["few_shots"]
    assert len(shots) == 2
    critiques = {principle["critique_request"]: principle for principle in doc["principles"]}
    for shot in shots:
        assert shot["kind"] == "critique-revision"
        assert shot["title"].strip()
        assert shot["extra"] == {}
        messages = shot["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"] * 3
        for message in messages:
            assert set(message) == {"role", "content"}
            assert message["content"].strip() and len(message["content"]) < MAX_TEXT
        # Turns 3 and 5 are one principle's own requests, verbatim.
        principle = critiques.get(messages[2]["content"])
        assert principle is not None, shot["title"]
        assert messages[4]["content"] == principle["revision_request"]


def test_few_shots_use_different_principles(doc: dict[str, Any]) -> None:
    requests = {shot["messages"][2]["content"] for shot in doc["few_shots"]}
    assert len(requests) == 2


def test_loads_into_the_recipe_documents(doc: dict[str, Any]) -> None:
    from app.recipe.documents import ConstitutionDoc, FewShotDoc, PrincipleDoc

    constitution = ConstitutionDoc(
        name=doc["name"],
        description=doc["description"],
        system_prompt=doc["system_prompt"],
        note=doc["note"],
        principles=[PrincipleDoc(**principle) for principle in doc["principles"]],
        few_shots=[FewShotDoc(**shot) for shot in doc["few_shots"]],
    )
    assert len(constitution.principles) == len(doc["principles"])
