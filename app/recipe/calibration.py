"""How well a preference model's probabilities match its targets, on held-out pairs.

A preference model scores both replies of a pair; sigmoid(r_chosen - r_rejected) is its probability
that `chosen` is the better one. Each pair's target p is the labeller's probability for `chosen`
(the feedback model's soft label, or 1 where a person decided or the dataset is hard). Plain
numbers in, plain numbers out: the training loop computes the report, the job page shows it.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_BINS = 10


@dataclass(frozen=True)
class PairPrediction:
    """One held-out pair: the model's probability for `chosen`, the target, and what people
    chose where they labelled the pair's comparison (None: nobody did, or they called it a tie)."""

    predicted: float  # sigmoid(r_chosen - r_rejected), in [0, 1]
    target: float  # p, in [0, 1]
    people_prefer_chosen: bool | None = None


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_predicted: float | None  # None for an empty bin
    mean_observed: float | None  # the targets' mean: the share chosen wins, for hard targets


@dataclass(frozen=True)
class CalibrationReport:
    pairs: int
    # Share of pairs where the model leans the way the target does (targets of exactly 0.5,
    # which lean neither way, are left out; None when every target is 0.5).
    accuracy: float | None
    mean_abs_error: float  # mean |sigmoid(Δr) - p|
    expected_calibration_error: float  # Σ_bins (n_b / n) · |mean predicted - mean target|
    bins: list[ReliabilityBin] = field(default_factory=list)
    people_pairs: int = 0  # pairs whose comparison people labelled (ties left out)
    people_agreement: float | None = None  # share of those where the model leans as people do

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sigmoid(x: float) -> float:
    # Written both ways so that neither a large positive nor a large negative margin overflows.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def calibration_report(
    predictions: Sequence[PairPrediction], *, bins: int = DEFAULT_BINS
) -> CalibrationReport:
    """Accuracy, mean absolute error, ECE over `bins` equal-width bins of the predicted
    probability (a prediction of exactly 1 falls in the last bin), and agreement with people."""
    if not predictions:
        raise ValueError("no held-out pairs to measure calibration on")
    if bins < 1:
        raise ValueError("at least one bin")
    for item in predictions:
        for name in ("predicted", "target"):
            value = getattr(item, name)
            if not (0.0 <= value <= 1.0) or math.isnan(value):
                raise ValueError(f"{name} must lie in [0, 1], not {value}")
    n = len(predictions)
    leaning = [item for item in predictions if item.target != 0.5]
    accuracy = (
        sum((item.predicted > 0.5) == (item.target > 0.5) for item in leaning) / len(leaning)
        if leaning
        else None
    )
    mean_abs_error = sum(abs(item.predicted - item.target) for item in predictions) / n
    members: list[list[PairPrediction]] = [[] for _ in range(bins)]
    for item in predictions:
        members[min(int(item.predicted * bins), bins - 1)].append(item)
    reliability: list[ReliabilityBin] = []
    ece = 0.0
    for index, group in enumerate(members):
        mean_predicted = mean_observed = None
        if group:
            mean_predicted = sum(item.predicted for item in group) / len(group)
            mean_observed = sum(item.target for item in group) / len(group)
            ece += len(group) / n * abs(mean_predicted - mean_observed)
        reliability.append(
            ReliabilityBin(
                low=index / bins,
                high=(index + 1) / bins,
                count=len(group),
                mean_predicted=mean_predicted,
                mean_observed=mean_observed,
            )
        )
    judged = [item for item in predictions if item.people_prefer_chosen is not None]
    agreement = (
        sum((item.predicted > 0.5) == item.people_prefer_chosen for item in judged) / len(judged)
        if judged
        else None
    )
    return CalibrationReport(
        pairs=n,
        accuracy=accuracy,
        mean_abs_error=mean_abs_error,
        expected_calibration_error=ece,
        bins=reliability,
        people_pairs=len(judged),
        people_agreement=agreement,
    )
