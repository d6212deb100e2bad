"""The label-agreement figures the llama.cpp benchmarks report (benchmarks/llama_server_labels)."""

import math

from benchmarks.llama_server_labels import DECIDED_MARGIN, compare, decided_cell
from worker.pipeline.ai_feedback import Comparison

LABEL_OF_SIGN = {1: "A", -1: "B", 0: "tie"}


def comparison(pair_id: int, prob_a: float | None) -> Comparison:
    label = LABEL_OF_SIGN[(prob_a > 0.5) - (prob_a < 0.5)] if prob_a is not None else "skipped"
    return Comparison(
        pair_id=pair_id,
        principle_keys=[],
        prob_a=prob_a,
        prob_b=None if prob_a is None else 1 - prob_a,
        per_principle=[],
        reasoning="",
        label=label,
    )


def test_agreement_on_decided_pairs_leaves_out_the_near_ties_of_the_reference() -> None:
    reference = [comparison(0, 0.51), comparison(1, 0.8), comparison(2, 0.2), comparison(3, 0.49)]
    # Flips both near-ties, keeps one decided pair and flips the other.
    ours = [comparison(0, 0.49), comparison(1, 0.7), comparison(2, 0.6), comparison(3, 0.52)]
    result = compare(ours, reference)
    assert result["agreement"] == 0.25
    assert result["decided"] == 2
    assert result["agreement_decided"] == 0.5
    assert math.isclose(result["mean_abs_dp"], (0.02 + 0.1 + 0.4 + 0.03) / 4)
    assert decided_cell(result) == "50% of 2"


def test_a_pair_exactly_at_the_margin_counts_as_decided_and_skips_are_counted() -> None:
    reference = [comparison(0, 0.5 + DECIDED_MARGIN), comparison(1, 0.5)]
    ours = [comparison(0, 0.9), comparison(1, None)]
    result = compare(ours, reference)
    assert result["decided"] == 1
    assert result["agreement_decided"] == 1.0
    assert result["skipped"] == 1


def test_no_decided_pair_says_so() -> None:
    reference = [comparison(0, 0.5), comparison(1, 0.52)]
    result = compare(reference, reference)
    assert result["decided"] == 0
    assert math.isnan(result["agreement_decided"])
    assert decided_cell(result) == "none decided"
