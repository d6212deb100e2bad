"""This project's own JSON/YAML, which carries everything the database holds."""

from __future__ import annotations

import datetime
import json
from typing import Any

import yaml

from app.recipe.documents import ConstitutionDoc, FewShotDoc, FewShotKind, PrincipleDoc
from app.recipe.formats.checks import (
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    Checker,
    at,
    is_int,
    kind_of,
    optional_string,
    read_messages,
    show,
)
from app.recipe.formats.loading import read_json_or_yaml

PROJECT_FORMAT = "cai-workbench.constitution"
PROJECT_FORMAT_VERSION = 1

_FEW_SHOT_KINDS: tuple[FewShotKind, ...] = ("critique-revision", "comparison")

_PROJECT_FIELDS = (
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
)
_PRINCIPLE_FIELDS = (
    "key",
    "critique_request",
    "revision_request",
    "comparison_instruction",
    "tags",
    "enabled",
)
_FEW_SHOT_FIELDS = ("kind", "title", "messages", "extra")


def read_project(data: bytes, file: str) -> ConstitutionDoc:
    """Reads this project's JSON or YAML file (JSON is tried first)."""
    return doc_from_project(read_json_or_yaml(data, file), file)


def write_project(
    doc: ConstitutionDoc,
    *,
    yaml: bool = False,
    version: int | None = None,
    published_at: str | None = None,
) -> bytes:
    """Everything in `doc`; `version` and `published_at` label an exported published version
    and are not read back into the document."""
    out: dict[str, Any] = {
        "format": PROJECT_FORMAT,
        "format_version": PROJECT_FORMAT_VERSION,
        "name": doc.name,
        "description": doc.description,
        "version": version,
        "published_at": published_at,
        "note": doc.note,
        "system_prompt": doc.system_prompt,
        "principles": [
            {
                "key": p.key,
                "critique_request": p.critique_request,
                "revision_request": p.revision_request,
                "comparison_instruction": p.comparison_instruction,
                "tags": list(p.tags),
                "enabled": p.enabled,
            }
            for p in doc.principles
        ],
        "few_shots": [
            {
                "kind": f.kind,
                "title": f.title,
                "messages": [dict(m) for m in f.messages],
                "extra": f.extra,
            }
            for f in doc.few_shots
        ],
        "extra": doc.extra,
    }
    if yaml:
        return _readable_yaml(out)
    return (json.dumps(out, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def doc_from_project(value: Any, file: str) -> ConstitutionDoc:
    check = Checker(file)
    top = check.object(value, "$", "an object")
    check.known_fields(top, "$", _PROJECT_FIELDS)
    marker = check.field(top, "format", "$")
    if marker != PROJECT_FORMAT:
        check.fail("$.format", f"expected {PROJECT_FORMAT!r}, found {show(marker)}")
    format_version = check.field(top, "format_version", "$")
    if format_version != PROJECT_FORMAT_VERSION or isinstance(format_version, bool):
        check.fail(
            "$.format_version",
            f"this workbench reads version {PROJECT_FORMAT_VERSION}, found {show(format_version)}",
        )
    name = check.text(check.field(top, "name", "$"), "$.name", limit=MAX_NAME_CHARS)
    # Validated only: they label an export and are no part of the document.
    if top.get("version") is not None and not is_int(top["version"]):
        check.fail("$.version", f"expected a whole number or null, found {kind_of(top['version'])}")
    published_at = top.get("published_at")
    # YAML reads an unquoted timestamp as a date; that is still a fine label.
    if published_at is not None and not isinstance(published_at, str | datetime.date):
        check.fail("$.published_at", f"expected a string or null, found {kind_of(published_at)}")

    principles_value = check.field(top, "principles", "$")
    items = check.array(principles_value, "$.principles", "a list of principles")
    check.at_most_principles(len(items), "$.principles")
    principles: list[PrincipleDoc] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        principle = _project_principle(check, item, at("$.principles", i))
        if principle.key in seen:
            check.fail(at(at("$.principles", i), "key"), f"duplicate key {principle.key!r}")
        seen.add(principle.key)
        principles.append(principle)

    shots = check.array(top.get("few_shots", []), "$.few_shots", "a list of few-shot examples")
    return ConstitutionDoc(
        name=name,
        principles=principles,
        description=optional_string(check, top, "description", "$", MAX_NOTE_CHARS),
        system_prompt=optional_string(check, top, "system_prompt", "$", None),
        few_shots=[_project_few_shot(check, s, at("$.few_shots", i)) for i, s in enumerate(shots)],
        note=optional_string(check, top, "note", "$", MAX_NOTE_CHARS),
        extra=check.json_object(top.get("extra", {}), "$.extra"),
    )


def _project_principle(check: Checker, value: Any, path: str) -> PrincipleDoc:
    item = check.object(value, path, "an object")
    check.known_fields(item, path, _PRINCIPLE_FIELDS)
    key = check.string(check.field(item, "key", path), at(path, "key"))
    check.key(key, at(path, "key"))
    tags_path = at(path, "tags")
    tags = check.array(item.get("tags", []), tags_path, "a list of strings")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        check.fail(at(path, "enabled"), f"expected true or false, found {kind_of(enabled)}")
    return PrincipleDoc(
        key=key,
        critique_request=check.text(
            check.field(item, "critique_request", path), at(path, "critique_request")
        ),
        revision_request=check.text(
            check.field(item, "revision_request", path), at(path, "revision_request")
        ),
        comparison_instruction=optional_string(
            check, item, "comparison_instruction", path, MAX_TEXT_CHARS
        ),
        tags=[check.string(t, at(tags_path, i)) for i, t in enumerate(tags)],
        enabled=enabled,
    )


def _project_few_shot(check: Checker, value: Any, path: str) -> FewShotDoc:
    item = check.object(value, path, "an object")
    check.known_fields(item, path, _FEW_SHOT_FIELDS)
    kind_value = check.field(item, "kind", path)
    kinds = [k for k in _FEW_SHOT_KINDS if k == kind_value]
    if not kinds:
        check.fail(at(path, "kind"), "must be one of " + ", ".join(_FEW_SHOT_KINDS))
    return FewShotDoc(
        kind=kinds[0],
        messages=read_messages(check, check.field(item, "messages", path), at(path, "messages")),
        title=optional_string(check, item, "title", path, MAX_TITLE_CHARS),
        extra=check.json_object(item.get("extra", {}), at(path, "extra")),
    )


class _ReadableDumper(yaml.SafeDumper):
    """Block style throughout, multi-line strings as `|` blocks: prompts read as written."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML itself falls back to a quoted string where a block cannot hold the text exactly
    # (trailing spaces on a line, for instance), so this never changes what is read back.
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    )


_ReadableDumper.add_representer(str, _represent_str)


def _readable_yaml(value: dict[str, Any]) -> bytes:
    text = yaml.dump(
        value,
        Dumper=_ReadableDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return text.encode("utf-8")
