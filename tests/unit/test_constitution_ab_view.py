"""The A/B page's tables from a stored report, and a version's "compare with the previous
version" link: prefilled with the newest finished run of each, or saying what is missing."""

from app.constitution_ab import compare_link
from app.constitution_ab_view import NOTHING, ab_tables
from app.models import Job


def ALWAYS(a: int, b: int) -> bool:
    return True


def run(job_id: int, version_id: int) -> Job:
    return Job(
        id=job_id, kind="generate", queue="gpu", parameters={"constitution_version_id": version_id}
    )


def test_no_previous_version_says_so() -> None:
    found = compare_link(
        version_id=2, previous_id=None, previous_label="", runs=[run(9, 2)], share_prompts=ALWAYS
    )
    assert found.href is None and found.missing is not None and "no earlier" in found.missing


def test_a_missing_run_is_named() -> None:
    found = compare_link(
        version_id=2, previous_id=1, previous_label="v1", runs=[run(9, 2)], share_prompts=ALWAYS
    )
    assert found.href is None and found.missing == "To compare, run a generation under v1 first."
    none = compare_link(
        version_id=2, previous_id=1, previous_label="v1", runs=[], share_prompts=ALWAYS
    )
    assert none.missing == "To compare, run a generation under v1 and under this version first."


def test_the_newest_run_of_each_version_is_prefilled() -> None:
    runs = [run(12, 2), run(11, 1), run(10, 2), run(8, 1)]  # newest first
    found = compare_link(
        version_id=2, previous_id=1, previous_label="v1", runs=runs, share_prompts=ALWAYS
    )
    assert found.missing is None
    assert found.href == "/evaluations/ab?run_a_id=11&run_b_id=12&constitution_version_id=2"
    # The newest pair over the same prompts: run 12 shares none with 11 or 8, run 10 with 8.
    pairs = {(8, 10)}
    found = compare_link(
        version_id=2,
        previous_id=1,
        previous_label="v1",
        runs=runs,
        share_prompts=lambda a, b: (a, b) in pairs,
    )
    assert found.href == "/evaluations/ab?run_a_id=8&run_b_id=10&constitution_version_id=2"
    none = compare_link(
        version_id=2,
        previous_id=1,
        previous_label="v1",
        runs=runs,
        share_prompts=lambda a, b: False,
    )
    assert none.href is None and none.missing is not None and "share no prompt" in none.missing


def entry(group: str, wins: int, decided: int, value: float | None) -> dict[str, object]:
    return {
        "group": group,
        "wins": wins,
        "decided": decided,
        "value": value,
        "low": None if value is None else 0.25,
        "high": None if value is None else 0.9,
        "ties": 1,
        "skipped": 0,
        "mean_prob": value,
    }


def test_report_tables() -> None:
    assert ab_tables(7, {}) == []
    report = {
        "prompts": 3,
        "b_over_a": [entry("all", 2, 3, 2 / 3), entry("harm", 0, 0, None)],
        "revision_over_initial": {"a": [entry("all", 1, 2, 0.5)], "b": []},
    }
    tables = ab_tables(7, report)
    assert [t.key for t in tables] == ["b_over_a", "revision_a", "revision_b"]
    texts = [[c.text for c in row] for table in tables for row in table.rows]
    assert texts[0] == ["all principles", "67%", "25% to 90%", "2 of 3", "1", "0"]
    assert texts[1][1:3] == [NOTHING, f"{NOTHING} to {NOTHING}"]
    assert texts[2][1] == "50%" and tables[2].rows == []
    # The rate and the count open the comparisons behind them.
    rate, count = tables[0].rows[0][1], tables[0].rows[0][3]
    assert rate.href == count.href == "/evaluations/ab/7/comparisons?kind=ab&group=all"
    assert tables[1].rows[0][1].href == "/evaluations/ab/7/comparisons?kind=a&group=all"
