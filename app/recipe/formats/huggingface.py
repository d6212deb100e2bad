"""Hugging Face's open recipe: `{"constitutions": [...], "system_chat": [...]}`.

What the recipe has and this project does not is kept in `extra` and written back:

    ConstitutionDoc.extra["huggingface"] = {
        "principles": {"principle-N": {...other fields of that entry}},
        "fields": {...other top-level fields},
        "no_system_chat": True,  # the file had no "system_chat"
    }
"""

from __future__ import annotations

import json
from typing import Any

from app.recipe.documents import ConstitutionDoc, FewShotDoc, PrincipleDoc
from app.recipe.formats.checks import (
    Checker,
    add_fields,
    at,
    enabled_principles,
    extra_section,
    read_messages,
)
from app.recipe.formats.loading import read_json_or_yaml

# The key of `extra` that this module owns (its layout is in the module docstring).
_HUGGINGFACE = "huggingface"


def read_huggingface(data: bytes, file: str, name: str) -> ConstitutionDoc:
    """Reads `{"constitutions": [{"critic", "revision"}], "system_chat": [[messages]]}`."""
    return doc_from_huggingface(read_json_or_yaml(data, file), file, name)


def write_huggingface(doc: ConstitutionDoc) -> bytes:
    """The recipe's file for the enabled principles and the critique-revision few-shots."""
    entry_fields = extra_section(doc.extra, _HUGGINGFACE, "principles")
    constitutions = []
    for principle in enabled_principles(doc):
        entry: dict[str, Any] = {
            "critic": principle.critique_request,
            "revision": principle.revision_request,
        }
        add_fields(entry, entry_fields.get(principle.key))
        constitutions.append(entry)
    out: dict[str, Any] = {"constitutions": constitutions}
    chats = [
        [{"role": m["role"], "content": m["content"]} for m in shot.messages]
        for shot in doc.few_shots
        if shot.kind == "critique-revision"
    ]
    if chats or not extra_section(doc.extra, _HUGGINGFACE).get("no_system_chat"):
        out["system_chat"] = chats
    add_fields(out, extra_section(doc.extra, _HUGGINGFACE, "fields"))
    return (json.dumps(out, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def doc_from_huggingface(value: Any, file: str, name: str) -> ConstitutionDoc:
    check = Checker(file)
    top = check.object(value, "$", 'an object with "constitutions"')
    entries = check.array(
        check.field(top, "constitutions", "$"), "$.constitutions", "a list of principles"
    )
    if not entries:
        check.fail("$.constitutions", "no principles")
    check.at_most_principles(len(entries), "$.constitutions")
    principles: list[PrincipleDoc] = []
    entry_fields: dict[str, Any] = {}
    for i, item in enumerate(entries):
        path = at("$.constitutions", i)
        entry = check.object(item, path, 'an object with "critic" and "revision"')
        critic = check.text(check.field(entry, "critic", path), at(path, "critic"))
        revision = check.text(check.field(entry, "revision", path), at(path, "revision"))
        # The recipe has no keys: the principle's place in the file names it.
        key = f"principle-{i + 1}"
        fields = {k: v for k, v in entry.items() if k not in ("critic", "revision")}
        if fields:
            entry_fields[key] = fields
        principles.append(PrincipleDoc(key=key, critique_request=critic, revision_request=revision))

    few_shots = []
    if "system_chat" in top:
        chats = check.array(top["system_chat"], "$.system_chat", "a list of conversations")
        for i, chat in enumerate(chats):
            messages = read_messages(check, chat, at("$.system_chat", i))
            few_shots.append(FewShotDoc(kind="critique-revision", messages=messages))

    original: dict[str, Any] = {}
    if entry_fields:
        original["principles"] = entry_fields
    fields = {k: v for k, v in top.items() if k not in ("constitutions", "system_chat")}
    if fields:
        original["fields"] = fields
    if "system_chat" not in top:
        original["no_system_chat"] = True
    return ConstitutionDoc(
        name=name,
        principles=principles,
        few_shots=few_shots,
        extra={_HUGGINGFACE: original} if original else {},
    )
