"""Unit tests for app.recipe.diff: word diffs of texts, principles and constitution versions."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest

from app.recipe.diff import Chunk, diff_constitutions, principle_changes, word_diff
from app.recipe.documents import ConstitutionDoc, FewShotDoc, PrincipleDoc


def rebuild(chunks: list[Chunk], *, side: str) -> str:
    dropped = "insert" if side == "old" else "delete"
    return "".join(chunk.text for chunk in chunks if chunk.op != dropped)


PAIRS = [
    ("", ""),
    ("", "hello world"),
    ("hello world", ""),
    ("same text", "same text"),
    ("one two three", "one three"),
    ("one three", "one two three"),
    ("a  b\tc\n", "a b c"),
    ("  leading and trailing  ", "leading and trailing"),
    ("line one\nline two\n", "line one\n\nline two"),
    ("naïve café — résumé 日本語 テキスト", "naïve cafe — résumé 日本語のテキスト 🙂"),
    ("Identify harmful content.", "Identify specific harmful content, please."),
    ("x " * 50, "y " * 50),
    ("the cat sat on the mat", "the dog sat on the log"),
]


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_chunks_rebuild_both_texts(old: str, new: str) -> None:
    chunks = word_diff(old, new)
    assert rebuild(chunks, side="old") == old
    assert rebuild(chunks, side="new") == new


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_chunks_are_non_empty_and_merged(old: str, new: str) -> None:
    chunks = word_diff(old, new)
    assert all(chunk.text for chunk in chunks)
    for before, after in pairwise(chunks):
        assert before.op != after.op


def test_known_example() -> None:
    assert word_diff("the cat sat on the mat", "the dog sat on a mat") == [
        Chunk("equal", "the "),
        Chunk("delete", "cat"),
        Chunk("insert", "dog"),
        Chunk("equal", " sat on "),
        Chunk("delete", "the"),
        Chunk("insert", "a"),
        Chunk("equal", " mat"),
    ]


def test_pure_insertion_and_deletion() -> None:
    assert word_diff("one three", "one two three") == [
        Chunk("equal", "one "),
        Chunk("insert", "two "),
        Chunk("equal", "three"),
    ]
    assert word_diff("one two three", "one three") == [
        Chunk("equal", "one "),
        Chunk("delete", "two "),
        Chunk("equal", "three"),
    ]


def test_whitespace_change_is_a_change() -> None:
    assert word_diff("a b", "a  b") == [
        Chunk("equal", "a"),
        Chunk("delete", " "),
        Chunk("insert", "  "),
        Chunk("equal", "b"),
    ]


def test_empty_inputs() -> None:
    assert word_diff("", "") == []
    assert word_diff("", "new words") == [Chunk("insert", "new words")]
    assert word_diff("old words", "") == [Chunk("delete", "old words")]
    assert word_diff("same", "same") == [Chunk("equal", "same")]


def principle(key: str, text: str = "", **changes: Any) -> PrincipleDoc:
    base = PrincipleDoc(
        key=key,
        critique_request=f"Critique {key}{text}.",
        revision_request=f"Revise {key}.",
        comparison_instruction=f"Which is better on {key}? Options:",
        tags=["harm"],
    )
    return replace(base, **changes)


def test_principle_changes_lists_only_differing_fields() -> None:
    old = principle("violence")
    new = principle(
        "violence", revision_request="Revise violence gently.", tags=["harm", "violence"]
    )
    changes = principle_changes(old, new)
    assert set(changes) == {"revision_request", "tags"}
    assert changes["revision_request"] == [
        Chunk("equal", "Revise "),
        Chunk("delete", "violence."),
        Chunk("insert", "violence gently."),
    ]
    assert rebuild(changes["tags"], side="old") == "harm"
    assert rebuild(changes["tags"], side="new") == "harm, violence"


def test_principle_changes_renders_enabled_flag() -> None:
    changes = principle_changes(principle("a"), principle("a", enabled=False))
    assert changes == {"enabled": [Chunk("delete", "enabled"), Chunk("insert", "disabled")]}
    assert principle_changes(principle("a"), principle("a")) == {}


def constitution(*principles: PrincipleDoc, system_prompt: str = "Be good.") -> ConstitutionDoc:
    return ConstitutionDoc(name="c", principles=list(principles), system_prompt=system_prompt)


def test_diff_constitutions_sorts_principles() -> None:
    a, b, c, d = principle("a"), principle("b"), principle("c"), principle("d")
    b2 = principle("b", " harder")
    diff = diff_constitutions(constitution(a, b, c), constitution(a, b2, d))
    assert [p.key for p in diff.added] == ["d"]
    assert [p.key for p in diff.removed] == ["c"]
    assert [(old.key, new.key, list(changes)) for old, new, changes in diff.changed] == [
        ("b", "b", ["critique_request"])
    ]
    assert diff.changed[0][0] is b and diff.changed[0][1] is b2
    assert [p.key for p in diff.unchanged] == ["a"]
    assert diff.moved == []
    assert diff.system_prompt is None
    assert diff.few_shots_changed is False


def test_identical_constitutions_have_no_differences() -> None:
    doc = constitution(principle("a"), principle("b"))
    diff = diff_constitutions(doc, constitution(principle("a"), principle("b")))
    assert (diff.added, diff.removed, diff.changed, diff.moved) == ([], [], [], [])
    assert [p.key for p in diff.unchanged] == ["a", "b"]
    assert diff.is_empty


def test_moved_names_the_principle_that_moved() -> None:
    old = constitution(principle("a"), principle("b"), principle("c"), principle("d"))
    new = constitution(principle("b"), principle("c"), principle("d"), principle("a"))
    assert diff_constitutions(old, new).moved == ["a"]


def test_swap_moves_one_of_the_pair() -> None:
    old = constitution(principle("a"), principle("b"))
    new = constitution(principle("b"), principle("a"))
    diff = diff_constitutions(old, new)
    assert len(diff.moved) == 1 and diff.moved[0] in {"a", "b"}
    assert not diff.is_empty


def test_additions_and_removals_are_not_moves() -> None:
    old = constitution(principle("x"), principle("a"), principle("b"))
    new = constitution(principle("a"), principle("y"), principle("b"))
    diff = diff_constitutions(old, new)
    assert diff.moved == []
    assert [p.key for p in diff.added] == ["y"]
    assert [p.key for p in diff.removed] == ["x"]


def test_system_prompt_and_few_shots() -> None:
    old = constitution(principle("a"), system_prompt="Be helpful.")
    new = constitution(principle("a"), system_prompt="Be very helpful.")
    new.few_shots = [
        FewShotDoc(kind="critique-revision", messages=[{"role": "user", "content": "hi"}])
    ]
    diff = diff_constitutions(old, new)
    assert diff.system_prompt == [
        Chunk("equal", "Be "),
        Chunk("insert", "very "),
        Chunk("equal", "helpful."),
    ]
    assert diff.few_shots_changed is True


def test_moved_is_minimal_when_blocks_interleave() -> None:
    # A longest contiguous match ("d e") would leave a, b, c as moved; the fewest moves is two.
    old = constitution(*(principle(key) for key in "abcde"))
    new = constitution(*(principle(key) for key in "deabc"))
    assert sorted(diff_constitutions(old, new).moved) == ["d", "e"]
    old = constitution(*(principle(key) for key in "abcdef"))
    new = constitution(*(principle(key) for key in "efabcd"))
    assert sorted(diff_constitutions(old, new).moved) == ["e", "f"]
    new = constitution(*(principle(key) for key in "bacfed"))
    assert len(diff_constitutions(old, new).moved) == 3
