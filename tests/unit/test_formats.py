"""Unit tests for app.recipe.formats: reading and writing constitutions in every format."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.recipe.documents import ConstitutionDoc, ConstitutionFileError, FewShotDoc, PrincipleDoc
from app.recipe.formats import (
    ANTHROPIC_FILES,
    detect_and_read,
    read_anthropic,
    read_huggingface,
    read_project,
    write_anthropic,
    write_huggingface,
    write_project,
)

PROMPTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cai-paper" / "prompts"
CRITIQUES, COMPARISONS, CRITIQUE_SHOTS, COMPARISON_SHOTS = ANTHROPIC_FILES


@pytest.fixture
def real_files() -> dict[str, bytes]:
    if not PROMPTS.is_dir():
        pytest.skip(f"{PROMPTS} is not here")
    return {name: (PROMPTS / name).read_bytes() for name in ANTHROPIC_FILES}


def alternates(messages: list[dict[str, str]]) -> bool:
    roles = [m["role"] for m in messages]
    return roles == ["user", "assistant"] * (len(roles) // 2) + ["user"] * (len(roles) % 2)


# ---------------------------------------------------------------------------------------------
# Anthropic's real files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ANTHROPIC_FILES)
def test_real_anthropic_file_round_trips_exactly(real_files: dict[str, bytes], name: str) -> None:
    written = write_anthropic(read_anthropic(real_files, "Anthropic"))
    assert json.loads(written[name]) == json.loads(real_files[name])
    # Written the way Anthropic wrote them, so an unedited import comes back byte for byte.
    assert written[name] == real_files[name]


def test_real_anthropic_files_survive_the_project_format_too(real_files: dict[str, bytes]) -> None:
    doc = read_anthropic(real_files, "Anthropic")
    for data, file in [
        (write_project(doc), "c.json"),
        (write_project(doc, yaml=True), "c.yaml"),
    ]:
        again = read_project(data, file)
        assert again == doc
        written = write_anthropic(again)
        for name in ANTHROPIC_FILES:
            assert json.loads(written[name]) == json.loads(real_files[name])


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


def test_detect_real_anthropic_files(real_files: dict[str, bytes]) -> None:
    source, doc = detect_and_read(real_files, "Paper")
    assert source == "anthropic"
    assert doc == read_anthropic(real_files, "Paper")


def test_the_chain_of_thought_file_is_not_one_of_the_four(real_files: dict[str, bytes]) -> None:
    precog = "RLMadisonPrecogFewShotPrompts.json"
    files = {**real_files, precog: b"[]"}
    with pytest.raises(ConstitutionFileError) as err:
        detect_and_read(files, "Paper")
    assert str(err.value).startswith(f"{precog}: not one of the Anthropic files")


def test_edits_after_an_import_are_written_in_the_standard_form(
    real_files: dict[str, bytes],
) -> None:
    doc = read_anthropic(real_files, "Anthropic")
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
# A constitution made in the app
# ---------------------------------------------------------------------------------------------


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


def test_detect_project_files() -> None:
    doc = app_doc()
    assert detect_and_read({"cafe.json": write_project(doc)}, "ignored") == ("project", doc)
    yaml_file = {"cafe.yaml": write_project(doc, yaml=True)}
    assert detect_and_read(yaml_file, "ignored") == ("project", doc)


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
# Hugging Face's recipe
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


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


def hf_with(change: Callable[[dict[str, Any]], None]) -> bytes:
    value = copy.deepcopy(HF_FIXTURE)
    change(value)
    return hf_bytes(value)


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


def project_with(change: Callable[[dict[str, Any]], None]) -> bytes:
    value = json.loads(write_project(app_doc()))
    value["principles"] += [
        {"key": f"extra-{i}", "critique_request": "Critique.", "revision_request": "Revise."}
        for i in range(2)
    ]
    change(value)
    return json.dumps(value).encode()


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


def test_errors_survive_pickling() -> None:
    # Celery carries exceptions between processes.
    with pytest.raises(ConstitutionFileError) as err:
        read_anthropic(anthropic_files(change=drop_key("harmful3", "prompt")), "X")
    again = pickle.loads(pickle.dumps(err.value))
    assert str(again) == "CritiqueRevisionInstructions.json: $.harmful3.prompt: missing"
