"""Bradley-Terry strengths fitted by maximum likelihood to soft pairwise outcomes.

A comparison says how likely the judge found it that model a's reply beats model b's on one
prompt, p in [0, 1] (both orders averaged, so a tie is 0.5). The model is
P(a beats b) = sigmoid(s_a - s_b), and the fit maximises

    sum_k  w_k [ p_k log sigmoid(s_a - s_b) + (1 - p_k) log sigmoid(s_b - s_a) ]  -  ridge/2 |s|^2

With soft outcomes this is the Bernoulli quasi-likelihood: its score equations are unbiased
whenever E[p] = sigmoid(s_a - s_b), so hard 0/1 wins, ties and judge probabilities all fit the
same way. Only the per-pair totals enter it (the weight of the pair's comparisons and the sum
of a's outcomes), so a bootstrap replicate is a reweighting of those totals, and many
replicates are fitted at once as one batch of Newton steps.

The ridge term is a weak Gaussian prior, mean 0 and variance 1/ridge, on each strength. It does
two things: a model that wins (or loses) every comparison gets a large but finite strength
instead of running off to infinity, and the likelihood's gradient sums to zero over models, so
at the optimum ridge * sum(s) = 0: the strengths have mean 0 without a separate constraint (the
fixed reference). The default, 1e-2 (a prior standard deviation of 10 units, about 1,700 Elo
points), is negligible next to the information in even a few dozen comparisons (each adds up to
0.25 per unit squared), so it moves a rating only where the data cannot place it.

Strengths are in natural units; `ELO_PER_UNIT` (400 / ln 10) turns them into Elo points, on
which a difference of 400 means odds of 10 to 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

ELO_PER_UNIT = 400 / math.log(10)
ELO_CENTRE = 1000.0
DEFAULT_RIDGE = 1e-2

# Newton on a strictly concave objective converges quadratically; these only bound the work.
_MAX_ITERATIONS = 100
_TOLERANCE = 1e-10

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SoftComparison:
    """One judged comparison of two models' replies to one prompt."""

    prompt: int | str  # the bootstrap resamples prompts: all comparisons of one move together
    model_a: str
    model_b: str
    p_a: float  # P(a's reply beats b's), in [0, 1]; 0.5 is a tie


@dataclass(frozen=True)
class PairTotals:
    """The sufficient statistics of a set of comparisons: per unordered pair (i < j) of models,
    the weight of its comparisons and the weighted sum of i's outcomes against j."""

    models: tuple[str, ...]
    first: NDArray[np.intp]  # index i of each pair
    second: NDArray[np.intp]  # index j of each pair, i < j
    weight: FloatArray  # (pairs,) or (replicates, pairs)
    wins: FloatArray  # same shape as weight: sum of P(i beats j)


def check_comparisons(comparisons: Sequence[SoftComparison]) -> tuple[str, ...]:
    """The models, sorted; ValueError when the comparisons cannot be rated."""
    if not comparisons:
        raise ValueError("no comparisons to rate")
    for number, item in enumerate(comparisons, start=1):
        if item.model_a == item.model_b:
            raise ValueError(f"comparison {number} compares '{item.model_a}' with itself")
        if not (isinstance(item.p_a, int | float) and 0.0 <= item.p_a <= 1.0):
            # `not (0 <= p <= 1)` is also true for NaN, which would poison every sum.
            raise ValueError(f"comparison {number}: p_a is {item.p_a!r}, not in [0, 1]")
    models = tuple(sorted({m for item in comparisons for m in (item.model_a, item.model_b)}))
    if len(models) < 2:
        raise ValueError("ratings need at least two models")
    _check_connected(models, comparisons)
    return models


def _check_connected(models: tuple[str, ...], comparisons: Sequence[SoftComparison]) -> None:
    # Two groups never compared, directly or through others, have no common scale: the ridge
    # would put both at mean 0 and the page would show a difference the data never measured.
    parent = {model: model for model in models}

    def root(model: str) -> str:
        while parent[model] != model:
            parent[model] = parent[parent[model]]
            model = parent[model]
        return model

    for item in comparisons:
        parent[root(item.model_a)] = root(item.model_b)
    groups: dict[str, list[str]] = {}
    for model in models:
        groups.setdefault(root(model), []).append(model)
    if len(groups) > 1:
        listed = "; ".join(", ".join(group) for group in groups.values())
        raise ValueError(f"some models are never compared with the others: {listed}")


def pair_index(models: Sequence[str]) -> dict[tuple[str, str], int]:
    """Each unordered pair (i < j in `models` order) and its column in `PairTotals`."""
    pairs: dict[tuple[str, str], int] = {}
    for i in range(len(models)):
        for j in range(i + 1, len(models)):
            pairs[(models[i], models[j])] = len(pairs)
    return pairs


def orient(item: SoftComparison, position: dict[str, int]) -> tuple[str, str, float]:
    """(first, second, P(first beats second)) with first before second in the model order."""
    if position[item.model_a] < position[item.model_b]:
        return item.model_a, item.model_b, float(item.p_a)
    return item.model_b, item.model_a, 1.0 - float(item.p_a)


def pair_totals(comparisons: Sequence[SoftComparison], models: Sequence[str]) -> PairTotals:
    position = {model: i for i, model in enumerate(models)}
    columns = pair_index(models)
    weight = np.zeros(len(columns))
    wins = np.zeros(len(columns))
    for item in comparisons:
        first, second, p = orient(item, position)
        column = columns[(first, second)]
        weight[column] += 1.0
        wins[column] += p
    return _totals(tuple(models), weight, wins)


def _totals(models: tuple[str, ...], weight: FloatArray, wins: FloatArray) -> PairTotals:
    first, second = np.triu_indices(len(models), k=1)
    return PairTotals(models, first, second, weight, wins)


def fit_strengths(totals: PairTotals, *, ridge: float = DEFAULT_RIDGE) -> FloatArray:
    """Maximum-likelihood strengths (mean 0), shape (models,) or (replicates, models) as the
    totals' weights are one set or a batch of bootstrap replicates.

    Damped Newton: the objective is strictly concave (ridge > 0), so each Newton step is an
    ascent direction, and halving it until the objective rises keeps a far start (a model that
    won everything) from overshooting."""
    if ridge <= 0:
        # Without it a model that never loses has no finite strength.
        raise ValueError("the ridge must be positive")
    single = totals.weight.ndim == 1
    weight = np.atleast_2d(totals.weight)
    wins = np.atleast_2d(totals.wins)
    replicates, size = weight.shape[0], len(totals.models)
    # Each pair's column of the design: +1 for i, -1 for j.
    design = np.zeros((len(totals.first), size))
    design[np.arange(len(totals.first)), totals.first] = 1.0
    design[np.arange(len(totals.first)), totals.second] = -1.0
    strengths = np.zeros((replicates, size))
    objective = _objective(strengths, design, weight, wins, ridge)
    for _ in range(_MAX_ITERATIONS):
        step = _newton_step(strengths, design, weight, wins, ridge)
        scale = np.ones((replicates, 1))
        for _ in range(60):
            trial = strengths + scale * step
            trial_objective = _objective(trial, design, weight, wins, ridge)
            worse = trial_objective < objective - 1e-12
            if not worse.any():
                break
            scale[worse] /= 2
        strengths, objective = trial, trial_objective
        if np.max(np.abs(scale * step)) < _TOLERANCE:
            break
    # Exact at the optimum already (see the module's note); this removes the rounding residue.
    strengths -= strengths.mean(axis=1, keepdims=True)
    return strengths[0] if single else strengths


def _log_sigmoid(x: FloatArray) -> FloatArray:
    return -np.logaddexp(0.0, -x)


def _objective(
    strengths: FloatArray, design: FloatArray, weight: FloatArray, wins: FloatArray, ridge: float
) -> FloatArray:
    margin = strengths @ design.T  # (replicates, pairs): s_i - s_j
    likelihood = wins * _log_sigmoid(margin) + (weight - wins) * _log_sigmoid(-margin)
    result: FloatArray = likelihood.sum(axis=1) - 0.5 * ridge * (strengths**2).sum(axis=1)
    return result


def _newton_step(
    strengths: FloatArray, design: FloatArray, weight: FloatArray, wins: FloatArray, ridge: float
) -> FloatArray:
    margin = strengths @ design.T
    expected = 0.5 * (1.0 + np.tanh(0.5 * margin))  # sigmoid, without overflow
    gradient = (wins - weight * expected) @ design - ridge * strengths
    curvature = weight * expected * (1.0 - expected)  # (replicates, pairs)
    # Negative Hessian: design^T diag(curvature) design + ridge I, per replicate.
    information = np.einsum("rp,pi,pj->rij", curvature, design, design)
    information += ridge * np.eye(design.shape[1])
    step: FloatArray = np.linalg.solve(information, gradient[..., None])[..., 0]
    return step


def to_elo(strengths: FloatArray, *, centre: float = ELO_CENTRE) -> FloatArray:
    """Strengths (natural units, mean 0) on the Elo scale, centred at `centre`."""
    result: FloatArray = centre + ELO_PER_UNIT * np.asarray(strengths, dtype=float)
    return result
