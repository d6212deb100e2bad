"""app.recipe.calibration on hand-made predictions."""

import math

import pytest

from app.recipe.calibration import PairPrediction, calibration_report, sigmoid


def test_the_report_on_hand_made_pairs() -> None:
    predictions = [
        PairPrediction(predicted=0.95, target=1.0, people_prefer_chosen=True),
        PairPrediction(predicted=0.91, target=0.8),
        PairPrediction(predicted=0.62, target=0.7, people_prefer_chosen=False),
        PairPrediction(predicted=0.4, target=0.6, people_prefer_chosen=True),
        PairPrediction(predicted=0.3, target=0.5),  # leans neither way: not in the accuracy
    ]
    report = calibration_report(predictions, bins=10)

    assert report.pairs == 5
    # Leaning like the target: the first three yes, the fourth no.
    assert report.accuracy == pytest.approx(3 / 4)
    errors = [0.05, 0.11, 0.08, 0.2, 0.2]
    assert report.mean_abs_error == pytest.approx(sum(errors) / 5)
    # Bins of 0.1: [0.3, 0.4) holds 0.3; [0.4, 0.5) 0.4; [0.6, 0.7) 0.62; [0.9, 1.0] 0.95, 0.91.
    by_bin = {round(b.low, 1): b for b in report.bins}
    assert [b.count for b in report.bins] == [0, 0, 0, 1, 1, 0, 1, 0, 0, 2]
    top = by_bin[0.9]
    assert top.mean_predicted == pytest.approx(0.93) and top.mean_observed == pytest.approx(0.9)
    assert by_bin[0.0].mean_predicted is None and by_bin[0.0].mean_observed is None
    ece = (1 * 0.2 + 1 * 0.2 + 1 * 0.08 + 2 * abs(0.93 - 0.9)) / 5
    assert report.expected_calibration_error == pytest.approx(ece)
    # People labelled three; the model leans their way on the first only (on the third it
    # prefers chosen where people did not, on the fourth rejected where people chose chosen).
    assert report.people_pairs == 3
    assert report.people_agreement == pytest.approx(1 / 3)
    assert report.to_dict()["bins"][9]["count"] == 2


def test_a_perfectly_calibrated_model_has_no_error() -> None:
    predictions = [PairPrediction(predicted=p, target=p) for p in (0.55, 0.7, 0.7, 0.9, 1.0)]
    report = calibration_report(predictions, bins=5)
    assert report.mean_abs_error == 0 and report.expected_calibration_error == pytest.approx(0)
    assert report.accuracy == 1.0
    assert report.bins[-1].count == 2  # 0.9 and exactly 1.0 share the last bin
    assert report.people_agreement is None and report.people_pairs == 0


def test_ece_averages_inside_a_bin_where_the_mean_error_does_not() -> None:
    # Over- and under-confidence in one bin cancel in the ECE but not in the mean error.
    predictions = [PairPrediction(predicted=0.71, target=0.79), PairPrediction(0.79, 0.71)]
    report = calibration_report(predictions, bins=10)
    assert report.expected_calibration_error == pytest.approx(0)
    assert report.mean_abs_error == pytest.approx(0.08)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no held-out pairs"):
        calibration_report([])
    with pytest.raises(ValueError, match="target"):
        calibration_report([PairPrediction(predicted=0.5, target=1.5)])
    with pytest.raises(ValueError, match="predicted"):
        calibration_report([PairPrediction(predicted=math.nan, target=1.0)])
    with pytest.raises(ValueError, match="bin"):
        calibration_report([PairPrediction(predicted=0.5, target=1.0)], bins=0)


def test_sigmoid_is_stable_at_the_extremes() -> None:
    assert sigmoid(0) == 0.5
    assert sigmoid(1000) == 1.0 and sigmoid(-1000) == 0.0
    assert sigmoid(2) == pytest.approx(1 / (1 + math.exp(-2)))
