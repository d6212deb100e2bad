"""Word-level differences between texts, principles and whole constitution versions.

Pure standard library: the web app renders these chunks as a review page, the tests check them.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from app.recipe.documents import ConstitutionDoc, PrincipleDoc

ChunkOp = Literal["equal", "insert", "delete"]

# Words and the whitespace between them are both tokens, so the chunks rebuild both texts exactly.
_TOKEN = re.compile(r"\s+|[^\s]+")
_TEXT_FIELDS = ("critique_request", "revision_request", "comparison_instruction")


@dataclass(frozen=True)
class Chunk:
    op: ChunkOp
    text: str


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(old: str, new: str) -> list[Chunk]:
    """The chunks that turn `old` into `new`: equal + delete chunks joined give `old`, equal +
    insert chunks joined give `new`. A replacement is a delete chunk followed by an insert chunk;
    adjacent chunks of the same op are merged, and no chunk is empty."""
    old_tokens, new_tokens = _tokens(old), _tokens(new)
    matcher = difflib.SequenceMatcher(a=old_tokens, b=new_tokens, autojunk=False)
    pieces: list[tuple[ChunkOp, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pieces.append(("equal", "".join(old_tokens[i1:i2])))
            continue
        if tag in ("delete", "replace"):
            pieces.append(("delete", "".join(old_tokens[i1:i2])))
        if tag in ("insert", "replace"):
            pieces.append(("insert", "".join(new_tokens[j1:j2])))

    merged: list[Chunk] = []
    for op, text in pieces:
        if not text:
            continue
        if merged and merged[-1].op == op:
            merged[-1] = Chunk(op, merged[-1].text + text)
        else:
            merged.append(Chunk(op, text))
    return merged


def _tags_text(tags: list[str]) -> str:
    return ", ".join(tags)


def _enabled_text(enabled: bool) -> str:
    return "enabled" if enabled else "disabled"


def principle_changes(old: PrincipleDoc, new: PrincipleDoc) -> dict[str, list[Chunk]]:
    """Field name -> word diff, for each field that differs. Tags read as "harm, violence" and
    the enabled flag as "enabled" / "disabled". The key is not compared: callers match by it."""
    changes: dict[str, list[Chunk]] = {}
    for name in _TEXT_FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            changes[name] = word_diff(before, after)
    if old.tags != new.tags:
        changes["tags"] = word_diff(_tags_text(old.tags), _tags_text(new.tags))
    if old.enabled != new.enabled:
        changes["enabled"] = word_diff(_enabled_text(old.enabled), _enabled_text(new.enabled))
    return changes


@dataclass(frozen=True)
class ConstitutionDiff:
    added: list[PrincipleDoc]  # in the new version's order
    removed: list[PrincipleDoc]  # in the old version's order
    changed: list[tuple[PrincipleDoc, PrincipleDoc, dict[str, list[Chunk]]]]  # (old, new, changes)
    unchanged: list[PrincipleDoc]
    moved: list[str]  # keys of matched principles whose relative order changed
    system_prompt: list[Chunk] | None  # None when equal
    few_shots_changed: bool

    @property
    def is_empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.moved
            or self.system_prompt is not None
            or self.few_shots_changed
        )


def _moved_keys(old_order: list[str], new_order: list[str]) -> list[str]:
    """Keys outside a longest common subsequence of the two orders: the fewest principles whose
    moving explains the new order. Both lists hold the same keys, each once; a constitution has
    tens of principles, so the quadratic table is small."""
    n, m = len(old_order), len(new_order)
    # longest[i][j]: length of the longest common subsequence of old_order[i:] and new_order[j:].
    longest = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if old_order[i] == new_order[j]:
                longest[i][j] = longest[i + 1][j + 1] + 1
            else:
                longest[i][j] = max(longest[i + 1][j], longest[i][j + 1])
    kept: set[str] = set()
    i = j = 0
    while i < n and j < m:
        if old_order[i] == new_order[j]:
            kept.add(old_order[i])
            i, j = i + 1, j + 1
        elif longest[i + 1][j] >= longest[i][j + 1]:
            i += 1
        else:
            j += 1
    return [key for key in new_order if key not in kept]


def diff_constitutions(old: ConstitutionDoc, new: ConstitutionDoc) -> ConstitutionDiff:
    """Compares two versions principle by principle, matching principles by key."""
    old_by_key = {p.key: p for p in old.principles}
    new_by_key = {p.key: p for p in new.principles}

    added = [p for p in new.principles if p.key not in old_by_key]
    removed = [p for p in old.principles if p.key not in new_by_key]
    changed: list[tuple[PrincipleDoc, PrincipleDoc, dict[str, list[Chunk]]]] = []
    unchanged: list[PrincipleDoc] = []
    for new_principle in new.principles:
        old_principle = old_by_key.get(new_principle.key)
        if old_principle is None:
            continue
        changes = principle_changes(old_principle, new_principle)
        if changes:
            changed.append((old_principle, new_principle, changes))
        else:
            unchanged.append(new_principle)

    old_order = [p.key for p in old.principles if p.key in new_by_key]
    new_order = [p.key for p in new.principles if p.key in old_by_key]
    system_prompt = (
        None
        if old.system_prompt == new.system_prompt
        else word_diff(old.system_prompt, new.system_prompt)
    )
    return ConstitutionDiff(
        added=added,
        removed=removed,
        changed=changed,
        unchanged=unchanged,
        moved=_moved_keys(old_order, new_order),
        system_prompt=system_prompt,
        few_shots_changed=old.few_shots != new.few_shots,
    )
