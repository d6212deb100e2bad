"""Ratings of models from judged comparisons: Bradley-Terry on the Elo scale, with intervals
from a bootstrap over prompts, and the observed win-rate matrix.

The bootstrap resamples prompts, not comparisons: every comparison of a drawn prompt comes with
it (once per draw). Comparisons on one prompt are not independent (a prompt that is easy for
one model tends to be easy for the others, and the same replies meet in several pairs), and
the prompts are the sample whose variation the interval should reflect. Each replicate is the
per-pair totals reweighted by how often each prompt was drawn, and all replicates are fitted
at once (`fit_strengths` takes a batch). Intervals are the percentile intervals of the
replicates' ratings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.recipe.bradley_terry import (
    DEFAULT_RIDGE,
    ELO_CENTRE,
    FloatArray,
    PairTotals,
    SoftComparison,
    check_comparisons,
    fit_strengths,
    orient,
    pair_index,
    pair_totals,
    to_elo,
)

DEFAULT_SAMPLES = 1000


@dataclass(frozen=True)
class ModelRating:
    model: str
    rating: float  # Elo points
    low: float  # the interval's ends, Elo points
    high: float
    comparisons: int  # comparisons this model took part in


@dataclass(frozen=True)
class WinRates:
    """rates[i][j]: the mean of P(models[i] beats models[j]) over their comparisons, None when
    they never met (and on the diagonal); counts[i][j]: how many comparisons that is."""

    models: tuple[str, ...]
    rates: list[list[float | None]]
    counts: list[list[int]]


@dataclass(frozen=True)
class RatingTable:
    ratings: list[ModelRating]  # highest rating first
    win_rates: WinRates
    prompts: int  # distinct prompts, the units the bootstrap resampled
    samples: int  # bootstrap replicates
    seed: int
    confidence: float
    anchor: str | None  # the model held at the centre, or None: the mean is at the centre

    def rating(self, model: str) -> ModelRating:
        for row in self.ratings:
            if row.model == model:
                return row
        raise KeyError(model)


def win_rates(comparisons: Sequence[SoftComparison]) -> WinRates:
    models = check_comparisons(comparisons)
    position = {model: i for i, model in enumerate(models)}
    size = len(models)
    sums = [[0.0] * size for _ in range(size)]
    counts = [[0] * size for _ in range(size)]
    for item in comparisons:
        first, second, p = orient(item, position)
        i, j = position[first], position[second]
        sums[i][j] += p
        sums[j][i] += 1.0 - p
        counts[i][j] += 1
        counts[j][i] += 1
    rates: list[list[float | None]] = [
        [sums[i][j] / counts[i][j] if counts[i][j] else None for j in range(size)]
        for i in range(size)
    ]
    return WinRates(models, rates, counts)


def _per_prompt_totals(
    comparisons: Sequence[SoftComparison], models: tuple[str, ...]
) -> tuple[list[int | str], FloatArray, FloatArray]:
    """Prompts in first-seen order, and each prompt's (weight, wins) per pair: (prompts, pairs)."""
    position = {model: i for i, model in enumerate(models)}
    columns = pair_index(models)
    prompts: dict[int | str, int] = {}
    for item in comparisons:
        prompts.setdefault(item.prompt, len(prompts))
    weight = np.zeros((len(prompts), len(columns)))
    wins = np.zeros((len(prompts), len(columns)))
    for item in comparisons:
        first, second, p = orient(item, position)
        row, column = prompts[item.prompt], columns[(first, second)]
        weight[row, column] += 1.0
        wins[row, column] += p
    return list(prompts), weight, wins


def bootstrap_strengths(
    comparisons: Sequence[SoftComparison],
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    ridge: float = DEFAULT_RIDGE,
) -> tuple[tuple[str, ...], FloatArray]:
    """The models and the strengths of `samples` bootstrap replicates, (samples, models)."""
    if samples < 1:
        raise ValueError("the bootstrap needs at least one sample")
    models = check_comparisons(comparisons)
    prompts, weight, wins = _per_prompt_totals(comparisons, models)
    rng = np.random.default_rng(seed)
    # How often each prompt is drawn in each replicate: n draws with replacement from n.
    draws = rng.multinomial(len(prompts), np.full(len(prompts), 1.0 / len(prompts)), samples)
    base = pair_totals(comparisons, models)
    totals = PairTotals(models, base.first, base.second, draws @ weight, draws @ wins)
    return models, fit_strengths(totals, ridge=ridge)


def rate_models(
    comparisons: Sequence[SoftComparison],
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
    ridge: float = DEFAULT_RIDGE,
    anchor: str | None = None,
    centre: float = ELO_CENTRE,
) -> RatingTable:
    """Bradley-Terry ratings on the Elo scale with bootstrap intervals over prompts.

    The reference: the models' mean rating is `centre`, or, with `anchor`, that model's rating
    is `centre` in the fit and in every replicate (its interval is then the single point, and
    the others' intervals are for their difference from it). The same seed gives the same
    intervals. ValueError for fewer than two models, a model compared with itself, p_a outside
    [0, 1], models never compared with the others, or an unknown anchor."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("the confidence must be between 0 and 1")
    models = check_comparisons(comparisons)
    if anchor is not None and anchor not in models:
        raise ValueError(f"the anchor '{anchor}' is not one of the rated models")
    point = fit_strengths(pair_totals(comparisons, models), ridge=ridge)
    _, replicates = bootstrap_strengths(comparisons, samples=samples, seed=seed, ridge=ridge)
    if anchor is not None:
        column = models.index(anchor)
        point = point - point[column]
        replicates = replicates - replicates[:, [column]]
    ratings, replicate_ratings = to_elo(point, centre=centre), to_elo(replicates, centre=centre)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(replicate_ratings, [tail, 1.0 - tail], axis=0)
    table = win_rates(comparisons)
    taken = [sum(row) for row in table.counts]
    rows = [
        ModelRating(model, float(ratings[i]), float(low[i]), float(high[i]), taken[i])
        for i, model in enumerate(models)
    ]
    rows.sort(key=lambda row: (-row.rating, row.model))
    return RatingTable(
        ratings=rows,
        win_rates=table,
        prompts=len({item.prompt for item in comparisons}),
        samples=samples,
        seed=seed,
        confidence=confidence,
        anchor=anchor,
    )
