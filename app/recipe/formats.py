"""Reading and writing constitutions in the file formats people actually have.

Three formats, each turned into the plain `ConstitutionDoc`:

- Anthropic's published prompt files (the Constitutional AI paper's four JSON files);
- Hugging Face's open recipe (`{"constitutions": [...], "system_chat": [...]}`);
- this project's own JSON/YAML, which carries everything the database holds.

The database keeps only the instructions themselves (no "CritiqueRequest:" wrappers), so an
import strips the wrappers and an export puts the standard ones back. Where an imported file
deviates from the standard layout, the exact original strings go into `extra` and are
written back only while they still say what the document says, so a file round-trips exactly
but an edit made in the app is never undone. Each key below appears only when needed:

    ConstitutionDoc.extra["anthropic"]["principles"][key] = {
        "prompt": [...],        # the entry's original "prompt" list
        "edit_request": "...",  # its original "edit_request"
        "comparison": "...",    # its original RLMadisonInstructions.json string
        "fields": {...},        # other fields of the entry
    }
    FewShotDoc.extra (critique-revision) = {"anthropic": {"text": "<original dialogue>"}}
    FewShotDoc.extra (comparison) = {
        "incorrects": [...],    # always: the wrong answers
        "anthropic": {"prompt": "...", "corrects": [...], "fields": {...}},
    }
    ConstitutionDoc.extra["huggingface"] = {
        "principles": {"principle-N": {...other fields of that entry}},
        "fields": {...other top-level fields},
        "no_system_chat": True,  # the file had no "system_chat"
    }

Pure: standard library and PyYAML only, so the web app and the worker can both use it.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import yaml

from app.recipe.documents import (
    ROLES,
    ConstitutionDoc,
    ConstitutionFileError,
    FewShotDoc,
    FewShotKind,
    PrincipleDoc,
)
from app.safe_parse import LimitedYAMLLoader, ParseLimitError, load_json

ANTHROPIC_FILES = (
    "CritiqueRevisionInstructions.json",
    "RLMadisonInstructions.json",
    "CritiqueRevisionFewShotPrompts.json",
    "RLMadisonFewShotPrompts.json",
)
_CRITIQUES, _COMPARISONS, _CRITIQUE_SHOTS, _COMPARISON_SHOTS = ANTHROPIC_FILES

PROJECT_FORMAT = "cai-workbench.constitution"
PROJECT_FORMAT_VERSION = 1

MAX_TEXT_CHARS = 4000
MAX_PRINCIPLES = 500
# These mirror the column sizes in app.models.constitutions: a longer value would pass here
# and then fail inside the database with an error the user cannot act on.
MAX_KEY_CHARS = 64
MAX_NAME_CHARS = 200
MAX_TITLE_CHARS = 200
MAX_NOTE_CHARS = 2000

# The keys of `extra` that this module owns (their layout is in the module docstring).
_ANTHROPIC = "anthropic"
_HUGGINGFACE = "huggingface"

_KNOWN_FORMATS = (
    "not a constitution in any known format "
    "(Anthropic's files, Hugging Face's recipe, or this project's JSON/YAML)"
)
_FEW_SHOT_KINDS: tuple[FewShotKind, ...] = ("critique-revision", "comparison")


# ---------------------------------------------------------------------------------------------
# Anthropic's files
# ---------------------------------------------------------------------------------------------


def read_anthropic(files: dict[str, bytes], name: str) -> ConstitutionDoc:
    """Reads Anthropic's files, keyed by base name; only CritiqueRevisionInstructions.json
    is required."""
    for file in files:
        if file not in ANTHROPIC_FILES:
            raise ConstitutionFileError(
                file, "", "not one of the Anthropic files: " + ", ".join(ANTHROPIC_FILES)
            )
    if _CRITIQUES not in files:
        raise ConstitutionFileError(
            _CRITIQUES, "", "missing: the critique and revision requests are required"
        )
    principles, forms = _read_critiques(files[_CRITIQUES])
    if _COMPARISONS in files:
        _read_comparisons(files[_COMPARISONS], principles, forms)
    few_shots: list[FewShotDoc] = []
    if _CRITIQUE_SHOTS in files:
        few_shots += _read_critique_shots(files[_CRITIQUE_SHOTS])
    if _COMPARISON_SHOTS in files:
        few_shots += _read_comparison_shots(files[_COMPARISON_SHOTS])
    extra = {_ANTHROPIC: {"principles": forms}} if forms else {}
    return ConstitutionDoc(name=name, principles=principles, few_shots=few_shots, extra=extra)


def write_anthropic(doc: ConstitutionDoc) -> dict[str, bytes]:
    """Anthropic's files for the enabled principles; files with nothing to say are left out,
    except CritiqueRevisionInstructions.json."""
    forms = _extra_section(doc.extra, _ANTHROPIC, "principles")
    critiques: dict[str, Any] = {}
    comparisons: list[str] = []
    for principle in _enabled(doc):
        form = forms.get(principle.key)
        form = form if isinstance(form, dict) else {}
        entry: dict[str, Any] = {
            "prompt": _critique_prompts(form.get("prompt"), principle.critique_request),
            "edit_request": _keep_or_wrap(
                form.get("edit_request"), principle.revision_request, _REVISION
            ),
        }
        _add_fields(entry, form.get("fields"))
        critiques[principle.key] = entry
        # Unassigned principles are skipped: the file is a plain list, matched by position.
        if principle.comparison_instruction:
            comparisons.append(
                _keep_or_wrap(form.get("comparison"), principle.comparison_instruction, _COMPARISON)
            )
    files = {_CRITIQUES: _anthropic_json(critiques)}
    if comparisons:
        files[_COMPARISONS] = _anthropic_json(comparisons)
    critique_shots = [
        _write_critique_shot(f) for f in doc.few_shots if f.kind == "critique-revision"
    ]
    if critique_shots:
        files[_CRITIQUE_SHOTS] = _anthropic_json(critique_shots)
    comparison_shots = [_write_comparison_shot(f) for f in doc.few_shots if f.kind == "comparison"]
    if comparison_shots:
        files[_COMPARISON_SHOTS] = _anthropic_json(comparison_shots)
    return files


@dataclass(frozen=True)
class _Wrapper:
    """How Anthropic's files frame one instruction: "\\n\\nCritiqueRequest: …\\n\\nCritique:"."""

    before: str
    after: str

    def wrap(self, text: str) -> str:
        return f"{self.before}{text}{self.after}"

    def unwrap(self, raw: str) -> str:
        # Tolerant of spacing so that a hand-made file with odd whitespace still imports;
        # the exact original is kept in `extra` when it differs from the standard form.
        text = raw.strip()
        head, tail = self.before.strip(), self.after.strip()
        if head and text.startswith(head):
            text = text[len(head) :]
        if tail and text.endswith(tail):
            text = text[: -len(tail)]
        return text.strip()


_CRITIQUE = _Wrapper("\n\nCritiqueRequest: ", "\n\nCritique:")
_REVISION = _Wrapper("\n\nRevisionRequest: ", "\n\nRevision:")
# "Options:" belongs to the multiple-choice template, not to the principle (as in the paper's
# prompt layout), so the stored comparison instruction is the sentence alone.
_COMPARISON = _Wrapper("\n", " Options:")


def _read_critiques(data: bytes) -> tuple[list[PrincipleDoc], dict[str, dict[str, Any]]]:
    check = _Checker(_CRITIQUES)
    entries = check.object(_load_json(data, _CRITIQUES), "$", "an object of principles")
    if not entries:
        check.fail("$", "no principles")
    check.at_most_principles(len(entries), "$")
    principles: list[PrincipleDoc] = []
    forms: dict[str, dict[str, Any]] = {}
    for key, value in entries.items():
        path = _at("$", key)
        check.key(key, path)
        entry = check.object(value, path, 'an object with "prompt" and "edit_request"')
        prompt_path = _at(path, "prompt")
        prompts = check.array(check.field(entry, "prompt", path), prompt_path, "a list of strings")
        if not prompts:
            check.fail(prompt_path, "empty")
        texts = [check.string(p, _at(prompt_path, i)) for i, p in enumerate(prompts)]
        critique = check.text(_CRITIQUE.unwrap(texts[0]), _at(prompt_path, 0))
        edit_path = _at(path, "edit_request")
        edit = check.string(check.field(entry, "edit_request", path), edit_path)
        revision = check.text(_REVISION.unwrap(edit), edit_path)

        form: dict[str, Any] = {}
        if texts != [_CRITIQUE.wrap(critique)]:
            form["prompt"] = texts
        if edit != _REVISION.wrap(revision):
            form["edit_request"] = edit
        fields = {k: v for k, v in entry.items() if k not in ("prompt", "edit_request")}
        if fields:
            form["fields"] = fields
        if form:
            forms[key] = form
        principles.append(
            PrincipleDoc(key=key, critique_request=critique, revision_request=revision)
        )
    return principles, forms


def _read_comparisons(
    data: bytes, principles: list[PrincipleDoc], forms: dict[str, dict[str, Any]]
) -> None:
    """Assigns the comparison instructions to the principles by position."""
    check = _Checker(_COMPARISONS)
    items = check.array(_load_json(data, _COMPARISONS), "$", "a list of comparison instructions")
    if len(items) > len(principles):
        check.fail(
            _at("$", len(principles)),
            "more comparison instructions than critique principles "
            f"({len(items)} against {len(principles)})",
        )
    for i, item in enumerate(items):
        path = _at("$", i)
        raw = check.string(item, path)
        principle = principles[i]
        principle.comparison_instruction = check.text(_COMPARISON.unwrap(raw), path)
        if raw != _COMPARISON.wrap(principle.comparison_instruction):
            forms.setdefault(principle.key, {})["comparison"] = raw


def _critique_prompts(stored: Any, critique: str) -> list[str]:
    if (
        isinstance(stored, list)
        and stored
        and all(isinstance(s, str) for s in stored)
        and _CRITIQUE.unwrap(stored[0]) == critique
    ):
        return list(stored)
    return [_CRITIQUE.wrap(critique)]


def _keep_or_wrap(stored: Any, text: str, wrapper: _Wrapper) -> str:
    """The file's original string while it still holds `text`, else the standard form."""
    if isinstance(stored, str) and wrapper.unwrap(stored) == text:
        return stored
    return wrapper.wrap(text)


def _add_fields(target: dict[str, Any], fields: Any) -> None:
    """Puts back fields of the original file this project has no use for."""
    if isinstance(fields, dict):
        for name, value in fields.items():
            target.setdefault(name, value)


def _anthropic_json(value: Any) -> bytes:
    # json.dumps' defaults are exactly how Anthropic's files are written, so an unedited
    # import is written back byte for byte.
    return json.dumps(value).encode("utf-8")


# Dialogue strings: "\n\nHuman: …\n\nAssistant: …\n\nCritiqueRequest: …" and so on.

_TURN = re.compile(r"\n\n(Human|Assistant|CritiqueRequest|Critique|RevisionRequest|Revision):")
_ROLE_OF = {
    "Human": "user",
    "CritiqueRequest": "user",
    "RevisionRequest": "user",
    "Assistant": "assistant",
    "Critique": "assistant",
    "Revision": "assistant",
}
_CRITIQUE_ROUND = ("CritiqueRequest", "Critique", "RevisionRequest", "Revision")
# The open turn that ends a few-shot dialogue and hands over to the next example.
_OPEN_HUMAN = "\n\nHuman:"
_OPEN_ASSISTANT = "\n\nAssistant:"


class _BadDialogue(Exception):
    """A dialogue string that cannot be read; the caller adds the file and the JSON path."""


def _split_turns(text: str) -> list[tuple[str, str]]:
    parts = _TURN.split(text)
    lead, rest = parts[0], parts[1:]
    turns = [(rest[i], rest[i + 1].strip()) for i in range(0, len(rest), 2)]
    if not any(marker == "Human" for marker, _ in turns):
        raise _BadDialogue('no "\\n\\nHuman:" turns')
    if lead.strip():
        raise _BadDialogue('text before the first "\\n\\nHuman:" turn')
    if turns[0][0] != "Human":
        raise _BadDialogue('must start with a "\\n\\nHuman:" turn')
    return turns


def _turn_messages(turns: list[tuple[str, str]]) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for number, (marker, content) in enumerate(turns, 1):
        if not content:
            raise _BadDialogue(f'turn {number} ("{marker}:") is empty')
        role = _ROLE_OF[marker]
        # Chat templates need alternating turns, and so does the prompt built from them.
        if messages and messages[-1]["role"] == role:
            raise _BadDialogue(
                f'turn {number} ("{marker}:") is a second {role} turn in a row; '
                "turns must alternate"
            )
        messages.append({"role": role, "content": content})
    return messages


def _critique_shot_messages(text: str) -> list[dict[str, str]]:
    turns = _split_turns(text)
    if turns[-1] == ("Human", ""):
        turns.pop()
    if not turns:
        raise _BadDialogue("no turns with text")
    return _turn_messages(turns)


def _comparison_prompt_messages(prompt: str) -> list[dict[str, str]]:
    """The conversation before the answer; the prompt ends with the empty Assistant turn."""
    turns = _split_turns(prompt)
    if turns[-1] != ("Assistant", ""):
        raise _BadDialogue('must end with an empty "\\n\\nAssistant:" turn for the answer')
    return _turn_messages(turns[:-1])


def _render_turns(markers: list[str], messages: list[dict[str, str]]) -> str:
    return "".join(
        f"\n\n{marker}: {m['content']}" if m["content"] else f"\n\n{marker}:"
        for marker, m in zip(markers, messages, strict=True)
    )


def _plain_markers(messages: list[dict[str, str]]) -> list[str]:
    return ["Human" if m["role"] == "user" else "Assistant" for m in messages]


def _chat_turns(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    # Anthropic's dialogues have no system turn; a doc's system messages are left out there.
    return [m for m in messages if m.get("role") != "system"]


def _render_critique_shot(messages: list[dict[str, str]]) -> str:
    chat = _chat_turns(messages)
    markers = _plain_markers(chat)
    # A conversation followed by one critique round: the last four turns are the round.
    if len(chat) >= 6 and [m["role"] for m in chat[-4:]] == ["user", "assistant"] * 2:
        markers[-4:] = _CRITIQUE_ROUND
    return _render_turns(markers, chat) + _OPEN_HUMAN


def _read_critique_shots(data: bytes) -> list[FewShotDoc]:
    check = _Checker(_CRITIQUE_SHOTS)
    items = check.array(_load_json(data, _CRITIQUE_SHOTS), "$", "a list of dialogue strings")
    shots: list[FewShotDoc] = []
    for i, item in enumerate(items):
        path = _at("$", i)
        text = check.string(item, path)
        try:
            messages = _critique_shot_messages(text)
        except _BadDialogue as exc:
            check.fail(path, str(exc))
        # Non-standard text (other spacing, no open "Human:" at the end, other markers) is
        # kept whole: it is rare, and only the whole string reproduces it for certain.
        extra = {} if _render_critique_shot(messages) == text else {_ANTHROPIC: {"text": text}}
        shots.append(FewShotDoc(kind="critique-revision", messages=messages, extra=extra))
    return shots


def _write_critique_shot(shot: FewShotDoc) -> str:
    stored = _extra_section(shot.extra, _ANTHROPIC).get("text")
    if isinstance(stored, str) and _same(_critique_shot_messages, stored, shot.messages):
        return stored
    return _render_critique_shot(shot.messages)


def _read_comparison_shots(data: bytes) -> list[FewShotDoc]:
    check = _Checker(_COMPARISON_SHOTS)
    items = check.array(_load_json(data, _COMPARISON_SHOTS), "$", "a list of examples")
    shots: list[FewShotDoc] = []
    for i, item in enumerate(items):
        path = _at("$", i)
        example = check.object(item, path, 'an object with "prompt", "corrects", "incorrects"')
        prompt_path = _at(path, "prompt")
        prompt = check.string(check.field(example, "prompt", path), prompt_path)
        try:
            context = _comparison_prompt_messages(prompt)
        except _BadDialogue as exc:
            check.fail(prompt_path, str(exc))
        corrects = _string_list(check, example, "corrects", path)
        if not corrects:
            check.fail(_at(path, "corrects"), "empty")
        answer = corrects[0].strip()
        if not answer:
            check.fail(_at(_at(path, "corrects"), 0), "empty")
        if context[-1]["role"] != "user":
            check.fail(prompt_path, 'the last turn before the answer must be a "Human:" turn')
        incorrects = _string_list(check, example, "incorrects", path)

        messages = [*context, {"role": "assistant", "content": answer}]
        original: dict[str, Any] = {}
        if prompt != _render_turns(_plain_markers(context), context) + _OPEN_ASSISTANT:
            original["prompt"] = prompt
        if corrects != [answer]:
            original["corrects"] = corrects
        fields = {k: v for k, v in example.items() if k not in ("prompt", "corrects", "incorrects")}
        if fields:
            original["fields"] = fields
        extra: dict[str, Any] = {"incorrects": incorrects}
        if original:
            extra[_ANTHROPIC] = original
        shots.append(FewShotDoc(kind="comparison", messages=messages, extra=extra))
    return shots


def _write_comparison_shot(shot: FewShotDoc) -> dict[str, Any]:
    chat = _chat_turns(shot.messages)
    if chat and chat[-1]["role"] == "assistant":
        context, answer = chat[:-1], chat[-1]["content"]
    else:
        context, answer = chat, ""
    original = _extra_section(shot.extra, _ANTHROPIC)
    prompt = original.get("prompt")
    if not (isinstance(prompt, str) and _same(_comparison_prompt_messages, prompt, context)):
        prompt = _render_turns(_plain_markers(context), context) + _OPEN_ASSISTANT
    corrects = original.get("corrects")
    if not (
        isinstance(corrects, list)
        and corrects
        and all(isinstance(c, str) for c in corrects)
        and corrects[0].strip() == answer
    ):
        corrects = [answer]
    incorrects = shot.extra.get("incorrects")
    if not (isinstance(incorrects, list) and all(isinstance(s, str) for s in incorrects)):
        incorrects = []
    example: dict[str, Any] = {"prompt": prompt, "corrects": corrects, "incorrects": incorrects}
    _add_fields(example, original.get("fields"))
    return example


def _same(
    parse: Callable[[str], list[dict[str, str]]], text: str, messages: list[dict[str, str]]
) -> bool:
    """Whether a stored original string still holds these messages (it may be stale)."""
    try:
        return parse(text) == messages
    except _BadDialogue:
        return False


def _string_list(check: _Checker, obj: dict[str, Any], name: str, path: str) -> list[str]:
    list_path = _at(path, name)
    items = check.array(check.field(obj, name, path), list_path, "a list of strings")
    return [check.string(s, _at(list_path, i)) for i, s in enumerate(items)]


# ---------------------------------------------------------------------------------------------
# Hugging Face's recipe
# ---------------------------------------------------------------------------------------------


def read_huggingface(data: bytes, file: str, name: str) -> ConstitutionDoc:
    """Reads `{"constitutions": [{"critic", "revision"}], "system_chat": [[messages]]}`."""
    return _huggingface_doc(_load_json_or_yaml(data, file), file, name)


def write_huggingface(doc: ConstitutionDoc) -> bytes:
    """The recipe's file for the enabled principles and the critique-revision few-shots."""
    entry_fields = _extra_section(doc.extra, _HUGGINGFACE, "principles")
    constitutions = []
    for principle in _enabled(doc):
        entry: dict[str, Any] = {
            "critic": principle.critique_request,
            "revision": principle.revision_request,
        }
        _add_fields(entry, entry_fields.get(principle.key))
        constitutions.append(entry)
    out: dict[str, Any] = {"constitutions": constitutions}
    chats = [
        [{"role": m["role"], "content": m["content"]} for m in shot.messages]
        for shot in doc.few_shots
        if shot.kind == "critique-revision"
    ]
    if chats or not _extra_section(doc.extra, _HUGGINGFACE).get("no_system_chat"):
        out["system_chat"] = chats
    _add_fields(out, _extra_section(doc.extra, _HUGGINGFACE, "fields"))
    return (json.dumps(out, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _huggingface_doc(value: Any, file: str, name: str) -> ConstitutionDoc:
    check = _Checker(file)
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
        path = _at("$.constitutions", i)
        entry = check.object(item, path, 'an object with "critic" and "revision"')
        critic = check.text(check.field(entry, "critic", path), _at(path, "critic"))
        revision = check.text(check.field(entry, "revision", path), _at(path, "revision"))
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
            messages = _read_messages(check, chat, _at("$.system_chat", i))
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


# ---------------------------------------------------------------------------------------------
# This project's format
# ---------------------------------------------------------------------------------------------

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
    return _project_doc(_load_json_or_yaml(data, file), file)


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


def _project_doc(value: Any, file: str) -> ConstitutionDoc:
    check = _Checker(file)
    top = check.object(value, "$", "an object")
    check.known_fields(top, "$", _PROJECT_FIELDS)
    marker = check.field(top, "format", "$")
    if marker != PROJECT_FORMAT:
        check.fail("$.format", f"expected {PROJECT_FORMAT!r}, found {_show(marker)}")
    format_version = check.field(top, "format_version", "$")
    if format_version != PROJECT_FORMAT_VERSION or isinstance(format_version, bool):
        check.fail(
            "$.format_version",
            f"this workbench reads version {PROJECT_FORMAT_VERSION}, found {_show(format_version)}",
        )
    name = check.text(check.field(top, "name", "$"), "$.name", limit=MAX_NAME_CHARS)
    # Validated only: they label an export and are no part of the document.
    if top.get("version") is not None and not _is_int(top["version"]):
        check.fail("$.version", f"expected a whole number or null, found {_kind(top['version'])}")
    published_at = top.get("published_at")
    # YAML reads an unquoted timestamp as a date; that is still a fine label.
    if published_at is not None and not isinstance(published_at, str | datetime.date):
        check.fail("$.published_at", f"expected a string or null, found {_kind(published_at)}")

    principles_value = check.field(top, "principles", "$")
    items = check.array(principles_value, "$.principles", "a list of principles")
    check.at_most_principles(len(items), "$.principles")
    principles: list[PrincipleDoc] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        principle = _project_principle(check, item, _at("$.principles", i))
        if principle.key in seen:
            check.fail(_at(_at("$.principles", i), "key"), f"duplicate key {principle.key!r}")
        seen.add(principle.key)
        principles.append(principle)

    shots = check.array(top.get("few_shots", []), "$.few_shots", "a list of few-shot examples")
    return ConstitutionDoc(
        name=name,
        principles=principles,
        description=_optional_string(check, top, "description", "$", MAX_NOTE_CHARS),
        system_prompt=_optional_string(check, top, "system_prompt", "$", None),
        few_shots=[_project_few_shot(check, s, _at("$.few_shots", i)) for i, s in enumerate(shots)],
        note=_optional_string(check, top, "note", "$", MAX_NOTE_CHARS),
        extra=check.json_object(top.get("extra", {}), "$.extra"),
    )


def _project_principle(check: _Checker, value: Any, path: str) -> PrincipleDoc:
    item = check.object(value, path, "an object")
    check.known_fields(item, path, _PRINCIPLE_FIELDS)
    key = check.string(check.field(item, "key", path), _at(path, "key"))
    check.key(key, _at(path, "key"))
    tags_path = _at(path, "tags")
    tags = check.array(item.get("tags", []), tags_path, "a list of strings")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        check.fail(_at(path, "enabled"), f"expected true or false, found {_kind(enabled)}")
    return PrincipleDoc(
        key=key,
        critique_request=check.text(
            check.field(item, "critique_request", path), _at(path, "critique_request")
        ),
        revision_request=check.text(
            check.field(item, "revision_request", path), _at(path, "revision_request")
        ),
        comparison_instruction=_optional_string(
            check, item, "comparison_instruction", path, MAX_TEXT_CHARS
        ),
        tags=[check.string(t, _at(tags_path, i)) for i, t in enumerate(tags)],
        enabled=enabled,
    )


def _project_few_shot(check: _Checker, value: Any, path: str) -> FewShotDoc:
    item = check.object(value, path, "an object")
    check.known_fields(item, path, _FEW_SHOT_FIELDS)
    kind_value = check.field(item, "kind", path)
    kinds = [k for k in _FEW_SHOT_KINDS if k == kind_value]
    if not kinds:
        check.fail(_at(path, "kind"), "must be one of " + ", ".join(_FEW_SHOT_KINDS))
    return FewShotDoc(
        kind=kinds[0],
        messages=_read_messages(check, check.field(item, "messages", path), _at(path, "messages")),
        title=_optional_string(check, item, "title", path, MAX_TITLE_CHARS),
        extra=check.json_object(item.get("extra", {}), _at(path, "extra")),
    )


def _optional_string(
    check: _Checker, obj: dict[str, Any], name: str, path: str, limit: int | None
) -> str:
    field_path = _at(path, name)
    text = check.string(obj.get(name, ""), field_path)
    if limit is not None and len(text) > limit:
        check.fail(field_path, f"longer than {limit} characters")
    return text


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


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------


def detect_and_read(files: dict[str, bytes], name: str) -> tuple[str, ConstitutionDoc]:
    """("anthropic" | "huggingface" | "project", doc) for uploaded files keyed by base name.

    Several files are read only as Anthropic's set; one file is Anthropic's by its name, else
    Hugging Face's or this project's by its content. `name` names Anthropic and Hugging Face
    imports; a project file carries its own name."""
    if not files:
        raise ConstitutionFileError("upload", "", "no files were given")
    names = list(files)
    if len(names) > 1 or names[0] in ANTHROPIC_FILES:
        # read_anthropic names the first file that is not one of Anthropic's.
        return "anthropic", read_anthropic(files, name)
    file = names[0]
    value = _load_json_or_yaml(files[file], file)
    if isinstance(value, dict):
        if "constitutions" in value:
            return "huggingface", _huggingface_doc(value, file, name)
        if value.get("format") == PROJECT_FORMAT:
            return "project", _project_doc(value, file)
    raise ConstitutionFileError(file, "$", _KNOWN_FORMATS)


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _enabled(doc: ConstitutionDoc) -> list[PrincipleDoc]:
    """The principles an export carries: the other formats cannot mark one as disabled, and a
    disabled principle must not come back to life in someone else's run."""
    principles = [p for p in doc.principles if p.enabled]
    keys = [p.key for p in principles]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate principle keys in {doc.name!r}")
    return principles


def _extra_section(extra: dict[str, Any], *names: str) -> dict[str, Any]:
    """extra[name1][name2]…, or {} where absent or not an object (extra is user data)."""
    value: Any = extra
    for name in names:
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def _read_messages(check: _Checker, value: Any, path: str) -> list[dict[str, str]]:
    items = check.array(value, path, "a list of messages")
    if not items:
        check.fail(path, "empty")
    messages = []
    for i, item in enumerate(items):
        message_path = _at(path, i)
        message = check.object(item, message_path, 'an object with "role" and "content"')
        check.known_fields(message, message_path, ("role", "content"))
        role_path = _at(message_path, "role")
        role = check.string(check.field(message, "role", message_path), role_path)
        if role not in ROLES:
            check.fail(role_path, "must be one of " + ", ".join(ROLES))
        content_path = _at(message_path, "content")
        content = check.string(check.field(message, "content", message_path), content_path)
        messages.append({"role": role, "content": content})
    return messages


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys without a word: a principle would vanish.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


class _StrictLoader(LimitedYAMLLoader):
    """safe_load without aliases (a few nested aliases expand into gigabytes once the data
    is turned into JSON), deep nesting or huge integers (see LimitedYAMLLoader), and without
    silently repeated keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys: set[str] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                continue  # SafeLoader itself reports keys it cannot use
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")  # tolerates the byte-order mark some editors add
    except UnicodeDecodeError as exc:
        raise ConstitutionFileError(file, "", f"not UTF-8 text (byte {exc.start})") from None


def _load_json(data: bytes, file: str) -> Any:
    return _parse_json(_decode(data, file), file)


def _parse_json(text: str, file: str) -> Any:
    try:
        return load_json(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ConstitutionFileError(file, "", f"duplicate key {exc.args[0]!r}") from None
    except ParseLimitError as exc:
        raise ConstitutionFileError(file, "", str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ConstitutionFileError(
            file, "", f"not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        ) from None
    except ValueError as exc:  # NaN or Infinity
        raise ConstitutionFileError(file, "", f"not valid JSON ({exc})") from None


def _load_json_or_yaml(data: bytes, file: str) -> Any:
    text = _decode(data, file)
    try:
        return _parse_json(text, file)
    except ConstitutionFileError as json_error:
        try:
            return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader underneath
        except yaml.YAMLError as exc:
            # Report the error of the language the file was evidently meant to be in.
            if text.lstrip()[:1] in ("{", "["):
                raise json_error from None
            raise ConstitutionFileError(
                file, "", f"not valid YAML ({_yaml_problem(exc)})"
            ) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1} column {mark.column + 1}: {exc.problem}"
    return str(exc)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _at(path: str, key: str | int) -> str:
    """JSON path of a child: $.harmful3, $.principles[2], $["odd key"]."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str | int | float) else _kind(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Checker:
    """Type and content checks that fail with the file's name and the value's JSON path."""

    file: str

    def fail(self, path: str, problem: str) -> NoReturn:
        raise ConstitutionFileError(self.file, path, problem)

    def object(self, value: Any, path: str, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected {what}, found {_kind(value)}")
        return value

    def array(self, value: Any, path: str, what: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, f"expected {what}, found {_kind(value)}")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            self.fail(path, f"expected a string, found {_kind(value)}")
        return value

    def text(self, value: Any, path: str, *, limit: int = MAX_TEXT_CHARS) -> str:
        """A string with something in it, within the size limit."""
        text = self.string(value, path)
        if not text.strip():
            self.fail(path, "empty")
        if len(text) > limit:
            self.fail(path, f"longer than {limit} characters")
        return text

    def key(self, key: str, path: str) -> None:
        if not key.strip():
            self.fail(path, "empty")
        if len(key) > MAX_KEY_CHARS:
            self.fail(path, f"key longer than {MAX_KEY_CHARS} characters")

    def field(self, obj: dict[str, Any], name: str, path: str) -> Any:
        if name not in obj:
            self.fail(_at(path, name), "missing")
        return obj[name]

    def known_fields(self, obj: dict[str, Any], path: str, known: tuple[str, ...]) -> None:
        # A misspelt optional field would otherwise vanish without a word.
        for name in obj:
            if name not in known:
                self.fail(_at(path, str(name)), "unknown field; expected " + ", ".join(known))

    def at_most_principles(self, count: int, path: str) -> None:
        if count > MAX_PRINCIPLES:
            self.fail(path, f"more than {MAX_PRINCIPLES} principles ({count})")

    def json_object(self, value: Any, path: str) -> dict[str, Any]:
        obj = self.object(value, path, "an object")
        try:
            json.dumps(obj)  # the database stores it as JSON; YAML dates and such cannot go
        except (TypeError, ValueError) as exc:
            self.fail(path, f"not plain JSON data ({exc})")
        return obj
