"""Normalising prompts for comparison, and dropping the ones a file repeats."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable

from app.prompt_files.base import ParsedPrompt


def normalise_prompt(text: str) -> str:
    """Fold a prompt for comparison: NFKC, casefold, whitespace runs to one space, strip."""
    # NFKC again after casefold: casefolding can produce sequences NFKC would still change, and
    # the hash key must be idempotent (normalising twice gives the same string).
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    # str.split() with no separator splits on every Unicode whitespace run, not just spaces.
    return " ".join(folded.split())


def prompt_hash(text: str) -> str:
    """SHA-256 hex digest of `normalise_prompt(text)`: the key for spotting duplicate prompts."""
    return hashlib.sha256(normalise_prompt(text).encode("utf-8")).hexdigest()


def drop_duplicates(prompts: Iterable[ParsedPrompt]) -> tuple[list[ParsedPrompt], int]:
    """Keep the first prompt of each `prompt_hash(text)`; return `(kept, number_dropped)`.

    Only the prompt text is compared, not the context: two HH-RLHF conversations that open with
    the same Human turn count as duplicates.
    """
    seen: set[str] = set()
    kept: list[ParsedPrompt] = []
    dropped = 0
    for prompt in prompts:
        key = prompt_hash(prompt.text)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(prompt)
    return kept, dropped
