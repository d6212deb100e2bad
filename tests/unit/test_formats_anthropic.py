"""app.recipe.formats.anthropic: Anthropic's published prompt files, read and written."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.recipe.documents import ConstitutionDoc, ConstitutionFileError, PrincipleDoc
from app.recipe.formats import (
    ANTHROPIC_FILES,
    read_anthropic,
    read_project,
    write_anthropic,
    write_project,
)
from tests.unit.formats_cases import (
    COMPARISON_SHOTS,
    COMPARISONS,
    CRITIQUE_SHOTS,
    CRITIQUES,
    anthropic_files,
    app_doc,
    drop_key,
    expect_error,
    fixture_files,
    set_key,
)


@pytest.fixture
def real_files(shared_data: Callable[[str], Path]) -> dict[str, bytes]:
    """The paper's own four files, through the shared_data fixture."""
    return {name: shared_data(f"cai-paper/prompts/{name}").read_bytes() for name in ANTHROPIC_FILES}


@pytest.fixture(params=["fixtures", "paper"])
def any_files(request: pytest.FixtureRequest) -> dict[str, bytes]:
    """This project's small files (always there) and the paper's own (where they are)."""
    if request.param == "fixtures":
        return fixture_files()
    files: dict[str, bytes] = request.getfixturevalue("real_files")
    return files


def alternates(messages: list[dict[str, str]]) -> bool:
    roles = [m["role"] for m in messages]
    return roles == ["user", "assistant"] * (len(roles) // 2) + ["user"] * (len(roles) % 2)


# ---------------------------------------------------------------------------------------------
# Files in Anthropic's format: the paper's own and this project's fixtures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ANTHROPIC_FILES)
def test_anthropic_file_round_trips_exactly(any_files: dict[str, bytes], name: str) -> None:
    written = write_anthropic(read_anthropic(any_files, "Anthropic"))
    assert json.loads(written[name]) == json.loads(any_files[name])
    # Written the way Anthropic wrote them, so an unedited import comes back byte for byte.
    assert written[name] == any_files[name]


def test_anthropic_files_survive_the_project_format_too(any_files: dict[str, bytes]) -> None:
    doc = read_anthropic(any_files, "Anthropic")
    for data, file in [
        (write_project(doc), "c.json"),
        (write_project(doc, yaml=True), "c.yaml"),
    ]:
        again = read_project(data, file)
        assert again == doc
        written = write_anthropic(again)
        for name in ANTHROPIC_FILES:
            assert json.loads(written[name]) == json.loads(any_files[name])


def test_real_anthropic_contents(real_files: dict[str, bytes]) -> None:
    doc = read_anthropic(real_files, "Anthropic")
    assert doc.name == "Anthropic"
    assert [p.key for p in doc.principles] == [f"harmful{i}" for i in range(16)]
    comparisons = [p.comparison_instruction for p in doc.principles]
    assert all(comparisons) and len(set(comparisons)) == 16
    for p in doc.principles:
        for text in (p.critique_request, p.revision_request, p.comparison_instruction):
            assert text == text.strip()
            for wrapper in ("CritiqueRequest:", "Critique:", "RevisionRequest:", "Revision:"):
                assert wrapper not in text
            assert not text.endswith("Options:")
        assert p.enabled and p.tags == []

    critique_shots = [f for f in doc.few_shots if f.kind == "critique-revision"]
    assert len(critique_shots) == 5
    for shot in critique_shots:
        assert len(shot.messages) >= 6
        assert alternates(shot.messages) and shot.messages[-1]["role"] == "assistant"
        for m in shot.messages:
            assert m["content"] == m["content"].strip() and m["content"]
            assert "\n\nHuman:" not in m["content"]

    comparison_shots = [f for f in doc.few_shots if f.kind == "comparison"]
    assert len(comparison_shots) == 5
    for shot in comparison_shots:
        assert alternates(shot.messages) and shot.messages[-1]["role"] == "assistant"
        incorrects = shot.extra["incorrects"]
        assert incorrects and all(isinstance(s, str) for s in incorrects)
        assert shot.messages[-1]["content"] not in incorrects


def test_real_anthropic_critique_file_alone(real_files: dict[str, bytes]) -> None:
    doc = read_anthropic({CRITIQUES: real_files[CRITIQUES]}, "Critiques only")
    assert len(doc.principles) == 16
    assert all(p.comparison_instruction == "" for p in doc.principles)
    assert doc.few_shots == []
    written = write_anthropic(doc)
    assert list(written) == [CRITIQUES]
    assert json.loads(written[CRITIQUES]) == json.loads(real_files[CRITIQUES])


def test_edits_after_an_import_are_written_in_the_standard_form() -> None:
    doc = read_anthropic(fixture_files(), "Anthropic")
    # The one example that ends without an open "Human:" turn keeps its original text...
    kept = [f for f in doc.few_shots if "anthropic" in f.extra]
    assert len(kept) == 1
    original = kept[0].extra["anthropic"]["text"]
    assert original in json.loads(write_anthropic(doc)[CRITIQUE_SHOTS])
    # ...until someone edits it: the stale original must not undo the edit.
    kept[0].messages[0]["content"] = "A question rewritten in the app."
    shots = json.loads(write_anthropic(doc)[CRITIQUE_SHOTS])
    assert original not in shots
    assert any(s.startswith("\n\nHuman: A question rewritten in the app.\n\n") for s in shots)


# ---------------------------------------------------------------------------------------------
# A constitution made in the app, written as Anthropic's files
# ---------------------------------------------------------------------------------------------


def test_write_anthropic_uses_the_standard_wrappers() -> None:
    files = write_anthropic(app_doc())
    assert set(files) == set(ANTHROPIC_FILES)
    critiques = json.loads(files[CRITIQUES])
    # The disabled principle is left out: those files cannot say "disabled".
    assert list(critiques) == ["kind", "honest", "safe"]
    assert critiques["honest"] == {
        "prompt": [
            "\n\nCritiqueRequest: Point out claims in the reply that may be false.\n\nCritique:"
        ],
        "edit_request": (
            "\n\nRevisionRequest: Rewrite the reply without the doubtful claims.\n\nRevision:"
        ),
    }
    # "honest" has no comparison instruction: the list holds the others, in order.
    assert json.loads(files[COMPARISONS]) == [
        "\nWhich reply is kinder? Options:",
        "\nWhich reply is safer? Options:",
    ]
    assert json.loads(files[CRITIQUE_SHOTS]) == [
        "\n\nHuman: Where is my coffee?"
        "\n\nAssistant: Wait like everyone else."
        "\n\nCritiqueRequest: Say where the reply was unkind."
        "\n\nCritique: It was curt and dismissive."
        "\n\nRevisionRequest: Rewrite the reply so that it is kind."
        "\n\nRevision: It is on its way.\nThanks for waiting!"
        "\n\nHuman:"
    ]
    assert json.loads(files[COMPARISON_SHOTS]) == [
        {
            "prompt": "\n\nHuman: Is my latte art bad?\n\nAssistant:",
            "corrects": ["It is a good start; keep practising."],
            "incorrects": ["Yes, it is terrible."],
        }
    ]


def test_write_anthropic_reads_back_to_the_same_principles() -> None:
    doc = app_doc()
    back = read_anthropic(write_anthropic(doc), "Back")
    enabled = [p for p in doc.principles if p.enabled]
    assert [(p.key, p.critique_request, p.revision_request) for p in back.principles] == [
        (p.key, p.critique_request, p.revision_request) for p in enabled
    ]
    # Comparison instructions are matched by position, so they move up past the gap.
    assert [p.comparison_instruction for p in back.principles] == [
        "Which reply is kinder?",
        "Which reply is safer?",
        "",
    ]
    assert back.extra == {}
    assert [(f.kind, f.messages) for f in back.few_shots] == [
        (f.kind, f.messages) for f in doc.few_shots
    ]
    assert back.few_shots[1].extra == {"incorrects": ["Yes, it is terrible."]}


def test_write_anthropic_skips_empty_files() -> None:
    doc = ConstitutionDoc(
        name="Bare", principles=[PrincipleDoc("a", "Critique this.", "Revise this.")]
    )
    assert list(write_anthropic(doc)) == [CRITIQUES]


def test_odd_anthropic_strings_are_kept_exactly() -> None:
    critiques: dict[str, Any] = {
        "spaced": {
            "prompt": ["\n\nCritiqueRequest:  Two spaces.\n\nCritique:", "A second variant."],
            "edit_request": "RevisionRequest: No leading breaks.\n\nRevision:",
            "weight": 2,
        },
        "plain": {
            "prompt": ["\n\nCritiqueRequest: Standard.\n\nCritique:"],
            "edit_request": "\n\nRevisionRequest: Standard too.\n\nRevision:",
        },
    }
    comparisons = ["Which is better?", "\nWhich is best? Options:"]
    shots = ["\n\nHuman:  hi\n\nAssistant: hello", "\n\nHuman: a\n\nAssistant: b\n\nHuman:"]
    examples = [
        {
            "prompt": "\n\nHuman: q\n\nAssistant:",
            "corrects": [" yes", " also yes"],
            "incorrects": [],
            "source": "mine",
        }
    ]
    files = {
        CRITIQUES: json.dumps(critiques).encode(),
        COMPARISONS: json.dumps(comparisons).encode(),
        CRITIQUE_SHOTS: json.dumps(shots).encode(),
        COMPARISON_SHOTS: json.dumps(examples).encode(),
    }
    doc = read_anthropic(files, "Odd")
    assert [
        (p.critique_request, p.revision_request, p.comparison_instruction) for p in doc.principles
    ] == [
        ("Two spaces.", "No leading breaks.", "Which is better?"),
        ("Standard.", "Standard too.", "Which is best?"),
    ]
    assert doc.extra == {
        "anthropic": {
            "principles": {
                "spaced": {
                    "prompt": critiques["spaced"]["prompt"],
                    "edit_request": critiques["spaced"]["edit_request"],
                    "fields": {"weight": 2},
                    "comparison": "Which is better?",
                }
            }
        }
    }
    assert doc.few_shots[0].messages == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    assert doc.few_shots[1].extra == {}
    assert doc.few_shots[2].messages[-1] == {"role": "assistant", "content": "yes"}
    written = write_anthropic(read_project(write_project(doc, yaml=True), "odd.yaml"))
    for name, data in files.items():
        assert json.loads(written[name]) == json.loads(data)

    # An edited principle gets the standard wrapper back; the other keeps its original.
    doc.principles[0].revision_request = "Edited in the app."
    entry = json.loads(write_anthropic(doc)[CRITIQUES])["spaced"]
    assert entry["edit_request"] == "\n\nRevisionRequest: Edited in the app.\n\nRevision:"
    assert entry["prompt"] == critiques["spaced"]["prompt"] and entry["weight"] == 2


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "file", "path", "problem"),
    [
        ({CRITIQUES: b'{"harmful0": '}, CRITIQUES, "", "not valid JSON (line 1"),
        ({CRITIQUES: b"\xff\xfe"}, CRITIQUES, "", "not UTF-8 text"),
        ({CRITIQUES: b"[]"}, CRITIQUES, "$", "expected an object of principles, found a list"),
        ({CRITIQUES: b"{}"}, CRITIQUES, "$", "no principles"),
        (
            {CRITIQUES: b'{"a": {}, "a": {}}'},
            CRITIQUES,
            "",
            "duplicate key 'a'",
        ),
        (
            anthropic_files(change=drop_key("harmful3", "prompt")),
            CRITIQUES,
            "$.harmful3.prompt",
            "missing",
        ),
        (
            anthropic_files(change=drop_key("harmful3", "edit_request")),
            CRITIQUES,
            "$.harmful3.edit_request",
            "missing",
        ),
        (
            anthropic_files(
                change=set_key("harmful2", "prompt", ["\n\nCritiqueRequest: \n\nCritique:"])
            ),
            CRITIQUES,
            "$.harmful2.prompt[0]",
            "empty",
        ),
        (
            anthropic_files(change=set_key("harmful2", "prompt", [])),
            CRITIQUES,
            "$.harmful2.prompt",
            "empty",
        ),
        (
            anthropic_files(change=set_key("harmful1", "edit_request", 5)),
            CRITIQUES,
            "$.harmful1.edit_request",
            "expected a string, found a number",
        ),
        (
            anthropic_files(change=set_key("harmful1", "prompt", "a string")),
            CRITIQUES,
            "$.harmful1.prompt",
            "expected a list of strings, found a string",
        ),
        (
            anthropic_files(change=set_key("harmful1", "prompt", [None])),
            CRITIQUES,
            "$.harmful1.prompt[0]",
            "expected a string, found null",
        ),
        (
            anthropic_files(change=set_key("harmful0", "edit_request", "x" * 4001)),
            CRITIQUES,
            "$.harmful0.edit_request",
            "longer than 4000 characters",
        ),
        (anthropic_files(count=501), CRITIQUES, "$", "more than 500 principles"),
        (
            {**anthropic_files(), "notes.txt": b""},
            "notes.txt",
            "",
            "not one of the Anthropic files: CritiqueRevisionInstructions.json",
        ),
        ({COMPARISONS: b"[]"}, CRITIQUES, "", "missing"),
        (
            {
                **anthropic_files(count=16),
                COMPARISONS: json.dumps(["\nPick one. Options:"] * 17).encode(),
            },
            COMPARISONS,
            "$[16]",
            "more comparison instructions than critique principles",
        ),
        (
            {
                **anthropic_files(),
                COMPARISONS: json.dumps(["\nPick. Options:", "\n Options:"]).encode(),
            },
            COMPARISONS,
            "$[1]",
            "empty",
        ),
        (
            {**anthropic_files(), COMPARISONS: b'{"a": "b"}'},
            COMPARISONS,
            "$",
            "expected a list of comparison instructions, found an object",
        ),
        (
            {
                **anthropic_files(),
                CRITIQUE_SHOTS: json.dumps(["Human: hi\n\nAssistant: hello"]).encode(),
            },
            CRITIQUE_SHOTS,
            "$[0]",
            'no "\\n\\nHuman:" turns',
        ),
        (
            {**anthropic_files(), CRITIQUE_SHOTS: json.dumps(["\n\nHuman: a", 3]).encode()},
            CRITIQUE_SHOTS,
            "$[1]",
            "expected a string, found a number",
        ),
        (
            {
                **anthropic_files(),
                CRITIQUE_SHOTS: json.dumps(["\n\nHuman: a\n\nHuman: b"]).encode(),
            },
            CRITIQUE_SHOTS,
            "$[0]",
            "turns must alternate",
        ),
        (
            {
                **anthropic_files(),
                CRITIQUE_SHOTS: json.dumps(["\n\nHuman: a\n\nAssistant:\n\nHuman: c"]).encode(),
            },
            CRITIQUE_SHOTS,
            "$[0]",
            'turn 2 ("Assistant:") is empty',
        ),
        (
            {
                **anthropic_files(),
                COMPARISON_SHOTS: json.dumps(
                    [{"prompt": "\n\nHuman: q\n\nAssistant:", "incorrects": []}]
                ).encode(),
            },
            COMPARISON_SHOTS,
            "$[0].corrects",
            "missing",
        ),
        (
            {
                **anthropic_files(),
                COMPARISON_SHOTS: json.dumps(
                    [{"prompt": "\n\nHuman: q", "corrects": ["a"], "incorrects": []}]
                ).encode(),
            },
            COMPARISON_SHOTS,
            "$[0].prompt",
            'must end with an empty "\\n\\nAssistant:" turn',
        ),
    ],
)
def test_anthropic_errors(files: dict[str, bytes], file: str, path: str, problem: str) -> None:
    expect_error(lambda: read_anthropic(files, "Broken"), file, path, problem)


def test_errors_survive_pickling() -> None:
    # Celery carries exceptions between processes.
    with pytest.raises(ConstitutionFileError) as err:
        read_anthropic(anthropic_files(change=drop_key("harmful3", "prompt")), "X")
    again = pickle.loads(pickle.dumps(err.value))
    assert str(again) == "CritiqueRevisionInstructions.json: $.harmful3.prompt: missing"
