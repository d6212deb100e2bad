"""The results page's Goodhart watch: the run's replies measured by app.recipe.eval_goodhart,
as rows of cells (each count links to the replies behind it). A finished run stores the watch
in its result (worker/evaluation_rows.py), so the page reads no replies; a run finished before
that has it measured from its replies on each load."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session

from app.evaluation_view import NOTHING, Cell
from app.evaluations import run_replies
from app.recipe.eval_goodhart import reply_watch, watch_from_json
from app.recipe.goodhart import NGRAM


@dataclass
class GoodhartTable:
    top: tuple[str, ...]
    rows: list[list[Cell]]  # suite, model, share, replies, mean words
    n: int = NGRAM  # words per phrase


def goodhart_table(
    *, session: Session, job_id: int, result: dict[str, Any]
) -> GoodhartTable | None:
    """None before the run has results, or when it has no replies."""
    names: dict[str, str] = result.get("models", {})
    suites: dict[str, dict[str, Any]] = result.get("suites", {})
    if not names:
        return None
    if "goodhart" in result:
        watch = watch_from_json(result["goodhart"])
    else:
        replies = run_replies(session=session, job_id=job_id)
        watch = reply_watch(replies, [int(m) for m in names], [int(s) for s in suites])
    if not any(row.replies for row in watch.rows):
        return None
    rows = []
    for row in watch.rows:
        model = str(row.model_id)
        where = suites.get(str(row.suite_id), {}).get("name", "") if row.suite_id else "all suites"
        query = {"model": model, **({"suite": row.suite_id} if row.suite_id else {})}
        replies_link = f"/evaluations/{job_id}/replies?{urlencode(query)}"
        rows.append(
            [
                Cell(where),
                Cell(names.get(model, model)),
                Cell(f"{100 * row.share:.0f}%" if row.replies else NOTHING),
                Cell(f"{row.with_top} of {row.replies}", replies_link),
                Cell(f"{row.mean_words:.1f}" if row.replies else NOTHING),
            ]
        )
    return GoodhartTable(watch.top, rows)
