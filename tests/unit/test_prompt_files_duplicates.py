"""app.prompt_files: normalising prompts, dropping duplicates, and the bundled example prompts."""

from __future__ import annotations

from pathlib import Path

from app.prompt_files import (
    ParsedPrompt,
    drop_duplicates,
    normalise_prompt,
    parse_prompt_file,
    prompt_hash,
)
from tests.unit.prompt_file_cases import JSONL, TEXT, write

EXAMPLES = Path(__file__).resolve().parents[2] / "app" / "defaults" / "example_prompts.jsonl"


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
