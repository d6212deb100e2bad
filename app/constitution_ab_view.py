"""A constitution A/B job's stored report (worker.pipeline.constitution_ab) as the tables its
page shows: B over A per judging principle, and per critique principle how often each run's
revision beats its initial reply; each number links to the comparisons behind it."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from app.evaluation_view import Cell

NOTHING = "\u2013"
# A comparison kind's table key, and what its first and second replies are.
KIND_TABLES = {"ab": "b_over_a", "a": "revision_a", "b": "revision_b"}
KIND_REPLIES = {
    "ab": ("A's final revision", "B's final revision"),
    "a": ("A's initial reply", "A's final revision"),
    "b": ("B's initial reply", "B's final revision"),
}
KIND_TITLES = {
    "ab": "B's final revision over A's",
    "a": "Run A: revision over initial reply",
    "b": "Run B: revision over initial reply",
}


@dataclass(frozen=True)
class ABTable:
    key: str  # "b_over_a", "revision_a", "revision_b"
    title: str
    rows: list[list[Cell]]  # group, win rate, 95% interval, wins of decided, ties, skipped


def _percent(value: float | None) -> str:
    return NOTHING if value is None else f"{100 * value:.0f}%"


def comparisons_href(job_id: int, kind: str, group: str) -> str:
    return f"/evaluations/ab/{job_id}/comparisons?" + urlencode({"kind": kind, "group": group})


def _rows(job_id: int, kind: str, entries: list[dict[str, Any]]) -> list[list[Cell]]:
    rows = []
    for e in entries:
        href = comparisons_href(job_id, kind, str(e["group"]))
        rows.append(
            [
                Cell("all principles" if e["group"] == "all" else str(e["group"])),
                Cell(_percent(e.get("value")), href),
                Cell(f"{_percent(e.get('low'))} to {_percent(e.get('high'))}"),
                Cell(f"{e['wins']} of {e['decided']}", href),
                Cell(str(e["ties"])),
                Cell(str(e["skipped"])),
            ]
        )
    return rows


def ab_tables(job_id: int, result: dict[str, Any]) -> list[ABTable]:
    """The report's three tables; none for a job with no report yet."""
    if "b_over_a" not in result:
        return []
    revisions = result.get("revision_over_initial", {})
    return [
        ABTable(
            "b_over_a",
            "Win rate of B's final revision over A's, per judging principle",
            _rows(job_id, "ab", result["b_over_a"]),
        ),
        ABTable(
            "revision_a",
            "Run A: how often the revision beats the initial reply, per critique principle",
            _rows(job_id, "a", revisions.get("a", [])),
        ),
        ABTable(
            "revision_b",
            "Run B: how often the revision beats the initial reply, per critique principle",
            _rows(job_id, "b", revisions.get("b", [])),
        ),
    ]
