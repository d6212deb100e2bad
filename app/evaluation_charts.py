"""An evaluation run's stored result (app.recipe.eval_results) as the data its charts draw
(templates/evaluations/_charts.html, static/eval_charts.js): the paper's picture, each model's
harmlessness rating against its helpfulness rating with 95% intervals both ways, and a bar per
model for each rate (refusal, over-refusal, evasiveness) with its 95% Wilson interval.

Plain JSON-ready dicts, since the page carries them as JSON in data attributes. Both use what
the summary table shows: ratings with all of an axis's suites pooled, rates over all suites.
"""

from dataclasses import dataclass, field
from typing import Any, TypedDict

RATE_NAMES = {"refusal": "Refusal", "over-refusal": "Over-refusal", "evasiveness": "Evasiveness"}


class RatingPoint(TypedDict):
    model: str
    name: str
    helpful: float
    helpful_low: float
    helpful_high: float
    harmless: float
    harmless_low: float
    harmless_high: float


class RateBar(TypedDict):
    model: str
    name: str
    value: float | None  # None: no reply of the model was classed on these suites
    low: float | None
    high: float | None
    successes: int
    trials: int


@dataclass
class RateBars:
    kind: str
    title: str
    bars: list[RateBar]


@dataclass
class Charts:
    scatter: list[RatingPoint] = field(default_factory=list)  # empty: not both axes rated
    bars: list[RateBars] = field(default_factory=list)  # in RATE_NAMES order


def _pooled_ratings(result: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """axis -> model -> its row of the axis's all-suites rating table."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for group in result.get("ratings", []):
        if group.get("suite_id") or not group.get("table"):
            continue
        out[group["axis"]] = {str(row["model"]): row for row in group["table"]["ratings"]}
    return out


def rating_points(result: dict[str, Any]) -> list[RatingPoint]:
    """One point per model rated on both axes, in the run's order of models."""
    names: dict[str, str] = result.get("models", {})
    pooled = _pooled_ratings(result)
    helpful, harmless = pooled.get("helpful", {}), pooled.get("harmless", {})
    order = list(names) + [m for m in helpful if m not in names]
    return [
        RatingPoint(
            model=model,
            name=names.get(model, model),
            helpful=helpful[model]["rating"],
            helpful_low=helpful[model]["low"],
            helpful_high=helpful[model]["high"],
            harmless=harmless[model]["rating"],
            harmless_low=harmless[model]["low"],
            harmless_high=harmless[model]["high"],
        )
        for model in order
        if model in helpful and model in harmless
    ]


def rate_bars(result: dict[str, Any]) -> list[RateBars]:
    """Per rate kind the run has, a bar per model: its rate over all suites of the kind."""
    names: dict[str, str] = result.get("models", {})
    kinds: dict[str, RateBars] = {}
    for entry in result.get("rates", []):
        if entry["suite_id"] is not None:
            continue
        kind, model = entry["kind"], str(entry["model"])
        bars = kinds.setdefault(kind, RateBars(kind, RATE_NAMES.get(kind, kind), []))
        bars.bars.append(
            RateBar(
                model=model,
                name=names.get(model, model),
                value=entry["value"],
                low=entry["low"],
                high=entry["high"],
                successes=entry["successes"],
                trials=entry["trials"],
            )
        )
    order = list(RATE_NAMES)
    return sorted(kinds.values(), key=lambda b: order.index(b.kind) if b.kind in order else 99)


def charts(result: dict[str, Any]) -> Charts:
    return Charts(scatter=rating_points(result), bars=rate_bars(result))
