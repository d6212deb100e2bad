"""Filter reviewed traces and turn them into SFT and preference rows.

Rows follow the ecosystem's columns so TRL's trainers read them as they are: `messages` for SFT,
and the conversational explicit-prompt form `prompt`/`chosen`/`rejected` for preferences. Every
row also carries `trace_id` and `source` (the link back to its trace), `corrected`, and the
columns of Hugging Face's CAI dataset (`init_prompt` ... `revision_response`). TRL drops the
extra columns itself: its trainers keep only the tokenized columns (`remove_unused_columns`).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.datasets.records import HelpfulExample, Message, TraceRecord
from app.prompt_files import normalise_prompt
from app.specs.datasets import ReviewFilter

__all__ = [
    "HF_COLUMNS",
    "PREFERENCE_COLUMNS",
    "PREFERENCE_SPLITS",
    "SFT_COLUMNS",
    "SFT_SPLITS",
    "SPLIT_NAMES",
    "BuiltDataset",
    "DatasetOptions",
    "Placement",
    "ReviewFilter",
    "assign_splits",
    "build_rows",
    "change_ratio",
    "chosen_text",
    "prompt_key",
    "select_traces",
]

SFT_SPLITS = ("train_sft", "test_sft")
PREFERENCE_SPLITS = ("train_prefs", "test_prefs")
SPLIT_NAMES = (*SFT_SPLITS, *PREFERENCE_SPLITS)
# Hugging Face's recipe columns (HuggingFaceH4/cai-conversation-harmless), from the last round.
HF_COLUMNS = (
    "init_prompt",
    "init_response",
    "critic_prompt",
    "critic_response",
    "revision_prompt",
    "revision_response",
)
SFT_COLUMNS = ("messages", "trace_id", "source", "corrected", *HF_COLUMNS)
PREFERENCE_COLUMNS = (
    "prompt",
    "chosen",
    "rejected",
    "trace_id",
    "source",
    "corrected",
    *HF_COLUMNS,
)

# Drop reasons, in the order the filters run; the keys are shown to people as they are.
REJECTED = "rejected by review"
NOT_APPROVED = "not approved"
NO_PROMPT = "no user prompt"
EMPTY = "empty or failed output"
LITTLE_CHANGE = "too little change"
TOO_SHORT = "too short"
TOO_LONG = "too long"
PROMPT_TOO_LONG = "prompt too long"
DUPLICATE = "duplicate prompt"
HELPFUL_DUPLICATE = "duplicate prompt (helpful)"
NO_PREFERENCE = "no preference (chosen equals rejected)"

# Flags that mark a trace's output as unusable whatever its text says.
_FAILED_FLAGS = frozenset({"empty_output", "empty_initial", "failed"})

Half = Literal["sft", "prefs", "both"]


@dataclass(frozen=True)
class DatasetOptions:
    """How traces are filtered, split and mixed into a dataset."""

    # Which traces the review lets through. "mixed" (reviewers disagree) and "pending" traces
    # pass EXCLUDE_REJECTED but not APPROVED_ONLY.
    review_filter: ReviewFilter = ReviewFilter.EXCLUDE_REJECTED
    # 0..1: the least share of words that must differ between the initial reply and the chosen
    # text (see `change_ratio`); a revision that barely changed the reply teaches nothing.
    min_change: float = 0.0
    # Length limits on the chosen text, in characters after stripping; None means no upper limit.
    min_chars: int = 1
    max_chars: int | None = None
    # Limit on the conversation's length (all its messages' characters); None means no limit.
    max_prompt_chars: int | None = None
    # Keep one trace per normalised conversation (the lowest trace id among those that pass the
    # other filters); helpful examples repeating a kept conversation are dropped too.
    drop_duplicates: bool = True
    # Give each prompt to either the SFT or the preference rows, never both, as Hugging Face's
    # recipe does, so DPO does not re-learn the very answers SFT was trained on.
    split_halves: bool = False
    # 0..1: the held-out share, drawn per prompt so one prompt never lands in train and test.
    test_fraction: float = 0.1
    # Seeds the split assignment; the same seed and prompts give the same splits.
    seed: int = 0
    # How many helpful examples to mix in (the first ones in file order); 0 mixes in none.
    helpful_max_rows: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_change <= 1.0:
            raise ValueError(f"min_change must be between 0 and 1, not {self.min_change}")
        if not 0.0 <= self.test_fraction <= 1.0:
            raise ValueError(f"test_fraction must be between 0 and 1, not {self.test_fraction}")
        if self.min_chars < 0 or self.helpful_max_rows < 0:
            raise ValueError("min_chars and helpful_max_rows cannot be negative")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError(f"max_chars ({self.max_chars}) is below min_chars ({self.min_chars})")


@dataclass(frozen=True)
class Placement:
    """Where one prompt's rows go: train or test, and which half (SFT, preferences or both)."""

    is_test: bool
    half: Half

    def split(self, kind: Literal["sft", "prefs"]) -> str | None:
        """The split name for a row of this kind, or None when the prompt is the other half's."""
        if self.half not in (kind, "both"):
            return None
        return f"{'test' if self.is_test else 'train'}_{kind}"


@dataclass
class BuiltDataset:
    # Always all four of SPLIT_NAMES, in that order, some perhaps empty.
    splits: dict[str, list[dict[str, Any]]]
    # Rows or traces left out, by readable reason, in the order the filters run.
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.splits.items()}

    @property
    def total_rows(self) -> int:
        return sum(len(rows) for rows in self.splits.values())


# --- measuring and keys -----------------------------------------------------------------------


def change_ratio(initial: str, final: str) -> float:
    """The share of words changed: 0 for the same words, 1 when none are shared.

    1 minus difflib's similarity ratio over whitespace-separated words, so re-wrapping or
    re-spacing a text is no change.
    """
    old, new = initial.split(), final.split()
    if old == new:
        return 0.0
    return 1.0 - difflib.SequenceMatcher(a=old, b=new).ratio()


def chosen_text(trace: TraceRecord) -> str:
    """The text a trace teaches, stripped: a reviewer's correction, else the final revision."""
    if trace.correction and trace.correction.strip():
        return trace.correction.strip()
    return trace.final_reply.strip()


def prompt_key(messages: Sequence[Message]) -> str:
    """The conversation folded for comparison: roles and normalised text of every message."""
    return normalise_prompt("\n".join(f"{m['role']}: {m['content']}" for m in messages))


def _prompt_chars(messages: Sequence[Message]) -> int:
    return sum(len(m["content"]) for m in messages)


def _ends_with_user(messages: Sequence[Message]) -> bool:
    return bool(messages) and messages[-1]["role"] == "user" and bool(messages[-1]["content"])


# --- filtering --------------------------------------------------------------------------------


def _drop_reason(trace: TraceRecord, options: DatasetOptions) -> str | None:
    """Why a trace is left out, by the first filter it fails; None when it is kept."""
    status = trace.review_status
    if options.review_filter is not ReviewFilter.ALL and status == "rejected":
        return REJECTED
    if options.review_filter is ReviewFilter.APPROVED_ONLY and status != "approved":
        return NOT_APPROVED
    if not _ends_with_user(trace.messages):
        return NO_PROMPT
    chosen = chosen_text(trace)
    # An empty initial reply would be the rejected side of every pair: nothing to learn from.
    if not chosen or not trace.initial_reply.strip() or _FAILED_FLAGS.intersection(trace.flags):
        return EMPTY
    if options.min_change > 0 and change_ratio(trace.initial_reply, chosen) < options.min_change:
        return LITTLE_CHANGE
    if len(chosen) < options.min_chars:
        return TOO_SHORT
    if options.max_chars is not None and len(chosen) > options.max_chars:
        return TOO_LONG
    if (
        options.max_prompt_chars is not None
        and _prompt_chars(trace.messages) > options.max_prompt_chars
    ):
        return PROMPT_TOO_LONG
    return None


def _count(dropped: dict[str, int], reason: str) -> None:
    dropped[reason] = dropped.get(reason, 0) + 1


def select_traces(
    traces: Iterable[TraceRecord], options: DatasetOptions
) -> tuple[list[TraceRecord], dict[str, int]]:
    """The traces that pass every filter, by trace id, and the number dropped by reason.

    The filters run in a fixed order and a trace counts under the first it fails: review,
    missing prompt, empty or failed output, too little change, too short, too long, prompt too
    long, and last duplicates, so a duplicate is only dropped in favour of a trace that is kept.
    Only reasons that dropped something appear in the counts.
    """
    kept: list[TraceRecord] = []
    dropped: dict[str, int] = {}
    seen: set[str] = set()
    for trace in sorted(traces, key=lambda t: t.trace_id):
        reason = _drop_reason(trace, options)
        if reason is None and options.drop_duplicates:
            key = prompt_key(trace.messages)
            if key in seen:
                reason = DUPLICATE
            seen.add(key)
        if reason is None:
            kept.append(trace)
        else:
            _count(dropped, reason)
    return kept, dropped


# --- splitting --------------------------------------------------------------------------------


def _uniform(digest: bytes, start: int) -> float:
    return int.from_bytes(digest[start : start + 8], "big") / 2**64


def assign_splits(keys: Iterable[str], options: DatasetOptions) -> dict[str, Placement]:
    """Where each prompt key goes, decided by a hash of the seed and the key alone.

    A key's placement depends on nothing else, not the order or the other keys, so a prompt
    stays on its side when the dataset is rebuilt with more traces: a test prompt of one version
    is never a training prompt of the next. The shares are therefore close to, not exactly,
    `test_fraction` and one half each.
    """
    placements: dict[str, Placement] = {}
    for key in keys:
        digest = hashlib.sha256(f"{options.seed}\x00{key}".encode()).digest()
        is_test = _uniform(digest, 0) < options.test_fraction
        half: Half = "both"
        if options.split_halves:
            half = "sft" if _uniform(digest, 8) < 0.5 else "prefs"
        placements[key] = Placement(is_test, half)
    return placements


# --- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Example:
    """What both kinds of row are made from, whether it came from a trace or a helpful file."""

    key: str
    messages: list[Message]
    chosen: str
    rejected: str | None
    trace_id: int | None
    source: str
    corrected: bool
    recipe: dict[str, str]  # the HF_COLUMNS


def _recipe_columns(messages: Sequence[Message], trace: TraceRecord | None) -> dict[str, str]:
    last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    columns = dict.fromkeys(HF_COLUMNS, "")
    columns["init_prompt"] = last_user
    if trace is not None:
        columns["init_response"] = trace.initial_reply.strip()
        if trace.steps:
            last = trace.steps[-1]
            columns["critic_prompt"] = last.critique_request
            columns["critic_response"] = last.critique
            columns["revision_prompt"] = last.revision_request
            columns["revision_response"] = last.revision
    return columns


def _copy(messages: Sequence[Message]) -> list[Message]:
    # Only role and content, so every row's messages share one Arrow struct type.
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _from_trace(trace: TraceRecord) -> _Example:
    chosen = chosen_text(trace)
    corrected = bool(trace.correction and trace.correction.strip())
    return _Example(
        key=prompt_key(trace.messages),
        messages=_copy(trace.messages),
        chosen=chosen,
        rejected=trace.initial_reply.strip(),
        trace_id=trace.trace_id,
        source=f"trace:{trace.trace_id}",
        corrected=corrected,
        recipe=_recipe_columns(trace.messages, trace),
    )


def _from_helpful(example: HelpfulExample) -> _Example:
    return _Example(
        key=prompt_key(example.messages),
        messages=_copy(example.messages),
        chosen=example.chosen.strip(),
        rejected=example.rejected.strip() if example.rejected is not None else None,
        trace_id=None,
        source=f"helpful:{example.source}",
        corrected=False,
        recipe=_recipe_columns(example.messages, None),
    )


def _sft_row(example: _Example) -> dict[str, Any]:
    return {
        "messages": [*example.messages, {"role": "assistant", "content": example.chosen}],
        "trace_id": example.trace_id,
        "source": example.source,
        "corrected": example.corrected,
        **example.recipe,
    }


def _preference_row(example: _Example, rejected: str) -> dict[str, Any]:
    return {
        "prompt": example.messages,
        "chosen": [{"role": "assistant", "content": example.chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "trace_id": example.trace_id,
        "source": example.source,
        "corrected": example.corrected,
        **example.recipe,
    }


def build_rows(
    traces: Iterable[TraceRecord], helpful: Sequence[HelpfulExample], options: DatasetOptions
) -> BuiltDataset:
    """Filter the traces, mix in helpful examples, and place every row in its split.

    A kept trace gives an SFT row (conversation + chosen text) and a preference row (chosen text
    over the initial reply), each where its prompt's placement allows; a trace whose chosen text
    is its initial reply gives no preference row. A helpful example gives an SFT row, and a
    preference row when it has a rejected answer. Rows are ordered by trace id, then helpful
    examples in file order.
    """
    selected, dropped = select_traces(traces, options)
    examples = [_from_trace(trace) for trace in selected]
    seen = {example.key for example in examples}
    for item in helpful[: options.helpful_max_rows]:
        example = _from_helpful(item)
        if options.drop_duplicates and example.key in seen:
            _count(dropped, HELPFUL_DUPLICATE)
            continue
        seen.add(example.key)
        examples.append(example)

    placements = assign_splits((example.key for example in examples), options)
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLIT_NAMES}
    for example in examples:
        placement = placements[example.key]
        sft_split = placement.split("sft")
        if sft_split is not None:
            splits[sft_split].append(_sft_row(example))
        prefs_split = placement.split("prefs")
        if prefs_split is None or example.rejected is None:
            continue
        if example.rejected == example.chosen:
            _count(dropped, NO_PREFERENCE)
            continue
        splits[prefs_split].append(_preference_row(example, example.rejected))
    return BuiltDataset(splits=splits, dropped=dropped)
