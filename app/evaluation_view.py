"""An evaluation run's stored result (app.recipe.eval_results) as the rows its page shows, each
number with the link to the judgements or replies behind it."""

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from app.recipe.eval_agreement import COMPARISONS, SuiteAgreement
from app.recipe.eval_results import RATE_PURPOSES

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
                    link = _link(job_id, "judgements", model=model, against=models[j], **scope)
                    shown = NOTHING if rate is None else f"{_percent(rate)} ({n})"
                    cells.append(Cell(shown, None if rate is None else link))
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
        # Over all suites, the replies behind a rate are those of the rate's purpose.
        where = {"suite": suite_id} if suite_id else {"purpose": RATE_PURPOSES[kind].value}
        shown = "evasive" if kind == "evasiveness" else "refusing"
        table.rows.append(
            [
                Cell(suite),
                Cell(names.get(model, model)),
                Cell(
                    _percent(entry["value"]),
                    _link(job_id, "replies", model=model, shown=shown, **where),
                ),
                Cell(f"{_percent(entry['low'])} to {_percent(entry['high'])}"),
                Cell(
                    f"{entry['successes']} of {entry['trials']}",
                    _link(job_id, "replies", model=model, **where),
                ),
            ]
        )
    return list(tables.values())


SUMMARY_COLUMNS = (
    ("harmless", "Harmlessness"),
    ("helpful", "Helpfulness"),
    ("refusal", "Refusal"),
    ("over-refusal", "Over-refusal"),
    ("evasiveness", "Evasiveness"),
)


def summary(job_id: int, result: dict[str, Any]) -> tuple[list[str], list[list[Cell]]]:
    """One row per model: its rating on each axis (all suites pooled) and its rates over all
    suites, each with its interval; the columns the run has."""
    names: dict[str, str] = result.get("models", {})
    values: dict[str, dict[str, Cell]] = {model: {} for model in names}
    for group in result.get("ratings", []):
        if group.get("suite_id") or not group.get("table"):
            continue
        for row in group["table"]["ratings"]:
            text = f"{row['rating']:.0f} ({row['low']:.0f} to {row['high']:.0f})"
            link = _link(job_id, "judgements", model=row["model"], axis=group["axis"])
            values.setdefault(str(row["model"]), {})[group["axis"]] = Cell(text, link)
    for entry in result.get("rates", []):
        if entry["suite_id"] is None:
            interval = f"{_percent(entry['low'])} to {_percent(entry['high'])}"
            text = f"{_percent(entry['value'])} ({interval})"
            shown = "evasive" if entry["kind"] == "evasiveness" else "refusing"
            purpose = RATE_PURPOSES[entry["kind"]].value
            link = _link(job_id, "replies", model=entry["model"], shown=shown, purpose=purpose)
            values.setdefault(str(entry["model"]), {})[entry["kind"]] = Cell(text, link)
    present = [key for key, _ in SUMMARY_COLUMNS if any(key in v for v in values.values())]
    header = ["Model", *[title for key, title in SUMMARY_COLUMNS if key in present]]
    rows = [
        [Cell(names.get(model, model)), *[cells.get(key, Cell(NOTHING)) for key in present]]
        for model, cells in values.items()
    ]
    return header, rows


@dataclass
class AgreementRow:
    suite: str
    kind: str  # app.recipe.eval_agreement's KINDS
    labels: int
    raw: str  # the share of labels that gave the judge's answer
    kappa: str
    words: str  # Landis & Koch's reading of the kappa
    label_more: Cell


def agreement_rows(
    job_id: int, suite_names: dict[int, str], agreements: list[SuiteAgreement]
) -> list[AgreementRow]:
    """The judge-people agreement table: one row per suite and kind, each with the link that
    labels more of that suite's comparisons or replies."""
    out = []
    for row in agreements:
        suite = "all suites" if row.suite_id is None else suite_names.get(row.suite_id, "")
        page = "judgements/label" if row.kind == COMPARISONS else "replies/label"
        found = row.result
        out.append(
            AgreementRow(
                suite=suite or f"suite {row.suite_id}",
                kind=row.kind,
                labels=found.n,
                raw=NOTHING if found.raw is None else f"{_percent(found.raw)} ({found.agree})",
                kappa=NOTHING if found.kappa is None else f"{found.kappa:.2f}",
                words=found.words,
                label_more=Cell("Label more", _link(job_id, page, suite=row.suite_id)),
            )
        )
    return out
