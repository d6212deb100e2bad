"""Hostile uploads: deep nesting, huge numbers, YAML aliases, gzip bombs and slow patterns are
refused with a message naming the file and the line, and reading stops at the limit."""

import gzip
import json
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from app.datasets.helpful_files import parse_helpful_file
from app.prompt_files import (
    ImportSpec,
    PromptFileError,
    PromptFormat,
    count_prompts,
    parse_prompt_file,
)
from app.recipe.comparison_text import ANSWER_CUE
from app.recipe.documents import ConstitutionFileError
from app.recipe.formats import detect_and_read
from app.recipe.hhh_file import HHHFileError, load_hhh
from app.safe_parse import (
    MAX_DEPTH,
    LimitedYAMLLoader,
    ParseLimitError,
    check_json_limits,
    load_json,
)
from app.upload_store import remove_upload

DEEP = 100_000  # far past the interpreter's recursion limit
HUGE = "9" * 5000  # past Python's int-string limit (4300 digits)
MB = 2**20
JSONL = ImportSpec(format=PromptFormat.JSONL, field="prompt")


def deep_json(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def gzip_bomb(tmp_path: Path, megabytes: int, *, truncated: bool = False) -> Path:
    """Many small valid JSON lines, gzipped: a few kB that expand to `megabytes` MB."""
    row = {"prompt": "How do I bake bread?", "completion": "Knead, prove, bake."}
    line = json.dumps(row).encode() + b"\n"
    data = gzip.compress(line * (megabytes * MB // len(line)), compresslevel=9)
    path = tmp_path / "bomb.jsonl.gz"
    # Without its trailer the file is only found broken at its very end.
    path.write_bytes(data[:-8] if truncated else data)
    return path


# --- app.safe_parse ------------------------------------------------------------------------


def test_deep_json_is_refused_with_its_line_and_column() -> None:
    text = '{"a": 1,\n "b": ' + deep_json()
    with pytest.raises(ParseLimitError) as caught:
        load_json(text)
    # The object on line 1 is the first level, so the 64th "[" is one too many.
    assert (caught.value.line, caught.value.column) == (2, 6 + MAX_DEPTH)
    assert str(caught.value) == f"line 2 column {6 + MAX_DEPTH}: nested more than 64 levels deep"


def test_json_at_the_depth_limit_and_brackets_in_strings_pass() -> None:
    assert load_json(deep_json(MAX_DEPTH)) is not None
    text = json.dumps({"text": "[" * 1000 + "{" * 1000 + "9" * 500, "n": [1, 2]})
    check_json_limits(text)
    assert load_json(text)["n"] == [1, 2]


def test_a_huge_json_number_is_refused_not_a_bare_value_error() -> None:
    with pytest.raises(ParseLimitError, match="line 3 column 8: a number of 5000 digits"):
        load_json('{\n "a": 1,\n "b": -' + HUGE + "\n}")
    with pytest.raises(ParseLimitError, match="too large"):
        load_json('{"a": 1e999}')


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: " + "[" * DEEP, "nested more than 64 levels deep"),
        ("\n".join(" " * i + "k:" for i in range(200)) + " 1\n", "nested more than 64 levels"),
        ("a: " + HUGE + "\n", "a number of 5000 digits"),
        ("a: &x [1, 2]\nb: [*x, *x]\n", r"aliases \(\*name\) are not allowed"),
    ],
    ids=["deep-flow", "deep-block", "huge-int", "alias"],
)
def test_yaml_limits_are_yaml_errors_with_a_mark(text: str, problem: str) -> None:
    with pytest.raises(yaml.MarkedYAMLError, match=problem) as caught:
        yaml.load(text, Loader=LimitedYAMLLoader)
    assert caught.value.problem_mark is not None


# --- constitution import -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("mine.json", deep_json().encode(), "mine.json: line 1 column 65: nested more than 64"),
        ("mine.yaml", b"name: x\nprinciples: " + b"[" * DEEP, "mine.yaml: not valid YAML (line 2"),
        ("mine.json", b'{"format": ' + HUGE.encode() + b"}", "mine.json: line 1 column 12: a num"),
        ("mine.yaml", b"format: " + HUGE.encode() + b"\n", "mine.yaml: not valid YAML (line 1"),
    ],
    ids=["deep-json", "deep-yaml", "huge-json-int", "huge-yaml-int"],
)
def test_a_hostile_constitution_names_the_file_and_line(
    name: str, data: bytes, problem: str
) -> None:
    with pytest.raises(ConstitutionFileError) as caught:
        detect_and_read({name: data}, "Imported")
    assert str(caught.value).startswith(problem), str(caught.value)


# --- prompt files and helpful rows ---------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (deep_json(), "line 2: nested more than 64 levels deep"),
        ('{"n": ' + HUGE + "}", "line 2: a number of 5000 digits"),
    ],
    ids=["deep", "huge-int"],
)
def test_hostile_json_lines_name_their_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "fine", "completion": "ok"}\n' + line + "\n")
    with pytest.raises(PromptFileError, match=problem):
        parse_prompt_file(path, JSONL)
    with pytest.raises(PromptFileError, match=problem):
        parse_helpful_file(path)


def test_a_gzip_bomb_stops_at_the_limit_while_it_is_read(tmp_path: Path) -> None:
    # Truncated: had the whole file been decompressed first, the error would be the broken end.
    bomb = gzip_bomb(tmp_path, 24, truncated=True)
    assert bomb.stat().st_size < 100_000  # 24 MB of text
    with pytest.raises(PromptFileError, match="more than 1 MB once decompressed"):
        parse_prompt_file(bomb, JSONL, max_bytes=MB)
    with pytest.raises(PromptFileError, match="more than 1 MB once decompressed"):
        parse_helpful_file(bomb, max_rows=10**7, max_bytes=MB)
    # The web app's check keeps no prompt: it costs a line, not the file.
    tracemalloc.start()
    try:
        with pytest.raises(PromptFileError, match=r"line \d+: more than 1 MB once decompressed"):
            count_prompts(bomb, JSONL, max_bytes=MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MB, peak


def test_files_within_the_limit_still_read_whole(tmp_path: Path) -> None:
    bomb = gzip_bomb(tmp_path, 1)
    assert count_prompts(bomb, JSONL, max_bytes=2 * MB) == len(parse_prompt_file(bomb, JSONL))


# --- the HHH file --------------------------------------------------------------------------

GOOD_HHH = json.dumps(
    {
        "prompt": f"Which is better?\n\nOptions:\n (A) [[[yes]]]\n (B) [[[no]]]\n\n{ANSWER_CUE}",
        "corrects": [" (A)"],
        "incorrects": [" (B)"],
    }
)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (deep_json(), "my-hhh.jsonl line 2: nested more than 64 levels deep"),
        ('{"prompt": ' + HUGE + "}", "my-hhh.jsonl line 2: a number of 5000 digits"),
        ("{", "my-hhh.jsonl line 2: not JSON (Expecting property name"),
    ],
    ids=["deep", "huge-int", "not-json"],
)
def test_hhh_errors_name_the_users_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "368ca1ca0f.jsonl"  # the server's copy of the upload
    path.write_text(f"{GOOD_HHH}\n{line}\n")
    with pytest.raises(HHHFileError) as caught:
        load_hhh(path, name="my-hhh.jsonl")
    assert str(caught.value).startswith(problem), str(caught.value)
    assert "368ca1ca" not in str(caught.value) and "char" not in str(caught.value)


def test_hhh_bytes_that_are_not_text_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "upload.jsonl"
    path.write_bytes(GOOD_HHH.encode() + b"\n\xff\xfe\n")
    with pytest.raises(HHHFileError, match=r"^my\.jsonl line 2: not text"):
        load_hhh(path, name="my.jsonl")


def test_a_hostile_hhh_prompt_is_refused_quickly(tmp_path: Path) -> None:
    # The old regular expression backtracked over every "Options:" (8 s for this line).
    prompt = "Options:\n (A) [[[" * 6000 + "]]]\n\n" + ANSWER_CUE
    path = tmp_path / "hhh.jsonl"
    path.write_text(json.dumps({"prompt": prompt, "corrects": [" (A)"], "incorrects": [" (B)"]}))
    started = time.perf_counter()
    with pytest.raises(HHHFileError, match=r"line 1: .*must end with"):
        load_hhh(path)
    assert time.perf_counter() - started < 1


def test_the_cli_reports_a_hostile_hhh_file_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.evals.hhh import main

    path = tmp_path / "mine.jsonl"
    path.write_text(f"{GOOD_HHH}\n{deep_json()}\n")
    with pytest.raises(SystemExit) as caught:
        main(["--file", str(path)])
    assert caught.value.code == 2
    assert "mine.jsonl line 2: nested more than 64 levels deep" in capsys.readouterr().err


# --- removing uploads ----------------------------------------------------------------------


def test_remove_upload_touches_only_the_upload_folder(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    uploads = Path(app_env["DATA_DIR"]) / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "a.jsonl").write_text("x")
    own = tmp_path / "mine.jsonl"
    own.write_text("x")
    remove_upload(uploads / "a.jsonl")
    remove_upload(own)
    remove_upload(None)
    assert not (uploads / "a.jsonl").exists() and own.exists()
