"""Anthropic's published prompt files (the Constitutional AI paper's four JSON files).

The database keeps only the instructions themselves, so a read strips the "CritiqueRequest:"
wrappers and a write puts the standard ones back. Where a file deviates from the standard
layout, the exact original strings go into `extra` and are written back only while they still
say what the document says. Each key appears only when needed:

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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.recipe.documents import ConstitutionDoc, ConstitutionFileError, FewShotDoc, PrincipleDoc
from app.recipe.formats.anthropic_dialogue import (
    OPEN_ASSISTANT,
    BadDialogue,
    chat_turns,
    comparison_prompt_messages,
    critique_shot_messages,
    plain_markers,
    render_critique_shot,
    render_turns,
    same_messages,
)
from app.recipe.formats.checks import (
    Checker,
    add_fields,
    at,
    enabled_principles,
    extra_section,
    string_list,
)
from app.recipe.formats.loading import read_json

ANTHROPIC_FILES = (
    "CritiqueRevisionInstructions.json",
    "RLMadisonInstructions.json",
    "CritiqueRevisionFewShotPrompts.json",
    "RLMadisonFewShotPrompts.json",
)
_CRITIQUES, _COMPARISONS, _CRITIQUE_SHOTS, _COMPARISON_SHOTS = ANTHROPIC_FILES

# The key of `extra` that this module owns (its layout is in the module docstring).
_ANTHROPIC = "anthropic"


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
    forms = extra_section(doc.extra, _ANTHROPIC, "principles")
    critiques: dict[str, Any] = {}
    comparisons: list[str] = []
    for principle in enabled_principles(doc):
        form = forms.get(principle.key)
        form = form if isinstance(form, dict) else {}
        entry: dict[str, Any] = {
            "prompt": _critique_prompts(form.get("prompt"), principle.critique_request),
            "edit_request": _keep_or_wrap(
                form.get("edit_request"), principle.revision_request, _REVISION
            ),
        }
        add_fields(entry, form.get("fields"))
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
    check = Checker(_CRITIQUES)
    entries = check.object(read_json(data, _CRITIQUES), "$", "an object of principles")
    if not entries:
        check.fail("$", "no principles")
    check.at_most_principles(len(entries), "$")
    principles: list[PrincipleDoc] = []
    forms: dict[str, dict[str, Any]] = {}
    for key, value in entries.items():
        path = at("$", key)
        check.key(key, path)
        entry = check.object(value, path, 'an object with "prompt" and "edit_request"')
        prompt_path = at(path, "prompt")
        prompts = check.array(check.field(entry, "prompt", path), prompt_path, "a list of strings")
        if not prompts:
            check.fail(prompt_path, "empty")
        texts = [check.string(p, at(prompt_path, i)) for i, p in enumerate(prompts)]
        critique = check.text(_CRITIQUE.unwrap(texts[0]), at(prompt_path, 0))
        edit_path = at(path, "edit_request")
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
    check = Checker(_COMPARISONS)
    items = check.array(read_json(data, _COMPARISONS), "$", "a list of comparison instructions")
    if len(items) > len(principles):
        check.fail(
            at("$", len(principles)),
            "more comparison instructions than critique principles "
            f"({len(items)} against {len(principles)})",
        )
    for i, item in enumerate(items):
        path = at("$", i)
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


def _anthropic_json(value: Any) -> bytes:
    # json.dumps' defaults are exactly how Anthropic's files are written, so an unedited
    # import is written back byte for byte.
    return json.dumps(value).encode("utf-8")


def _read_critique_shots(data: bytes) -> list[FewShotDoc]:
    check = Checker(_CRITIQUE_SHOTS)
    items = check.array(read_json(data, _CRITIQUE_SHOTS), "$", "a list of dialogue strings")
    shots: list[FewShotDoc] = []
    for i, item in enumerate(items):
        path = at("$", i)
        text = check.string(item, path)
        try:
            messages = critique_shot_messages(text)
        except BadDialogue as exc:
            check.fail(path, str(exc))
        # Non-standard text (other spacing, no open "Human:" at the end, other markers) is
        # kept whole: it is rare, and only the whole string reproduces it for certain.
        extra = {} if render_critique_shot(messages) == text else {_ANTHROPIC: {"text": text}}
        shots.append(FewShotDoc(kind="critique-revision", messages=messages, extra=extra))
    return shots


def _write_critique_shot(shot: FewShotDoc) -> str:
    stored = extra_section(shot.extra, _ANTHROPIC).get("text")
    if isinstance(stored, str) and same_messages(critique_shot_messages, stored, shot.messages):
        return stored
    return render_critique_shot(shot.messages)


def _read_comparison_shots(data: bytes) -> list[FewShotDoc]:
    check = Checker(_COMPARISON_SHOTS)
    items = check.array(read_json(data, _COMPARISON_SHOTS), "$", "a list of examples")
    shots: list[FewShotDoc] = []
    for i, item in enumerate(items):
        path = at("$", i)
        example = check.object(item, path, 'an object with "prompt", "corrects", "incorrects"')
        prompt_path = at(path, "prompt")
        prompt = check.string(check.field(example, "prompt", path), prompt_path)
        try:
            context = comparison_prompt_messages(prompt)
        except BadDialogue as exc:
            check.fail(prompt_path, str(exc))
        corrects = string_list(check, example, "corrects", path)
        if not corrects:
            check.fail(at(path, "corrects"), "empty")
        answer = corrects[0].strip()
        if not answer:
            check.fail(at(at(path, "corrects"), 0), "empty")
        if context[-1]["role"] != "user":
            check.fail(prompt_path, 'the last turn before the answer must be a "Human:" turn')
        incorrects = string_list(check, example, "incorrects", path)

        messages = [*context, {"role": "assistant", "content": answer}]
        original: dict[str, Any] = {}
        if prompt != render_turns(plain_markers(context), context) + OPEN_ASSISTANT:
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
    chat = chat_turns(shot.messages)
    if chat and chat[-1]["role"] == "assistant":
        context, answer = chat[:-1], chat[-1]["content"]
    else:
        context, answer = chat, ""
    original = extra_section(shot.extra, _ANTHROPIC)
    prompt = original.get("prompt")
    if not (isinstance(prompt, str) and same_messages(comparison_prompt_messages, prompt, context)):
        prompt = render_turns(plain_markers(context), context) + OPEN_ASSISTANT
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
    add_fields(example, original.get("fields"))
    return example
