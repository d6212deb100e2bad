"""The judge against people: confusion matrix, accuracy and Cohen's kappa over three classes."""

import pytest

from app.recipe.judge_check import check_judge, confusion_matrix

CLASSES = ("complies", "refuses", "partly")


def pairs_from(matrix: list[list[int]]) -> list[tuple[str, str]]:
    return [
        (CLASSES[i], CLASSES[j])
        for i, row in enumerate(matrix)
        for j, count in enumerate(row)
        for _ in range(count)
    ]


def test_kappa_and_accuracy_match_a_hand_computed_example() -> None:
    # People (rows) against the judge (columns), 10 items:
    #            complies refuses partly | people
    # complies       4       1      0    |   5
    # refuses        1       2      0    |   3
    # partly         0       1      1    |   2
    # judge          5       4      1
    # observed = 7/10; expected = (5*5 + 3*4 + 2*1) / 100 = 39/100;
    # kappa = (0.70 - 0.39) / (1 - 0.39) = 31/61 = 0.5082.
    matrix = [[4, 1, 0], [1, 2, 0], [0, 1, 1]]
    check = check_judge(pairs_from(matrix), CLASSES)
    assert check.matrix == matrix
    assert check.kappa == pytest.approx(31 / 61)
    assert check.kappa_words == "moderate"
    assert (check.accuracy.successes, check.items) == (7, 10)
    assert check.accuracy.low < 0.7 < check.accuracy.high
    assert check.recall("refuses") == pytest.approx(2 / 3)


def test_a_perfect_judge_has_kappa_one_and_a_judge_at_chance_about_zero() -> None:
    perfect = check_judge(pairs_from([[3, 0, 0], [0, 2, 0], [0, 0, 1]]), CLASSES)
    assert perfect.kappa == 1.0
    # The judge always says "complies": it agrees on every complying item, and kappa is 0.
    constant = check_judge(pairs_from([[6, 0, 0], [3, 0, 0], [1, 0, 0]]), CLASSES)
    assert constant.kappa == pytest.approx(0.0)
    assert constant.accuracy.successes == 6
    assert constant.recall("partly") == 0.0


def test_a_class_nobody_used_has_an_empty_row_and_no_recall() -> None:
    check = check_judge([("complies", "complies"), ("refuses", "complies")], CLASSES)
    assert check.matrix[2] == [0, 0, 0] and check.recall("partly") is None


def test_an_unknown_label_or_no_items_is_refused() -> None:
    with pytest.raises(ValueError, match="item 2: the judge's label 'maybe'"):
        confusion_matrix([("complies", "refuses"), ("refuses", "maybe")], CLASSES)
    with pytest.raises(ValueError, match="no labelled items"):
        check_judge([], CLASSES)
