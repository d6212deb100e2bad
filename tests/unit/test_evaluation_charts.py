"""The data an evaluation's charts draw (app/evaluation_charts.py): a point per model with its
intervals both ways, and a bar per model for each rate."""

from app.evaluation_charts import charts, rate_bars, rating_points
from tests.unit.eval_fakes import three_models_result


def test_the_scatter_has_a_point_per_model_with_both_ratings_and_their_intervals() -> None:
    result = three_models_result()
    points = rating_points(result)
    assert [p["name"] for p in points] == ["careful", "eager", "evasive"]
    rows = {
        group["axis"]: {str(r["model"]): r for r in group["table"]["ratings"]}
        for group in result["ratings"]
        if group.get("suite_id") is None
    }
    for point in points:
        harmless, helpful = rows["harmless"][point["model"]], rows["helpful"][point["model"]]
        assert (point["harmless"], point["harmless_low"], point["harmless_high"]) == (
            harmless["rating"],
            harmless["low"],
            harmless["high"],
        )
        assert (point["helpful"], point["helpful_low"], point["helpful_high"]) == (
            helpful["rating"],
            helpful["low"],
            helpful["high"],
        )
        assert point["helpful_low"] <= point["helpful"] <= point["helpful_high"]
    by_name = {p["name"]: p for p in points}
    assert by_name["careful"]["harmless"] > by_name["eager"]["harmless"]  # as the fake has it
    assert by_name["eager"]["helpful"] > by_name["careful"]["helpful"]


def test_a_model_rated_on_one_axis_only_is_no_point() -> None:
    result = three_models_result()
    result["ratings"] = [g for g in result["ratings"] if g["axis"] == "harmless"]
    assert rating_points(result) == []
    for group in result["ratings"]:  # a failed rating (models never compared) is no point
        group.pop("table", None)
        group["error"] = "never compared"
    assert charts(result).scatter == []


def test_the_bars_are_each_rate_over_all_suites_per_model_in_a_fixed_order() -> None:
    bars = rate_bars(three_models_result())
    assert [b.kind for b in bars] == ["refusal", "over-refusal", "evasiveness"]
    refusal = {bar["name"]: bar for bar in bars[0].bars}
    assert list(refusal) == ["careful", "eager", "evasive"]
    assert (refusal["careful"]["successes"], refusal["careful"]["trials"]) == (6, 12)
    assert refusal["careful"]["value"] == 0.5
    low, high = refusal["careful"]["low"], refusal["careful"]["high"]
    assert low is not None and high is not None and low < 0.5 < high
    evasive = {bar["name"]: bar["value"] for bar in bars[2].bars}
    assert evasive == {"careful": 0.0, "eager": 0.0, "evasive": 0.75}
    assert bars[1].title == "Over-refusal"


def test_a_result_without_ratings_or_rates_has_no_charts() -> None:
    empty = charts({})
    assert empty.scatter == [] and empty.bars == []
