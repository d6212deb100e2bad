"""Unit tests for app.prompt_files: parsing uploaded prompt files in every format."""

from __future__ import annotations

import gzip
import itertools
import json
import pickle
from pathlib import Path

import pytest

from app.prompt_files import (
    ImportSpec,
    ParsedPrompt,
    PromptFileError,
    PromptFormat,
    drop_duplicates,
    normalise_prompt,
    parse_prompt_file,
    prompt_hash,
    read_text_lines,
    split_hh_transcript,
)

REPO = Path(__file__).resolve().parents[2]
HH_FILE = REPO.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test-dev.jsonl.gz"
EXAMPLES = REPO / "app" / "defaults" / "example_prompts.jsonl"

HH = ImportSpec(PromptFormat.HH_RLHF)
JSONL = ImportSpec(PromptFormat.JSONL, field="prompt")
CSV = ImportSpec(PromptFormat.CSV, column="prompt")
TEXT = ImportSpec(PromptFormat.TEXT)


def write(tmp_path: Path, content: str | bytes, name: str = "upload") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def jsonl(*objects: object) -> str:
    return "".join(json.dumps(obj) + "\n" for obj in objects)


def hh(*turns: tuple[str, str]) -> str:
    return "".join(f"\n\n{speaker}: {text}" for speaker, text in turns)


def error_of(path: Path, spec: ImportSpec) -> PromptFileError:
    with pytest.raises(PromptFileError) as caught:
        parse_prompt_file(path, spec)
    return caught.value


# --- PromptFileError ---------------------------------------------------------------------------


def test_error_str_names_the_line() -> None:
    err = PromptFileError("not valid JSON (Expecting value)", 12)
    assert str(err) == "line 12: not valid JSON (Expecting value)"
    assert err.line == 12
    assert err.message == "not valid JSON (Expecting value)"
    assert isinstance(err, ValueError)


def test_error_without_line_is_just_the_message() -> None:
    err = PromptFileError("the file holds no prompts")
    assert str(err) == "the file holds no prompts"
    assert err.line is None


def test_error_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(PromptFileError("field 'prompt' is empty", 3)))
    assert (err.message, err.line, str(err)) == (
        "field 'prompt' is empty",
        3,
        "line 3: field 'prompt' is empty",
    )


# --- read_text_lines ---------------------------------------------------------------------------


def test_read_text_lines_plain_numbers_lines_and_drops_endings(tmp_path: Path) -> None:
    path = write(tmp_path, "first\r\nsecond\n\nfourth")
    assert list(read_text_lines(path)) == [(1, "first"), (2, "second"), (3, ""), (4, "fourth")]


def test_read_text_lines_detects_gzip_by_magic_not_extension(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress(b"alpha\nbeta\n"), name="looks-plain.txt")
    assert list(read_text_lines(path)) == [(1, "alpha"), (2, "beta")]


def test_read_text_lines_plain_file_named_gz(tmp_path: Path) -> None:
    path = write(tmp_path, "not compressed\n", name="fake.gz")
    assert list(read_text_lines(path)) == [(1, "not compressed")]


def test_read_text_lines_strips_bom_on_first_line_only(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffone\n\ufefftwo\n")
    assert list(read_text_lines(path)) == [(1, "one"), (2, "\ufefftwo")]


def test_read_text_lines_strips_bom_inside_gzip(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress("\ufeffone\n".encode()))
    assert list(read_text_lines(path)) == [(1, "one")]


def test_read_text_lines_refuses_nul_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"fine\nstill fine\nbin\x00ary\n")
    with pytest.raises(PromptFileError) as caught:
        list(read_text_lines(path))
    assert str(caught.value) == "line 3: not text (binary or not UTF-8)"
    assert caught.value.line == 3


def test_read_text_lines_refuses_non_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "caf\u00e9\n".encode() + "na\u00efve\n".encode("latin-1"))
    with pytest.raises(PromptFileError) as caught:
        list(read_text_lines(path))
    assert str(caught.value) == "line 2: not text (binary or not UTF-8)"


def test_read_text_lines_refuses_utf16(tmp_path: Path) -> None:
    path = write(tmp_path, "hello\nworld\n".encode("utf-16"))
    with pytest.raises(PromptFileError, match=r"^line 1: not text"):
        list(read_text_lines(path))


def test_read_text_lines_corrupt_gzip(tmp_path: Path) -> None:
    path = write(tmp_path, b"\x1f\x8b" + b"this is not deflate data at all" * 4)
    with pytest.raises(PromptFileError) as caught:
        list(read_text_lines(path))
    assert str(caught.value).startswith("not a valid gzip file: ")
    assert caught.value.line is None


def test_read_text_lines_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(("a prompt line\n" * 2000).encode())
    path = write(tmp_path, data[: len(data) // 2])
    with pytest.raises(PromptFileError, match=r"^not a valid gzip file: "):
        list(read_text_lines(path))


def test_read_text_lines_is_lazy(tmp_path: Path) -> None:
    # A problem late in the file is not met until the reader gets there.
    path = write(tmp_path, b"good\n" + b"\xff\xfe\n")
    lines = read_text_lines(path)
    assert next(lines) == (1, "good")
    with pytest.raises(PromptFileError, match=r"^line 2: "):
        next(lines)


# --- TEXT --------------------------------------------------------------------------------------


def test_text_one_prompt_per_line_blank_lines_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "  How do tides work?  \n\n   \nName three primes.\n")
    prompts = parse_prompt_file(path, TEXT)
    assert prompts == [
        ParsedPrompt("How do tides work?", None, 1, {}),
        ParsedPrompt("Name three primes.", None, 4, {}),
    ]


def test_text_gzip_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress("\ufeffFirst\nSecond\n".encode()), name="p.txt.gz")
    assert [(p.text, p.line) for p in parse_prompt_file(path, TEXT)] == [
        ("First", 1),
        ("Second", 2),
    ]


@pytest.mark.parametrize("content", ["", "\n\n  \n", "\ufeff"])
def test_file_without_prompts(tmp_path: Path, content: str) -> None:
    for spec in (TEXT, JSONL, CSV, HH):
        err = error_of(write(tmp_path, content), spec)
        assert str(err) == "the file holds no prompts"
        assert err.line is None


def test_text_binary_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    err = error_of(path, TEXT)
    assert str(err) == "line 1: not text (binary or not UTF-8)"


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


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_happy_path(tmp_path: Path) -> None:
    path = write(tmp_path, "id,prompt,lang\n1,Write a limerick.,en\n2, Summarise this ,fr\n")
    assert parse_prompt_file(path, CSV) == [
        ParsedPrompt("Write a limerick.", None, 2, {"id": "1", "lang": "en"}),
        ParsedPrompt("Summarise this", None, 3, {"id": "2", "lang": "fr"}),
    ]


def test_csv_line_is_where_a_multiline_record_starts(tmp_path: Path) -> None:
    content = 'prompt,id\n"First line\nsecond line",1\n\n"Next, with comma",2\n'
    prompts = parse_prompt_file(write(tmp_path, content), CSV)
    assert [(p.text, p.line) for p in prompts] == [
        ("First line\nsecond line", 2),
        ("Next, with comma", 5),
    ]


def test_csv_crlf_bom_and_gzip(tmp_path: Path) -> None:
    raw = "\ufeffprompt,n\r\nalpha,1\r\nbeta,2\r\n".encode()
    for data in (raw, gzip.compress(raw)):
        prompts = parse_prompt_file(write(tmp_path, data), CSV)
        assert [(p.text, p.line, p.metadata) for p in prompts] == [
            ("alpha", 2, {"n": "1"}),
            ("beta", 3, {"n": "2"}),
        ]


def test_csv_tab_and_semicolon_delimiters(tmp_path: Path) -> None:
    for sep in ("\t", ";"):
        path = write(tmp_path, f"prompt{sep}n\nhello, there{sep}1\n")
        assert parse_prompt_file(path, CSV)[0].text == "hello, there"


def test_csv_column_matched_ignoring_case_and_padding(tmp_path: Path) -> None:
    path = write(tmp_path, "ID, Prompt \n1,hi\n")
    assert parse_prompt_file(path, CSV)[0].text == "hi"


def test_csv_blank_rows_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "\nprompt,x\n,\n\nhello,1\n,,\n")
    assert [(p.text, p.line) for p in parse_prompt_file(path, CSV)] == [("hello", 5)]


def test_csv_missing_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b\n1,2\n")
    err = error_of(path, CSV)
    assert str(err) == "no column 'prompt' in the header (columns: a, b)"


def test_csv_empty_field(tmp_path: Path) -> None:
    path = write(tmp_path, "prompt,id\nfine,1\n  ,2\n")
    err = error_of(path, CSV)
    assert str(err) == "line 3: the 'prompt' column is empty"
    assert err.line == 3


def test_csv_short_row_is_an_empty_field(tmp_path: Path) -> None:
    path = write(tmp_path, "id,prompt\n1,ok\n2\n")
    assert str(error_of(path, CSV)) == "line 3: the 'prompt' column is empty"


def test_csv_unclosed_quote_names_record_start(tmp_path: Path) -> None:
    path = write(tmp_path, 'prompt,id\nok,1\n"never closed,2\nmore,3\n')
    err = error_of(path, CSV)
    assert err.line == 3
    assert str(err).startswith("line 3: not valid CSV (")


def test_csv_header_only(tmp_path: Path) -> None:
    assert str(error_of(write(tmp_path, "prompt,id\n"), CSV)) == "the file holds no prompts"


@pytest.mark.parametrize("column", [None, ""])
def test_csv_spec_without_column(tmp_path: Path, column: str | None) -> None:
    err = error_of(write(tmp_path, "prompt\nx\n"), ImportSpec(PromptFormat.CSV, column=column))
    assert err.line is None
    assert str(err) == "the CSV format needs the name of the prompt column"


def test_csv_binary_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"prompt\nok\n\xc3\x28\n")
    assert str(error_of(path, CSV)) == "line 3: not text (binary or not UTF-8)"


# --- HH-RLHF -----------------------------------------------------------------------------------


def test_split_hh_transcript_basic() -> None:
    assert split_hh_transcript("\n\nHuman: a\n\nAssistant: b") == [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]


def test_split_hh_transcript_strips_merges_and_drops_empty_turns() -> None:
    transcript = hh(
        ("Human", "  first  "),
        ("Assistant", "one"),
        ("Assistant", "two"),
        ("Human", ""),
        ("Human", "line\nbreak"),
        ("Assistant", ""),
    )
    assert split_hh_transcript(transcript) == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one\n\ntwo"},
        {"role": "user", "content": "line\nbreak"},
    ]


def test_split_hh_transcript_accepts_missing_leading_blank_line() -> None:
    assert split_hh_transcript("Human: hi\n\nAssistant: yo") == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
    ]


def test_split_hh_transcript_marker_must_follow_blank_line() -> None:
    # "Human:" inside a turn, not after a blank line, is just text.
    assert split_hh_transcript("\n\nHuman: say Human: twice\n\nAssistant: ok") == [
        {"role": "user", "content": "say Human: twice"},
        {"role": "assistant", "content": "ok"},
    ]


def test_split_hh_transcript_refuses_preamble() -> None:
    with pytest.raises(ValueError, match="before the first"):
        split_hh_transcript("Some title\n\nHuman: hi\n\nAssistant: yo")


def test_split_hh_transcript_without_markers() -> None:
    assert split_hh_transcript("just words") == []


def test_hh_single_turn_has_no_context(tmp_path: Path) -> None:
    line = {
        "chosen": hh(("Human", "Can you teach me to juggle?"), ("Assistant", "Sure, start.")),
        "rejected": hh(("Human", "Can you teach me to juggle?"), ("Assistant", "No.")),
    }
    prompts = parse_prompt_file(write(tmp_path, jsonl(line)), HH)
    assert prompts == [
        ParsedPrompt("Can you teach me to juggle?", None, 1, {"turns": 2, "source": "chosen"})
    ]


def test_hh_multi_turn_prompt_is_first_human_turn_and_context_ends_with_user(
    tmp_path: Path,
) -> None:
    transcript = hh(
        ("Human", "What's a good houseplant?"),
        ("Assistant", "A snake plant is hardy."),
        ("Human", "Does it need much light?"),
        ("Assistant", "Very little."),
    )
    path = write(tmp_path, jsonl({"chosen": transcript, "rejected": transcript}))
    [prompt] = parse_prompt_file(path, HH)
    assert prompt.text == "What's a good houseplant?"
    assert prompt.context == [
        {"role": "user", "content": "What's a good houseplant?"},
        {"role": "assistant", "content": "A snake plant is hardy."},
        {"role": "user", "content": "Does it need much light?"},
    ]
    assert prompt.metadata == {"turns": 4, "source": "chosen"}


def test_hh_transcript_ending_on_human_keeps_all_turns(tmp_path: Path) -> None:
    transcript = hh(("Human", "a"), ("Assistant", "b"), ("Human", "c"))
    [prompt] = parse_prompt_file(write(tmp_path, jsonl({"chosen": transcript})), HH)
    assert prompt.context is not None
    assert [m["content"] for m in prompt.context] == ["a", "b", "c"]


def test_hh_empty_final_reply_is_single_turn(tmp_path: Path) -> None:
    transcript = hh(("Human", "Only question"), ("Assistant", ""))
    [prompt] = parse_prompt_file(write(tmp_path, jsonl({"chosen": transcript})), HH)
    assert (prompt.text, prompt.context) == ("Only question", None)


def test_hh_falls_back_to_rejected(tmp_path: Path) -> None:
    line = {"rejected": hh(("Human", "From rejected"), ("Assistant", "x"))}
    [prompt] = parse_prompt_file(write(tmp_path, jsonl(line)), HH)
    assert prompt.text == "From rejected"
    assert prompt.metadata["source"] == "rejected"


def test_hh_gzip_and_blank_lines(tmp_path: Path) -> None:
    body = (
        "\n"
        + jsonl({"chosen": hh(("Human", "one"), ("Assistant", "r"))})
        + "\n"
        + jsonl({"chosen": hh(("Human", "two"), ("Assistant", "r"))})
    )
    path = write(tmp_path, gzip.compress(body.encode()), name="hh.jsonl.gz")
    assert [(p.text, p.line) for p in parse_prompt_file(path, HH)] == [("one", 2), ("two", 4)]


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"id": 1, "text": "t"},
            "line 2: no field 'chosen' or 'rejected' (fields present: id, text)",
        ),
        ({"chosen": ["x"]}, "line 2: field 'chosen' is not a string (found array)"),
        ({"chosen": "  "}, "line 2: field 'chosen' is empty"),
        (
            {"chosen": "\n\nAssistant: I talk alone"},
            "line 2: the transcript has no 'Human:' turn with text",
        ),
        ({"chosen": "no markers at all"}, "line 2: the transcript has no 'Human:' turn with text"),
        (
            {"chosen": "\n\nHuman:   \n\nAssistant: hm"},
            "line 2: the transcript has no 'Human:' turn with text",
        ),
        (
            {"chosen": "Title\n\nHuman: a\n\nAssistant: b"},
            "line 2: not an HH-RLHF transcript "
            "(text before the first 'Human:' or 'Assistant:' turn)",
        ),
    ],
)
def test_hh_errors(tmp_path: Path, obj: dict[str, object], message: str) -> None:
    good = {"chosen": hh(("Human", "fine"), ("Assistant", "ok"))}
    path = write(tmp_path, jsonl(good, obj))
    err = error_of(path, HH)
    assert str(err) == message
    assert err.line == 2


def test_hh_not_json(tmp_path: Path) -> None:
    path = write(tmp_path, "chosen: nope\n")
    assert str(error_of(path, HH)) == "line 1: not valid JSON (Expecting value)"


def test_hh_line_not_an_object(tmp_path: Path) -> None:
    assert str(error_of(write(tmp_path, "[]\n"), HH)) == "line 1: not a JSON object (found array)"


def test_real_hh_rlhf_file_parses() -> None:
    if not HH_FILE.exists():
        pytest.skip(f"{HH_FILE} is not present")
    prompts = parse_prompt_file(HH_FILE, HH)
    assert len(prompts) == 1800
    assert [p.line for p in prompts] == list(range(1, 1801))
    assert all(p.text and p.text == p.text.strip() for p in prompts)
    multi = [p for p in prompts if p.context is not None]
    assert multi, "the file has multi-turn conversations"
    for prompt in multi:
        assert prompt.context is not None
        assert len(prompt.context) >= 3
        assert prompt.context[0] == {"role": "user", "content": prompt.text}
        assert prompt.context[-1]["role"] == "user"
        roles = [m["role"] for m in prompt.context]
        assert all(a != b for a, b in itertools.pairwise(roles))
    assert all(set(p.metadata) == {"turns", "source"} for p in prompts)


# --- normalising and de-duplicating ------------------------------------------------------------


def test_normalise_prompt() -> None:
    assert normalise_prompt("  Hello\t\n  WORLD  ") == "hello world"
    # NFKC folds compatibility forms: full-width letters and the "fi" ligature.
    assert normalise_prompt("\uff28\uff49 \ufb01ne") == "hi fine"
    assert normalise_prompt("Stra\u00dfe\u00a0\u3000X") == "strasse x"
    assert normalise_prompt("") == ""


def test_normalise_prompt_is_idempotent() -> None:
    for text in ["  MiXed \u0130stanbul  ", "\u1e9e\u2003caf\u00e9", "a\u0301 \ufb03"]:
        once = normalise_prompt(text)
        assert normalise_prompt(once) == once


def test_prompt_hash() -> None:
    expected = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    assert prompt_hash("hello world") == expected  # sha256 of b"hello world"
    assert prompt_hash("  HELLO \n World ") == expected
    assert prompt_hash("hello  worlds") != expected


def test_drop_duplicates_keeps_first_and_counts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "What is a black hole?\n"
        "what is a   BLACK hole?\n"
        "Bake me a cake\n"
        "  What is a black hole?\t\n"
        "\uff37hat is a black hole?\n"
        "bake me a cake.\n",
    )
    kept, dropped = drop_duplicates(parse_prompt_file(path, TEXT))
    assert [(p.text, p.line) for p in kept] == [
        ("What is a black hole?", 1),
        ("Bake me a cake", 3),
        ("bake me a cake.", 6),
    ]
    assert dropped == 3


def test_drop_duplicates_empty_and_generator() -> None:
    assert drop_duplicates([]) == ([], 0)
    prompts = (ParsedPrompt(t, None, i, {}) for i, t in enumerate(["x", "X", "y"], 1))
    kept, dropped = drop_duplicates(prompts)
    assert [p.text for p in kept] == ["x", "y"]
    assert dropped == 1


# --- the bundled example prompts ---------------------------------------------------------------


def test_example_prompts_file_parses_without_duplicates() -> None:
    prompts = parse_prompt_file(EXAMPLES, JSONL)
    assert 45 <= len(prompts) <= 60
    kept, dropped = drop_duplicates(prompts)
    assert dropped == 0
    assert len(kept) == len(prompts)
    kinds = [p.metadata["kind"] for p in prompts]
    assert set(kinds) == {"red-team", "helpful"}
    assert kinds.count("red-team") >= 25
    assert kinds.count("helpful") >= 15
    for prompt in prompts:
        assert set(prompt.metadata) == {"kind", "area"}
        assert (prompt.metadata["area"] == "helpful") == (prompt.metadata["kind"] == "helpful")
    areas = {p.metadata["area"] for p in prompts if p.metadata["kind"] == "red-team"}
    assert len(areas) >= 8
    multi = [p for p in prompts if p.context is not None]
    assert 2 <= len(multi) <= 5
    for prompt in multi:
        assert prompt.context is not None
        assert prompt.context[-1] == {"role": "user", "content": prompt.text}
