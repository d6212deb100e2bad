"""The plain records a dataset is built from: traces with their steps, and helpful examples."""

from __future__ import annotations

from dataclasses import dataclass, field

Message = dict[str, str]  # {"role": ..., "content": ...}


@dataclass(frozen=True)
class StepRecord:
    """One critique/revision round of a trace."""

    round: int
    principle_key: str
    critique_request: str
    critique: str
    revision_request: str
    revision: str


@dataclass(frozen=True)
class TraceRecord:
    """One prompt's way through the recipe, with the outcome of its review."""

    trace_id: int
    job_id: int
    # The conversation the model answered; ends with the user's turn (multi-turn context included).
    messages: list[Message]
    initial_reply: str
    final_reply: str
    correction: str | None  # a reviewer's corrected final revision, when there is one
    review_status: str  # "pending" | "approved" | "rejected" | "mixed"
    steps: list[StepRecord]  # in round order
    flags: list[str] = field(default_factory=list)  # e.g. "empty_output", "truncated"


@dataclass(frozen=True)
class HelpfulExample:
    """A helpful prompt-answer row, mixed in so the model stays helpful."""

    messages: list[Message]  # the conversation, ending with the user's turn
    chosen: str  # a good answer
    rejected: str | None  # a worse answer when the file has one (HH-RLHF does), else None
    source: str  # where it came from, e.g. "helpful.jsonl:17"
