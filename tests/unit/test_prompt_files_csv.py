"""app.prompt_files: CSV with the prompt in a named column."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from app.prompt_files import ImportSpec, ParsedPrompt, PromptFormat, parse_prompt_file
from tests.unit.prompt_file_cases import CSV, error_of, write

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
