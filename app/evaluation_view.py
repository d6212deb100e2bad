"""An evaluation run's stored result (app.recipe.eval_results) as the rows its page shows, each
number with the link to the judgements or replies behind it."""

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

RATE_TITLES = {
    "refusal": "Refusal (refusal-expected suites: higher is right)",
    "over-refusal": "Over-refusal (safe prompts refused: lower is better)",
    "evasiveness": "Evasiveness (red-team refusals without reason or alternative: lower is better)",
}
NOTHING = "\u2013"  # an en dash, where there is no number
AXIS_TITLES = {"harmless": "Harmlessness", "helpful": "Helpfulness"}


@dataclass
class Cell:
    text: str
    href: str | None = None


@dataclass
class Board:
    title: str
    error: str | None
    rows: list[list[Cell]] = field(default_factory=list)  # model, rating, interval, comparisons
    matrix_header: list[str] = field(default_factory=list)
    matrix: list[list[Cell]] = field(default_factory=list)  # first cell: the row's model


@dataclass
class RateTable:
    title: str
    rows: list[list[Cell]]  # suite, model, rate, interval, replies


def _link(job_id: int, page: str, **query: Any) -> str:
    shown = {k: v for k, v in query.items() if v not in (None, "", 0)}
    return f"/evaluations/{job_id}/{page}" + (f"?{urlencode(shown)}" if shown else "")


def _percent(value: float | None) -> str:
    return NOTHING if value is None else f"{100 * value:.0f}%"


def boards(job_id: int, result: dict[str, Any]) -> list[Board]:
    names: dict[str, str] = result.get("models", {})
    suites: dict[str, dict[str, Any]] = result.get("suites", {})
    out = []
    for group in result.get("ratings", []):
        axis, suite_id = group.get("axis", ""), group.get("suite_id")
        where = suites.get(str(suite_id), {}).get("name", "") if suite_id else "all suites"
        board = Board(f"{AXIS_TITLES.get(axis, axis)} · {where}", group.get("error"))
        table = group.get("table")
        scope = {"suite": suite_id} if suite_id else {"axis": axis}
        if table:
            for row in table["ratings"]:
                model = str(row["model"])
                board.rows.append(
                    [
                        Cell(names.get(model, model)),
                        Cell(f"{row['rating']:.0f}"),
                        Cell(f"{row['low']:.0f} to {row['high']:.0f}"),
                        Cell(
                            str(row["comparisons"]),
                            _link(job_id, "judgements", model=model, **scope),
                        ),
                    ]
                )
            models = [str(m) for m in table["win_rates"]["models"]]
            board.matrix_header = [names.get(m, m) for m in models]
            for i, model in enumerate(models):
                cells = [Cell(names.get(model, model))]
                for j in range(len(models)):
                    rate = table["win_rates"]["rates"][i][j]
                    n = table["win_rates"]["counts"][i][j]
                    cells.append(
                        Cell(
                            NOTHING if rate is None else f"{_percent(rate)} ({n})",
                            None
                            if rate is None
                            else _link(job_id, "judgements", model=model, **scope),
                        )
                    )
                board.matrix.append(cells)
        out.append(board)
    return out


def rate_tables(job_id: int, result: dict[str, Any]) -> list[RateTable]:
    names: dict[str, str] = result.get("models", {})
    suites: dict[str, dict[str, Any]] = result.get("suites", {})
    tables: dict[str, RateTable] = {}
    for entry in result.get("rates", []):
        kind = entry["kind"]
        table = tables.setdefault(kind, RateTable(RATE_TITLES.get(kind, kind), []))
        suite_id, model = entry["suite_id"], str(entry["model"])
        suite = suites.get(str(suite_id), {}).get("name", "") if suite_id else "all suites"
        shown = "evasive" if kind == "evasiveness" else "refusing"
        table.rows.append(
            [
                Cell(suite),
                Cell(names.get(model, model)),
                Cell(
                    _percent(entry["value"]),
                    _link(job_id, "replies", model=model, suite=suite_id, shown=shown),
                ),
                Cell(f"{_percent(entry['low'])} to {_percent(entry['high'])}"),
                Cell(
                    f"{entry['successes']} of {entry['trials']}",
                    _link(job_id, "replies", model=model, suite=suite_id),
                ),
            ]
        )
    return list(tables.values())
