"""The overhead benchmarks' check that a hand-written TRL config is the app's, field by field."""

from benchmarks.config_check import config_differences


def test_equal_configs_have_no_differences() -> None:
    assert config_differences({"a": 1, "b": [2]}, {"b": [2], "a": 1}) == []


def test_a_changed_value_is_named() -> None:
    assert config_differences({"a": 1, "b": 2}, {"a": 1, "b": 3}) == ["b"]


def test_a_field_only_one_side_has_is_named_even_when_it_is_none() -> None:
    # A plain .get would read the missing field as None and call the two equal.
    assert config_differences({"a": 1, "x": None}, {"a": 1, "y": 0}) == ["x", "y"]


def test_differences_come_sorted() -> None:
    assert config_differences({"z": 1, "m": 1}, {"z": 2, "m": 2}) == ["m", "z"]
