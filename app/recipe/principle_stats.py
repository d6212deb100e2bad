"""Per-principle statistics over critique-revision rounds: how often each principle was sampled,
how its traces fared in review, how much its revisions changed the reply, and how often its rounds
came back empty or failed.

Pure standard library over plain records, so the web app and the tests feed it the same data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from app.recipe.diff import word_diff

REJECT = "reject"


@dataclass(frozen=True)
class StepRecord:
    """One critique-revision round of one trace."""

    principle_key: str
    trace_id: int
    initial_reply: str  # the trace's initial reply
    revision: str  # this round's revision
    flags: Sequence[str] = ()  # e.g. "empty_critique", "empty_revision", "truncated"


@dataclass(frozen=True)
class PrincipleStats:
    key: str
    uses: int  # rounds that sampled it
    traces: int  # distinct traces where it was used
    reviewed: int  # of those traces, how many have at least one review verdict
    rejected: int  # how many of the reviewed have a reject verdict (any reviewer)
    reject_rate: float | None  # rejected / reviewed, None when none reviewed
    mean_change: float | None  # mean change_size(initial reply, revision) over rounds
    empty_or_failed: int  # rounds with a flag starting with "empty_" or equal to "failed"


def _words(text: str) -> int:
    return len(text.split())


def change_size(old: str, new: str) -> float:
    """Share of words changed from `old` to `new`: (inserted + deleted words) divided by the words
    in both texts (at least 1, so two empty texts give 0.0). 0.0 for identical texts, 1.0 when no
    word is kept; whitespace-only edits count as no change."""
    changed = sum(_words(chunk.text) for chunk in word_diff(old, new) if chunk.op != "equal")
    return changed / max(1, _words(old) + _words(new))


def _empty_or_failed(flags: Sequence[str]) -> bool:
    return any(flag.startswith("empty_") or flag == "failed" for flag in flags)


@dataclass
class _Tally:
    uses: int = 0
    change_total: float = 0.0
    empty_or_failed: int = 0
    trace_ids: set[int] = field(default_factory=set)


def principle_stats(
    steps: Iterable[StepRecord], verdicts: Mapping[int, Sequence[str]]
) -> list[PrincipleStats]:
    """One PrincipleStats per principle key seen in `steps`, sorted by uses descending, then key.

    `verdicts` maps trace_id -> the verdicts ("approve" / "reject") of its reviews; a trace that
    is missing or maps to no verdicts is unreviewed. Review counts are per trace, not per round: a
    trace that sampled a principle in three rounds and was rejected counts once for it."""
    tallies: dict[str, _Tally] = {}
    for step in steps:
        tally = tallies.setdefault(step.principle_key, _Tally())
        tally.uses += 1
        tally.change_total += change_size(step.initial_reply, step.revision)
        tally.empty_or_failed += int(_empty_or_failed(step.flags))
        tally.trace_ids.add(step.trace_id)

    stats = []
    for key, tally in tallies.items():
        reviewed = [trace for trace in tally.trace_ids if verdicts.get(trace)]
        rejected = sum(1 for trace in reviewed if REJECT in verdicts[trace])
        stats.append(
            PrincipleStats(
                key=key,
                uses=tally.uses,
                traces=len(tally.trace_ids),
                reviewed=len(reviewed),
                rejected=rejected,
                reject_rate=rejected / len(reviewed) if reviewed else None,
                # A tally exists only once a round was seen, so uses >= 1 here; the None of the
                # field is for callers that build stats for principles that were never sampled.
                mean_change=tally.change_total / tally.uses,
                empty_or_failed=tally.empty_or_failed,
            )
        )
    stats.sort(key=lambda s: (-s.uses, s.key))
    return stats
