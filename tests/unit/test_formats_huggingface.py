"""app.recipe.formats.huggingface: Hugging Face's recipe JSON, read and written."""

from __future__ import annotations

import copy
import json

import pytest

from app.recipe.formats import (
    detect_and_read,
    read_huggingface,
    read_project,
    write_huggingface,
    write_project,
)
from tests.unit.formats_cases import HF_FIXTURE, app_doc, expect_error, hf_bytes, hf_with


def test_huggingface_round_trip() -> None:
    doc = read_huggingface(hf_bytes(), "constitution.json", "Recipe")
    assert doc.name == "Recipe"
    assert [p.key for p in doc.principles] == ["principle-1", "principle-2", "principle-3"]
    assert doc.principles[1].critique_request == HF_FIXTURE["constitutions"][1]["critic"]
    assert [(f.kind, f.messages) for f in doc.few_shots] == [
        ("critique-revision", HF_FIXTURE["system_chat"][0])
    ]
    assert doc.extra == {}
    assert json.loads(write_huggingface(doc)) == HF_FIXTURE
    assert json.loads(write_huggingface(read_project(write_project(doc), "p.json"))) == HF_FIXTURE
    assert detect_and_read({"constitution.json": hf_bytes()}, "Recipe") == ("huggingface", doc)


def test_huggingface_extra_fields_and_missing_system_chat_survive() -> None:
    value = copy.deepcopy(HF_FIXTURE)
    del value["system_chat"]
    value["comment"] = "made by hand"
    value["constitutions"][0]["id"] = "harm"
    doc = read_huggingface(hf_bytes(value), "c.json", "Hand-made")
    assert doc.few_shots == []
    assert json.loads(write_huggingface(doc)) == value


def test_write_huggingface_from_the_app() -> None:
    written = json.loads(write_huggingface(app_doc()))
    assert [c["critic"] for c in written["constitutions"]] == [
        p.critique_request for p in app_doc().principles if p.enabled
    ]
    assert written["system_chat"] == [app_doc().few_shots[0].messages]


@pytest.mark.parametrize(
    ("data", "path", "problem"),
    [
        (
            hf_with(lambda v: v["constitutions"][2].pop("revision")),
            "$.constitutions[2].revision",
            "missing",
        ),
        (
            hf_with(lambda v: v["constitutions"][0].pop("critic")),
            "$.constitutions[0].critic",
            "missing",
        ),
        (
            hf_with(lambda v: v["constitutions"][1].update(critic=" ")),
            "$.constitutions[1].critic",
            "empty",
        ),
        (
            hf_with(lambda v: v["constitutions"][1].update(critic=["x"])),
            "$.constitutions[1].critic",
            "expected a string",
        ),
        (hf_with(lambda v: v["constitutions"].clear()), "$.constitutions", "no principles"),
        (
            hf_with(lambda v: v.update(constitutions={})),
            "$.constitutions",
            "expected a list of principles",
        ),
        (
            hf_with(lambda v: v["constitutions"].append("x")),
            "$.constitutions[3]",
            "expected an object",
        ),
        (
            hf_with(lambda v: v["system_chat"][0][1].update(role="bot")),
            "$.system_chat[0][1].role",
            "must be one of system, user, assistant",
        ),
        (
            hf_with(lambda v: v["system_chat"][0][0].pop("content")),
            "$.system_chat[0][0].content",
            "missing",
        ),
        (hf_with(lambda v: v["system_chat"].append([])), "$.system_chat[1]", "empty"),
        (
            hf_with(lambda v: v["constitutions"].extend([{"critic": "c", "revision": "r"}] * 498)),
            "$.constitutions",
            "more than 500 principles",
        ),
    ],
)
def test_huggingface_errors(data: bytes, path: str, problem: str) -> None:
    expect_error(lambda: read_huggingface(data, "recipe.json", "R"), "recipe.json", path, problem)
