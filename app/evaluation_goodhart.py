"""The results page's Goodhart watch: the run's replies, read from the database, measured by
app.recipe.eval_goodhart, as rows of cells (each count links to the replies behind it)."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session, col, select

from app.evaluation_view import NOTHING, Cell
from app.models import EvalAnswer, EvalRefusal
from app.recipe.eval_goodhart import Reply, reply_watch
from app.recipe.goodhart import NGRAM


@dataclass
class GoodhartTable:
    top: tuple[str, ...]
    rows: list[list[Cell]]  # suite, model, share, replies, mean words
    n: int = NGRAM  # words per phrase


def run_replies(*, session: Session, job_id: int) -> list[Reply]:
    """Every reply of the run (classed or not), with its model and suite."""
    statement = (
        select(EvalRefusal.model_id, EvalRefusal.suite_id, EvalAnswer.text)
        .join(EvalAnswer, col(EvalAnswer.id) == EvalRefusal.answer_id)
        .where(EvalRefusal.job_id == job_id)
        .order_by(col(EvalRefusal.id))
    )
    return [Reply(model, suite, text) for model, suite, text in session.exec(statement).all()]


def goodhart_table(
    *, session: Session, job_id: int, result: dict[str, Any]
) -> GoodhartTable | None:
    """None before the run has results, or when it has no replies."""
    names: dict[str, str] = result.get("models", {})
    suites: dict[str, dict[str, Any]] = result.get("suites", {})
    if not names:
        return None
    replies = run_replies(session=session, job_id=job_id)
    if not replies:
        return None
    watch = reply_watch(replies, [int(m) for m in names], [int(s) for s in suites])
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
