"""app.prompt_files: JSON lines with the prompt in a named field."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from app.prompt_files import ImportSpec, ParsedPrompt, PromptFormat, parse_prompt_file
from tests.unit.prompt_file_cases import JSONL, error_of, jsonl, write

# --- JSONL -------------------------------------------------------------------------------------


def test_jsonl_happy_path_with_metadata(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        jsonl(
            {"prompt": "  Explain recursion. ", "id": 7, "tags": ["cs"], "source": "mine"},
            {"prompt": "Plan a picnic.", "score": 0.5, "ok": True, "note": None},
        )
        + "\n",
    )
    prompts = parse_prompt_file(path, JSONL)
    assert prompts == [
        ParsedPrompt("Explain recursion.", None, 1, {"id": 7, "source": "mine"}),
        ParsedPrompt("Plan a picnic.", None, 2, {"score": 0.5, "ok": True, "note": None}),
    ]


def test_jsonl_blank_lines_skipped_and_line_numbers_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "\n" + jsonl({"prompt": "a"}) + "   \n" + jsonl({"prompt": "b"}))
    assert [(p.text, p.line) for p in parse_prompt_file(path, JSONL)] == [("a", 2), ("b", 4)]


def test_jsonl_dotted_field(tmp_path: Path) -> None:
    path = write(tmp_path, jsonl({"data": {"prompt": "Nested one"}, "id": "x1"}))
    prompts = parse_prompt_file(path, ImportSpec(PromptFormat.JSONL, field="data.prompt"))
    assert prompts == [ParsedPrompt("Nested one", None, 1, {"id": "x1"})]


def test_jsonl_literal_dotted_key_wins(tmp_path: Path) -> None:
    path = write(tmp_path, jsonl({"a.b": "literal", "a": {"b": "nested"}}))
    prompts = parse_prompt_file(path, ImportSpec(PromptFormat.JSONL, field="a.b"))
    assert prompts[0].text == "literal"


def test_jsonl_gzip(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress(jsonl({"prompt": "zipped"}).encode()), "p.jsonl.gz")
    assert [p.text for p in parse_prompt_file(path, JSONL)] == ["zipped"]


def test_jsonl_long_strings_and_many_fields_kept_out_of_metadata(tmp_path: Path) -> None:
    obj: dict[str, object] = {"prompt": "p", "essay": "x" * 5000}
    obj.update({f"k{i}": i for i in range(80)})
    prompts = parse_prompt_file(write(tmp_path, jsonl(obj)), JSONL)
    assert "essay" not in prompts[0].metadata
    assert len(prompts[0].metadata) == 50


def test_jsonl_context_messages(tmp_path: Path) -> None:
    context = [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a riddle."},
    ]
    path = write(tmp_path, jsonl({"prompt": "Tell me a riddle.", "context": context}))
    [prompt] = parse_prompt_file(path, JSONL)
    assert prompt.context == context
    assert prompt.metadata == {}


def test_jsonl_single_user_context_is_none(tmp_path: Path) -> None:
    context = [{"role": "user", "content": "Only me"}]
    path = write(tmp_path, jsonl({"prompt": "Only me", "context": context}))
    assert parse_prompt_file(path, JSONL)[0].context is None


def test_jsonl_string_context_is_metadata(tmp_path: Path) -> None:
    path = write(tmp_path, jsonl({"prompt": "q", "context": "some background"}))
    [prompt] = parse_prompt_file(path, JSONL)
    assert prompt.context is None
    assert prompt.metadata == {"context": "some background"}


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (["hi"], "line 1: 'context' item 1 is not an object (found string)"),
        (
            [{"role": "system", "content": "x"}],
            "line 1: 'context' item 1 has role 'system'; expected 'user' or 'assistant'",
        ),
        ([{"role": "user", "content": 3}], "line 1: 'context' item 1 has no string 'content'"),
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            "line 1: 'context' must end with a user turn",
        ),
    ],
)
def test_jsonl_bad_context(tmp_path: Path, context: list[object], message: str) -> None:
    path = write(tmp_path, jsonl({"prompt": "q", "context": context}))
    assert str(error_of(path, JSONL)) == message


def test_jsonl_not_json(tmp_path: Path) -> None:
    path = write(tmp_path, jsonl({"prompt": "ok"}, {"prompt": "ok too"}) + "{prompt: oops}\n")
    err = error_of(path, JSONL)
    assert str(err) == (
        "line 3: not valid JSON (Expecting property name enclosed in double quotes)"
    )
    assert err.line == 3


def test_jsonl_nan_is_not_json(tmp_path: Path) -> None:
    path = write(tmp_path, '{"prompt": "x", "score": NaN}\n')
    assert str(error_of(path, JSONL)).startswith("line 1: not valid JSON (NaN")


@pytest.mark.parametrize(
    ("line", "found"),
    [("[1, 2]", "array"), ('"just text"', "string"), ("42", "number"), ("null", "null")],
)
def test_jsonl_line_not_an_object(tmp_path: Path, line: str, found: str) -> None:
    path = write(tmp_path, jsonl({"prompt": "fine"}) + line + "\n")
    assert str(error_of(path, JSONL)) == f"line 2: not a JSON object (found {found})"


def test_jsonl_missing_field_lists_fields_present(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        jsonl({"prompt": "a"}, {"prompt": "b"}, {"prompt": "c"}, {"text": "d", "id": 4}),
    )
    err = error_of(path, JSONL)
    assert str(err) == "line 4: no field 'prompt' (fields present: text, id)"
    assert err.line == 4


def test_jsonl_missing_nested_field(tmp_path: Path) -> None:
    spec = ImportSpec(PromptFormat.JSONL, field="data.prompt")
    path = write(tmp_path, jsonl({"data": {"question": "q"}}))
    assert str(error_of(path, spec)) == (
        "line 1: no field 'data.prompt' (fields present in 'data': question)"
    )
    path = write(tmp_path, jsonl({"data": "flat"}))
    assert str(error_of(path, spec)) == (
        "line 1: no field 'data.prompt' ('data' is string, not an object)"
    )


def test_jsonl_empty_object_missing_field(tmp_path: Path) -> None:
    path = write(tmp_path, "{}\n")
    assert str(error_of(path, JSONL)) == "line 1: no field 'prompt' (fields present: none)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "line 2: field 'prompt' is not a string (found number)"),
        (["a"], "line 2: field 'prompt' is not a string (found array)"),
        (None, "line 2: field 'prompt' is not a string (found null)"),
        ("", "line 2: field 'prompt' is empty"),
        ("  \n\t ", "line 2: field 'prompt' is empty"),
    ],
)
def test_jsonl_field_not_a_usable_string(tmp_path: Path, value: object, message: str) -> None:
    path = write(tmp_path, jsonl({"prompt": "good"}, {"prompt": value}))
    assert str(error_of(path, JSONL)) == message


@pytest.mark.parametrize("field_name", [None, ""])
def test_jsonl_spec_without_field(tmp_path: Path, field_name: str | None) -> None:
    path = write(tmp_path, jsonl({"prompt": "a"}))
    err = error_of(path, ImportSpec(PromptFormat.JSONL, field=field_name))
    assert err.line is None
    assert str(err) == "the JSONL format needs the name of the prompt field"


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "x\n")
    err = error_of(path, ImportSpec("yaml"))  # type: ignore[arg-type]
    assert str(err) == "unknown format 'yaml'"


def test_format_given_as_plain_string(tmp_path: Path) -> None:
    path = write(tmp_path, "x\n")
    assert parse_prompt_file(path, ImportSpec("text"))[0].text == "x"  # type: ignore[arg-type]
