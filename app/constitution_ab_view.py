"""A constitution A/B job's stored report (worker.pipeline.constitution_ab) as the tables its
page shows: B over A per judging principle, and per critique principle how often each run's
revision beats its initial reply."""

from dataclasses import dataclass
from typing import Any

NOTHING = "\u2013"


@dataclass(frozen=True)
class ABTable:
    key: str  # "b_over_a", "revision_a", "revision_b"
    title: str
    rows: list[list[str]]  # group, win rate, 95% interval, wins of decided, ties, skipped


def _percent(value: float | None) -> str:
    return NOTHING if value is None else f"{100 * value:.0f}%"


def _rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            "all principles" if e["group"] == "all" else str(e["group"]),
            _percent(e.get("value")),
            f"{_percent(e.get('low'))} to {_percent(e.get('high'))}",
            f"{e['wins']} of {e['decided']}",
            str(e["ties"]),
            str(e["skipped"]),
        ]
        for e in entries
    ]


def ab_tables(result: dict[str, Any]) -> list[ABTable]:
    """The report's three tables; none for a job with no report yet."""
    if "b_over_a" not in result:
        return []
    revisions = result.get("revision_over_initial", {})
    return [
        ABTable(
            "b_over_a",
            "Win rate of B's final revision over A's, per judging principle",
            _rows(result["b_over_a"]),
        ),
        ABTable(
            "revision_a",
            "Run A: how often the revision beats the initial reply, per critique principle",
            _rows(revisions.get("a", [])),
        ),
        ABTable(
            "revision_b",
            "Run B: how often the revision beats the initial reply, per critique principle",
            _rows(revisions.get("b", [])),
        ),
    ]
