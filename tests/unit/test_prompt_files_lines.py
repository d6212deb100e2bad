"""app.prompt_files: the error that names the line, reading text lines, and plain-text files."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import pytest

from app.prompt_files import ParsedPrompt, PromptFileError, parse_prompt_file, read_text_lines
from tests.unit.prompt_file_cases import CSV, HH, JSONL, TEXT, error_of, write

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
