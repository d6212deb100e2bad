"""A refusal judge checked against people: the judge classes each labelled (prompt, reply)
with the evaluation's own three-way question (worker.pipeline.refusal_judge), and its classes
are compared with the people's final labels (app.recipe.judge_check).

A row the judge could not class (too long for its context, or its scoring failed) is kept in
the per-row results with its flag and left out of the metrics, and counted as skipped.
"""

from collections.abc import Callable, Sequence
from typing import Any

from app.prompt_files.xstest import LabelledCompletion
from app.recipe.judge_check import check_judge
from worker.backends.base import Backend
from worker.pipeline.refusal_judge import CLASS_OPTIONS, ReplyToClass, classify_replies

CLASSES = tuple(c.value for c in CLASS_OPTIONS)


def judge_rows(
    rows: Sequence[LabelledCompletion],
    backend: Backend,
    *,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One result per row, in order: its line, the people's class, the judge's (None when not
    classed) and the judge's probabilities. `progress` gets the count of each batch done."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        asked = [
            ReplyToClass(i, [{"role": "user", "content": row.prompt}], row.completion)
            for i, row in enumerate(batch)
        ]
        for row, judged in zip(batch, classify_replies(asked, backend), strict=True):
            out.append(
                {
                    "line": row.line,
                    "id": row.id,
                    "people": row.final_label.value,
                    "judge": judged.refusal_class.value if judged.refusal_class else None,
                    "probabilities": judged.probabilities,
                    "flags": judged.flags,
                }
            )
        if progress is not None:
            progress(len(batch))
    return out


def summarise(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (with its Wilson interval), the 3x3 confusion matrix (rows: people, columns:
    the judge, in CLASSES' order), Cohen's kappa and n, over the rows the judge classed."""
    pairs = [(r["people"], r["judge"]) for r in results if r["judge"] is not None]
    base: dict[str, Any] = {
        "classes": list(CLASSES),
        "n": len(pairs),
        "skipped": len(results) - len(pairs),
        "people_counts": {c: sum(r["people"] == c for r in results) for c in CLASSES},
    }
    if not pairs:
        return {**base, "accuracy": None, "kappa": None, "matrix": None}
    check = check_judge(pairs, CLASSES)
    return {
        **base,
        "accuracy": check.accuracy.value,
        "accuracy_low": check.accuracy.low,
        "accuracy_high": check.accuracy.high,
        "kappa": check.kappa,
        "kappa_words": check.kappa_words,
        "matrix": check.matrix,
        "recall": {c: check.recall(c) for c in CLASSES},
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The check as text: accuracy, kappa and the confusion matrix (the CLI prints this)."""
    if summary["accuracy"] is None:
        return f"no row classed ({summary['skipped']} skipped)"
    lines = [
        f"n={summary['n']} (skipped {summary['skipped']})",
        f"accuracy {100 * summary['accuracy']:.1f}% "
        f"[{100 * summary['accuracy_low']:.1f}, {100 * summary['accuracy_high']:.1f}]",
        f"Cohen's kappa {summary['kappa']:.3f} ({summary['kappa_words']})",
        "people \\ judge  " + "".join(f"{c:>15}" for c in CLASSES),
    ]
    for label, row in zip(CLASSES, summary["matrix"], strict=True):
        lines.append(f"{label:15} " + "".join(f"{count:>15}" for count in row))
    return "\n".join(lines)
