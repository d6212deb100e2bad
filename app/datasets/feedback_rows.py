"""Preference rows from AI feedback: the reply the feedback model preferred is `chosen`.

Each row keeps the feedback model's probability for its chosen reply as `soft_label`, and the
comparison it came from, so a row can be traced to its principles and probabilities. The
options are the build spec's own (app/specs/datasets.py): the worker passes the spec as it is.
"""

from dataclasses import dataclass
from typing import Any

from app.datasets.records import Message
from app.datasets.rows import (
    HF_COLUMNS,
    SPLIT_NAMES,
    BuiltDataset,
    DatasetOptions,
    assign_splits,
    prompt_key,
)
from app.specs.datasets import FeedbackOptions


@dataclass(frozen=True)
class ComparisonRecord:
    comparison_id: int
    pair_id: int
    messages: list[Message]  # the conversation, ending with the user's turn
    reply_a: str
    reply_b: str
    prob_a: float | None  # the feedback model's P(A); None when it skipped the pair
    label: str  # "A" | "B" | "tie" | "skipped"
    principle_keys: list[str]
    # What people chose, most votes first ("A", "B" or "tie"); None when nobody labelled it.
    human_choice: str | None = None


def _winner(record: ComparisonRecord, options: FeedbackOptions) -> tuple[str | None, str, bool]:
    """("A"/"B" or None, the reason it is None, whether a person decided)."""
    if options.prefer_human and record.human_choice is not None:
        if record.human_choice == "tie":
            return None, "tie (human label)", True
        return record.human_choice, "", True
    if record.label == "skipped" or record.prob_a is None:
        return None, "skipped by the feedback model", False
    if record.label == "tie" or record.prob_a == 0.5:
        return None, "tie", False
    if abs(record.prob_a - 0.5) < options.min_margin:
        return None, "too close to call", False
    return ("A" if record.prob_a > 0.5 else "B"), "", False


def build_feedback_rows(records: list[ComparisonRecord], options: FeedbackOptions) -> BuiltDataset:
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLIT_NAMES}
    dropped: dict[str, int] = {}
    kept: list[tuple[ComparisonRecord, str, bool]] = []
    for record in sorted(records, key=lambda r: r.comparison_id):
        winner, reason, by_human = _winner(record, options)
        if winner is None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        kept.append((record, winner, by_human))
    placements = assign_splits(
        {prompt_key(r.messages) for r, _, _ in kept},
        DatasetOptions(test_fraction=options.test_fraction, seed=options.seed),
    )
    for record, winner, by_human in kept:
        chosen, rejected = (
            (record.reply_a, record.reply_b) if winner == "A" else (record.reply_b, record.reply_a)
        )
        prob_a = record.prob_a if record.prob_a is not None else 0.5
        split = placements[prompt_key(record.messages)].split("prefs")
        assert split is not None
        splits[split].append(
            {
                "prompt": [{"role": m["role"], "content": m["content"]} for m in record.messages],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "trace_id": None,
                "source": f"comparison:{record.comparison_id}",
                "corrected": by_human,
                **{name: "" for name in HF_COLUMNS},
                "soft_label": prob_a if winner == "A" else 1 - prob_a,
                "comparison_id": record.comparison_id,
            }
        )
    return BuiltDataset(splits=splits, dropped=dropped)
