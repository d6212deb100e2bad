"""Judge-people agreement of an evaluation run: kappa on known tables, per suite, and the
table the results page shows (links to label more, dashes where nothing is labelled)."""

import pytest

from app.evaluation_view import NOTHING, agreement_rows
from app.recipe.eval_agreement import (
    CLASSES,
    COMPARISONS,
    EVASIVE,
    agreement_by_suite,
    judge_choice,
    kappa_of,
)


def test_the_judge_decides_as_a_person_would() -> None:
    assert [judge_choice(p) for p in (0.9, 0.1, 0.5, None)] == ["A", "B", "tie", None]


def test_kappa_of_a_textbook_table() -> None:
    # Judge A/person A 20, A/B 5, B/A 10, B/B 15: observed 0.7, chance 0.5, kappa 0.4.
    pairs = [("A", "A")] * 20 + [("A", "B")] * 5 + [("B", "A")] * 10 + [("B", "B")] * 15
    found = kappa_of(pairs)
    assert (found.n, found.agree, found.raw) == (50, 35, 0.7)
    assert found.kappa == pytest.approx(0.4)
    assert found.words == "fair"


def test_kappa_of_a_three_class_table() -> None:
    # Perfect agreement over three classes is 1; always disagreeing in a cycle is below 0.
    same = [("complies", "complies"), ("refuses", "refuses"), ("partly-refuses", "partly-refuses")]
    assert kappa_of(same).kappa == 1.0
    cycled = [
        ("complies", "refuses"),
        ("refuses", "partly-refuses"),
        ("partly-refuses", "complies"),
    ]
    found = kappa_of(cycled)
    assert found.agree == 0 and found.kappa is not None and found.kappa < 0


def test_no_labels_gives_empty_rows_for_every_suite() -> None:
    rows = agreement_by_suite([7, 8], [], [])
    assert [(r.suite_id, r.kind) for r in rows] == [
        (7, COMPARISONS),
        (7, CLASSES),
        (8, COMPARISONS),
        (8, CLASSES),
        (None, COMPARISONS),
        (None, CLASSES),
    ]
    assert all(r.result.n == 0 and r.result.kappa is None and r.result.raw is None for r in rows)
    shown = agreement_rows(3, {7: "red", 8: "safe"}, rows)
    assert shown[0].suite == "red" and shown[-1].suite == "all suites"
    assert (shown[0].raw, shown[0].kappa, shown[0].words) == (NOTHING, NOTHING, "")
    assert shown[0].label_more.href == "/evaluations/3/judgements/label?suite=7"
    assert shown[1].label_more.href == "/evaluations/3/replies/label?suite=7"
    assert shown[-2].label_more.href == "/evaluations/3/judgements/label"


def test_labels_count_in_their_suite_and_in_all_suites() -> None:
    comparisons = [
        (7, 0.9, "A"),
        (7, 0.2, "B"),
        (7, 0.3, "A"),
        (7, None, "A"),  # skipped by the judge: left out
        (8, 0.5, "tie"),
    ]
    replies = [
        (7, "refuses", True, "refuses", True),
        (7, "complies", False, "refuses", False),
        (8, None, False, "complies", False),  # not classed by the judge: left out
    ]
    rows = {
        (r.suite_id, r.kind): r.result for r in agreement_by_suite([7, 8], comparisons, replies)
    }
    assert (rows[7, COMPARISONS].n, rows[7, COMPARISONS].agree) == (3, 2)
    # Judge A,B,B vs people A,B,A: observed 2/3, chance (1*2 + 2*1)/9 = 4/9, kappa 0.4.
    assert rows[7, COMPARISONS].kappa == pytest.approx(0.4)
    assert (rows[8, COMPARISONS].n, rows[8, COMPARISONS].kappa) == (1, 1.0)
    assert (rows[None, COMPARISONS].n, rows[None, COMPARISONS].agree) == (4, 3)
    assert (rows[7, CLASSES].n, rows[7, CLASSES].agree) == (2, 1)
    assert rows[7, EVASIVE].n == 2 and rows[7, EVASIVE].agree == 2
    assert rows[8, CLASSES].n == 0 and (8, EVASIVE) not in rows
    shown = agreement_rows(3, {7: "red", 8: "safe"}, agreement_by_suite([7], comparisons, []))
    assert (shown[0].labels, shown[0].raw, shown[0].kappa) == (3, "67% (2)", "0.40")
    assert len(shown) == 2  # one suite: no all-suites rows
