"""A training or RL job's metrics as the charts its page draws (static/curves.js, with uPlot).

The server only groups and orders the (step, value) points; the page's script draws them and
adds each status poll's newer points (`metrics_after`) to the charts it already has.
"""

from dataclasses import dataclass
from typing import TypedDict

from sqlmodel import Session, col, select

from app.models import JobMetric

# The order charts are drawn in; anything else follows alphabetically.
CURVE_ORDER = [
    "loss",
    "eval_loss",
    "rewards/margins",
    "rewards/accuracies",
    "rewards/chosen",
    "rewards/rejected",
    "accuracy",
    "learning_rate",
    "grad_norm",
]
# Bookkeeping values that are not worth a curve.
NOT_CURVES = {"epoch", "total_flos", "train_runtime", "step"}
# Metrics drawn on another metric's chart rather than their own: the eval loss beside the
# training loss, on the same axes; the reward's spread around the reward (a "<chart>_std"
# series is drawn as the band mean ± std).
CHART_OF = {"eval_loss": "loss", "reward_std": "reward"}

# The most metric rows one status poll reads: a page that fell behind (a tab left in the
# background) catches up over a few polls instead of in one large read.
METRICS_PER_POLL = 2000

Points = list[tuple[int, float]]


class SeriesSummary(TypedDict):
    """One series in words, the chart's text beside the picture."""

    metric: str
    count: int
    first_step: int
    last_step: int
    low: float
    high: float
    last: float


@dataclass
class Chart:
    name: str  # the chart's own metric; CHART_OF names the others drawn on it
    series: dict[str, Points]  # the chart's own metric first

    def summaries(self) -> list[SeriesSummary]:
        return [_summary(metric, points) for metric, points in self.series.items()]


def _summary(metric: str, points: Points) -> SeriesSummary:
    values = [v for _, v in points]
    steps = [s for s, _ in points]
    return SeriesSummary(
        metric=metric,
        count=len(points),
        first_step=min(steps),
        last_step=max(steps),
        low=min(values),
        high=max(values),
        last=values[-1],
    )


def is_curve(name: str) -> bool:
    return name not in NOT_CURVES and not name.startswith("train_")


def chart_of(metric: str) -> str:
    return CHART_OF.get(metric, metric)


def curve_rank(name: str) -> tuple[int, str]:
    return (CURVE_ORDER.index(name) if name in CURVE_ORDER else len(CURVE_ORDER), name)


def group_charts(series: dict[str, Points]) -> list[Chart]:
    """Each metric on its chart (CHART_OF), the charts in CURVE_ORDER, the chart's own metric
    first on it. A metric whose chart has no points of its own still gets that chart."""
    charts: dict[str, Chart] = {}
    for metric in sorted(series, key=lambda m: (m != chart_of(m), curve_rank(m))):
        chart = charts.setdefault(chart_of(metric), Chart(chart_of(metric), {}))
        chart.series[metric] = series[metric]
    return [charts[name] for name in sorted(charts, key=curve_rank)]


def metric_charts(*, session: Session, job_id: int) -> tuple[list[Chart], int]:
    """Every chart of a job, and the id of the last metric row read (the next poll's cursor)."""
    rows = session.exec(
        select(JobMetric.id, JobMetric.step, JobMetric.name, JobMetric.value)
        .where(JobMetric.job_id == job_id)
        .order_by(col(JobMetric.step), col(JobMetric.id))
    ).all()
    series: dict[str, Points] = {}
    for _, step, name, value in rows:
        if is_curve(name):
            series.setdefault(name, []).append((step, value))
    return group_charts(series), max((row_id or 0 for row_id, *_ in rows), default=0)


def metrics_after(
    *, session: Session, job_id: int, after_id: int, limit: int = METRICS_PER_POLL
) -> tuple[dict[str, Points], int]:
    """The curve points stored after metric row `after_id`, by metric, and the new cursor.

    The cursor is the row id, not the step: an evaluation is logged at a step the page may
    already have a loss for, and a training resumed from its checkpoint logs steps again.
    """
    rows = session.exec(
        select(JobMetric.id, JobMetric.step, JobMetric.name, JobMetric.value)
        .where(JobMetric.job_id == job_id, col(JobMetric.id) > after_id)
        .order_by(col(JobMetric.id))
        .limit(limit)
    ).all()
    series: dict[str, Points] = {}
    for _, step, name, value in rows:
        if is_curve(name):
            series.setdefault(name, []).append((step, value))
    return series, max((row_id or 0 for row_id, *_ in rows), default=after_id)
