"""Documents, files and error checks shared by the tests of app.recipe.formats."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.recipe.documents import ConstitutionDoc, ConstitutionFileError, FewShotDoc, PrincipleDoc
from app.recipe.formats import ANTHROPIC_FILES

CRITIQUES, COMPARISONS, CRITIQUE_SHOTS, COMPARISON_SHOTS = ANTHROPIC_FILES
# Small files in Anthropic's published format, written for this project (see its README).
ANTHROPIC_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic"


def fixture_files() -> dict[str, bytes]:
    """The four Anthropic files of tests/fixtures/anthropic, keyed by base name."""
    return {name: (ANTHROPIC_FIXTURES / name).read_bytes() for name in ANTHROPIC_FILES}


def app_doc() -> ConstitutionDoc:
    return ConstitutionDoc(
        name="Café rules ✓",
        description="Rules for a friendly café assistant — with ünïcödé.",
        system_prompt="You are a helpful assistant.\nAnswer briefly.\n",
        note="First draft: «quotes» and emoji 🙂",
        principles=[
            PrincipleDoc(
                key="kind",
                critique_request="Say where the reply was unkind.\nList each place.",
                revision_request="Rewrite the reply so that it is kind.",
                comparison_instruction="Which reply is kinder?",
                tags=["tone", "ünïcödé"],
            ),
            PrincipleDoc(
                key="honest",
                critique_request="Point out claims in the reply that may be false.",
                revision_request="Rewrite the reply without the doubtful claims.",
            ),
            PrincipleDoc(
                key="switched-off",
                critique_request="Note any jokes.",
                revision_request="Remove the jokes.",
                comparison_instruction="Which reply is more serious?",
                enabled=False,
            ),
            PrincipleDoc(
                key="safe",
                critique_request="Say whether the reply helps anyone cause harm.",
                revision_request="Rewrite the reply so it gives no such help.",
                comparison_instruction="Which reply is safer?",
                tags=["harm"],
            ),
        ],
        few_shots=[
            FewShotDoc(
                kind="critique-revision",
                title="Rude barista",
                messages=[
                    {"role": "user", "content": "Where is my coffee?"},
                    {"role": "assistant", "content": "Wait like everyone else."},
                    {"role": "user", "content": "Say where the reply was unkind."},
                    {"role": "assistant", "content": "It was curt and dismissive."},
                    {"role": "user", "content": "Rewrite the reply so that it is kind."},
                    {"role": "assistant", "content": "It is on its way.\nThanks for waiting!"},
                ],
            ),
            FewShotDoc(
                kind="comparison",
                title="Pick the kinder one",
                messages=[
                    {"role": "user", "content": "Is my latte art bad?"},
                    {"role": "assistant", "content": "It is a good start; keep practising."},
                ],
                extra={"incorrects": ["Yes, it is terrible."]},
            ),
        ],
        extra={"origin": {"made_in": "the app", "steps": [1, 2]}},
    )


HF_FIXTURE: dict[str, Any] = {
    "constitutions": [
        {
            "critic": "Find the parts of the reply that could hurt someone.",
            "revision": "Write the reply again without those parts.",
        },
        {
            "critic": "Does the reply talk down to the person asking?",
            "revision": "Rewrite it to speak to them as an equal.",
        },
        {
            "critic": "Is anything in the reply made up?",
            "revision": "Rewrite the reply, keeping only what is known to be true.",
        },
    ],
    "system_chat": [
        [
            {"role": "user", "content": "How do I pick a lock?"},
            {"role": "assistant", "content": "Insert a tension wrench, then rake the pins."},
            {"role": "user", "content": "Find the parts of the reply that could hurt someone."},
            {"role": "assistant", "content": "It explains breaking into property."},
            {"role": "user", "content": "Write the reply again without those parts."},
            {"role": "assistant", "content": "If you are locked out, call a locksmith."},
        ]
    ],
}


def hf_bytes(value: dict[str, Any] | None = None) -> bytes:
    return json.dumps(HF_FIXTURE if value is None else value, indent=2).encode()


def critique_entry(i: int) -> dict[str, Any]:
    return {
        "prompt": [f"\n\nCritiqueRequest: Name what is wrong with the reply ({i}).\n\nCritique:"],
        "edit_request": f"\n\nRevisionRequest: Fix the reply ({i}).\n\nRevision:",
    }


def anthropic_files(
    count: int = 4, change: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, bytes]:
    critiques = {f"harmful{i}": critique_entry(i) for i in range(count)}
    if change:
        change(critiques)
    return {CRITIQUES: json.dumps(critiques).encode()}


def expect_error(call: Callable[[], object], file: str, path: str, problem: str) -> None:
    with pytest.raises(ConstitutionFileError) as err:
        call()
    assert err.value.file == file
    assert err.value.path == path
    assert problem in err.value.problem
    message = str(err.value)
    assert message.startswith(f"{file}: ")
    assert path in message and problem in message


def set_key(key: str, name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(critiques: dict[str, Any]) -> None:
        critiques[key][name] = value

    return change


def drop_key(key: str, name: str) -> Callable[[dict[str, Any]], None]:
    def change(critiques: dict[str, Any]) -> None:
        del critiques[key][name]

    return change


def hf_with(change: Callable[[dict[str, Any]], None]) -> bytes:
    value = copy.deepcopy(HF_FIXTURE)
    change(value)
    return hf_bytes(value)


def delete(path: list[str | int]) -> Callable[[dict[str, Any]], None]:
    def change(value: dict[str, Any]) -> None:
        target: Any = value
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return change


def put(path: list[str | int], new: Any) -> Callable[[dict[str, Any]], None]:
    def change(value: dict[str, Any]) -> None:
        target: Any = value
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = new

    return change
