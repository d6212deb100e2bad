"""Number fields read from a spec's own bounds (app.forms.spec_number_fields)."""

import pytest

from app.forms import parse_numbers, spec_number_fields
from app.specs.generation import MAX_ROUNDS, GenerationSpec


def test_the_bounds_and_kinds_come_from_the_spec() -> None:
    fields = spec_number_fields(GenerationSpec, ("rounds", "max_new_tokens", "temperature"))
    assert fields == {
        "rounds": (int, 1, MAX_ROUNDS),
        "max_new_tokens": (int, 1, 32_768),
        "temperature": (float, 0.0, 5.0),
    }


def test_a_value_outside_the_spec_bounds_is_refused_with_them() -> None:
    errors: dict[str, str] = {}
    parse_numbers(
        {"rounds": str(MAX_ROUNDS + 1)}, spec_number_fields(GenerationSpec, ["rounds"]), errors
    )
    assert errors == {"rounds": f"From 1 to {MAX_ROUNDS}."}


def test_a_field_that_is_not_a_number_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match=r"GenerationSpec\.stop"):
        spec_number_fields(GenerationSpec, ["stop"])
